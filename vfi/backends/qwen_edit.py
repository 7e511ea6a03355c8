"""The generative backend: a LoRA-patched Qwen-Image-Edit(-Plus) pipeline makes the midpoint of two frames.

One :func:`vfi.qwen.pipeline.generate` call per batch (the recursion sends one level per call, chunked by
``max_batch``); per-frame generators from ``FrameRequest.seed``; each keyframe VAE-encoded once per run.
Each generated frame is then re-registered (global shift + zoom) to the flow backend's prediction of the
same frame, which removes the model's known pixel shift/zoom jitter (``vfi.qwen.registration``), and an
implausible one (blank, saturated, NaN, far from a confident flow prediction) is replaced by the flow frame
(``vfi.backends.fallback``; the backend's ``fallbacks`` lists them).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from vfi.backends.base import FrameRequest
from vfi.backends.fallback import implausible
from vfi.backends.flow import FlowBackend
from vfi.backends.qwen_config import QwenEditConfig
from vfi.errors import VFIError
from vfi.qwen.adapters import AdapterSpec, fetch_adapter
from vfi.qwen.conditioning import DEFAULT_RESOLUTION, build_conditioning, to_frame
from vfi.qwen.pipeline import LoadedPipeline, NonFiniteOutput, encode_image, generate, load_pipeline
from vfi.qwen.registration import register_to

log = logging.getLogger("vfi")
__all__ = ["QwenEditBackend", "QwenEditConfig"]
#: Keyframe latents kept between calls (a recursion level reuses the previous level's frames).
LATENT_CACHE_SIZE = 64


def _frame_key(frame: np.ndarray) -> tuple[Any, ...]:
    """Identity of a keyframe's content: shape plus a hash of its pixels."""
    return (frame.shape, hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest())


class QwenEditBackend:
    """Midpoints from Qwen-Image-Edit + LoRA adapters at a chosen working resolution.

    Built from the fields of a :class:`QwenEditConfig` (``QwenEditBackend(base_model, adapters,
    resolution=512, …)``; :func:`vfi.backends.create_backend` passes a config's), which it keeps as ``config``.
    """

    name = "qwen-edit"
    supports_any_t = False

    def __init__(self, *fields: Any, **options: Any) -> None:
        config = self.config = QwenEditConfig(*fields, **options)
        for spec in (*config.adapters, *([config.lightning] if config.lightning else [])):
            fetch_adapter(spec)  # one that cannot be had is refused before the base model loads (minutes on a GPU)
        self.loaded: LoadedPipeline = load_pipeline(
            config.base_model, device=config.device, dtype=config.dtype, memory=config.memory
        )
        if not config.adapters:
            log.warning("No adapter given: the base model is expected to fail at interpolation (baseline only).")
        self._use_adapters()
        if config.compile:
            self.loaded.compile()
        infos = [info for info in map(self.loaded.info, config.adapters) if info is not None]
        #: The working resolution and prompt: the config's, else the adapters'.
        self.resolution = config.resolution or next((i.resolution for i in infos if i.resolution), DEFAULT_RESOLUTION)
        self.prompt = config.prompt or next((i.prompt for i in infos if i.prompt), None)
        self.max_batch = config.batch
        #: The frames replaced by the flow frame: {"seed", "t", "reason"} each, in the order made.
        self.fallbacks: list[dict[str, Any]] = []
        self._reference = FlowBackend()  # predicts each generated frame, for registration and fallback
        self._latents: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    @property
    def lightning(self) -> AdapterSpec | None:
        return self.config.lightning

    @property
    def steps(self) -> int:
        return self.config.steps_or_default()

    @property
    def guidance(self) -> float:
        return self.config.guidance_or_default()

    def _use_adapters(self) -> None:
        self.loaded.use_adapters(list(self.config.adapters), self.config.lightning, fuse=self.config.fuse)

    @property
    def layout(self) -> str:
        return self.loaded.layout

    def with_prompt(self, prompt: str) -> QwenEditBackend:
        """This backend with another prompt: the same pipeline, adapters and keyframe cache (storyboards)."""
        other = copy.copy(self)
        other.prompt = prompt
        return other

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
        if not requests:
            return []
        if any(abs(r.t - 0.5) > 1e-9 for r in requests):
            raise VFIError("The qwen-edit backend makes midpoints only (t = 0.5).")
        frames = self._generate(requests)
        if not (self.config.register or self.config.fallback):
            return frames
        out = []
        for r, frame, prediction in zip(requests, frames, self._reference.predict(requests)):
            if frame is not None and self.config.register:
                frame = register_to(frame, prediction.frame, (r.first, r.last))[0]
            reason = (
                "non-finite (NaN) values" if frame is None else self.config.fallback and implausible(frame, prediction)
            )
            if reason:
                log.warning("Generated frame (seed %d) fell back to the flow frame: %s.", r.seed, reason)
                self.fallbacks.append({"seed": r.seed, "t": r.t, "reason": reason})
                frame = prediction.frame
            out.append(frame)
        return out

    def _generate(self, requests: Sequence[FrameRequest]) -> list[np.ndarray | None]:
        """The generated frames at the keyframes' size; with ``fallback``, None for those with NaN values."""
        try:
            return self._generate_batch(requests)
        except NonFiniteOutput:
            if not self.config.fallback:
                raise
            if len(requests) == 1:
                return [None]
            return [frame for r in requests for frame in self._generate([r])]  # which ones: one at a time

    def _generate_batch(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        import torch
        from tqdm import tqdm

        # The pipeline is shared per process: make sure our adapters are the active ones.
        self._use_adapters()
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
        # Per-step progress: never drawn here, but the app's gr.Progress(track_tqdm=True) shows it.
        config = self.config
        steps = tqdm(total=self.steps, desc=f"denoising {len(requests)} frame(s)", unit="steps", disable=True)
        images = generate(
            self.loaded,
            conds,
            generators,
            steps=self.steps,
            true_cfg_scale=self.guidance,
            negative_prompt=config.negative_prompt,
            keyframe_latents=latents,
            lightning=config.fast,
            callback_on_step_end=lambda step, total: steps.update(1),
        )
        steps.close()
        return [to_frame(image, (r.first.shape[1], r.first.shape[0])) for image, r in zip(images, requests)]
