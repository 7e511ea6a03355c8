"""A job's plan: the stages it runs, which of them are GPU work and in how many calls, and what they cost.

Pure: a plan is computed from a job's settings alone (no model, no frames), so a request is costed and refused
before any work. The GPU-time estimate (docs/architecture.md, cost model): steps × (resolution / 1024)² × CFG
per frame, with a 1.5× margin, plus loading per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, TypeVar

from vfi.errors import VFIError

if TYPE_CHECKING:
    from vfi.backends.qwen_config import QwenEditConfig
    from vfi.interpolate import Stage

#: Wall-clock cost of one denoising step at 1024² on the GPU (docs/architecture.md, cost model), plus load time.
STEP_SECONDS_1024 = 0.6
LOAD_SECONDS = 30

T = TypeVar("T")


def frame_seconds(config: QwenEditConfig | None) -> float:
    """Estimated GPU time of one generated frame: steps × (resolution / 1024)² × CFG, with a 1.5× margin.

    An unset resolution (the adapter's own, unknown before loading) is costed at 1024².
    """
    from vfi.backends.qwen_config import QwenEditConfig

    config = config or QwenEditConfig()
    cfg = 2 if config.guidance_or_default() > 1.0 else 1
    return 1.5 * config.steps_or_default() * STEP_SECONDS_1024 * ((config.resolution or 1024) / 1024) ** 2 * cfg


def check_gpu_seconds(seconds: int, max_gpu_seconds: int) -> None:
    """Refuse a GPU call estimated over the limit (a ZeroGPU Space refuses it anyway, less clearly)."""
    if seconds > max_gpu_seconds:
        raise VFIError(
            f"This request needs about {seconds} s of GPU time in one call, more than the limit of "
            f"{max_gpu_seconds} s; make fewer frames, use fewer steps or a lower working resolution."
        )


@dataclass(frozen=True)
class PlannedStage:
    """One step of a job: the frames it makes (for every pair), whether the refine backend makes them (hybrid),
    and whether they are GPU work. ``times``: the recursion's times of a keyframes job (empty: a whole run)."""

    frames: int
    times: tuple[Fraction, ...] = ()
    refine: bool = False
    gpu: bool = False

    @property
    def stage(self) -> Stage:
        from vfi.interpolate import Stage

        return Stage(self.times, self.refine)


@dataclass(frozen=True)
class Plan:
    """The stages of a job in order, and the frames of each GPU call (``gpu_batch``; 0: no GPU work).

    ``frame_seconds``: the estimated GPU time of one frame of the generative backend.
    """

    stages: tuple[PlannedStage, ...]
    frame_seconds: float = 0.0
    gpu_batch: int = 0

    @property
    def frames(self) -> int:
        """The frames the main backend makes (what a generative job's GPU time covers)."""
        return sum(stage.frames for stage in self.stages if not stage.refine)

    @property
    def total(self) -> int:
        """Every frame made, by either backend (the progress total)."""
        return sum(stage.frames for stage in self.stages)

    def call_seconds(self, frames: int) -> int:
        """Estimated GPU time of one call making ``frames`` frames, plus loading (the weights' move to the GPU;
        adapters are loaded before the calls, ``vfi.app.jobs.prepare_adapters``)."""
        return int(LOAD_SECONDS + self.frame_seconds * frames)

    def calls(self) -> list[int]:
        """The frames of each GPU call, in order."""
        sizes = []
        for stage in self.stages:
            if stage.gpu:
                whole, rest = divmod(stage.frames, self.gpu_batch)
                sizes += [self.gpu_batch] * whole + ([rest] if rest else [])
        return sizes

    def gpu_batches(self, requests: Sequence[T]) -> list[list[T]]:
        """``requests`` of a GPU stage split into this plan's GPU calls."""
        return [list(requests[i : i + self.gpu_batch]) for i in range(0, len(requests), self.gpu_batch)]

    def check(self, max_gpu_seconds: int) -> Plan:
        """This plan, if its largest GPU call fits ``max_gpu_seconds`` (else a VFIError)."""
        calls = self.calls()
        if calls:
            check_gpu_seconds(self.call_seconds(max(calls)), max_gpu_seconds)
        return self


def staged_plan(
    stages: Sequence[Stage], pairs: int, config: QwenEditConfig | None, gpu: bool, max_gpu_seconds: int | None
) -> Plan:
    """The plan of a keyframes job: its recursion ``stages`` for ``pairs`` pairs; with ``gpu`` (a generative
    backend), the main backend's stages run in calls of at most one backend batch that each fit
    ``max_gpu_seconds`` (a Stop then waits for one call at most; a single frame over the limit stays one call,
    which :meth:`Plan.check` refuses)."""
    planned = tuple(
        PlannedStage(len(stage.times) * pairs, stage.times, stage.refine, gpu and not stage.refine) for stage in stages
    )
    if not gpu:
        return Plan(planned)
    seconds = frame_seconds(config)
    batch = config.batch if config is not None else 1
    fits = int((max_gpu_seconds - LOAD_SECONDS) // seconds) if max_gpu_seconds is not None else batch
    return Plan(planned, seconds, max(1, min(batch, fits)))


def whole_plan(frames: int, config: QwenEditConfig | None, gpu: bool) -> Plan:
    """The plan of a job that runs whole (clip, storyboard): one stage, one GPU call when ``gpu``."""
    return Plan((PlannedStage(frames, gpu=gpu),), frame_seconds(config) if gpu else 0.0, max(frames, 1) if gpu else 0)
