"""One request of the app as the library sees it: a job, its cost, its run and its outputs (stopping it and
admitting it by memory: :mod:`vfi.app.concurrency`).

No gradio here: ``app.py`` turns what the user set into a :class:`Job`, hands it to :func:`execute`
and shows what comes back. A job is picklable, so a ZeroGPU Space can run it in its GPU process.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from vfi.backends import ANY_T_BACKENDS, GENERATIVE, Capabilities
from vfi.errors import VFIError

if TYPE_CHECKING:
    from vfi.backends import Backend
    from vfi.backends.base import FrameRequest
    from vfi.backends.qwen_config import QwenEditConfig
    from vfi.interpolate import Stage
    from vfi.modes.clip import ClipPlan, ClipResult
    from vfi.modes.report import ClipReport

#: Wall-clock cost of one denoising step at 1024² on the GPU (docs/architecture.md, cost model), plus load time.
STEP_SECONDS_1024 = 0.6
LOAD_SECONDS = 30
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


@dataclass(frozen=True)
class Job:
    """One run of a backend.

    ``config`` is the generative backend's ``QwenEditConfig`` (None for the others). Either ``keyframes``
    (frames to chain: a pair, or first-last-first for a loop) with ``InterpolationSettings``, or ``clip`` =
    (a checked ``vfi.modes.clip.ClipPlan``, the output path) with its ``ClipSettings``.
    """

    backend: str
    config: QwenEditConfig | None = None
    settings: Any = None  # InterpolationSettings (keyframes) or ClipSettings (clip)
    keyframes: tuple[np.ndarray, ...] = ()
    clip: tuple[ClipPlan, str] | None = None
    cancel_key: str = ""
    #: With ``clip``: also make the clip's quality report (``vfi.modes.report``) with the same backend.
    report: bool = False
    refine: str | None = None  # hybrid mode: the any-t backend that fills in after ``settings.generative_depth`` levels

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

    def stages(self) -> list[Stage]:
        """The recursion's steps for every pair (:func:`vfi.interpolate.stages`); keyframe jobs only."""
        from vfi.interpolate import stages

        return stages(self.settings, Capabilities(self.backend), Capabilities(self.refine) if self.refine else None)

    def check(self) -> None:
        """Refuse an impossible request (frame count vs backend) with a VFIError, before any model loads."""
        self.frames_to_make()

    def frames_to_make(self) -> int:
        """How many frames the main backend makes in this run (raises VFIError for an impossible request)."""
        if self.clip is not None:
            plan = self.clip[0]
            midpoints = plan.midpoints_only(Capabilities(self.backend), self.refine and Capabilities(self.refine))
            made = plan.midpoint_frames if midpoints else plan.frames_to_make
            return made + (plan.report_frames if self.report else 0)
        return sum(len(stage.times) for stage in self.stages() if not stage.refine) * (len(self.keyframes) - 1)

    def frame_seconds(self) -> float:
        """Estimated GPU time of one generated frame: steps × (resolution / 1024)² × CFG, with a 1.5× margin.

        An unset resolution (the adapter's own, unknown before loading) is costed at 1024².
        """
        from vfi.backends.qwen_config import QwenEditConfig

        config = self.config or QwenEditConfig()
        cfg = 2 if config.guidance_or_default() > 1.0 else 1
        return 1.5 * config.steps_or_default() * STEP_SECONDS_1024 * ((config.resolution or 1024) / 1024) ** 2 * cfg

    def gpu_seconds(self, frames: int | None = None) -> int:
        """Estimated GPU time of a call making ``frames`` frames (default: the whole job), plus loading (the
        weights' move to the GPU; adapters are loaded before the call, :func:`prepare_adapters`)."""
        return int(LOAD_SECONDS + self.frame_seconds() * (self.frames_to_make() if frames is None else frames))

    def make(self, requests: Sequence[FrameRequest], on_progress: Callable[[int, int], None] | None = None) -> list:
        """The frames of ``requests`` from the main backend (the unit of GPU work when streaming)."""
        from vfi.interpolate import Progress, run_requests

        return run_requests(self.create_backend(), requests, Progress(len(requests), on_progress))

    def memory_bytes(self) -> int:
        """Estimated peak memory of this job with its outputs being written (server and its ffmpeg children):
        the frames it keeps plus a working set, both per frame pixel (raises VFIError for an impossible request)."""
        if self.clip is not None:  # frames stream through: a working set only
            info = self.clip[0].info
            return info.width * info.height * WORK_BYTES_PER_PIXEL
        return frames_memory(self.keyframes[0].shape, self.frames_to_make() + len(self.keyframes))

    def run(self, on_progress: Callable[[int, int], None], should_cancel: Callable[[], bool]):
        """The frames (keyframes) or the :class:`ClipOutput` (clip)."""
        backend = self.create_backend()
        if self.clip is not None:
            from vfi.modes.clip import interpolate_clip

            plan, output = self.clip
            refine = self.create_refine()
            result = interpolate_clip(
                plan, output, backend, refine=refine, on_progress=on_progress, should_cancel=should_cancel
            )
            if not self.report:
                return ClipOutput(result)
            from vfi.modes.report import report_clip

            report = report_clip(plan, backend, refine=refine, on_progress=on_progress, should_cancel=should_cancel)
            return ClipOutput(result, report)
        from vfi.interpolate import interpolate_frames

        return list(
            interpolate_frames(
                self.keyframes, backend, self.settings, refine=self.create_refine(), num_frames=len(self.keyframes),
                on_progress=on_progress, should_cancel=should_cancel,
            )
        )  # fmt: skip


@dataclass(frozen=True)
class ClipOutput:
    """What a clip job wrote (``vfi.modes.clip.ClipResult``) and its quality report, when one was asked for."""

    result: ClipResult
    report: ClipReport | None = None


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


def check_gpu_seconds(seconds: int, max_gpu_seconds: int) -> None:
    """Refuse a GPU call estimated over the limit (a ZeroGPU Space refuses it anyway, less clearly)."""
    if seconds > max_gpu_seconds:
        raise VFIError(
            f"This request needs about {seconds} s of GPU time in one call, more than the limit of "
            f"{max_gpu_seconds} s; make fewer frames, use fewer steps or a lower working resolution."
        )


def execute(job: Job, max_gpu_seconds: int, run: Callable[[Job], T], run_on_gpu: Callable[[Job], T]) -> T:
    """Check ``job``, then run it whole: generative jobs on the GPU (``run_on_gpu``), others here.

    One at a time on the GPU is the app's queue's business (Gradio's ``concurrency_id``), not a lock here.
    """
    job.check()
    if not job.generative:
        return run(job)
    check_gpu_seconds(job.gpu_seconds(), max_gpu_seconds)
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


def gpu_batches(job: Job, requests: Sequence[FrameRequest], max_gpu_seconds: int) -> list[list[FrameRequest]]:
    """``requests`` split into GPU calls: at most one backend batch each (a Stop or cancel then waits for one
    batch at most), estimated under ``max_gpu_seconds``; refuses the request if a single frame does not fit."""
    check_gpu_seconds(job.gpu_seconds(1), max_gpu_seconds)
    batch = job.config.batch if job.config is not None else 1
    size = max(1, min(batch, int((max_gpu_seconds - LOAD_SECONDS) // job.frame_seconds())))
    return [list(requests[i : i + size]) for i in range(0, len(requests), size)]


def stream_frames(
    job: Job,
    max_gpu_seconds: int,
    run_on_gpu: Callable[[Job, list[FrameRequest]], list[np.ndarray]],
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Iterator[dict[int, np.ndarray]]:
    """Run a keyframes job one recursion level at a time; yield the new frames by output index (first the
    keyframes, then the frames of each GPU call, or of each level of the other backends).

    The generative backend's frames go to ``run_on_gpu(job, requests)`` in calls that each fit
    ``max_gpu_seconds`` (:func:`gpu_batches`); only that is GPU work. The other backends, and the refine
    backend in hybrid mode, run here. ``should_cancel`` is read here, between calls (never inside a GPU
    process, where it would be a stale copy), and stops the run with :class:`~vfi.errors.Cancelled`.
    """
    from vfi.interpolate import Progress, interpolate_levels, run_requests

    job.check()
    pairs = len(job.keyframes) - 1
    progress = Progress(sum(len(stage.times) for stage in job.stages()) * pairs, on_progress, should_cancel)
    backend = None if job.generative else job.create_backend()
    refine = job.create_refine()

    def make(stage: Stage, requests: list[FrameRequest]) -> Iterator[list[np.ndarray]]:
        local = refine if stage.refine else backend
        if local is not None:
            yield run_requests(local, requests, progress)
            return
        batches = gpu_batches(job, requests, max_gpu_seconds)
        prepare_adapters(job)
        for batch in batches:
            progress.check_cancel()
            yield run_on_gpu(job, batch)
            progress.advance(len(batch))

    yield from interpolate_levels(job.keyframes, Capabilities(job.backend), job.settings, make,
                                  refine=Capabilities(job.refine) if job.refine else None)  # fmt: skip


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
