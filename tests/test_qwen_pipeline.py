"""vfi.qwen.pipeline's own contracts: the memory mode, fuse vs offload, the conditioning's keyframe order,
stock de-normalisation and decoding per frame (tiny pipelines on CPU)."""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers")

from vfi.errors import VFIError  # noqa: E402
from vfi.qwen.pipeline import LoadedPipeline  # noqa: E402

GIB = 2**30


class _Weights:
    """What _choose_memory_mode reads of a pipeline: its components, here with parameters on the meta device."""

    def __init__(self, **params: int) -> None:
        import torch

        self.components = {
            name: torch.nn.ParameterList([torch.nn.Parameter(torch.empty(n, dtype=torch.bfloat16, device="meta"))])
            for name, n in params.items()
        }
        self.components["scheduler"] = object()


@pytest.mark.parametrize(
    ("free_gib", "mode"),
    [(79.2, "none"), (44.5, "model"), (39.4, "sequential")],  # an 80 GB H100, a 48 GB L40S/A6000, a 40 GB A100
)
def test_auto_memory_mode_follows_the_cost_model(monkeypatch, free_gib, mode):
    """Qwen-Image-Edit in bf16 (transformer 20.43B, text encoder 8.29B, VAE 0.127B parameters): a 48 GB card
    holds the transformer with room for activations, so whole-model offload, not layer by layer."""
    import torch

    from vfi.qwen.pipeline import _choose_memory_mode

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (int(free_gib * GIB), 80 * GIB))
    pipe = _Weights(transformer=20_430_000_000, text_encoder=8_290_000_000, vae=127_000_000)
    assert _choose_memory_mode(pipe, "cuda") == mode


def test_fuse_with_sequential_offload_is_refused_in_one_sentence():
    """Sequential offload keeps the weights on the meta device (fusing crashed with "Cannot copy out of meta
    tensor"): refused before the base loads when asked for, before any adapter loads when auto chose it."""
    from vfi.backends.qwen_edit import QwenEditConfig
    from vfi.qwen.adapters import AdapterSpec

    with pytest.raises(VFIError, match="does not work with sequential CPU offload"):
        QwenEditConfig(base_model="nobody/never-loaded", memory="sequential", fuse=True)
    QwenEditConfig(memory="model", fuse=True)
    loaded = LoadedPipeline(pipe=None, base_model="Qwen/Qwen-Image-Edit", layout="side-by-side", device="cuda",
                            memory="sequential")  # fmt: skip
    with pytest.raises(VFIError, match="does not work with sequential CPU offload"):
        loaded.use_adapters([AdapterSpec("nobody/never-fetched")], fuse=True)
