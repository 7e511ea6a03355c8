"""One request of the app as the library sees it: a typed job per mode, its plan, its run (stopping it and
admitting it by memory: :mod:`vfi.app.concurrency`; its plan and cost: :mod:`vfi.app.plan`).

No gradio here: an action (:mod:`vfi.app.actions`) turns a typed request into a job, checks it
(:meth:`Job.check`, before any work), runs it whole (:func:`execute`) or streams it (:class:`FrameStream`) and
shows what comes back. A job is picklable, so a ZeroGPU Space can run it in its GPU process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from vfi.app.plan import Plan, frame_seconds, staged_plan, whole_plan
from vfi.backends import ANY_T_BACKENDS, GENERATIVE, Capabilities
from vfi.backends.base import fallback_list
from vfi.errors import VFIError

if TYPE_CHECKING:
    from vfi.backends import Backend
    from vfi.backends.base import FrameRequest
    from vfi.backends.qwen_config import QwenEditConfig
    from vfi.interpolate import InterpolationSettings
    from vfi.modes.clip import ClipPlan, ClipResult, ClipSettings
    from vfi.modes.report import ClipReport

#: Memory a job takes per frame pixel: per frame it keeps (RGB), and as working set (flow fields, warps, the
#: PNG/MP4 writers and ffmpeg's encoder). benchmarks/app_memory.py measured 2.51 GiB over the idle server for
#: one 6000×4000 depth-3 request (9 frames kept): 112 B/px, 27 of them the frames; 90 leaves a margin.
KEPT_BYTES_PER_PIXEL, WORK_BYTES_PER_PIXEL = 3, 90
#: Outputs older than this are deleted.
OUTPUT_TTL_S = 3600
PLAYBACKS = ("once", "loop", "ping-pong")

T = TypeVar("T")


def frames_memory(shape: tuple[int, ...], kept: int) -> int:
    """Bytes for ``kept`` frames of ``shape`` (H×W…) held at once, plus the working set of one frame."""
    height, width = shape[:2]
    return height * width * (KEPT_BYTES_PER_PIXEL * kept + WORK_BYTES_PER_PIXEL)


def fallback_records(backend: Backend) -> tuple[dict[str, Any], ...]:
    """The generated frames ``backend`` replaced by the flow frame (``{"seed", "t", "reason"}`` each)."""
    return tuple(fallback_list(backend) or ())


@dataclass(frozen=True)
class Made:
    """The frames of one GPU call, and those of them that fell back to the flow frame (it runs in another process
    on a ZeroGPU Space: what its backend noted comes back with the frames)."""

    frames: list[np.ndarray]
    fallbacks: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Job:
    """What every job has: a backend (the generative one configured by ``config``, None for the others), the
    cancel key of its request and, in hybrid mode, the any-t backend that fills in after the generative levels.

    A job of a whole run (clip, storyboard) says how many frames its main backend makes (:meth:`frames_to_make`).
    """

    backend: str
    config: QwenEditConfig | None = None
    cancel_key: str = field(default="", kw_only=True)
    refine: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.refine is not None and self.refine not in ANY_T_BACKENDS:
            raise VFIError(f"refine must be one of {', '.join(ANY_T_BACKENDS)}, got {self.refine!r}.")

    @property
    def generative(self) -> bool:
        return self.backend == GENERATIVE

    def create_backend(self) -> Backend:
        from vfi.backends import create_backend

        return create_backend(self.backend, self.config)

    def create_refine(self) -> Backend | None:
        from vfi.backends import create_backend

        return create_backend(self.refine) if self.refine else None

    def frames_to_make(self) -> int:
        """How many frames the main backend makes in this run (raises VFIError for an impossible request)."""
        raise NotImplementedError

    def plan(self, max_gpu_seconds: int | None = None, whole: bool = False) -> Plan:
        """This job's stages and GPU calls (:mod:`vfi.app.plan`); pure, raises VFIError for an impossible request.
        A keyframes job streams in GPU calls that each fit ``max_gpu_seconds`` unless run ``whole``; the other
        jobs always run whole, in one call."""
        return whole_plan(self.frames_to_make(), self.config, self.generative)

    def check(self, max_gpu_seconds: int | None = None, whole: bool = False) -> Plan:
        """Refuse an impossible request (frame count vs backend, a GPU call over ``max_gpu_seconds``) with a
        VFIError, before any work; the plan to run."""
        plan = self.plan(max_gpu_seconds, whole)
        return plan.check(max_gpu_seconds) if max_gpu_seconds is not None else plan

    def frame_seconds(self) -> float:
        """Estimated GPU time of one generated frame (:func:`vfi.app.plan.frame_seconds`)."""
        return frame_seconds(self.config)

    def gpu_seconds(self, frames: int | None = None) -> int:
        """Estimated GPU time of a call making ``frames`` frames (default: the whole job), plus loading."""
        plan = self.plan()
        return plan.call_seconds(plan.frames if frames is None else frames)


@dataclass(frozen=True)
class KeyframesJob(Job):
    """Frames between keyframes (a pair, or first-last-first for a loop) with ``InterpolationSettings``."""

    settings: InterpolationSettings | None = None
    keyframes: tuple[np.ndarray, ...] = ()

    def plan(self, max_gpu_seconds: int | None = None, whole: bool = False) -> Plan:
        """The recursion's stages (:func:`vfi.interpolate.stages`) for every pair; the generative backend's in
        GPU calls, or in one call when the job runs ``whole``."""
        from vfi.interpolate import stages

        refine = Capabilities(self.refine) if self.refine else None
        steps = stages(self.settings, Capabilities(self.backend), refine)
        plan = staged_plan(steps, len(self.keyframes) - 1, self.config, self.generative, max_gpu_seconds)
        return whole_plan(plan.frames, self.config, self.generative) if whole else plan

    def frames_to_make(self) -> int:
        return self.plan().frames

    def make(self, requests: Sequence[FrameRequest]) -> Made:
        """The frames of ``requests`` from the main backend (one GPU call of a streamed job)."""
        from vfi.interpolate import Progress, run_requests

        backend = self.create_backend()
        return Made(run_requests(backend, requests, Progress(len(requests))), fallback_records(backend))

    def memory_bytes(self) -> int:
        """Estimated peak memory of this job with its outputs being written (server and its ffmpeg children):
        the frames it keeps plus a working set, both per frame pixel (raises VFIError for an impossible request)."""
        return frames_memory(self.keyframes[0].shape, self.frames_to_make() + len(self.keyframes))

    def run(self, on_progress: Callable[[int, int], None], should_cancel: Callable[[], bool]) -> Made:
        """The whole sequence of frames, and those that fell back to the flow frame."""
        from vfi.interpolate import interpolate_frames

        backend = self.create_backend()
        frames = interpolate_frames(
            self.keyframes,
            backend,
            self.settings,
            refine=self.create_refine(),
            num_frames=len(self.keyframes),
            on_progress=on_progress,
            should_cancel=should_cancel,
        )
        return Made(list(frames), fallback_records(backend))


@dataclass(frozen=True)
class ClipJob(Job):
    """A clip at a higher frame rate: ``clip`` = (a checked ``vfi.modes.clip.ClipPlan``, the output path) with its
    ``ClipSettings``; with ``report``, also the clip's quality report (``vfi.modes.report``) by the same backend."""

    settings: ClipSettings | None = None
    clip: tuple[ClipPlan, str] | None = None
    report: bool = False

    def frames_to_make(self) -> int:
        plan = self.clip[0]
        midpoints = plan.midpoints_only(Capabilities(self.backend), self.refine and Capabilities(self.refine))
        made = plan.midpoint_frames if midpoints else plan.frames_to_make
        return made + (plan.report_frames if self.report else 0)

    def memory_bytes(self) -> int:
        """Estimated peak memory: frames stream through, a working set only."""
        info = self.clip[0].info
        return info.width * info.height * WORK_BYTES_PER_PIXEL

    def run(self, on_progress: Callable[[int, int], None], should_cancel: Callable[[], bool]) -> ClipOutput:
        from vfi.modes.clip import interpolate_clip

        backend, refine = self.create_backend(), self.create_refine()
        progress = {"refine": refine, "on_progress": on_progress, "should_cancel": should_cancel}
        plan, output = self.clip
        result = interpolate_clip(plan, output, backend, **progress)
        if not self.report:
            return ClipOutput(result, fallbacks=fallback_records(backend))
        from vfi.modes.report import report_clip

        report = report_clip(plan, backend, **progress)
        return ClipOutput(result, report, fallback_records(backend))


@dataclass(frozen=True)
class ClipOutput:
    """What a clip job wrote (``vfi.modes.clip.ClipResult``), its quality report when one was asked for, and the
    generated frames that fell back to the flow frame."""

    result: ClipResult
    report: ClipReport | None = None
    fallbacks: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CompareJob:
    """Two keyframes jobs on the same keyframes (the Compare tab's presets), each run whole."""

    runs: tuple[KeyframesJob, KeyframesJob]
    names: tuple[str, str]

    def check(self, max_gpu_seconds: int) -> None:
        """Refuse either run before the first is made."""
        for job in self.runs:
            job.check(max_gpu_seconds, whole=True)

    def memory_bytes(self) -> int:
        return sum(job.memory_bytes() for job in self.runs)


class EtaProgress:
    """A ``(done, total)`` progress callback that reports ``((done, total), desc=…, unit="frames")`` with an ETA."""

    def __init__(self, report: Callable[..., Any] | None) -> None:
        self.report = report
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if self.report is None or not total:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (total - done) if done else 0.0
        self.report((done, total), desc=f"frame {done}/{total}, about {eta:.0f} s left", unit="frames")


def execute(job: Job, max_gpu_seconds: int, run: Callable[[Job], T], run_on_gpu: Callable[[Job], T]) -> T:
    """Check ``job``, then run it whole: generative jobs on the GPU (``run_on_gpu``, one call), others here.

    One at a time on the GPU is the app's queue's business (Gradio's ``concurrency_id``), not a lock here.
    """
    job.check(max_gpu_seconds, whole=True)
    if not job.generative:
        return run(job)
    prepare_adapters(job)
    return run_on_gpu(job)


def prepare_adapters(job: Job) -> None:
    """Load a generative job's pipeline and adapters, and switch to them, here, before its GPU calls.

    On a ZeroGPU Space each GPU call runs in a fork of this (main) process: what a call loads or switches dies
    with it, so it would read the adapter from disk again on every call. Loaded here, a call only finds them
    active (or, after another job switched, calls ``set_adapters``: no GPU time the estimate has to cover).
    """
    if job.generative:
        job.create_backend()


class FrameStream:
    """A keyframes job's frames, one GPU call at a time: iterating yields the new frames by output index (first
    the keyframes, then the frames of each GPU call, or of each stage the other backends make here); afterwards
    :attr:`fallbacks` lists the generated frames that fell back to the flow frame.

    The plan (:meth:`Job.check`, before any work) says which stages are GPU work and in which calls; each call is
    ``run_on_gpu(job, requests)`` (a :class:`Made`), the only GPU work. The other backends, and the refine backend
    in hybrid mode, run here. ``should_cancel`` is read here, between calls (never inside a GPU process, where it
    would be a stale copy), and stops the run with :class:`~vfi.errors.Cancelled`.
    """

    def __init__(
        self,
        job: KeyframesJob,
        max_gpu_seconds: int,
        run_on_gpu: Callable[[KeyframesJob, list[FrameRequest]], Made],
        on_progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        self.fallbacks: list[dict[str, Any]] = []
        self._updates = self._run(job, job.check(max_gpu_seconds), run_on_gpu, on_progress, should_cancel)

    def __iter__(self) -> FrameStream:
        return self

    def __next__(self) -> dict[int, np.ndarray]:
        return next(self._updates)

    def _run(
        self,
        job: KeyframesJob,
        plan: Plan,
        run_on_gpu: Callable,
        on_progress: Callable | None,
        should_cancel: Callable | None,
    ) -> Iterator[dict[int, np.ndarray]]:
        from vfi.interpolate import Levels, Progress, run_requests

        refine = Capabilities(job.refine) if job.refine else None
        levels = Levels(job.keyframes, Capabilities(job.backend), job.settings, refine)
        progress = Progress(plan.total, on_progress, should_cancel)
        here = {False: None if job.generative else job.create_backend(), True: job.create_refine()}
        yield levels.keyframes
        prepare_adapters(job)

        def make(batch: list[FrameRequest], gpu: bool, refine: bool) -> list[np.ndarray]:
            if not gpu:
                return run_requests(here[refine], batch, progress)
            progress.check_cancel()
            made = run_on_gpu(job, batch)
            progress.advance(len(batch))
            self.fallbacks.extend(made.fallbacks)
            return made.frames

        for stage in plan.stages:
            requests = levels.requests(stage.stage)
            for batch in plan.gpu_batches(requests) if stage.gpu else [requests]:
                yield levels.add(make(batch, stage.gpu, stage.refine))
        levels.finish_stage()


def playback_chain(first: np.ndarray, last: np.ndarray, playback: str) -> tuple[np.ndarray, ...]:
    """The keyframes to interpolate through: a loop also goes from the last frame back to the first."""
    if playback not in PLAYBACKS:
        raise VFIError(f"playback must be one of {', '.join(PLAYBACKS)}, got {playback!r}.")
    return (first, last, first) if playback == "loop" else (first, last)


def apply_playback(frames: list[np.ndarray], playback: str) -> list[np.ndarray]:
    """The frames to show: a loop drops the repeated first frame, ping-pong plays them back again."""
    if playback == "loop":
        return frames[:-1]
    if playback == "ping-pong":
        return frames + frames[-2:0:-1]
    return frames


#: The app's output folders are ``<temp dir>/vfi-app-<pid>-<random>``: the pid says whose a folder is.
OUTPUT_ROOT_PREFIX = "vfi-app-"
_OUTPUT_ROOT = re.compile(rf"{OUTPUT_ROOT_PREFIX}(\d+)-\w+")


@functools.cache
def output_root() -> Path:
    """This process's folder for request outputs, made on first use (see :func:`remove_output_root`)."""
    return Path(tempfile.mkdtemp(prefix=f"{OUTPUT_ROOT_PREFIX}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale_output_roots() -> list[Path]:
    """Remove the output folders that app processes no longer running left in the temp dir (killed, crashed);
    a folder of a live process is kept. Returns the removed folders."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{OUTPUT_ROOT_PREFIX}*"):
        match = _OUTPUT_ROOT.fullmatch(folder.name)
        if match and folder.is_dir() and not folder.is_symlink() and not _alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def remove_output_root() -> None:
    if output_root.cache_info().currsize:
        shutil.rmtree(output_root(), ignore_errors=True)


def request_folder(session: str | None) -> Path:
    """A fresh folder for one request's outputs (never shared); folders older than the TTL are swept away."""
    requests = output_root() / "requests"
    requests.mkdir(exist_ok=True)
    now = time.time()
    for old in requests.iterdir():
        with contextlib.suppress(OSError):  # another request may be sweeping the same folder
            if now - old.stat().st_mtime > OUTPUT_TTL_S:
                shutil.rmtree(old)
    return Path(tempfile.mkdtemp(prefix=f"{(session or 'anon')[:12]}-", dir=requests))
