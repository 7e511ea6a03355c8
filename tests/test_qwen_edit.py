"""The generative path end to end on the tiny random pipelines: real loader, adapters, CLI, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytestmark = pytest.mark.slow  # torch + diffusers import and the tiny pipelines: a few seconds in all

from vfi.backends.base import FrameRequest  # noqa: E402
from vfi.backends.crossfade import CrossfadeBackend  # noqa: E402
from vfi.backends.qwen_edit import QwenEditBackend  # noqa: E402
from vfi.errors import VFIError  # noqa: E402
from vfi.interpolate import InterpolationSettings, interpolate_pair  # noqa: E402
from vfi.pipeline import base_loads, load_pipeline  # noqa: E402
from vfi.tiny_model import build_tiny_adapter, build_tiny_pipeline  # noqa: E402

LAYOUTS = ("side-by-side", "multi")
FAST = {"resolution": 64, "steps": 2, "guidance": 1.0, "device": "cpu"}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """Per layout: the pipeline folder and adapters (two matching, one for the other layout)."""
    root = tmp_path_factory.mktemp("tiny")
    out: dict[str, dict[str, Path]] = {}
    for layout in LAYOUTS:
        base = build_tiny_pipeline(root / layout, layout)
        out[layout] = {
            "base": base,
            "a": build_tiny_adapter(base, root / f"{layout}-a", seed=1),
            "b": build_tiny_adapter(base, root / f"{layout}-b", seed=2),
        }
    for layout, other in zip(LAYOUTS, reversed(LAYOUTS)):
        out[layout]["wrong"] = out[other]["a"]
    return out


@pytest.fixture
def frames(triplet) -> tuple[np.ndarray, np.ndarray]:
    first, _, last = triplet
    return first, last


def _backend(tiny, layout: str, *adapters: str, **options) -> QwenEditBackend:
    return QwenEditBackend(str(tiny[layout]["base"]), list(adapters), **{**FAST, **options})


def _midpoint(backend: QwenEditBackend, frames, seed: int = 7) -> np.ndarray:
    return backend.interpolate([FrameRequest(frames[0], frames[1], 0.5, seed)])[0]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cli_pair_depth_two_writes_mp4(tiny, keyframe_files, tmp_path, layout):
    from vfi.cli import main
    from vfi.video import probe_clip

    output = tmp_path / "out.mp4"
    status = main(
        [
            "pair",
            *map(str, keyframe_files),
            "-o",
            str(output),
            "--depth",
            "2",
            "--backend",
            "qwen-edit",
            "--base-model",
            str(tiny[layout]["base"]),
            "--adapter",
            f"{tiny[layout]['a']}@0.8",
            "--resolution",
            "64",
            "--steps",
            "2",
            "--guidance",
            "2",
            "--prompt",
            "in between",
        ]
    )
    assert status == 0
    info = probe_clip(output)
    assert (info.num_frames, info.width, info.height) == (5, 128, 96)


def test_cli_tiny_model_and_hybrid(tiny, keyframe_files, tmp_path, capsys):
    from vfi.cli import main
    from vfi.video import probe_clip

    assert main(["tiny-model", str(tmp_path / "m"), "--layout", "multi", "--adapter-out", str(tmp_path / "ad")]) == 0
    assert (tmp_path / "m" / "model_index.json").is_file()
    assert (tmp_path / "ad" / "pytorch_lora_weights.safetensors").is_file()
    output = tmp_path / "hybrid.mp4"
    status = main(
        [
            "pair",
            *map(str, keyframe_files),
            "-o",
            str(output),
            "--depth",
            "3",
            "--backend",
            "qwen-edit",
            "--base-model",
            str(tiny["multi"]["base"]),
            "--resolution",
            "64",
            "--steps",
            "2",
            "--refine",
            "crossfade",
            "--generative-depth",
            "1",
        ]
    )
    assert status == 0 and probe_clip(output).num_frames == 9
    assert main(["pair", *map(str, keyframe_files), "-o", str(output), "--generative-depth", "1"]) == 2
    assert "needs --refine" in capsys.readouterr().err


@pytest.mark.parametrize("layout", LAYOUTS)
def test_real_classes_and_cache(tiny, layout):
    loaded = load_pipeline(str(tiny[layout]["base"]), device="cpu")
    expected = {"side-by-side": "QwenImageEditPipeline", "multi": "QwenImageEditPlusPipeline"}[layout]
    assert type(loaded.pipe).__name__ == expected and loaded.layout == layout
    loads = base_loads()
    assert load_pipeline(str(tiny[layout]["base"]), device="cpu") is loaded
    assert base_loads() == loads


def test_adapters_change_output_and_switch_without_reloading(tiny, frames):
    base = _backend(tiny, "side-by-side")  # no adapter: baseline, with a warning
    loads = base_loads()
    plain = _midpoint(base, frames)
    with_a = _midpoint(_backend(tiny, "side-by-side", str(tiny["side-by-side"]["a"])), frames)
    with_b = _midpoint(_backend(tiny, "side-by-side", str(tiny["side-by-side"]["b"])), frames)
    weaker = _midpoint(_backend(tiny, "side-by-side", f"{tiny['side-by-side']['a']}@0.3"), frames)
    again = _midpoint(base, frames)  # the shared pipeline switches back to no adapter
    assert base_loads() == loads
    assert len(base.loaded.adapters) == 2
    outputs = [plain, with_a, with_b, weaker]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert np.abs(outputs[i].astype(int) - outputs[j]).max() > 0, (i, j)
    assert np.array_equal(plain, again)


def test_fused_adapter_matches_unfused(tiny, frames):
    adapter = str(tiny["side-by-side"]["a"])
    unfused = _midpoint(_backend(tiny, "side-by-side", adapter), frames)
    fused = _midpoint(_backend(tiny, "side-by-side", adapter, fuse=True), frames)
    assert np.abs(unfused.astype(int) - fused).max() <= 2
    _backend(tiny, "side-by-side")  # unfuses again for the other tests


def test_lightning_stacks_with_the_adapter(tiny, frames):
    adapter, lightning = str(tiny["side-by-side"]["a"]), str(tiny["side-by-side"]["b"])
    fast = _backend(tiny, "side-by-side", adapter, lightning=lightning, steps=None, guidance=None)
    assert (fast.steps, fast.guidance) == (8, 1.0)
    assert len(fast.loaded.active) == 2
    stacked = _midpoint(fast, frames)
    alone = _midpoint(_backend(tiny, "side-by-side", adapter, steps=8), frames)
    assert np.abs(stacked.astype(int) - alone).max() > 0
    with pytest.raises(VFIError, match="steps must be between 2 and 200"):
        _backend(tiny, "side-by-side", steps=1)


def test_no_adapter_warns(tiny, caplog):
    _backend(tiny, "multi", str(tiny["multi"]["a"]))
    assert "expected to fail at interpolation" not in caplog.text
    _backend(tiny, "multi")  # the base model alone, also on a fresh pipeline
    assert "expected to fail at interpolation" in caplog.text


def test_mismatched_and_unsafe_adapters_refused(tiny, tmp_path):
    with pytest.raises(VFIError, match="multi layout"):
        _backend(tiny, "side-by-side", str(tiny["side-by-side"]["wrong"]))
    other_base = build_tiny_adapter(tiny["multi"]["base"], tmp_path / "other", base_model="Qwen/Qwen-Image-Edit-2511")
    with pytest.raises(VFIError, match="trained on Qwen/Qwen-Image-Edit-2511"):
        _backend(tiny, "multi", str(other_base))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "adapter_model.bin").write_bytes(b"not loaded")
    with pytest.raises(VFIError, match="pickle"):
        _backend(tiny, "multi", str(pickled))


def test_unreachable_hub_is_one_sentence(tiny, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(VFIError, match="Could not fetch the adapter nobody/no-such-adapter"):
        _backend(tiny, "multi", "nobody/no-such-adapter")
    with pytest.raises(VFIError, match="Could not load the base model nobody/no-such-model"):
        QwenEditBackend("nobody/no-such-model", device="cpu")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_resolution_drives_token_count(tiny, frames, layout):
    backend64 = _backend(tiny, layout, resolution=64)
    backend128 = _backend(tiny, layout, resolution=128)
    tokens: list[int] = []
    hook = backend64.loaded.pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: tokens.append(kwargs["hidden_states"].shape[1]), with_kwargs=True
    )
    try:
        out64, out128 = _midpoint(backend64, frames), _midpoint(backend128, frames)
    finally:
        hook.remove()
    # 128×96 keyframes → 64×64 / 128×96 working size → (w/16)·(h/16) tokens for the output and each keyframe.
    assert tokens == [4 * 4 * 3] * 2 + [8 * 6 * 3] * 2
    assert out64.shape == out128.shape == frames[0].shape


@pytest.mark.parametrize("layout", LAYOUTS)
def test_seeds_reproduce_and_batches_match(tiny, frames, layout):
    backend = _backend(tiny, layout, guidance=3.0, batch=2)
    requests = [FrameRequest(frames[0], frames[1], 0.5, seed) for seed in (1, 2, 1)]
    first_run = backend.interpolate(requests[:2]) + backend.interpolate(requests[2:])
    second_run = _backend(tiny, layout, guidance=3.0, batch=1).interpolate(requests[:1])
    # Same seed, batched or alone: the same frame up to float rounding (a batched matmul sums in another order).
    assert np.abs(first_run[0].astype(int) - first_run[2]).max() <= 1
    assert np.array_equal(first_run[2], second_run[0])  # a new backend reproduces it bit for bit
    assert np.abs(first_run[0].astype(int) - first_run[1]).max() > 0  # another seed, another frame


def test_one_batched_call_per_level_and_keyframes_encoded_once(tiny, frames, monkeypatch):
    import vfi.backends.qwen_edit as qwen_module

    backend = _backend(tiny, "side-by-side", batch=4)
    calls, encodes = [], []
    real_generate, real_encode = qwen_module.generate, qwen_module.encode_image
    monkeypatch.setattr(
        qwen_module,
        "generate",
        lambda loaded, conds, *a, **k: calls.append(len(conds)) or real_generate(loaded, conds, *a, **k),
    )
    monkeypatch.setattr(
        qwen_module, "encode_image", lambda loaded, image: encodes.append(image.size) or real_encode(loaded, image)
    )
    out = list(interpolate_pair(*frames, backend, InterpolationSettings(depth=3)))
    assert len(out) == 8
    assert calls == [1, 2, 4]
    assert len(encodes) == 2 + 1 + 2  # first and last, then each new anchor once


def test_hybrid_counts_frames_per_backend(tiny, frames):
    class Counting:
        def __init__(self, inner):
            self.inner, self.made = inner, 0
            self.name, self.supports_any_t, self.max_batch = inner.name, inner.supports_any_t, inner.max_batch

        def interpolate(self, requests):
            self.made += len(requests)
            return self.inner.interpolate(requests)

    generative, refine = Counting(_backend(tiny, "side-by-side")), Counting(CrossfadeBackend())
    settings = InterpolationSettings(depth=3, generative_depth=2)
    out = list(interpolate_pair(*frames, generative, settings, refine=refine))
    assert len(out) == 8
    assert (generative.made, refine.made) == (3, 4)


def test_generated_frames_are_registered_to_the_flow_prediction(tiny, monkeypatch):
    """The model's global shift jitter is undone: a generated frame shifted by 6 px comes back in place."""
    from PIL import Image
    from scenes import panned_triplet

    import vfi.backends.qwen_edit as qwen_edit
    from vfi.metrics import psnr

    first, middle, last = panned_triplet(192, 256, shift=4, seed=3)
    jittered = np.roll(middle, (0, 6), axis=(0, 1))  # as if the model had moved every pixel 6 px right
    monkeypatch.setattr(qwen_edit, "generate", lambda loaded, conds, *a, **k: [Image.fromarray(jittered)] * len(conds))
    request = FrameRequest(first, last, 0.5, 0)
    kept = _backend(tiny, "side-by-side", register=False).interpolate([request])[0]
    registered = _backend(tiny, "side-by-side").interpolate([request])[0]
    inner = (slice(8, -8), slice(16, -16))  # away from the borders the roll wrapped around
    assert psnr(kept[inner], middle[inner]) < 25
    assert psnr(registered[inner], middle[inner]) > psnr(kept[inner], middle[inner]) + 10
