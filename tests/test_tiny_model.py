"""The tiny random pipelines are honest: real configs where they matter, and pixels that depend on the transformer."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytestmark = pytest.mark.slow

from vfi.backends.base import FrameRequest  # noqa: E402
from vfi.backends.qwen_edit import QwenEditBackend  # noqa: E402
from vfi.quality.metrics import psnr  # noqa: E402
from vfi.qwen.pipeline import load_pipeline  # noqa: E402

# Random weights make garbage frames: the fallback (tests/test_qwen_edit.py) is off here.
FAST = {"resolution": 64, "steps": 2, "guidance": 1.0, "device": "cpu", "fallback": False}
#: The scheduler config of Qwen/Qwen-Image-Edit, -2509 and -2511 (scheduler/scheduler_config.json).
REAL_SCHEDULER = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.02,
    "time_shift_type": "exponential",
    "use_dynamic_shifting": True,
}


def _midpoint(base, adapters=(), seed: int = 7, frames=None, **options) -> np.ndarray:
    first, last = frames
    backend = QwenEditBackend(str(base), [str(a) for a in adapters], **{**FAST, **options})
    return backend.interpolate([FrameRequest(first, last, 0.5, seed)])[0]


@pytest.fixture
def frames(triplet):
    return triplet[0], triplet[2]


@pytest.mark.parametrize("name", ["side-by-side", "multi", "multi-2511"])
def test_configs_mirror_the_real_models(tiny_models, name):
    from diffusers import AutoencoderKLQwenImage

    pipe = load_pipeline(str(tiny_models[name]["base"]), device="cpu").pipe
    vision = pipe.processor.image_processor
    assert (vision.size.shortest_edge, vision.size.longest_edge) == (3136, 12_845_056)  # min/max pixels
    defaults = inspect.signature(AutoencoderKLQwenImage.__init__).parameters
    assert pipe.vae.config.latents_mean == defaults["latents_mean"].default
    assert pipe.vae.config.latents_std == defaults["latents_std"].default and len(pipe.vae.config.latents_std) == 16
    assert {k: pipe.scheduler.config[k] for k in REAL_SCHEDULER} == REAL_SCHEDULER
    assert pipe.transformer.config.zero_cond_t is name.endswith("2511")
    # The template's system part is exactly the tokens the pipeline drops; what it keeps starts at the images.
    tokenizer = pipe.tokenizer
    ids = tokenizer(pipe.prompt_template_encode.format("x"))["input_ids"]
    kept = tokenizer.convert_ids_to_tokens(ids[pipe.prompt_template_encode_start_idx :])
    assert kept[0] == ("<|vision_start|>" if name == "side-by-side" else "x")
    assert tokenizer.convert_ids_to_tokens(ids[pipe.prompt_template_encode_start_idx - 3]) == "<|im_start|>"
    text = pipe.text_encoder.config
    assert (text.image_token_id, text.vision_start_token_id) == tuple(
        tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|vision_start|>"])
    )


@pytest.mark.parametrize("name", ["side-by-side", "multi", "multi-2511"])
def test_decoded_frame_depends_on_adapter_and_seed(tiny_models, frames, name):
    model = tiny_models[name]
    plain = _midpoint(model["base"], frames=frames)
    assert psnr(plain, _midpoint(model["base"], [model["adapter"]], frames=frames)) < 40
    assert psnr(plain, _midpoint(model["base"], seed=8, frames=frames)) < 40
    assert np.array_equal(plain, _midpoint(model["base"], frames=frames))


def test_zero_cond_t_changes_the_2511_variant(tiny_models, frames):
    """Same weights, only ``zero_cond_t`` differs: the 2511-style pipeline gives another frame.

    (Weakly: the random transformer's gates are small, so condition tokens move the frame by little.)
    """
    plain = _midpoint(tiny_models["multi"]["base"], frames=frames)
    assert not np.array_equal(plain, _midpoint(tiny_models["multi-2511"]["base"], frames=frames))


@pytest.mark.parametrize("name", ["side-by-side", "multi-2511"])
def test_bfloat16_on_cpu(tiny_models, frames, name):
    model = tiny_models[name]
    full = _midpoint(model["base"], [model["adapter"]], frames=frames)
    half = _midpoint(model["base"], [model["adapter"]], frames=frames, dtype="bfloat16")
    assert half.shape == full.shape and half.dtype == np.uint8 and half.std() > 0
    assert psnr(full, half) > 20, "bf16 follows fp32 apart from rounding"
