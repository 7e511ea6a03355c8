"""What each tab of the app does, from the values a user set to the files shown: no widgets, no gradio.

``app.py`` passes each action a :class:`Call` (how to run a job, where this user's outputs go, the
cancel key) and the widget values; user errors raise :class:`~vfi.errors.VFIError`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from vfi import jobs
from vfi.errors import VFIError
from vfi.jobs import Job
from vfi.service import NO_ADAPTER, Advanced, AppConfig

if TYPE_CHECKING:
    from vfi.clip import ClipPlan


@dataclass(frozen=True)
class Call:
    """One user action: the app's config, how a job runs (the app's queue and GPU), the session and cancel key,
    and ``admit(nbytes)``: a block holding that much of the app's memory budget (waiting for it first)."""

    config: AppConfig
    run: Callable[[Job], Any]
    session: str | None
    cancel_key: str
    admit: Callable[[int], AbstractContextManager] = lambda nbytes: nullcontext()

    def job(self, backend: str, advanced: Advanced, settings: Any, **what: Any) -> Job:
        """A job of this call on ``backend`` (the generative one configured from ``advanced``)."""
        return Job(backend, self.config.backend_config(backend, advanced), settings, cancel_key=self.cancel_key, **what)


def uploaded_keyframes(first: str | None, last: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The two uploaded keyframes, loaded and normalised (see :func:`vfi.frames.load_keyframes`)."""
    if not first or not last:
        raise VFIError("Upload both keyframes: the first and the last image.")
    from vfi.frames import load_keyframes

    return load_keyframes(first, last)


def keyframes(
    call: Call, first: str | None, last: str | None, depth: float, count: float | None, fps: float, playback: str,
    backend: str, advanced: Advanced, seed: float, randomize: bool,
) -> tuple[str, list[tuple[str, str]], str, str, int, str]:  # fmt: skip
    """Frames between two keyframes → MP4, gallery (path, label), PNG zip, GIF, the seed used and a summary."""
    from vfi.interpolate import InterpolationSettings

    first_rgb, last_rgb = uploaded_keyframes(first, last)
    count, fps = int(count or 0), float(fps)
    seed = random.randrange(2**32) if randomize else int(seed)
    settings = InterpolationSettings(depth=None if count else int(depth), frames=count or None, seed=seed)
    chain = jobs.playback_chain(first_rgb, last_rgb, playback)
    job = call.job(backend, advanced, settings, keyframes=chain)
    with call.admit(job.memory_bytes()):
        start = time.monotonic()
        frames = jobs.apply_playback(call.run(job), playback)
        seconds = time.monotonic() - start
        out = jobs.write_keyframe_outputs(frames, jobs.request_folder(call.session), fps)
    gallery = [(str(p), p.stem) for p in out.frames]
    info = f"{len(frames)} frames, {len(frames) / fps:.2f} s at {fps:g} fps — made in {seconds:.1f} s with {backend}."
    return str(out.video), gallery, str(out.archive), str(out.gif), seed, info


def plan_upload(video: str, factor: float, slowmo: bool) -> ClipPlan:
    """The uploaded clip probed and checked once for clip mode (a ``vfi.clip.ClipPlan``)."""
    from vfi.clip import ClipSettings, plan_clip

    return plan_clip(video, ClipSettings(factor=int(factor), slowmo=bool(slowmo)))


def describe_clip(video: str | None, factor: float, slowmo: bool) -> str:
    """Markdown: what the uploaded clip is and what clip mode will make of it, or why it cannot."""
    if not video:
        return "Upload a clip to see its frame rate, frame count and duration."
    try:
        plan = plan_upload(video, factor, slowmo)
    except VFIError as error:
        return f"⚠️ {error}"
    info = plan.info
    return (
        f"**Input:** {info.width}×{info.height}, {info.fps:g} fps, {info.num_frames} frames, "
        f"{info.duration:.2f} s, {'with' if info.has_audio else 'no'} audio.  \n"
        f"**Output:** {plan.fps:g} fps, {plan.num_frames} frames."
    )


def clip(
    call: Call, video: str | None, factor: float, slowmo: bool, backend: str, advanced: Advanced
) -> tuple[str, str]:
    """A clip at factor× the frame rate (or factor× slower), audio kept → its path and a summary."""
    if not video:
        raise VFIError("Upload a clip first.")
    plan = plan_upload(video, factor, slowmo)  # probed and checked once: the run reuses it
    output = str(jobs.request_folder(call.session) / "interpolated.mp4")
    job = call.job(backend, advanced, plan.settings, clip=(plan, output))
    with call.admit(job.memory_bytes()):
        result = call.run(job)
    audio = "audio kept" if result.has_audio else "no audio"
    notes = "".join(f"  \n{note}" for note in result.notes)
    return str(
        result.path
    ), f"{result.num_frames} frames at {result.fps:g} fps, {result.duration:.2f} s, {audio}.{notes}"


def compare(
    call: Call, first: str | None, last: str | None, preset_a: str, preset_b: str, depth: float, fps: float,
    advanced: Advanced, seed: float,
) -> tuple[str, list[tuple[Any, str]]]:  # fmt: skip
    """Both presets side by side in one video (so they play in sync) → its path and their middle frames."""
    from vfi.interpolate import InterpolationSettings
    from vfi.video import write_mp4

    presets = call.config.compare_presets()
    first_rgb, last_rgb = uploaded_keyframes(first, last)
    settings = InterpolationSettings(depth=int(depth), seed=int(seed))
    names, work = (preset_a, preset_b), []
    for preset in names:
        if preset not in presets:
            raise VFIError(f"Unknown setting {preset!r}; choose one of {', '.join(presets)}.")
        backend, with_adapter = presets[preset]
        chosen = advanced if with_adapter else replace(advanced, adapter=NO_ADAPTER)
        work.append(call.job(backend, chosen, settings, keyframes=(first_rgb, last_rgb)))
    with call.admit(sum(job.memory_bytes() for job in work)):
        runs = [call.run(job) for job in work]
        folder = jobs.request_folder(call.session)
        video = write_mp4(jobs.side_by_side(runs, names), folder / "compare.mp4", fps=float(fps))
    middle = len(runs[0]) // 2
    return str(video), [(frames[middle], f"{name}: middle frame") for name, frames in zip(names, runs)]
