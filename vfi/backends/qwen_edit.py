"""The generative backend: a LoRA-patched Qwen-Image-Edit(-Plus) pipeline makes the midpoint of two frames.

One :func:`vfi.qwen.pipeline.generate` call per batch (the recursion sends one level per call, chunked by
``max_batch``); per-frame generators from ``FrameRequest.seed``; each keyframe VAE-encoded once per run.
Each generated frame is then re-registered (global shift + zoom) to the flow backend's prediction of the
same frame, which removes the model's known pixel shift/zoom jitter (``vfi.qwen.registration``), and an
implausible one (blank, saturated, NaN, far from a confident flow prediction) is replaced by the flow frame
(``vfi.qwen.fallback``; the backend's ``fallbacks`` lists them).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfi.backends.base import FrameRequest
from vfi.backends.flow import FlowBackend
from vfi.errors import VFIError
from vfi.qwen.adapters import AdapterSpec
from vfi.qwen.conditioning import DEFAULT_RESOLUTION, build_conditioning, check_resolution, to_frame
from vfi.qwen.fallback import implausible
from vfi.qwen.pipeline import (
    DEFAULT_BASE_MODEL,
    LoadedPipeline,
    NonFiniteOutput,
    encode_image,
    generate,
    load_pipeline,
)
from vfi.qwen.registration import register_to

log = logging.getLogger("vfi")

DEFAULT_STEPS, DEFAULT_GUIDANCE = 30, 4.0
LIGHTNING_STEPS = 8
#: Keyframe latents kept between calls (a recursion level reuses the previous level's frames).
LATENT_CACHE_SIZE = 64


def _frame_key(frame: np.ndarray) -> tuple[Any, ...]:
    """Identity of a keyframe's content: shape plus a hash of its pixels."""
    return (frame.shape, hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest())


@dataclass(frozen=True)
class QwenEditConfig:
    """Settings of :class:`QwenEditBackend`, built alike by the CLI and the app; the defaults live here only.

    ``base_model``: Hub id or folder of a ``QwenImageEditPipeline`` / ``QwenImageEditPlusPipeline``.
    ``adapters``: interpolation LoRAs (``AdapterSpec`` or ``"ID_OR_DIR[@scale]"``, parsed here); none → the
    base model alone. ``lightning``: optional few-step LoRA stacked on top (fewer steps, no CFG by default).
    ``resolution``: longest side of the working size (multiple of 32). ``steps``, ``guidance``: denoising
    steps and ``true_cfg_scale`` (CFG with ``negative_prompt`` when > 1). ``prompt``: overrides the adapter's.
    None for any of these four means the adapter's value, else the defaults below (:meth:`steps_or_default`,
    :meth:`guidance_or_default`; the resolution is known once the adapters are loaded).
    ``batch``: most frames per pipeline call. ``device``, ``dtype``, ``memory``: see
    :func:`vfi.qwen.pipeline.load_pipeline`; ``fuse`` fuses the adapters, ``compile`` compiles the transformer,
    ``register`` re-registers each generated frame to the flow prediction; ``fallback`` replaces an
    implausible one by the flow frame.
    """

    base_model: str = DEFAULT_BASE_MODEL
    adapters: tuple[AdapterSpec, ...] = ()
    lightning: AdapterSpec | None = None
    resolution: int | None = None
    steps: int | None = None
    guidance: float | None = None
    prompt: str | None = None
    negative_prompt: str = " "
    batch: int = 4
    device: str | None = None
    dtype: str | None = None
    memory: str = "auto"
    fuse: bool = False
    compile: bool = False
    register: bool = True
    fallback: bool = field(
        default=True,
        metadata={
            "help": "replace an implausible generated frame (blank, saturated, NaN, far from a confident flow "
            "prediction) by the flow frame"
        },
    )

    def __post_init__(self) -> None:
        # Specs may come as "ID_OR_DIR[@scale]" strings (CLI, environment): parsed once, here.
        parse = AdapterSpec.parse
        object.__setattr__(
            self, "adapters", tuple(a if isinstance(a, AdapterSpec) else parse(a) for a in self.adapters)
        )
        if isinstance(self.lightning, str):
            object.__setattr__(self, "lightning", parse(self.lightning))
        if not self.base_model:
            raise VFIError("base_model must name a Hub repo id or a folder.")
        if self.resolution is not None:
            check_resolution(self.resolution)
        if self.steps is not None and not 2 <= self.steps <= 200:
            raise VFIError(f"steps must be between 2 and 200, got {self.steps}.")
        if self.guidance is not None and not 0.0 <= self.guidance <= 30.0:
            raise VFIError(f"guidance must be between 0 and 30, got {self.guidance}.")
        if not 1 <= self.batch <= 64:
            raise VFIError(f"batch must be between 1 and 64, got {self.batch}.")

    @property
    def fast(self) -> bool:
        """Whether a few-step (Lightning) LoRA is stacked."""
        return self.lightning is not None

    def steps_or_default(self) -> int:
        return self.steps or (LIGHTNING_STEPS if self.fast else DEFAULT_STEPS)

    def guidance_or_default(self) -> float:
        return self.guidance if self.guidance is not None else (1.0 if self.fast else DEFAULT_GUIDANCE)


class QwenEditBackend:
    """Midpoints from Qwen-Image-Edit + LoRA adapters at a chosen working resolution.

    Built from a :class:`QwenEditConfig` (``config=``), or from its fields as arguments
    (``QwenEditBackend(base_model, adapters, resolution=512, …)``).
    """

    name = "qwen-edit"
    supports_any_t = False

    def __init__(
        self,
        base_model: str = DEFAULT_BASE_MODEL,
        adapters: Sequence[AdapterSpec | str] = (),
        *,
        config: QwenEditConfig | None = None,
        **options: Any,
    ) -> None:
        if config is None:
            config = QwenEditConfig(base_model, tuple(adapters), **options)
        elif base_model != DEFAULT_BASE_MODEL or adapters or options:
            raise VFIError("Give the qwen-edit backend either a config or its options, not both.")
        self.config = config
        self.adapters, self.lightning = list(config.adapters), config.lightning
        self.loaded: LoadedPipeline = load_pipeline(
            config.base_model, device=config.device, dtype=config.dtype, memory=config.memory
        )
        self.fuse = config.fuse
        if not self.adapters:
            log.warning("No adapter given: the base model is expected to fail at interpolation (baseline only).")
        self.loaded.use_adapters(self.adapters, self.lightning, fuse=self.fuse)
        if config.compile:
            self.loaded.compile()
        infos = [info for info in map(self.loaded.info, self.adapters) if info is not None]
        self.resolution = config.resolution or next((i.resolution for i in infos if i.resolution), DEFAULT_RESOLUTION)
        self.prompt = config.prompt or next((i.prompt for i in infos if i.prompt), None)
        self.steps = config.steps_or_default()
        self.guidance = config.guidance_or_default()
        self.negative_prompt = config.negative_prompt
        self.max_batch = config.batch
        self.register, self.fallback = config.register, config.fallback
        #: The frames replaced by the flow frame: {"seed", "t", "reason"} each, in the order made.
        self.fallbacks: list[dict[str, Any]] = []
        self._reference = FlowBackend()  # predicts each generated frame, for registration and fallback
        self._latents: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

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
        if not (self.register or self.fallback):
            return frames
        out = []
        for r, frame, prediction in zip(requests, frames, self._reference.predict(requests)):
            if frame is not None and self.register:
                frame = register_to(frame, prediction.frame, (r.first, r.last))[0]
            reason = "non-finite (NaN) values" if frame is None else self.fallback and implausible(frame, prediction)
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
            if not self.fallback:
                raise
            if len(requests) == 1:
                return [None]
            return [frame for r in requests for frame in self._generate([r])]  # which ones: one at a time

    def _generate_batch(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        import torch
        from tqdm import tqdm

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
        # Per-step progress: never drawn here, but the app's gr.Progress(track_tqdm=True) shows it.
        steps = tqdm(total=self.steps, desc=f"denoising {len(requests)} frame(s)", unit="steps", disable=True)
        images = generate(
            self.loaded,
            conds,
            generators,
            steps=self.steps,
            true_cfg_scale=self.guidance,
            negative_prompt=self.negative_prompt,
            keyframe_latents=latents,
            lightning=self.lightning is not None,
            callback_on_step_end=lambda step, total: steps.update(1),
        )
        steps.close()
        return [to_frame(image, (r.first.shape[1], r.first.shape[0])) for image, r in zip(images, requests)]
