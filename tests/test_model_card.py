"""The model card's usage: the plain-diffusers snippet gives the frame vfi gives; the card names a Hub base model."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")

from vfi.backends.base import FrameRequest  # noqa: E402
from vfi.backends.qwen_edit import QwenEditBackend  # noqa: E402
from vfi.quality.metrics import psnr  # noqa: E402
from vfi.qwen.adapters import AdapterInfo  # noqa: E402
from vfi.training.model_card import write_model_card  # noqa: E402

#: The snippet's settings line, swapped for a CPU run with 2 steps and no CFG.
CPU = 'device, dtype, steps, guidance, seed = "cpu", torch.float32, 2, 1.0, 0'


@pytest.mark.slow
@pytest.mark.parametrize("name", ["side-by-side", "multi"])
def test_card_snippet_gives_what_vfi_gives(tiny_models, triplet, tmp_path, monkeypatch, name):
    """Run the card's diffusers code on the tiny model: output size, prompt, layout and pixels as vfi's."""
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit as edit
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as plus

    base, adapter = (str(tiny_models[name][k]) for k in ("base", "adapter"))
    info = AdapterInfo.load(adapter)
    card = write_model_card(tmp_path, info, repo_id=adapter, history=[], flow=None).read_text()
    code = re.search(r"## Use with plain diffusers.*?```python\n(.*?)```", card, re.S).group(1)
    assert code.count("device, dtype, steps, guidance, seed = ") == 1 and repr(info.base_model) in code
    code = re.sub(r"device, dtype, steps, guidance, seed = .*", CPU, code)

    first, _, last = triplet
    Image.fromarray(first).save(tmp_path / "first.png")
    Image.fromarray(last).save(tmp_path / "last.png")
    monkeypatch.chdir(tmp_path)
    for module in (edit, plus):  # the snippet replaces the stock sizing; put it back afterwards
        monkeypatch.setattr(module, "calculate_dimensions", module.calculate_dimensions)
    exec(compile(code, "model card", "exec"), {})
    snippet = np.asarray(Image.open(tmp_path / "middle.png"))

    options = {
        "resolution": info.resolution,
        "steps": 2,
        "guidance": 1.0,
        "device": "cpu",
        "register": False,
        "fallback": False,
    }
    vfi = QwenEditBackend(base, [adapter], **options).interpolate([FrameRequest(first, last, 0.5, 0)])[0]
    assert snippet.shape == vfi.shape
    # multi: the same computation; side-by-side: vfi encodes each frame alone, so only the seam may differ
    assert psnr(snippet, vfi) > (60 if name == "multi" else 45)  # measured: 85 and 64 dB
