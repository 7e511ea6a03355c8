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


def _square(value: int, size: int = 64):
    import numpy as np

    return np.full((size, size, 3), value, np.uint8)


class _SeenByProcessor:
    """Stands in for ``pipe.processor``: records the images each call gets, then runs the real one."""

    def __init__(self, processor) -> None:
        self.processor, self.images = processor, []

    def __call__(self, *args, **kwargs):
        self.images.append(kwargs.get("images"))
        return self.processor(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.processor, name)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["side-by-side", "multi"])
def test_keyframe_order_in_the_condition_tokens(tiny_models, tmp_path, monkeypatch, layout):
    """Black first, white last: after the noise tokens the transformer sees the first keyframe's latents, then
    the last's (side-by-side: the left latent columns, then the right); the VL encoder sees [first, last];
    training caches the very tensor inference feeds."""
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import load_file

    from vfi.qwen.conditioning import build_conditioning
    from vfi.qwen.pipeline import encode_image, generate, load_pipeline
    from vfi.training.data import Sample
    from vfi.training.loop import cache_samples

    loaded = load_pipeline(str(tiny_models[layout]["base"]), device="cpu")
    pipe = loaded.pipe
    loaded.use_adapters([])
    black, white = _square(0), _square(255)
    cond = build_conditioning(black, white, layout=layout, resolution=64, prompt="between")
    seen = _SeenByProcessor(pipe.processor)
    monkeypatch.setattr(pipe, "processor", seen)
    inputs = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: inputs.append(kwargs["hidden_states"].clone()), with_kwargs=True
    )
    try:
        generate(loaded, [cond], [torch.Generator().manual_seed(0)], steps=2)
    finally:
        hook.remove()

    noise_tokens = (64 // 16) ** 2
    condition = inputs[0][:, noise_tokens:]
    first, last = (encode_image(loaded, Image.fromarray(frame)) for frame in (black, white))
    assert not torch.allclose(first, last)
    if layout == "multi":
        pack = [pipe._pack_latents(lat, 1, lat.shape[1], lat.shape[3], lat.shape[4]) for lat in (first, last)]
        torch.testing.assert_close(condition, torch.cat(pack, dim=1))
    else:
        columns = first.shape[-1]
        joined = pipe._unpack_latents(condition, 64, 2 * 64, pipe.vae_scale_factor)  # (1, C, 1, h, 2w)
        torch.testing.assert_close(joined[..., :columns], first)
        torch.testing.assert_close(joined[..., columns:], last)
    assert all(torch.equal(step[:, noise_tokens:], condition) for step in inputs)

    (images,) = seen.images
    images = images if isinstance(images, list) else [images]
    pixels = [np.asarray(image.convert("L"), float) for image in images]
    if layout == "multi":
        assert len(pixels) == 2 and pixels[0].max() < 10 and pixels[1].min() > 245
    else:
        (both,) = pixels
        half = both.shape[1] // 2
        assert both[:, :half].max() < 10 and both[:, half:].min() > 245

    for name, frame in (("first", black), ("middle", _square(128)), ("last", white)):
        Image.fromarray(frame).save(tmp_path / f"{name}.png")
    sample = Sample("order", tmp_path / "first.png", tmp_path / "middle.png", tmp_path / "last.png")
    (cached,) = cache_samples(loaded, [sample], resolution=64, prompt="between", cache_dir=tmp_path / "cache")
    torch.testing.assert_close(load_file(str(cached))["cond"], condition[0])


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("guidance", [1.0, 4.0])
def test_generate_gives_the_stock_pipelines_pixels(tiny_models, triplet, monkeypatch, dtype, guidance):
    """``generate`` == ``QwenImageEditPlusPipeline.__call__`` at the same working size, decoded pixels
    compared, in bf16 too (stock de-normalises with ``latents / (1 / std) + mean``) and with CFG."""
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as plus
    import numpy as np
    import torch

    from vfi.qwen.conditioning import build_conditioning
    from vfi.qwen.pipeline import generate, load_pipeline

    loaded = load_pipeline(str(tiny_models["multi"]["base"]), device="cpu", dtype=dtype)
    loaded.use_adapters([])
    first, _, last = triplet
    cond = build_conditioning(first, last, layout="multi", resolution=64, prompt="the frame in between")
    (ours,) = generate(loaded, [cond], [torch.Generator().manual_seed(3)], steps=2, true_cfg_scale=guidance)
    monkeypatch.setattr(plus, "calculate_dimensions", lambda area, ratio: (cond.width, cond.height))
    (stock,) = loaded.pipe(
        image=list(cond.keyframes), prompt=cond.prompt, negative_prompt=" ", width=cond.width, height=cond.height,
        num_inference_steps=2, true_cfg_scale=guidance, generator=torch.Generator().manual_seed(3),
    ).images  # fmt: skip
    difference = np.abs(np.asarray(ours, int) - np.asarray(stock, int))
    assert difference.max() == 0, difference.max()


@pytest.mark.slow
def test_a_batch_is_decoded_one_frame_at_a_time(tiny_models, triplet, monkeypatch):
    """The VAE decoder's activations grow with the batch (≈6 GiB a frame at 2048², estimated): one at a time."""
    import numpy as np
    import torch

    from vfi.qwen.conditioning import build_conditioning
    from vfi.qwen.pipeline import generate, load_pipeline

    loaded = load_pipeline(str(tiny_models["side-by-side"]["base"]), device="cpu")
    loaded.use_adapters([])
    first, _, last = triplet
    cond = build_conditioning(first, last, layout="side-by-side", resolution=64)
    alone = generate(loaded, [cond], [torch.Generator().manual_seed(1)], steps=2)
    decoded = []
    decode = loaded.pipe.vae.decode
    monkeypatch.setattr(loaded.pipe.vae, "decode", lambda z, **kw: decoded.append(z.shape[0]) or decode(z, **kw))
    batch = generate(loaded, [cond] * 3, [torch.Generator().manual_seed(s) for s in (1, 2, 3)], steps=2)
    assert decoded == [1, 1, 1]
    assert np.abs(np.asarray(batch[0], int) - np.asarray(alone[0], int)).max() <= 1


@pytest.mark.slow
def test_a_local_adapter_loads_once_per_content(tiny_models, triplet, tmp_path, monkeypatch):
    import shutil

    import numpy as np

    from vfi.backends.base import FrameRequest
    from vfi.backends.qwen_edit import QwenEditBackend
    from vfi.testing.tiny_model import build_tiny_adapter

    base = str(tiny_models["side-by-side"]["base"])
    shutil.copytree(tiny_models["side-by-side"]["adapter"], tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    options = {"resolution": 64, "steps": 2, "guidance": 1.0, "device": "cpu", "register": False, "fallback": False}
    request = FrameRequest(triplet[0], triplet[2], 0.5, 0)
    relative = QwenEditBackend(base, ["./mine"], **options)
    loaded = len(relative.loaded.adapters)
    before = relative.interpolate([request])[0]
    QwenEditBackend(base, [str(tmp_path / "mine")], **options)
    assert len(relative.loaded.adapters) == loaded  # the same file: not loaded again
    retrained = build_tiny_adapter(tiny_models["side-by-side"]["base"], tmp_path / "retrained", seed=5)
    shutil.copyfile(
        retrained / "pytorch_lora_weights.safetensors", tmp_path / "mine" / "pytorch_lora_weights.safetensors"
    )
    after = QwenEditBackend(base, ["./mine"], **options).interpolate([request])[0]
    assert len(relative.loaded.adapters) == loaded + 1
    assert np.abs(after.astype(int) - before).max() > 0


@pytest.mark.slow
def test_a_pinned_hub_base_loads_offline_and_the_manifest_records_its_commit(tiny_models, tmp_path, monkeypatch):
    """``--base-model OWNER/NAME:REVISION`` loads that snapshot; the manifest records the commit it resolved."""
    import huggingface_hub.constants as constants
    from hub_files import fill_hub_cache

    from vfi.backends.qwen_edit import QwenEditConfig
    from vfi.manifest import build_manifest
    from vfi.qwen.pipeline import load_pipeline, resolve_base

    folder = tiny_models["multi"]["base"]
    files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    commit = "d" * 40
    fill_hub_cache(tmp_path / "hub", "tiny/qwen-edit-plus", commit, files, refs=("main", "v1"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loaded = load_pipeline("tiny/qwen-edit-plus:v1", device="cpu")
    assert loaded.layout == "multi"
    assert resolve_base("tiny/qwen-edit-plus") == resolve_base(f"tiny/qwen-edit-plus:{commit}")
    assert resolve_base("tiny/qwen-edit-plus")[1] == commit
    config = QwenEditConfig(base_model="tiny/qwen-edit-plus:v1")
    manifest = build_manifest("pair", {"backend": "qwen-edit"}, [], {}, config, {}, 0.0, 1.0)
    assert manifest["backend"]["base_revision"] == commit
    with pytest.raises(VFIError, match="Could not load the base model tiny/qwen-edit-plus at revision v9"):
        resolve_base("tiny/qwen-edit-plus:v9")
