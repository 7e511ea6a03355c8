"""The generative backend: a LoRA-patched Qwen-Image-Edit(-Plus) pipeline makes the midpoint of two frames.

One :func:`vfi.pipeline.generate` call per batch (the recursion sends one level per call, chunked by
``max_batch``); per-frame generators from ``FrameRequest.seed``; each keyframe VAE-encoded once per run.
Each generated frame is then re-registered (global shift + zoom) to the flow backend's prediction of the
same frame, which removes the model's known pixel shift/zoom jitter (``vfi.registration``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from vfi.adapters import AdapterSpec
from vfi.backends.base import FrameRequest
from vfi.backends.flow import FlowBackend
from vfi.conditioning import DEFAULT_RESOLUTION, build_conditioning, check_resolution, to_frame
from vfi.errors import VFIError
from vfi.pipeline import DEFAULT_BASE_MODEL, LoadedPipeline, encode_image, generate, load_pipeline
from vfi.registration import register_to

log = logging.getLogger("vfi")

DEFAULT_STEPS, DEFAULT_GUIDANCE = 30, 4.0
LIGHTNING_STEPS = 8
#: Keyframe latents kept between calls (a recursion level reuses the previous level's frames).
LATENT_CACHE_SIZE = 64


def _frame_key(frame: np.ndarray) -> tuple[Any, ...]:
    """Identity of a keyframe's content: shape plus a hash of its pixels."""
    return (frame.shape, hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest())


class QwenEditBackend:
    """Midpoints from Qwen-Image-Edit + LoRA adapters at a chosen working resolution.

    Args:
        base_model: Hub id or folder of a ``QwenImageEditPipeline`` / ``QwenImageEditPlusPipeline``.
        adapters: interpolation LoRAs (``AdapterSpec`` or ``"ID_OR_DIR[@scale]"``); none → the base model alone.
        lightning: optional few-step LoRA stacked on top (fewer steps, no CFG by default).
        resolution: longest side of the working size (multiple of 32); default: the adapter's, else 512.
        steps, guidance: denoising steps and ``true_cfg_scale`` (CFG with ``negative_prompt`` when > 1).
        prompt: overrides the adapter's / default prompt.
        batch: most frames per pipeline call.
        device, dtype, memory: see :func:`vfi.pipeline.load_pipeline`; ``fuse`` fuses the adapters,
        ``compile`` compiles the transformer.
    """

    name = "qwen-edit"
    supports_any_t = False

    def __init__(
        self,
        base_model: str = DEFAULT_BASE_MODEL,
        adapters: Sequence[AdapterSpec | str] = (),
        *,
        lightning: AdapterSpec | str | None = None,
        resolution: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        prompt: str | None = None,
        negative_prompt: str = " ",
        batch: int = 4,
        device: str | None = None,
        dtype: str | None = None,
        memory: str = "auto",
        fuse: bool = False,
        compile: bool = False,
        register: bool = True,
    ) -> None:
        if resolution is not None:
            check_resolution(resolution)
        if steps is not None and not 2 <= steps <= 200:
            raise VFIError(f"steps must be between 2 and 200, got {steps}.")
        if guidance is not None and not 0.0 <= guidance <= 30.0:
            raise VFIError(f"guidance must be between 0 and 30, got {guidance}.")
        if not 1 <= batch <= 64:
            raise VFIError(f"batch must be between 1 and 64, got {batch}.")
        self.adapters = [a if isinstance(a, AdapterSpec) else AdapterSpec.parse(a) for a in adapters]
        self.lightning = AdapterSpec.parse(lightning) if isinstance(lightning, str) else lightning
        self.loaded: LoadedPipeline = load_pipeline(base_model, device=device, dtype=dtype, memory=memory)
        self.fuse = fuse
        if not self.adapters:
            log.warning("No adapter given: the base model is expected to fail at interpolation (baseline only).")
        self.loaded.use_adapters(self.adapters, self.lightning, fuse=fuse)
        if compile:
            self.loaded.compile()
        infos = [info for info in map(self.loaded.info, self.adapters) if info is not None]
        self.resolution = resolution or next((i.resolution for i in infos if i.resolution), DEFAULT_RESOLUTION)
        self.prompt = prompt or next((i.prompt for i in infos if i.prompt), None)
        fast = self.lightning is not None
        self.steps = steps or (LIGHTNING_STEPS if fast else DEFAULT_STEPS)
        self.guidance = guidance if guidance is not None else (1.0 if fast else DEFAULT_GUIDANCE)
        self.negative_prompt = negative_prompt
        self.max_batch = batch
        self.register = register
        self._reference = FlowBackend()  # predicts each generated frame, for registration
        self._latents: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    @property
    def layout(self) -> str:
        return self.loaded.layout

    def _keyframe_latents(self, frame: np.ndarray, image: Any) -> Any:
        key = (*_frame_key(frame), self.resolution)
        if key in self._latents:
            self._latents.move_to_end(key)
        else:
            self._latents[key] = encode_image(self.loaded, image)
            if len(self._latents) > LATENT_CACHE_SIZE:
                self._latents.popitem(last=False)
        return self._latents[key]

    def interpolate(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        import torch

        if not requests:
            return []
        if any(abs(r.t - 0.5) > 1e-9 for r in requests):
            raise VFIError("The qwen-edit backend makes midpoints only (t = 0.5).")
        # The pipeline is shared per process: make sure our adapters are the active ones.
        self.loaded.use_adapters(self.adapters, self.lightning, fuse=self.fuse)
        conds = [
            build_conditioning(
                r.first, r.last, t=r.t, layout=self.layout, resolution=self.resolution, prompt=self.prompt
            )
            for r in requests
        ]
        latents = [
            (self._keyframe_latents(r.first, c.keyframes[0]), self._keyframe_latents(r.last, c.keyframes[1]))
            for r, c in zip(requests, conds)
        ]
        generators = [torch.Generator("cpu").manual_seed(r.seed) for r in requests]
        images = generate(
            self.loaded,
            conds,
            generators,
            steps=self.steps,
            true_cfg_scale=self.guidance,
            negative_prompt=self.negative_prompt,
            keyframe_latents=latents,
            lightning=self.lightning is not None,
        )
        frames = [to_frame(image, (r.first.shape[1], r.first.shape[0])) for image, r in zip(images, requests)]
        if not self.register:
            return frames
        references = self._reference.interpolate(requests)
        return [register_to(frame, reference)[0] for frame, reference in zip(frames, references)]
