"""What each tab of the app does, from the values a user set to the files shown: no widgets, no gradio.

``app.py`` passes each action a :class:`Call` (how to run a job, where this user's outputs go, the
cancel key) and the widget values; user errors raise :class:`~vfi.errors.VFIError`.
"""

from __future__ import annotations

import random
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vfi.app import jobs
from vfi.app.config import NO_ADAPTER, Advanced, AppConfig
from vfi.app.jobs import Job
from vfi.backends import GENERATIVE
from vfi.errors import Cancelled, VFIError
from vfi.io.files import write_json
from vfi.io.outputs import keyframe_outputs
from vfi.manifest import clip_seeds
from vfi.run_spec import BackendSpec, ClipSpec, PairSpec, RunSpec

if TYPE_CHECKING:
    from vfi.backends.base import FrameRequest
    from vfi.io.images import KeyframePair
    from vfi.modes.clip import ClipPlan, ClipSettings

#: Hybrid mode: the generative backend makes the first recursion level, this backend the rest.
HYBRID_REFINE = "flow"


def _make_here(job: Job, requests: list[FrameRequest]) -> list[np.ndarray]:
    return job.make(requests)


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
    make_on_gpu: Callable[[Job, list[FrameRequest]], list[np.ndarray]] = _make_here
    report: Callable[..., Any] | None = None
    should_cancel: Callable[[], bool] | None = None

    def job(self, backend: str, advanced: Advanced, settings: Any, **what: Any) -> Job:
        """A job of this call on ``backend`` (the generative one configured from ``advanced``)."""
        return Job(backend, self.config.backend_config(backend, advanced), settings, cancel_key=self.cancel_key, **what)

    def stream(self, job: Job) -> Iterator[dict[int, np.ndarray]]:
        """``job``'s frames level by level (:func:`vfi.app.jobs.stream_frames`)."""
        return jobs.stream_frames(
            job, self.config.max_gpu_seconds, self.make_on_gpu, jobs.EtaProgress(self.report), self.should_cancel
        )


def uploaded_keyframes(first: str | None, last: str | None, mismatch: str = "fit") -> KeyframePair:
    """The two uploaded keyframes, loaded, normalised and matched (see :func:`vfi.io.images.match_keyframes`)."""
    if not first or not last:
        raise VFIError("Upload both keyframes: the first and the last image.")
    from vfi.io.images import match_keyframes

    return match_keyframes(first, last, mismatch=mismatch)


def note_lines(notes: Iterable[str | None]) -> str:
    """Notes on what was changed on the way (a keyframe fitted, audio dropped), as Markdown lines to append."""
    return "".join(f"  \n{note}" for note in notes if note)


def write_manifest(spec: RunSpec, job: Job, seeds: dict, started: float, folder: Path) -> Path:
    """``folder/manifest.json`` for the run ``spec`` describes (``python -m vfi replay`` remakes it)."""
    from vfi import manifest

    inputs = manifest.hash_inputs(getattr(spec, name) for name in spec.inputs)
    record = manifest.build_manifest(
        spec.command, spec.settings(), spec.argv(), inputs, job.config, seeds, started, time.time() - started
    )
    return manifest.write_manifest(record, folder / "manifest.json")


def keyframes(
    call: Call, first: str | None, last: str | None, depth: float, count: float | None, fps: float, playback: str,
    backend: str, advanced: Advanced, seed: float, randomize: bool, mismatch: str = "fit", hybrid: bool = False,
) -> Iterator[tuple[str | None, list[tuple[str, str]], str | None, str | None, int, str]]:  # fmt: skip
    """Frames between two keyframes, streamed: yields (MP4, gallery (path, label), PNG zip (with the run's
    manifest), GIF, seed used, summary) as each recursion level finishes (the gallery fills in), then as the
    outputs are written (the MP4 first). The summary says how a mismatched last keyframe was fitted.
    ``hybrid``: the generative backend makes the first level, the flow backend the rest."""
    from vfi.interpolate import InterpolationSettings
    from vfi.io.video import frame_name, write_png
    from vfi.manifest import frame_seeds

    pair = uploaded_keyframes(first, last, mismatch)
    count, fps = int(count or 0), float(fps)
    seed = random.randrange(2**32) if randomize else int(seed)
    unused_hybrid = bool(hybrid) and backend != GENERATIVE  # said in the summary, not silently dropped
    hybrid = bool(hybrid) and not unused_hybrid
    settings = InterpolationSettings(
        depth=None if count else int(depth), frames=count or None, seed=seed, generative_depth=1 if hybrid else None
    )
    chain = jobs.playback_chain(pair.first, pair.last, playback)
    job = call.job(backend, advanced, settings, keyframes=chain, refine=HYBRID_REFINE if hybrid else None)
    with call.admit(job.memory_bytes()):
        folder = jobs.request_folder(call.session)
        preview = folder / "preview"
        preview.mkdir()
        total = settings.frames_per_pair * (len(chain) - 1) + 1
        made: dict[int, np.ndarray] = {}
        started, start = time.time(), time.monotonic()
        for new in call.stream(job):
            made.update(new)
            for index, frame in new.items():
                write_png(frame, preview / frame_name(index))
            gallery = [(str(preview / frame_name(i)), Path(frame_name(i)).stem) for i in sorted(made)]
            yield None, gallery, None, None, seed, f"{len(made)} of {total} frames made…"
        seconds = time.monotonic() - start
        frames = jobs.apply_playback([made[i] for i in range(total)], playback)
        summary = (
            f"{len(frames)} frames, {len(frames) / fps:.2f} s at {fps:g} fps — made in {seconds:.1f} s with {backend}"
        )
        summary += " + flow (hybrid)." if hybrid else "."
        summary += f" Hybrid mode is for the {GENERATIVE} backend: {backend} made every frame." if unused_hybrid else ""
        summary += note_lines([pair.note])
        choice = BackendSpec(backend, job.config, job.refine, settings.generative_depth)
        spec = PairSpec(
            first, last, depth=int(depth), frames=count or None, fps=fps, seed=seed, mismatch=mismatch, backend=choice
        )
        seeds = {"run_seed": seed, "playback": playback, "frames": frame_seeds(seed, len(chain) - 1, settings.times)}
        made_count = total - len(chain)

        def check_stop() -> None:  # after the last frame: stopped before or while the files are written
            if call.should_cancel is not None and call.should_cancel():
                raise Cancelled(f"Stopped after {made_count} of {made_count} frames, before all files were written.")

        check_stop()
        manifest = write_manifest(spec, job, seeds, started, folder)
        for out in keyframe_outputs(frames, folder, fps, call.report):
            check_stop()
            if out.frames:
                gallery = [(str(p), p.stem) for p in out.frames]
            if out.archive is not None and out.gif is None:  # the zip was just written: the manifest goes in it
                with zipfile.ZipFile(out.archive, "a") as archive:
                    archive.write(manifest, "manifest.json")
            archive_path, gif = (str(out.archive) if out.archive else None), (str(out.gif) if out.gif else None)
            info = summary if gif else f"{summary} Writing the other files…"
            yield str(out.video), gallery, archive_path, gif, seed, info


def clip_settings(
    factor: float, slowmo: bool, fps: str | None = "", scene_threshold: float | None = None, start: float | None = 0,
    end: float | None = None,
) -> ClipSettings:  # fmt: skip
    """The Clip tab's values as ``ClipSettings`` (an empty target fps: use the factor; an end of 0: the clip's end)."""
    from vfi.modes.clip import ClipSettings
    from vfi.modes.retime import parse_rate
    from vfi.modes.scenes import SCENE_THRESHOLD

    return ClipSettings(
        factor=int(factor), slowmo=bool(slowmo), fps=parse_rate(fps) if fps and str(fps).strip() else None,
        scene_threshold=SCENE_THRESHOLD if scene_threshold is None else float(scene_threshold),
        start=float(start or 0), end=float(end) if end else None,
    )  # fmt: skip


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
    call: Call, video: str | None, factor: float, slowmo: bool, backend: str, advanced: Advanced,
    fps: str | None = "", scene_threshold: float | None = None, start: float | None = 0, end: float | None = None,
    report: bool = False,
) -> tuple[str, str, list[str], list[tuple[float, float]]]:  # fmt: skip
    """A clip at factor× the frame rate (or factor× slower, or at a target fps), audio kept → its path, a
    summary, the files to download (the run's manifest, the quality report) and the report's PSNR over time."""
    if not video:
        raise VFIError("Upload a clip first.")
    settings = clip_settings(factor, slowmo, fps, scene_threshold, start, end)
    plan = plan_upload(video, settings)  # probed and checked once: the run reuses it
    folder = jobs.request_folder(call.session)
    output = str(folder / "interpolated.mp4")
    job = replace(call.job(backend, advanced, plan.settings, clip=(plan, output)), report=bool(report))
    with call.admit(job.memory_bytes()):
        started = time.time()
        output = call.run(job)
    result, quality = output.result, output.report
    audio = "audio kept" if result.has_audio else "no audio"
    summary = f"{result.num_frames} frames at {result.fps:g} fps, {result.duration:.2f} s, {audio}."
    summary += note_lines(result.notes)
    spec = ClipSpec(
        video,
        factor=settings.factor,
        slowmo=settings.slowmo,
        seed=settings.seed,
        fps=settings.fps,
        scene_threshold=settings.scene_threshold,
        start=settings.start,
        end=settings.end,
        backend=BackendSpec(backend, job.config),
    )
    files = [str(write_manifest(spec, job, clip_seeds(settings.seed), started, folder))]
    points: list[tuple[float, float]] = []
    if quality is not None:
        report_path = folder / "report.json"
        write_json(quality.to_dict(), report_path)
        files.append(str(report_path))
        summary += f"  \n**Quality report:** {quality.summary()}"
        points = [(row.time, row.psnr) for row in quality.rows]
    return str(result.path), summary, files, points


def compare(
    call: Call, first: str | None, last: str | None, preset_a: str, preset_b: str, depth: float, fps: float,
    advanced: Advanced, seed: float,
) -> tuple[str, list[tuple[Any, str]], tuple[np.ndarray, np.ndarray], str]:  # fmt: skip
    """Both presets side by side in one video (so they play in sync) → its path, their middle frames (a gallery
    and a slider pair) and how far apart they are (PSNR/SSIM over the in-betweens)."""
    from vfi.interpolate import InterpolationSettings
    from vfi.io.images import side_by_side
    from vfi.io.video import write_mp4
    from vfi.quality.metrics import describe_agreement

    presets = call.config.compare_presets()
    keyframes = uploaded_keyframes(first, last)
    first_rgb, last_rgb = keyframes.first, keyframes.last
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
        video = write_mp4(side_by_side(runs, names), folder / "compare.mp4", fps=float(fps))
    middle = len(runs[0]) // 2
    left, right = runs[0][middle], runs[1][middle]
    metrics = f"**Left vs right** — {describe_agreement(*runs)}" + note_lines([keyframes.note])
    gallery = [(frames[middle], f"{name}: middle frame") for name, frames in zip(names, runs)]
    return str(video), gallery, (left, right), metrics
