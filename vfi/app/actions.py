"""What each tab of the app does, from the values a user set to the files shown: no widgets, no gradio.

``app.py`` passes each action a :class:`Call` (how to run a job, where this user's outputs go, the
cancel key) and the widget values; user errors raise :class:`~vfi.errors.VFIError`.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vfi.app import jobs
from vfi.app.config import NO_ADAPTER, Advanced, AppConfig
from vfi.app.jobs import ClipJob, CompareJob, Job, KeyframesJob, Made
from vfi.app.requests import ClipRequest, CompareRequest, KeyframesRequest, clip_settings
from vfi.backends import GENERATIVE
from vfi.errors import Cancelled, VFIError
from vfi.io.files import write_json
from vfi.io.outputs import keyframe_outputs
from vfi.manifest import clip_seeds

if TYPE_CHECKING:
    from vfi.backends.base import FrameRequest
    from vfi.io.images import KeyframePair
    from vfi.modes.clip import ClipPlan, ClipSettings
    from vfi.run_spec import RunSpec

Gallery = list[tuple[str, str]]


@dataclass(frozen=True)
class Call:
    """One user action: the app's config, how a job runs (the app's queue and GPU), the session and cancel key.

    ``run`` runs a whole job; a streamed job (keyframes) sends its GPU work to ``make_on_gpu(job, requests)``,
    reports to ``report`` (``gr.Progress``-like: ``report((done, total), desc=…, unit=…)``) and stops when
    ``should_cancel()``. ``admit(nbytes)`` is a block holding that much of the app's memory budget (waiting
    for it first); every action holds its job's estimate while it runs.
    """

    config: AppConfig
    run: Callable[[Job], Any]
    session: str | None
    cancel_key: str
    admit: Callable[[int], AbstractContextManager] = lambda nbytes: nullcontext()
    make_on_gpu: Callable[[KeyframesJob, list[FrameRequest]], Made] = KeyframesJob.make
    report: Callable[..., Any] | None = None
    should_cancel: Callable[[], bool] | None = None

    def job_fields(self, backend: str, advanced: Advanced) -> dict[str, Any]:
        """The fields every job of this call has on ``backend`` (the generative one configured from ``advanced``)."""
        return {
            "backend": backend,
            "config": self.config.backend_config(backend, advanced),
            "cancel_key": self.cancel_key,
        }

    def stream(self, job: KeyframesJob) -> jobs.FrameStream:
        """``job`` checked, then its frames call by call (:class:`vfi.app.jobs.FrameStream`)."""
        return jobs.FrameStream(
            job, self.config.max_gpu_seconds, self.make_on_gpu, jobs.EtaProgress(self.report), self.should_cancel
        )

    def check_stop(self, made: int) -> None:
        """After the last frame: stopped before or while the files are written."""
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled(f"Stopped after {made} of {made} frames, before all files were written.")


def uploaded_keyframes(first: str | None, last: str | None, mismatch: str = "auto") -> KeyframePair:
    """The two uploaded keyframes, loaded, normalised and matched (see :func:`vfi.io.images.match_keyframes`)."""
    if not first or not last:
        raise VFIError("Upload both keyframes: the first and the last image.")
    from vfi.io.images import match_keyframes

    return match_keyframes(first, last, mismatch=mismatch)


def note_lines(notes: Iterable[str | None]) -> str:
    """Notes on what was changed on the way (a keyframe fitted, audio dropped), as Markdown lines to append."""
    return "".join(f"  \n{note}" for note in notes if note)


def fallback_sentences(fallbacks: Sequence[dict]) -> list[str]:
    """A sentence for each generated frame that fell back to the flow frame, and why."""
    from vfi.backends.fallback import fallback_note

    return [f"{note[0].upper()}{note[1:]}." for note in map(fallback_note, fallbacks)]


def fallback_lines(fallbacks: Sequence[dict]) -> str:
    """:func:`fallback_sentences` as Markdown lines to append."""
    return note_lines(fallback_sentences(fallbacks))


def write_manifest(
    spec: RunSpec, job: Job, seeds: dict, started: float, folder: Path, fallbacks: Sequence[dict] = ()
) -> Path:
    """``folder/manifest.json`` for the run ``spec`` describes (``python -m vfi replay`` remakes it)."""
    from vfi import manifest

    inputs = manifest.hash_inputs(getattr(spec, name) for name in spec.inputs)
    seconds = time.time() - started
    record = manifest.build_manifest(
        spec.command, spec.settings(), spec.argv(), inputs, job.config, seeds, started, seconds, fallbacks
    )
    return manifest.write_manifest(record, folder / "manifest.json")


def keyframes(
    call: Call,
    first: str | None,
    last: str | None,
    depth: float,
    count: float | None,
    fps: float,
    playback: str,
    backend: str,
    advanced: Advanced,
    seed: float,
    randomize: bool,
    mismatch: str = "auto",
    hybrid: bool = False,
) -> Iterator[tuple[str | None, Gallery, str | None, str | None, int, str]]:
    """Frames between two keyframes, streamed: yields (MP4, gallery (path, label), PNG zip (with the run's
    manifest), GIF, seed used, summary) as each GPU call finishes (the gallery fills in), then as the
    outputs are written (the MP4 first). The summary says how a mismatched last keyframe was fitted and which
    generated frames fell back to the flow frame. ``hybrid``: the generative backend makes the first level, the
    flow backend the rest."""
    request = KeyframesRequest.from_ui(
        first, last, depth, count, fps, playback, backend, advanced, seed, randomize, mismatch, hybrid
    )
    pair = uploaded_keyframes(request.first, request.last, request.mismatch)
    chain = jobs.playback_chain(pair.first, pair.last, request.playback)
    fields = call.job_fields(request.backend, request.advanced)
    job = KeyframesJob(**fields, settings=request.settings, keyframes=chain, refine=request.refine)
    stream = call.stream(job)  # checked: an impossible request is refused before any work
    with call.admit(job.memory_bytes()):
        folder = jobs.request_folder(call.session)
        started, start = time.time(), time.monotonic()
        made = yield from _previews(stream, folder / "preview", request, len(chain))
        frames = jobs.apply_playback(made, request.playback)
        notes = note_lines([pair.note]) + fallback_lines(stream.fallbacks)
        summary = _keyframes_summary(request, len(frames), time.monotonic() - start) + notes
        call.check_stop(len(made) - len(chain))
        seeds = request.seeds(len(chain) - 1)
        manifest = write_manifest(request.spec(job.config), job, seeds, started, folder, stream.fallbacks)
        for out in keyframe_outputs(frames, folder, request.fps, call.report):
            call.check_stop(len(made) - len(chain))
            if out.archive is not None and out.gif is None:  # the zip was just written: the manifest goes in it
                with zipfile.ZipFile(out.archive, "a") as archive:
                    archive.write(manifest, "manifest.json")
            gallery = [(str(p), p.stem) for p in out.frames] or _gallery(folder / "preview", range(len(made)))
            archive_path, gif = (str(out.archive) if out.archive else None), (str(out.gif) if out.gif else None)
            info = summary if gif else f"{summary} Writing the other files…"
            yield str(out.video), gallery, archive_path, gif, request.settings.seed, info


def _gallery(preview: Path, indices: Iterable[int]) -> Gallery:
    from vfi.io.video import frame_name

    return [(str(preview / frame_name(i)), Path(frame_name(i)).stem) for i in sorted(indices)]


def _previews(
    stream: jobs.FrameStream, preview: Path, request: KeyframesRequest, keyframes: int
) -> Iterator[tuple[None, Gallery, None, None, int, str]]:
    """Show the frames as they come (PNGs in ``preview``): yields the tab's updates; returns every frame in order."""
    from vfi.io.video import frame_name, write_png

    preview.mkdir()
    total = request.settings.frames_per_pair * (keyframes - 1) + 1
    made: dict[int, np.ndarray] = {}
    for new in stream:
        made.update(new)
        for index, frame in new.items():
            write_png(frame, preview / frame_name(index))
        yield None, _gallery(preview, made), None, None, request.settings.seed, f"{len(made)} of {total} frames made…"
    return [made[i] for i in range(total)]


def _keyframes_summary(request: KeyframesRequest, frames: int, seconds: float) -> str:
    fps, backend = request.fps, request.backend
    summary = f"{frames} frames, {frames / fps:.2f} s at {fps:g} fps — made in {seconds:.1f} s with {backend}"
    summary += " + flow (hybrid)." if request.refine else "."
    if request.unused_hybrid:
        summary += f" Hybrid mode is for the {GENERATIVE} backend: {backend} made every frame."
    return summary


def plan_upload(video: str, settings: ClipSettings) -> ClipPlan:
    """The uploaded clip probed and checked once for clip mode (a ``vfi.modes.clip.ClipPlan``)."""
    from vfi.modes.clip import plan_clip

    return plan_clip(video, settings)


def describe_clip(video: str | None, factor: float, slowmo: bool, *timing: Any) -> str:
    """Markdown: what the uploaded clip is and what clip mode will make of it, or why it cannot (``timing``:
    target fps, scene threshold, start, end, as :func:`clip_settings` takes them)."""
    if not video:
        return "Upload a clip to see its frame rate, frame count and duration."
    try:
        plan = plan_upload(video, clip_settings(factor, slowmo, *timing))
    except VFIError as error:
        return f"⚠️ {error}"
    info = plan.info
    return (
        f"**Input:** {info.width}×{info.height}, {info.fps:g} fps, {info.num_frames} frames, "
        f"{info.duration:.2f} s, {'with' if info.has_audio else 'no'} audio.  \n"
        f"**Output:** {plan.fps:g} fps, {plan.num_frames} frames."
    )


def clip(
    call: Call,
    video: str | None,
    factor: float,
    slowmo: bool,
    backend: str,
    advanced: Advanced,
    fps: str | None = "",
    scene_threshold: float | None = None,
    start: float | None = 0,
    end: float | None = None,
    report: bool = False,
) -> tuple[str, str, list[str], list[tuple[float, float]]]:
    """A clip at factor× the frame rate (or factor× slower, or at a target fps), audio kept → its path, a
    summary (with the generated frames that fell back to the flow frame), the files to download (the run's
    manifest, the quality report) and the report's PSNR over time."""
    timing = (fps, scene_threshold, start, end)
    request = ClipRequest.from_ui(video, factor, slowmo, backend, advanced, *timing, report=report)
    plan = plan_upload(request.video, request.settings)  # probed and checked once: the run reuses it
    folder = jobs.request_folder(call.session)
    output = str(folder / "interpolated.mp4")
    fields = call.job_fields(request.backend, request.advanced)
    job = ClipJob(**fields, settings=plan.settings, clip=(plan, output), report=request.report)
    with call.admit(job.memory_bytes()):
        started = time.time()
        made = call.run(job)
    result, quality = made.result, made.report
    audio = "audio kept" if result.has_audio else "no audio"
    summary = f"{result.num_frames} frames at {result.fps:g} fps, {result.duration:.2f} s, {audio}."
    summary += note_lines(result.notes) + fallback_lines(made.fallbacks)
    seeds = clip_seeds(request.settings.seed)
    files = [str(write_manifest(request.spec(job.config), job, seeds, started, folder, made.fallbacks))]
    points: list[tuple[float, float]] = []
    if quality is not None:
        report_path = folder / "report.json"
        write_json(quality.to_dict(), report_path)
        files.append(str(report_path))
        summary += f"  \n**Quality report:** {quality.summary()}"
        points = [(row.time, row.psnr) for row in quality.rows]
    return str(result.path), summary, files, points


def compare(
    call: Call,
    first: str | None,
    last: str | None,
    preset_a: str,
    preset_b: str,
    depth: float,
    fps: float,
    advanced: Advanced,
    seed: float,
) -> tuple[str, list[tuple[Any, str]], tuple[np.ndarray, np.ndarray], str]:
    """Both presets side by side in one video (so they play in sync) → its path, their middle frames (a gallery
    and a slider pair) and how far apart they are (PSNR/SSIM over the in-betweens)."""
    from vfi.io.images import side_by_side
    from vfi.io.video import write_mp4
    from vfi.quality.metrics import describe_agreement

    request = CompareRequest.from_ui(first, last, preset_a, preset_b, depth, fps, advanced, seed)
    pair = uploaded_keyframes(request.first, request.last)
    job = CompareJob(tuple(_preset_job(call, request, name, pair) for name in request.presets), request.presets)
    job.check(call.config.max_gpu_seconds)
    with call.admit(job.memory_bytes()):
        made = [call.run(run) for run in job.runs]
        runs = [one.frames for one in made]
        folder = jobs.request_folder(call.session)
        video = write_mp4(side_by_side(runs, job.names), folder / "compare.mp4", fps=request.fps)
    middle = len(runs[0]) // 2
    left, right = runs[0][middle], runs[1][middle]
    fell_back = [f"{name}: {line}" for name, one in zip(job.names, made) for line in fallback_sentences(one.fallbacks)]
    metrics = f"**Left vs right** — {describe_agreement(*runs)}" + note_lines([pair.note, *fell_back])
    gallery = [(frames[middle], f"{name}: middle frame") for name, frames in zip(job.names, runs)]
    return str(video), gallery, (left, right), metrics


def _preset_job(call: Call, request: CompareRequest, preset: str, pair: KeyframePair) -> KeyframesJob:
    """The keyframes job of one Compare preset (its backend, with or without the chosen adapter)."""
    presets = call.config.compare_presets()
    if preset not in presets:
        raise VFIError(f"Unknown setting {preset!r}; choose one of {', '.join(presets)}.")
    backend, with_adapter = presets[preset]
    chosen = request.advanced if with_adapter else replace(request.advanced, adapter=NO_ADAPTER)
    fields = call.job_fields(backend, chosen)
    return KeyframesJob(**fields, settings=request.settings, keyframes=(pair.first, pair.last))
