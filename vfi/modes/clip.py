"""Clip mode: interpolate every consecutive pair of a video by a factor of 2, 4 or 8.

The clip streams from the decoder through the recursion into the encoder, so memory stays bounded.
Scene cuts are never interpolated across (the earlier frame is held instead), and a run of duplicate
frames is bridged: the frames around it are interpolated over the whole span, so motion never stalls.
Either way a clip of n frames gives exactly (n − 1)·factor + 1 frames.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from itertools import islice
from pathlib import Path

import numpy as np

from vfi.backends.base import Backend, fallback_list
from vfi.distributed import PAIRS_PER_ROUND, is_main, zip_ordered
from vfi.errors import VFIError
from vfi.interpolate import (
    MAX_FRAMES,
    InterpolationSettings,
    Progress,
    ProgressCallback,
    check_seed,
    count_generated,
    interpolate_pair,
)
from vfi.io.images import MIN_SIDE
from vfi.io.video import MAX_FPS, ClipInfo, check_duration, check_fps, probe_clip, read_frames, write_mp4
from vfi.modes.scenes import SCENE_THRESHOLD, CutDetector, FrameSummary

FACTORS = (2, 4, 8)
#: The longest run of duplicate frames bridged by interpolation; a longer run is a real pause.
MAX_DUPLICATE_RUN = 3


@dataclass(frozen=True)
class ClipSettings:
    """How to interpolate a clip.

    Args:
        factor: output frames per input frame interval (2, 4 or 8).
        slowmo: keep the input fps, so the clip plays ``factor``× slower (its audio is dropped);
            otherwise the fps is multiplied and the duration and audio are kept.
        max_seconds: longest input clip accepted.
        max_frames: most input frames accepted.
        scene_threshold: change score (0–1: mean of a colour-histogram distance and a thumbnail pixel
            difference) above which two frames are a scene cut.
        duplicate_threshold: largest pixel difference (0–255, on a ≤256 px thumbnail) between two
            frames that still counts as a duplicate.
        crf: x264 quality (lower is better, 18 is visually lossless).
        seed: run seed for generative backends.
        generative_depth: in hybrid mode (a refine backend), how many recursion levels the main backend makes.
        fps: a target frame rate instead of a factor (any rational, e.g. ``Fraction(60000, 1001)``): frames are
            made at the target's times (:mod:`vfi.modes.retime`); the duration and audio are kept.
        start, end: keep only the input frames shown from ``start`` to ``end`` seconds (None: to the end).
    """

    factor: int = 2
    slowmo: bool = False
    max_seconds: float = 60.0
    max_frames: int = 2000
    scene_threshold: float = SCENE_THRESHOLD
    duplicate_threshold: float = 6.0
    crf: int = 18
    seed: int = 0
    generative_depth: int | None = None
    fps: Fraction | None = None
    start: float = 0.0
    end: float | None = None

    def __post_init__(self) -> None:
        if self.fps is not None:
            if not isinstance(self.fps, Fraction | int):
                raise VFIError(f"fps must be a rational number, got {self.fps!r}.")
            check_fps(self.fps)
            if self.slowmo:
                raise VFIError("Give a target fps or slow motion, not both.")
        if not (isinstance(self.start, int | float) and 0 <= self.start < math.inf):
            raise VFIError(f"start must be a number of seconds of at least 0, got {self.start!r}.")
        if self.end is not None and not (isinstance(self.end, int | float) and self.start < self.end < math.inf):
            raise VFIError(f"end must be a number of seconds after start ({self.start:g}), got {self.end!r}.")
        if self.factor not in FACTORS:
            raise VFIError(f"factor must be one of {', '.join(map(str, FACTORS))}, got {self.factor!r}.")
        if not (isinstance(self.max_seconds, int | float) and 0 < self.max_seconds < math.inf):
            raise VFIError(f"max_seconds must be a positive number, got {self.max_seconds!r}.")
        if not (isinstance(self.max_frames, int) and self.max_frames >= 2):
            raise VFIError(f"max_frames must be an integer of at least 2, got {self.max_frames!r}.")
        if not 0 < self.scene_threshold <= 1:
            raise VFIError(f"scene_threshold must be in (0, 1], got {self.scene_threshold!r}.")
        if not 0 <= self.duplicate_threshold < 255:
            raise VFIError(f"duplicate_threshold must be in [0, 255), got {self.duplicate_threshold!r}.")
        if not (isinstance(self.crf, int) and 0 <= self.crf <= 51):
            raise VFIError(f"crf must be an integer from 0 to 51, got {self.crf!r}.")
        check_seed(self.seed)

    @property
    def depth(self) -> int:
        return int(math.log2(self.factor))


@dataclass(frozen=True)
class ClipResult:
    """What :func:`interpolate_clip` wrote. ``notes`` are things the user should be told."""

    path: Path
    num_frames: int
    fps: float
    duration: float
    has_audio: bool
    scene_cuts: int
    duplicates: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClipPlan:
    """A clip checked against its settings (by :func:`plan_clip`, once per request): what clip mode makes of it."""

    info: ClipInfo
    settings: ClipSettings

    @property
    def input_rate(self) -> Fraction:
        """The input frame rate as an exact rational (29.97… → 30000/1001)."""
        return Fraction(self.info.fps).limit_denominator(1001)

    @property
    def frame_range(self) -> range:
        """The input frames kept by the trim (``start``/``end``): those shown from ``start`` up to ``end``."""
        rate, settings = self.input_rate, self.settings
        first = math.ceil(Fraction(settings.start) * rate)
        stop = self.info.num_frames if settings.end is None else math.ceil(Fraction(settings.end) * rate)
        return range(first, min(stop, self.info.num_frames))

    @property
    def fps(self) -> float:
        """The frame rate of the interpolated clip."""
        if self.settings.fps is not None:
            return float(self.settings.fps)
        return self.info.fps if self.settings.slowmo else self.info.fps * self.settings.factor

    @property
    def num_frames(self) -> int:
        """Frames of the interpolated clip."""
        if self.settings.fps is not None:
            return len(self.positions)
        return (len(self.frame_range) - 1) * self.settings.factor + 1

    @cached_property
    def positions(self) -> list[Fraction]:
        """With a target fps: where each output frame falls, in input frames from the first kept one."""
        from vfi.modes.retime import output_positions

        return output_positions(len(self.frame_range), self.input_rate, Fraction(self.settings.fps))

    @property
    def frames_to_make(self) -> int:
        """Frames a backend makes (at most: cuts and duplicates make fewer); at a target fps, a backend that
        takes any t (a midpoint-only one makes :attr:`midpoint_frames`)."""
        if self.settings.fps is not None:
            return sum(1 for p in self.positions if p.denominator != 1)
        return self.num_frames - len(self.frame_range)

    @property
    def midpoint_depth(self) -> int:
        """At a target fps, the recursion levels a midpoint-only backend makes (flow places the frames between):
        ``generative_depth``, or the level nearest the new rate."""
        from vfi.modes.retime import nearest_depth

        return self.settings.generative_depth or nearest_depth(self.input_rate, Fraction(self.settings.fps))

    def midpoints_only(self, backend: Backend, refine: Backend | None) -> bool:
        """Whether ``backend`` makes midpoints only here (:attr:`midpoint_frames`, flow placing the frames at the
        target fps): a backend that cannot take any t, at a target fps, without a refine backend."""
        return self.settings.fps is not None and not backend.supports_any_t and refine is None

    @property
    def midpoint_frames(self) -> int:
        """At a target fps, the frames a midpoint-only backend makes: its levels in each interval with a frame to make."""
        intervals = {math.floor(p) for p in self.positions if p.denominator != 1}
        return len(intervals) * (2**self.midpoint_depth - 1)

    @property
    def report_factor(self) -> int:
        """The quality report keeps every ``report_factor``-th frame (the factor; 2 at a target fps)."""
        return 2 if self.settings.fps is not None else self.settings.factor

    @property
    def report_frames(self) -> int:
        """Frames the quality report (``vfi.modes.report``) rebuilds (at most: windows across cuts are skipped)."""
        return (len(self.frame_range) - 1) // self.report_factor * (self.report_factor - 1)


def plan_clip(clip: str | os.PathLike | ClipInfo, settings: ClipSettings) -> ClipPlan:
    """Probe ``clip`` (a path; a :class:`ClipInfo` is taken as probed) and refuse it (one clear sentence) if clip
    mode cannot take it with ``settings``."""
    # Refused at the probe (before a variable-frame-rate clip is decoded to count its frames) only when no trim
    # could bring it under the limit: without an end, a clip longer than start + max_seconds keeps too much.
    probe_limit = settings.max_seconds + settings.start if settings.end is None else None
    info = clip if isinstance(clip, ClipInfo) else probe_clip(clip, max_seconds=probe_limit)
    plan = ClipPlan(info, settings)
    name = info.path.name
    if info.num_frames < 2:
        raise VFIError(f"{name} has {info.num_frames} frame; clip mode needs at least 2.")
    if len(plan.frame_range) < 2:
        end = "the end" if settings.end is None else f"{settings.end:g} s"
        raise VFIError(
            f"{name} has {len(plan.frame_range)} frame(s) from {settings.start:g} s to {end} "
            f"(it is {info.duration:.2f} s long); clip mode needs at least 2."
        )
    if min(info.width, info.height) < MIN_SIDE:
        raise VFIError(
            f"{name} is too small: {info.width}×{info.height}; each side must be at least {MIN_SIDE} pixels."
        )
    kept_seconds = len(plan.frame_range) / info.fps
    if len(plan.frame_range) < info.num_frames:
        name = f"{name} as trimmed"
    check_duration(name, kept_seconds, settings.max_seconds)
    if len(plan.frame_range) > settings.max_frames:
        raise VFIError(f"{name} has {len(plan.frame_range)} frames; the limit is {settings.max_frames}.")
    if plan.fps > MAX_FPS:
        raise VFIError(
            f"{name} at {info.fps:g} fps × {settings.factor} would be {plan.fps:g} fps, over the "
            f"{MAX_FPS:g} fps limit; use a lower factor or slow motion."
        )
    return plan


def check_clip(clip: str | os.PathLike | ClipInfo, settings: ClipSettings) -> ClipInfo:
    """The probed clip if clip mode can take it with ``settings`` (see :func:`plan_clip`)."""
    return plan_clip(clip, settings).info


@dataclass(frozen=True)
class _Segment:
    """``intervals`` input intervals from input frame ``index``: interpolated from ``first`` to ``last``, or ``first``
    held (a scene cut: ``last`` is None)."""

    index: int
    first: np.ndarray
    last: np.ndarray | None
    intervals: int


class _ClipInterpolator:
    """Turns the input frames into the output frames, segment by segment (a segment = one or more intervals)."""

    def __init__(
        self, backend: Backend, settings: ClipSettings, refine: Backend | None, progress: Progress, is_cut: CutDetector
    ) -> None:
        self.backend, self.settings, self.refine, self.progress = backend, settings, refine, progress
        self.per_interval = count_generated(self._pair_settings(1), backend, refine)
        self.duplicates = 0
        self.last: np.ndarray | None = None
        self._is_cut = is_cut

    def _pair_settings(self, intervals: int) -> InterpolationSettings | None:
        """Settings for ``intervals`` input intervals bridged in one go (None if the backends cannot)."""
        steps = intervals * self.settings.factor
        if intervals == 1 or (not self.backend.supports_any_t and self.refine is None and steps & (steps - 1) == 0):
            depth, frames = int(math.log2(steps)), None
        elif (self.backend.supports_any_t or self.refine is not None) and steps - 1 <= MAX_FRAMES:
            depth, frames = None, steps - 1
        else:
            return None
        return InterpolationSettings(
            depth=depth, frames=frames, seed=self.settings.seed, generative_depth=self.settings.generative_depth
        )

    def _duplicate_span(self, current: FrameSummary, ahead: deque[FrameSummary]) -> int:
        """How many intervals to bridge from ``current``: 1, or 2+ when duplicates of it come next."""
        run = 0
        threshold = self.settings.duplicate_threshold
        while run < len(ahead) and run <= MAX_DUPLICATE_RUN and current.duplicates(ahead[run], threshold):
            run += 1
        if run == 0 or run > MAX_DUPLICATE_RUN or run == len(ahead):
            return 1
        if current.change(ahead[run]) > self.settings.scene_threshold or self._pair_settings(run + 1) is None:
            return 1
        return run + 1

    def _settle(self, intervals: int, generated: int) -> None:
        """Keep progress on its planned total (``per_interval`` frames per interval)."""
        planned = intervals * self.per_interval
        if generated > planned:
            self.progress.total += generated - planned
        elif generated < planned:
            self.progress.advance(planned - generated)

    def _segments(self, frames: Iterable[np.ndarray]) -> Iterator[_Segment]:
        """The segments of the clip in order (cuts held, duplicates bridged); then :attr:`last` is its last frame."""
        source = iter(frames)
        ahead: deque[FrameSummary] = deque()

        def fill() -> None:
            while len(ahead) < MAX_DUPLICATE_RUN + 1 and (image := next(source, None)) is not None:
                ahead.append(FrameSummary.of(image))

        fill()
        if not ahead:
            raise VFIError("The clip has no frames.")
        previous, current, index = None, ahead.popleft(), 0
        while True:
            fill()
            if not ahead:
                break
            self.progress.check_cancel()
            if self._is_cut(current, ahead[0]):
                yield _Segment(index, current.image, None, 1)
                previous, current, index = current, ahead.popleft(), index + 1
                continue
            in_pause = previous is not None and previous.duplicates(current, self.settings.duplicate_threshold)
            intervals = 1 if in_pause else self._duplicate_span(current, ahead)
            self.duplicates += intervals - 1
            for _ in range(intervals - 1):
                ahead.popleft()
            target = ahead.popleft()
            yield _Segment(index, current.image, target.image, intervals)
            previous, current, index = current, target, index + intervals
        self.last = current.image

    def _make(self, segment: _Segment, progress: Progress) -> tuple[list[np.ndarray], int]:
        """A segment's in-betweens (none for a cut: its first frame is held) and the frames a backend made for it."""
        if segment.last is None:
            return [], 0
        pair = self._pair_settings(segment.intervals)
        frames = interpolate_pair(
            segment.first,
            segment.last,
            self.backend,
            pair,
            refine=self.refine,
            pair_index=segment.index,
            progress=progress,
        )
        return list(islice(frames, 1, None)), count_generated(pair, self.backend, self.refine)

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The output frames; launched on several processes, the segments are shared (:mod:`vfi.distributed`)."""
        segments, notes = self._segments(frames), fallback_list(self.backend)
        made = zip_ordered(segments, self._make, self.progress, per_process=PAIRS_PER_ROUND, to_main=True, notes=notes)
        for segment, result in made:
            if result is None:  # launched on several processes, the main one gets the frames (and writes them)
                continue
            in_betweens, generated = result
            yield segment.first
            yield from in_betweens if segment.last is not None else [segment.first] * (self.settings.factor - 1)
            self._settle(segment.intervals, generated)
        yield self.last


def interpolate_clip(
    clip: str | os.PathLike | ClipInfo | ClipPlan,
    output_path: str | os.PathLike,
    backend: Backend,
    settings: ClipSettings | None = None,
    *,
    refine: Backend | None = None,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> ClipResult:
    """Interpolate ``clip`` by ``settings.factor``; write an MP4 to ``output_path``.

    ``clip`` is a path or its :class:`ClipInfo` (checked here against ``settings``), or a :class:`ClipPlan`
    already checked (it carries its settings; ``settings`` is then left out). Progress counts the frames to
    generate; ``should_cancel`` is checked between frames and raises :class:`~vfi.errors.Cancelled`,
    leaving no output file.
    """
    if isinstance(clip, ClipPlan):
        if settings is not None and settings != clip.settings:
            raise VFIError("The clip was checked with other settings than these.")
        plan = clip
    elif settings is None:
        raise VFIError("Give the clip settings.")
    else:
        plan = plan_clip(clip, settings)
    info, settings = plan.info, plan.settings
    notes = []
    if info.variable_frame_rate:
        notes.append(f"The clip has a variable frame rate; it was resampled to {info.fps:g} fps.")
    if settings.slowmo and info.has_audio:
        notes.append("Slow motion changes the duration, so the audio track was dropped.")
    keep_audio = info.has_audio and not settings.slowmo
    fps = plan.fps
    progress = Progress(0, on_progress, should_cancel)
    kept = plan.frame_range
    written = 0

    def counted(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        nonlocal written
        for frame in frames:
            written += 1
            yield frame

    audio = {"audio_from": info.path, "audio_start": kept.start / info.fps} if keep_audio else {}
    interpolator, is_cut = None, CutDetector(settings.scene_threshold)
    with closing(read_frames(info.path, info=info)) as decoded:  # the decoder ends with the run, whatever happens
        source = islice(decoded, kept.start, kept.stop)
        if settings.fps is None:
            interpolator = _ClipInterpolator(backend, settings, refine, progress, is_cut)
            progress.total = (len(kept) - 1) * interpolator.per_interval
            frames = interpolator.run(source)
        else:
            frames, note = _retimed(plan, source, backend, refine, progress, is_cut)
            notes.extend([note] if note else [])
        if is_main():
            write_mp4(counted(frames), output_path, fps, crf=settings.crf, **audio)
        else:  # the main process writes; this one makes its share of the frames
            deque(counted(frames), maxlen=0)
    duplicates = interpolator.duplicates if interpolator else 0
    return ClipResult(Path(output_path), written, fps, written / fps, keep_audio, is_cut.cuts, duplicates, tuple(notes))


def _retimed(
    plan: ClipPlan,
    source: Iterator[np.ndarray],
    backend: Backend,
    refine: Backend | None,
    progress: Progress,
    is_cut: CutDetector,
) -> tuple[Iterator[np.ndarray], str | None]:
    """The output frames at ``plan``'s target fps, and a note when a midpoint-only backend needed flow."""
    from vfi.backends import create_backend
    from vfi.modes.retime import count_retimed, retime_frames

    settings, note, depth = plan.settings, None, plan.settings.generative_depth
    if plan.midpoints_only(backend, refine):
        refine, depth = create_backend("flow"), plan.midpoint_depth
        note = (
            f"The {backend.name} backend makes midpoints only: it made {2**depth - 1} frame(s) per interval "
            f"(depth {depth}) and flow placed the frames at {float(settings.fps):g} fps."
        )
    positions = plan.positions
    progress.total = count_retimed(positions, backend, refine, settings.seed, depth)
    frames = retime_frames(
        source,
        positions,
        backend,
        refine=refine,
        seed=settings.seed,
        generative_depth=depth,
        is_cut=is_cut,
        progress=progress,
    )
    return frames, note
