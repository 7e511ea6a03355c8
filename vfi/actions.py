"""What each tab of the app does, from the values a user set to the files shown: no widgets, no gradio.

``app.py`` passes each action a :class:`Call` (how to run a job, where this user's outputs go, the
cancel key) and the widget values; user errors raise :class:`~vfi.errors.VFIError`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vfi import jobs
from vfi.errors import VFIError
from vfi.jobs import Job
from vfi.service import NO_ADAPTER, Advanced, AppConfig

if TYPE_CHECKING:
    from vfi.backends.base import FrameRequest
    from vfi.clip import ClipPlan

#: Hybrid mode: the generative backend makes the first recursion level, this backend the rest.
HYBRID_REFINE = "flow"


def _make_here(job: Job, requests: list[FrameRequest]) -> list[np.ndarray]:
    return job.make(requests)


@dataclass(frozen=True)
class Call:
    """One user action: the app's config, how a job runs (the app's queue and GPU), the session and cancel key.

    ``run`` runs a whole job; a streamed job (keyframes) sends its GPU work to ``make_on_gpu(job, requests)``,
    reports to ``report`` (``gr.Progress``-like: ``report((done, total), desc=…, unit=…)``) and stops when
    ``should_cancel()``.
    """

    config: AppConfig
    run: Callable[[Job], Any]
    session: str | None
    cancel_key: str
    make_on_gpu: Callable[[Job, list[FrameRequest]], list[np.ndarray]] = _make_here
    report: Callable[..., Any] | None = None
    should_cancel: Callable[[], bool] | None = None

    def job(self, backend: str, advanced: Advanced, settings: Any, **what: Any) -> Job:
        """A job of this call on ``backend`` (the generative one configured from ``advanced``)."""
        return Job(backend, self.config.backend_config(backend, advanced), settings, cancel_key=self.cancel_key, **what)

    def stream(self, job: Job) -> Iterator[dict[int, np.ndarray]]:
        """``job``'s frames level by level (:func:`vfi.jobs.stream_frames`)."""
        return jobs.stream_frames(
            job, self.config.max_gpu_seconds, self.make_on_gpu, jobs.EtaProgress(self.report), self.should_cancel
        )


def uploaded_keyframes(first: str | None, last: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The two uploaded keyframes, loaded and normalised (see :func:`vfi.frames.load_keyframes`)."""
    if not first or not last:
        raise VFIError("Upload both keyframes: the first and the last image.")
    from vfi.frames import load_keyframes

    return load_keyframes(first, last)


def keyframes(
    call: Call, first: str | None, last: str | None, depth: float, count: float | None, fps: float, playback: str,
    backend: str, advanced: Advanced, seed: float, randomize: bool, hybrid: bool = False,
) -> Iterator[tuple[str | None, list[tuple[str, str]], str | None, str | None, int, str]]:  # fmt: skip
    """Frames between two keyframes, streamed: yields (MP4, gallery (path, label), PNG zip, GIF, seed used,
    summary) as each recursion level finishes (the gallery fills in), then as the outputs are written (the
    MP4 first). ``hybrid``: the generative backend makes the first level, the flow backend the rest."""
    from vfi.interpolate import InterpolationSettings
    from vfi.video import frame_name, write_png

    first_rgb, last_rgb = uploaded_keyframes(first, last)
    count, fps = int(count or 0), float(fps)
    seed = random.randrange(2**32) if randomize else int(seed)
    hybrid = bool(hybrid) and backend == jobs.GENERATIVE
    settings = InterpolationSettings(
        depth=None if count else int(depth), frames=count or None, seed=seed, generative_depth=1 if hybrid else None
    )
    chain = jobs.playback_chain(first_rgb, last_rgb, playback)
    job = call.job(backend, advanced, settings, keyframes=chain, refine=HYBRID_REFINE if hybrid else None)
    folder = jobs.request_folder(call.session)
    preview = folder / "preview"
    preview.mkdir()
    total = settings.frames_per_pair * (len(chain) - 1) + 1
    made: dict[int, np.ndarray] = {}
    start = time.monotonic()
    for new in call.stream(job):
        made.update(new)
        for index, frame in new.items():
            write_png(frame, preview / frame_name(index))
        gallery = [(str(preview / frame_name(i)), Path(frame_name(i)).stem) for i in sorted(made)]
        yield None, gallery, None, None, seed, f"{len(made)} of {total} frames made…"
    seconds = time.monotonic() - start
    frames = jobs.apply_playback([made[i] for i in range(total)], playback)
    summary = f"{len(frames)} frames, {len(frames) / fps:.2f} s at {fps:g} fps — made in {seconds:.1f} s with {backend}"
    summary += " + flow (hybrid)." if hybrid else "."
    for out in jobs.keyframe_outputs(frames, folder, fps, call.report):
        if out.frames:
            gallery = [(str(p), p.stem) for p in out.frames]
        archive, gif = (str(out.archive) if out.archive else None), (str(out.gif) if out.gif else None)
        yield str(out.video), gallery, archive, gif, seed, summary if gif else f"{summary} Writing the other files…"


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
    result = call.run(call.job(backend, advanced, plan.settings, clip=(plan, output)))
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
    names, runs = (preset_a, preset_b), []
    for preset in names:
        if preset not in presets:
            raise VFIError(f"Unknown setting {preset!r}; choose one of {', '.join(presets)}.")
        backend, with_adapter = presets[preset]
        chosen = advanced if with_adapter else replace(advanced, adapter=NO_ADAPTER)
        runs.append(call.run(call.job(backend, chosen, settings, keyframes=(first_rgb, last_rgb))))
    folder = jobs.request_folder(call.session)
    video = write_mp4(jobs.side_by_side(runs, names), folder / "compare.mp4", fps=float(fps))
    middle = len(runs[0]) // 2
    return str(video), [(frames[middle], f"{name}: middle frame") for name, frames in zip(names, runs)]
