"""One request of the app as the library sees it: a job, its cost, its run, stopping it, and its outputs.

No gradio here: ``app.py`` turns what the user set into a :class:`Job`, hands it to :func:`execute`
and shows what comes back. A job is picklable, so a ZeroGPU Space can run it in its GPU process.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from vfi.backends import ANY_T_BACKENDS
from vfi.errors import Cancelled, VFIError

if TYPE_CHECKING:
    from vfi.backends import Backend
    from vfi.backends.qwen_edit import QwenEditConfig
    from vfi.clip import ClipPlan

GENERATIVE = "qwen-edit"
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


@dataclass(frozen=True)
class Capabilities:
    """What :func:`vfi.interpolate.count_generated` needs of a backend, known without building it."""

    name: str

    @property
    def supports_any_t(self) -> bool:
        return self.name in ANY_T_BACKENDS


@dataclass(frozen=True)
class Job:
    """One run of a backend.

    ``config`` is the generative backend's ``QwenEditConfig`` (None for the others). Either ``keyframes``
    (frames to chain: a pair, or first-last-first for a loop) with ``InterpolationSettings``, or ``clip`` =
    (a checked ``vfi.clip.ClipPlan``, the output path) with its ``ClipSettings``.
    """

    backend: str
    config: QwenEditConfig | None = None
    settings: Any = None  # InterpolationSettings (keyframes) or ClipSettings (clip)
    keyframes: tuple[np.ndarray, ...] = ()
    clip: tuple[ClipPlan, str] | None = None
    cancel_key: str = ""
    #: With ``clip``: also make the clip's quality report (``vfi.report``) with the same backend.
    report: bool = False

    @property
    def generative(self) -> bool:
        return self.backend == GENERATIVE

    def create_backend(self) -> Backend:
        from vfi.backends import create_backend

        return create_backend(self.backend, **({"config": self.config} if self.config is not None else {}))

    def frames_to_make(self) -> int:
        """How many frames the backend makes in this run (raises VFIError for an impossible request)."""
        if self.clip is not None:
            plan = self.clip[0]
            midpoints = plan.settings.fps is not None and not Capabilities(self.backend).supports_any_t
            made = plan.midpoint_frames if midpoints else plan.frames_to_make
            return made + (plan.report_frames if self.report else 0)
        from vfi.interpolate import count_generated

        return count_generated(self.settings, Capabilities(self.backend)) * (len(self.keyframes) - 1)

    def gpu_seconds(self) -> int:
        """Estimated GPU time: frames × steps × (resolution / 1024)² × CFG, plus loading.

        An unset resolution (the adapter's own, unknown before loading) is costed at 1024².
        """
        from vfi.backends.qwen_edit import QwenEditConfig

        config = self.config or QwenEditConfig()
        cfg = 2 if config.guidance_or_default() > 1.0 else 1
        per_frame = config.steps_or_default() * STEP_SECONDS_1024 * ((config.resolution or 1024) / 1024) ** 2 * cfg
        return int(LOAD_SECONDS + 1.5 * per_frame * self.frames_to_make())

    def memory_bytes(self) -> int:
        """Estimated peak memory of this job with its outputs being written (server and its ffmpeg children):
        the frames it keeps plus a working set, both per frame pixel (raises VFIError for an impossible request)."""
        if self.clip is not None:  # frames stream through: a working set only
            info = self.clip[0].info
            return info.width * info.height * WORK_BYTES_PER_PIXEL
        height, width = self.keyframes[0].shape[:2]
        kept = self.frames_to_make() + len(self.keyframes)
        return height * width * (KEPT_BYTES_PER_PIXEL * kept + WORK_BYTES_PER_PIXEL)

    def run(self, on_progress: Callable[[int, int], None], should_cancel: Callable[[], bool]):
        """The frames (keyframes) or the ``ClipResult`` (clip)."""
        backend = self.create_backend()
        if self.clip is not None:
            from vfi.clip import interpolate_clip

            plan, output = self.clip
            result = interpolate_clip(plan, output, backend, on_progress=on_progress, should_cancel=should_cancel)
            if not self.report:
                return result
            from vfi.report import report_clip

            report = report_clip(plan, backend, on_progress=on_progress, should_cancel=should_cancel)
            return dataclasses.replace(result, report=report)
        from vfi.interpolate import interpolate_frames

        return list(
            interpolate_frames(
                self.keyframes, backend, self.settings, num_frames=len(self.keyframes),
                on_progress=on_progress, should_cancel=should_cancel,
            )
        )  # fmt: skip


@dataclass
class _Run:
    """One running action: its stop flag, whether it ended, and what a stopped run said."""

    owner: str
    stop: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    message: str = ""


class CancelRegistry:
    """The app's running actions by key: Stop stops a user's runs on a tab, a cancelled or abandoned
    event stops its own run, and a new action gets a fresh key (a Stop pressed before it does not count)."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    @staticmethod
    def owner(session: str | None, tab: str) -> str:
        return f"{session or os.urandom(16).hex()}:{tab}"

    def start(self, session: str | None, tab: str) -> str:
        """The cancel key of a new action of ``session`` on ``tab``."""
        key = f"{self.owner(session, tab)}:{os.urandom(8).hex()}"
        with self._lock:
            self._runs[key] = _Run(self.owner(session, tab))
        return key

    def stopped(self, key: str) -> bool:
        run = self._runs.get(key)
        return run is not None and run.stop.is_set()

    def stop(self, session: str | None, tab: str, wait_s: float = 0.0) -> str:
        """Stop the runs of ``session`` on ``tab``; wait up to ``wait_s`` for them to end and return what the
        stopped ones said ("Stopped after N of M frames."), or "" if none was running."""
        return self._stop(lambda run: run.owner == self.owner(session, tab), wait_s)

    def stop_all(self, wait_s: float = 0.0) -> None:
        """Stop every run (the server is shutting down) and wait up to ``wait_s`` for them to end."""
        self._stop(lambda run: True, wait_s)

    def _stop(self, chosen: Callable[[_Run], bool], wait_s: float) -> str:
        with self._lock:
            runs = [run for run in self._runs.values() if chosen(run)]
        for run in runs:
            run.stop.set()
        deadline = time.monotonic() + wait_s
        for run in runs:
            run.ended.wait(max(0.0, deadline - time.monotonic()))
        return " ".join(run.message for run in runs if run.message)

    async def run(self, key: str, work: Callable[[], T], alive: Callable[[], bool] = lambda: True) -> T:
        """``work()`` under ``key`` in its own thread (see :func:`run_in_thread`); the run ends with it."""
        run = self._runs[key]

        def recorded() -> T:
            try:
                return work()
            except Cancelled as error:
                run.message = str(error)
                raise

        try:
            return await run_in_thread(recorded, run.stop.set, alive)
        finally:
            with self._lock:
                self._runs.pop(key, None)
            run.ended.set()


async def run_in_thread(
    work: Callable[[], T], stop: Callable[[], None], alive: Callable[[], bool] = lambda: True, poll_s: float = 0.2
) -> T:
    """Run ``work`` in a thread of its own (with the caller's context variables) and await its result.

    When the awaiting task is cancelled, or ``alive()`` turns false (the client went away), ``stop()`` is called
    and the task still waits for ``work`` to end (it checks for a stop between frames), so a cancelled request
    keeps its place under the concurrency limit until its memory and processes are freed; then the
    cancellation goes on.
    """
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if error is not None:
            result.set_exception(error)
        else:
            result.set_result(value)

    def target() -> None:
        try:
            value, error = context.run(work), None
        except BaseException as caught:  # handed to the awaiting task
            value, error = None, caught
        loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=target, name="vfi-job", daemon=True).start()
    cancelled = False
    while not result.done():
        try:
            await asyncio.wait({result}, timeout=poll_s)
        except asyncio.CancelledError:
            cancelled = True
        if cancelled or not alive():
            stop()
    if cancelled:
        result.exception()  # retrieved: the work's own error is superseded by the cancellation
        raise asyncio.CancelledError
    return result.result()


class MemoryBudget:
    """Admission by memory: a request waits until its estimated peak fits in the budget beside the running ones,
    so concurrent large requests queue instead of adding up (one larger than the whole budget runs alone)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def reserve(
        self, nbytes: int, should_cancel: Callable[[], bool] = lambda: False, on_wait: Callable[[], None] = lambda: None
    ) -> Iterator[None]:
        """Hold ``nbytes`` of the budget within the block; a stop while waiting raises ``Cancelled``."""
        nbytes = min(nbytes, self.limit)
        with self._changed:
            if self.used + nbytes > self.limit:
                on_wait()
            while self.used + nbytes > self.limit:
                if should_cancel():
                    raise Cancelled("Stopped before it began (it was waiting for memory).")
                self._changed.wait(0.2)
            self.used += nbytes
        try:
            yield
        finally:
            with self._changed:
                self.used -= nbytes
                self._changed.notify_all()


@functools.cache
def memory_budget(limit: int) -> MemoryBudget:
    """This process's budget of ``limit`` bytes (every request of the app shares it)."""
    return MemoryBudget(limit)


#: Generative runs take the GPU one at a time (ZeroGPU queues them itself).
GPU_SLOT = contextlib.nullcontext() if os.environ.get("SPACES_ZERO_GPU") else threading.Lock()


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


def execute(
    job: Job,
    max_gpu_seconds: int,
    run: Callable[[Job], T],
    run_on_gpu: Callable[[Job], T],
    on_wait: Callable[[], None] = lambda: None,
) -> T:
    """Check ``job``, then run it: generative jobs one at a time on the GPU (``run_on_gpu``), others at once."""
    job.frames_to_make()  # validates the request (frame count vs backend) before any model loads
    if not job.generative:
        return run(job)
    seconds = job.gpu_seconds()
    if seconds > max_gpu_seconds:
        raise VFIError(
            f"This request needs about {seconds} s of GPU time, more than the limit of {max_gpu_seconds} s; "
            "make fewer frames, use fewer steps or a lower working resolution."
        )
    on_wait()
    with GPU_SLOT:
        return run_on_gpu(job)


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


def upload_cache() -> Path:
    """Where the app keeps the web server's uploads and file cache: in this process's folder, so they go with it."""
    return output_root() / "uploads"


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


@dataclass(frozen=True)
class KeyframeOutputs:
    """What the keyframes tab offers: the MP4, the GIF, a zip of PNGs and the PNGs (for the gallery)."""

    video: Path
    gif: Path
    archive: Path
    frames: tuple[Path, ...]


def write_keyframe_outputs(frames: Sequence[np.ndarray], folder: Path, fps: float) -> KeyframeOutputs:
    from vfi.video import write_gif, write_mp4, write_png_frames

    video = write_mp4(frames, folder / "interpolated.mp4", fps=fps)
    gif = write_gif(frames, folder / "interpolated.gif", fps=fps)
    frame_dir = write_png_frames(frames, folder / "frames")
    archive = Path(shutil.make_archive(str(folder / "frames"), "zip", frame_dir))
    return KeyframeOutputs(Path(video), Path(gif), archive, tuple(sorted(frame_dir.glob("*.png"))))


def side_by_side(runs: Sequence[Sequence[np.ndarray]], names: Sequence[str]) -> list[np.ndarray]:
    """Frames of several runs of equal length, each labelled with its name, next to each other."""
    from vfi.frames import label_frame

    labelled = [[label_frame(frame, name) for frame in frames] for name, frames in zip(names, runs)]
    return [np.concatenate(row, axis=1) for row in zip(*labelled)]
