"""The generative path end to end on the tiny random pipelines: real loader, adapters, CLI, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytestmark = pytest.mark.slow  # torch + diffusers import and the tiny pipelines: a few seconds in all

from garbage_adapter import build_nan_adapter  # noqa: E402

from vfi.backends.base import FrameRequest  # noqa: E402
from vfi.backends.crossfade import CrossfadeBackend  # noqa: E402
from vfi.backends.flow import FlowBackend  # noqa: E402
from vfi.backends.qwen_edit import QwenEditBackend  # noqa: E402
from vfi.errors import VFIError  # noqa: E402
from vfi.interpolate import InterpolationSettings, interpolate_pair  # noqa: E402
from vfi.qwen.pipeline import base_loads, load_pipeline  # noqa: E402
from vfi.testing.tiny_model import build_tiny_adapter, build_tiny_pipeline  # noqa: E402

LAYOUTS = ("side-by-side", "multi")
# The tiny random pipelines make garbage by design: the fallback, tested on its own below, is off elsewhere.
FAST = {"resolution": 64, "steps": 2, "guidance": 1.0, "device": "cpu", "fallback": False}


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


def test_an_adapter_that_cannot_be_had_is_refused_before_the_base_model_loads(tiny, tmp_path, monkeypatch):
    """A wrong adapter path or Hub file is said at once, not after minutes of loading 20B weights on a GPU."""
    import vfi.backends.qwen_edit as qwen_edit

    def loading(*args, **kwargs):
        raise AssertionError("the base model was loaded first")

    monkeypatch.setattr(qwen_edit, "load_pipeline", loading)
    missing = str(tmp_path / "missing.safetensors")
    with pytest.raises(VFIError, match="neither a folder nor a .safetensors file"):
        _backend(tiny, "multi", missing)
    with pytest.raises(VFIError, match="neither a folder nor a .safetensors file"):
        _backend(tiny, "multi", str(tiny["multi"]["a"]), lightning=missing)


def _midpoint(backend: QwenEditBackend, frames, seed: int = 7) -> np.ndarray:
    return backend.interpolate([FrameRequest(frames[0], frames[1], 0.5, seed)])[0]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_cli_pair_depth_two_writes_mp4(tiny, keyframe_files, tmp_path, layout):
    from vfi.cli import main
    from vfi.io.video import probe_clip

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
    from vfi.io.video import probe_clip

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


def test_fused_switches_in_bf16_leave_the_base_as_loaded(tiny, frames):
    """Fuse/unfuse round trips in bf16 used to move the base weights (frames 2 levels off after 4 switches)."""
    import torch
    from diffusers import QwenImageTransformer2DModel

    a, b = str(tiny["side-by-side"]["a"]), str(tiny["side-by-side"]["b"])
    bf16 = {"dtype": "bfloat16", "register": False}
    plain_before = _midpoint(_backend(tiny, "side-by-side", **bf16), frames)
    fused_a = _midpoint(_backend(tiny, "side-by-side", a, fuse=True, **bf16), frames)
    for _ in range(4):
        _backend(tiny, "side-by-side", b, fuse=True, **bf16)
        again = _midpoint(_backend(tiny, "side-by-side", a, fuse=True, **bf16), frames)
        assert np.abs(again.astype(int) - fused_a).max() <= 1
    plain = _backend(tiny, "side-by-side", **bf16)
    assert np.abs(_midpoint(plain, frames).astype(int) - plain_before).max() <= 1
    fresh = QwenImageTransformer2DModel.from_pretrained(
        tiny["side-by-side"]["base"] / "transformer", torch_dtype=torch.bfloat16
    ).state_dict()
    state = plain.loaded.pipe.transformer.state_dict()
    weights = {k.replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}
    assert [k for k, v in fresh.items() if not torch.equal(weights[k], v)] == []


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
    from vfi.quality.metrics import psnr

    first, middle, last = panned_triplet(192, 256, shift=4, seed=3)
    jittered = np.roll(middle, (0, 6), axis=(0, 1))  # as if the model had moved every pixel 6 px right
    monkeypatch.setattr(qwen_edit, "generate", lambda loaded, conds, *a, **k: [Image.fromarray(jittered)] * len(conds))
    request = FrameRequest(first, last, 0.5, 0)
    kept = _backend(tiny, "side-by-side", register=False).interpolate([request])[0]
    registered = _backend(tiny, "side-by-side").interpolate([request])[0]
    inner = (slice(8, -8), slice(16, -16))  # away from the borders the roll wrapped around
    assert psnr(kept[inner], middle[inner]) < 25
    assert psnr(registered[inner], middle[inner]) > psnr(kept[inner], middle[inner]) + 10


def test_per_step_progress_reaches_gradio_through_tqdm(tiny, frames):
    """Each denoising step is reported (``callback_on_step_end``), and the app's gr.Progress(track_tqdm=True)
    sees it: Gradio's tqdm tracking is installed here exactly as the app's progress installs it."""
    import gradio as gr
    from gradio.context import LocalContext

    updates = []

    class Recorder(gr.Progress):
        def _progress_callback(self):  # where Gradio would send the update to the page
            return lambda *update: None

        def update(self, n=1):
            updates.append(n)
            return super().update(n)

    progress = Recorder(track_tqdm=True)
    token = LocalContext.progress.set(progress)
    try:
        _midpoint(_backend(tiny, "side-by-side", steps=3), frames)
    finally:
        LocalContext.progress.reset(token)
    assert updates == [1, 1, 1]  # one per denoising step


LIGHTNING_REPO = "lightx2v/Qwen-Image-Lightning"
LIGHTNING_FILE = "Qwen-Image-Edit-2509/Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors"


@pytest.fixture
def lightning_cache(tiny, tmp_path):
    """An offline Hugging Face cache holding a Lightning-format LoRA (rank 4, alpha 8) in a repo subfolder."""
    from hub_files import fill_hub_cache, write_lightning_lora

    lora = write_lightning_lora(tiny["side-by-side"]["base"], tmp_path / "lightning.safetensors", rank=4, alpha=8.0)
    fill_hub_cache(tmp_path / "hf" / "hub", LIGHTNING_REPO, "c" * 40, {LIGHTNING_FILE: lora}, refs=("main", "v1"))
    return tmp_path / "hf", lora


def test_lightning_file_in_a_hub_repo_loads_converted(tiny, frames, lightning_cache, monkeypatch):
    """The real hf_hub_download reads a pre-filled cache offline; diffusers converts lora_down/lora_up/alpha."""
    import huggingface_hub.constants as constants
    from safetensors.torch import load_file

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(lightning_cache[0] / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    reference = f"{LIGHTNING_REPO}/{LIGHTNING_FILE}:v1@0.5"
    backend = _backend(tiny, "side-by-side", str(tiny["side-by-side"]["a"]), lightning=reference, steps=2)
    module = backend.loaded.pipe.transformer.transformer_blocks[0].img_mlp.net[2]
    name = backend.lightning.name
    delta = module.lora_B[name].weight @ module.lora_A[name].weight * module.scaling[name]
    raw = load_file(str(lightning_cache[1]))
    key = "transformer_blocks.0.img_mlp.net.2"
    expected = raw[f"{key}.lora_up.weight"].float() @ raw[f"{key}.lora_down.weight"].float() * (8.0 / 4) * 0.5
    assert float((delta - expected).abs().max()) < 1e-5 * float(expected.abs().max()) + 1e-6
    assert _midpoint(backend, frames).shape == frames[0].shape


def test_cli_lightning_from_the_offline_hub_cache(tiny, keyframe_files, lightning_cache, tmp_path):
    """``--lightning OWNER/NAME/PATH.safetensors:REV`` in a fresh process with HF_HOME and HF_HUB_OFFLINE=1."""
    import os
    import subprocess
    import sys

    output = tmp_path / "fast.mp4"
    env = {**os.environ, "HF_HOME": str(lightning_cache[0]), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    command = [
        sys.executable,
        "-m",
        "vfi",
        "pair",
        *map(str, keyframe_files),
        "-o",
        str(output),
        "--backend",
        "qwen-edit",
        "--base-model",
        str(tiny["side-by-side"]["base"]),
        "--adapter",
        str(tiny["side-by-side"]["a"]),
        "--lightning",
        f"{LIGHTNING_REPO}/{LIGHTNING_FILE}:main",
        "--resolution",
        "64",
        "--steps",
        "2",
        "--no-register",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert output.is_file()
    missing = [*command[:-7], "--lightning", f"{LIGHTNING_REPO}/other.safetensors", "--steps", "2"]
    done = subprocess.run(missing, env=env, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith(
        "error: Could not fetch the adapter"
    )


#: The real Qwen-Image-Edit processor's pixel bounds (its ``processor/preprocessor_config.json``): the tiny
#: model's own bounds may be smaller, which would hide how the prompt grows with the condition image.
REAL_MIN_PIXELS, REAL_MAX_PIXELS = 3136, 12_845_056


class _TextLength(Exception):
    pass


def _rope_positions(pipe, cond) -> tuple[int, int]:
    """(text tokens, rotary positions used) of one request: the text is measured before the VL encoder runs."""
    from vfi.qwen.pipeline import encode_prompts

    def stop(module, args, kwargs):
        raise _TextLength(kwargs["input_ids"].shape[1] - pipe.prompt_template_encode_start_idx)

    hook = pipe.text_encoder.register_forward_pre_hook(stop, with_kwargs=True)
    try:
        encode_prompts(pipe, [cond.prompt], [cond], "cpu")
    except _TextLength as length:
        text = length.args[0]
    finally:
        hook.remove()
    grids = [(1, cond.height // 16, cond.width // 16)] + [(1, im.height // 16, im.width // 16) for im in cond.images]
    _, text_freqs = pipe.transformer.pos_embed(grids, max_txt_seq_len=text, device="cpu")
    assert text_freqs.shape[0] == text, "the text runs past the transformer's rotary table"
    return text, max(max(h // 2, w // 2) for _, h, w in grids) + text


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("size", [(1920, 1080), (1024, 1024), (1080, 1920)])
def test_prompt_fits_the_rotary_table_at_the_largest_resolution(tiny, layout, size, monkeypatch):
    """At MAX_RESOLUTION the VL encoder's text (≈1 token per 28×28 px it sees) leaves ample rotary headroom."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor

    from vfi.qwen.conditioning import MAX_RESOLUTION, build_conditioning

    pipe = load_pipeline(str(tiny[layout]["base"]), device="cpu").pipe
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=REAL_MIN_PIXELS, max_pixels=REAL_MAX_PIXELS),
        tokenizer=pipe.tokenizer,
        video_processor=pipe.processor.video_processor,
    )
    monkeypatch.setattr(pipe, "processor", processor)
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    cond = build_conditioning(frame, frame, layout=layout, resolution=MAX_RESOLUTION)
    text, positions = _rope_positions(pipe, cond)
    print(f"{layout} {cond.width}x{cond.height}: {text} text tokens, {positions} of 4096 rotary positions")
    assert positions <= 4096 - 1024


@pytest.fixture(scope="module")
def nan_adapter(tiny, tmp_path_factory) -> Path:
    """An adapter for the multi layout whose weights blow the latents up to NaN (garbage out)."""
    return build_nan_adapter(tiny["multi"]["base"], tmp_path_factory.mktemp("nan") / "a")


def test_a_garbage_frame_falls_back_to_the_flow_frame(tiny, nan_adapter, triplet):
    first, _, last = triplet
    requests = [FrameRequest(first, last, 0.5, seed) for seed in (7, 8)]
    backend = _backend(tiny, "multi", str(nan_adapter), fallback=True)
    frames = backend.interpolate(requests)
    flow = FlowBackend().interpolate(requests)
    assert all(np.array_equal(a, b) for a, b in zip(frames, flow))
    assert backend.fallbacks == [{"seed": s, "t": 0.5, "reason": "non-finite (NaN) values"} for s in (7, 8)]
    with pytest.raises(VFIError, match="NaN"):
        _backend(tiny, "multi", str(nan_adapter), fallback=False).interpolate(requests[:1])


def test_a_good_frame_does_not_fall_back(tiny, triplet, monkeypatch):
    """The pipeline made the true middle: it is kept (registered), not replaced by the flow frame."""
    from PIL import Image

    import vfi.backends.qwen_edit as qwen_edit

    first, middle, last = triplet
    monkeypatch.setattr(qwen_edit, "generate", lambda loaded, conds, *a, **k: [Image.fromarray(middle)] * len(conds))
    backend = _backend(tiny, "multi", str(tiny["multi"]["a"]), fallback=True)
    frame = backend.interpolate([FrameRequest(first, last, 0.5, 7)])[0]
    assert backend.fallbacks == []
    assert np.array_equal(frame, middle)


def test_cli_fallback_is_noted_and_in_the_manifest_and_off_turns_it_off(
    tiny, nan_adapter, keyframe_files, tmp_path, capsys
):
    import json

    from vfi.cli import main

    common = [*map(str, keyframe_files), "--backend", "qwen-edit", "--base-model", str(tiny["multi"]["base"])]
    common += ["--adapter", str(nan_adapter), "--resolution", "64", "--steps", "2", "--guidance", "1"]
    manifest = tmp_path / "run.json"
    assert main(["pair", *common, "-o", str(tmp_path / "a.mp4"), "--manifest", str(manifest)]) == 0
    assert "fell back to the flow frame: non-finite (NaN) values" in capsys.readouterr().err
    record = json.loads(manifest.read_text())
    made = record["seeds"]["frames"]  # every generated frame fell back
    assert len(record["fallbacks"]) == len(made) and {f["reason"] for f in record["fallbacks"]} == {
        "non-finite (NaN) values"
    }
    assert record["backend"]["config"]["fallback"] is True
    assert main(["pair", *common, "-o", str(tmp_path / "b.mp4"), "--fallback", "off"]) == 2
    assert "NaN" in capsys.readouterr().err


def _nan_call(tiny, nan_adapter):
    """An app call whose generative backend is the tiny base with ``nan_adapter`` (every generated frame falls
    back), and its Advanced settings; its GPU work (whole runs and streamed batches) crosses a pickle as a ZeroGPU
    call's process boundary does."""
    import pickle
    from dataclasses import replace

    from test_jobs import _call

    from vfi.app.config import Advanced, AppConfig
    from vfi.qwen.adapters import AdapterSpec

    def crossing(work):
        return lambda *args: pickle.loads(pickle.dumps(work(*args)))

    config = AppConfig("qwen-edit", base_model=str(tiny["multi"]["base"]), adapters=(AdapterSpec(str(nan_adapter)),))
    plain = _call(config)
    call = replace(plain, run=crossing(plain.run), make_on_gpu=crossing(lambda job, batch: job.make(batch)))
    return call, Advanced(str(nan_adapter), 1.0, False, 64, 2, 1.0, "")


def test_the_app_says_which_frames_fell_back_and_records_them(tiny, nan_adapter, keyframe_files):
    """Keyframes tab: the summary lists the generated frames replaced by the flow frame and why, and the manifest
    in the zip records them; only what a GPU call returns comes back from it (a ZeroGPU call's process boundary,
    emulated by pickling)."""
    import json
    import zipfile

    from vfi.app import actions

    call, advanced = _nan_call(tiny, nan_adapter)
    paths = [str(path) for path in keyframe_files]
    updates = actions.keyframes(call, *paths, 2, 0, 8, "once", "qwen-edit", advanced, 5, False)
    *_, (_, _, archive, _, _, summary) = updates
    with zipfile.ZipFile(archive) as files:
        record = json.loads(files.read("manifest.json"))
    assert len(record["fallbacks"]) == 3 and {f["reason"] for f in record["fallbacks"]} == {"non-finite (NaN) values"}
    assert {f["seed"] for f in record["fallbacks"]} == {frame["seed"] for frame in record["seeds"]["frames"]}
    for fallback in record["fallbacks"]:
        assert f"The generated frame with seed {fallback['seed']} fell back to the flow frame: non-finite" in summary


def test_the_storyboard_and_compare_tabs_say_which_frames_fell_back(tiny, nan_adapter, keyframe_files):
    """Storyboard and Compare show which generated frames were replaced by the flow frame (a comparison of the
    adapter against flow would otherwise show flow against flow without a word)."""
    from vfi.app import actions
    from vfi.app.storyboard import storyboard

    call, advanced = _nan_call(tiny, nan_adapter)
    paths = [str(path) for path in keyframe_files]
    _, gallery, _, summary, _ = storyboard(call, paths, "", "1", 0, 8, "", "qwen-edit", advanced, 5)
    seeds = [label.rsplit(" ", 1)[1] for _, label in gallery if "seed" in label]
    assert len(seeds) == 1  # one in-between at depth 1
    assert f"The generated frame with seed {seeds[0]} fell back to the flow frame: non-finite" in summary
    *_, metrics = actions.compare(call, *paths, "Qwen-Image-Edit + adapter", "flow (optical flow)", 1, 8, advanced, 5)
    assert "Qwen-Image-Edit + adapter: The generated frame with seed" in metrics
    assert "non-finite (NaN) values" in metrics and "flow (optical flow):" not in metrics


def test_cli_compare_says_which_frames_fell_back(tiny, nan_adapter, keyframe_files, tmp_path, capsys):
    from vfi.cli import main

    options = ["--backend", "qwen-edit", "--base-model", str(tiny["multi"]["base"]), "--adapter", str(nan_adapter)]
    options += ["--resolution", "64", "--steps", "2", "--guidance", "1", "--depth", "1", "--against", "flow"]
    assert main(["compare", *map(str, keyframe_files), "-o", str(tmp_path / "c.mp4"), *options]) == 0
    assert "fell back to the flow frame: non-finite (NaN) values" in capsys.readouterr().err
