"""The recursion: which in-between frames to make, in which batches, with which seeds.

FILM-style: :func:`interpolate_pair` yields the first frame and the in-betweens, never the last, so
consecutive pairs chain without duplicates; :func:`interpolate_frames` chains a whole sequence and
yields the final frame at the end (n frames at depth k give (n − 1)·2^k + 1).

Midpoint-only backends (the generative one) are driven by repeated midpoints, one batched call per
recursion level. Backends that support any t (flow, crossfade) get every time directly from the
keyframes in one batch. In hybrid mode a generative backend makes the first ``generative_depth`` levels
and a ``refine`` backend (any t) fills everything else between the generated frames.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from vfi.backends.base import Backend, FrameRequest
from vfi.errors import Cancelled, VFIError

ProgressCallback = Callable[[int, int], None]
"""Called as ``callback(done, total)`` after every frame a backend makes."""

MAX_DEPTH = 8
MAX_FRAMES = 255


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is a valid run seed (0 to 2**32 − 1), else raise :class:`VFIError`."""
    if not 0 <= seed < 2**32:
        raise VFIError(f"seed must be between 0 and 2**32 - 1, got {seed}.")
    return seed


@dataclass(frozen=True)
class InterpolationSettings:
    """What to make between each pair of frames.

    Args:
        depth: recursion depth k: 2^k − 1 in-betweens at t = i/2^k. Exclusive with ``frames``.
        frames: N evenly spaced in-betweens at t = i/(N+1) (needs a backend or refine backend that
            supports any t).
        at: in-betweens at exactly these times in (0, 1), increasing (a frame-rate change; needs a backend
            or refine backend that supports any t). Exclusive with ``depth`` and ``frames``.
        seed: run seed; each frame's seed derives from (seed, pair, node).
        generative_depth: in hybrid mode, how many recursion levels the main backend makes before the
            refine backend takes over.
    """

    depth: int | None = 1
    frames: int | None = None
    seed: int = 0
    generative_depth: int | None = None
    at: tuple[Fraction, ...] | None = None

    def __post_init__(self) -> None:
        if self.at is not None:
            if self.depth is not None or self.frames is not None:
                raise VFIError("Give exactly one of depth, frames and at.")
            if not self.at or any(not 0 < t < 1 for t in self.at) or list(self.at) != sorted(set(self.at)):
                raise VFIError("at must be increasing times strictly between 0 and 1.")
        elif (self.depth is None) == (self.frames is None):
            raise VFIError("Give exactly one of depth and frames.")
        if self.depth is not None and not 1 <= self.depth <= MAX_DEPTH:
            raise VFIError(f"depth must be between 1 and {MAX_DEPTH}, got {self.depth}.")
        if self.frames is not None and not 1 <= self.frames <= MAX_FRAMES:
            raise VFIError(f"frames must be between 1 and {MAX_FRAMES}, got {self.frames}.")
        check_seed(self.seed)
        if self.generative_depth is not None and not 1 <= self.generative_depth <= MAX_DEPTH:
            raise VFIError(f"generative_depth must be between 1 and {MAX_DEPTH}, got {self.generative_depth}.")

    @property
    def times(self) -> list[Fraction]:
        """The in-between times in temporal order."""
        if self.at is not None:
            return list(self.at)
        if self.depth is not None:
            return [Fraction(i, 2**self.depth) for i in range(1, 2**self.depth)]
        return [Fraction(i, self.frames + 1) for i in range(1, self.frames + 1)]

    @property
    def frames_per_pair(self) -> int:
        """Output frames per input pair (the first frame and the in-betweens)."""
        return len(self.times) + 1


def node_seed(seed: int, pair_index: int, t: Fraction) -> int:
    """The seed of the frame at time ``t`` of pair ``pair_index``: the same node always gets the same seed."""
    state = np.random.SeedSequence([seed, pair_index, t.numerator, t.denominator]).generate_state(1)
    return int(state[0])


class Progress:
    """Counts finished frames, reports them and checks for cancellation between backend calls."""

    def __init__(
        self,
        total: int,
        callback: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        self.total = total
        self.done = 0
        self._callback = callback
        self._should_cancel = should_cancel

    def check_cancel(self) -> None:
        if self._should_cancel is not None and self._should_cancel():
            raise Cancelled(f"Stopped after {self.done} of {self.total} frames.")

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._callback is not None:
            self._callback(self.done, self.total)


@dataclass(frozen=True)
class Stage:
    """One step of the recursion for every pair: the times it makes, and whether the refine backend makes them."""

    times: tuple[Fraction, ...]
    refine: bool = False


@dataclass(frozen=True)
class _Plan:
    """The anchors the main backend makes by midpoints, then the times filled between anchors."""

    anchor_levels: list[list[Fraction]]
    filled: list[Fraction]

    @property
    def count(self) -> int:
        return sum(len(level) for level in self.anchor_levels) + len(self.filled)


def _plan(settings: InterpolationSettings, backend: Backend, refine: Backend | None) -> _Plan:
    times = settings.times
    if refine is None and backend.supports_any_t:
        return _Plan([], times)
    if refine is None:
        if settings.depth is None:
            raise VFIError(
                f"The {backend.name} backend makes midpoints only: use depth, or add a refine backend for a frame count."
            )
        anchor_depth = settings.depth
    else:
        if not refine.supports_any_t:
            raise VFIError(f"The refine backend {refine.name} must support any t.")
        anchor_depth = settings.generative_depth or 1
        if settings.depth is not None:
            anchor_depth = min(anchor_depth, settings.depth)
    levels = [[Fraction(i, 2**level) for i in range(1, 2**level, 2)] for level in range(1, anchor_depth + 1)]
    anchors = {t for level in levels for t in level}
    return _Plan(levels, [t for t in times if t not in anchors])


def count_generated(settings: InterpolationSettings, backend: Backend, refine: Backend | None = None) -> int:
    """How many frames the backends make per pair (including hybrid anchors not in the output)."""
    return _plan(settings, backend, refine).count


def run_requests(backend: Backend, requests: Sequence[FrameRequest], progress: Progress) -> list[np.ndarray]:
    """Call ``backend`` in chunks of ``max_batch``, checking for cancel before each call."""
    out: list[np.ndarray] = []
    for start in range(0, len(requests), max(1, backend.max_batch)):
        progress.check_cancel()
        chunk = requests[start : start + backend.max_batch]
        frames = backend.interpolate(chunk)
        if len(frames) != len(chunk):
            raise RuntimeError(f"{backend.name} returned {len(frames)} frames for {len(chunk)} requests")
        out.extend(frames)
        progress.advance(len(chunk))
    return out


def _neighbours(known: Collection[Fraction], t: Fraction) -> tuple[Fraction, Fraction]:
    left = max(k for k in known if k < t)
    right = min(k for k in known if k > t)
    return left, right


def _requests(
    known: dict[Fraction, np.ndarray],
    times: Sequence[Fraction],
    parents: Mapping[Fraction, tuple[Fraction, Fraction]],
    seed: int,
    pair_index: int,
    seeds: Mapping[Fraction, int] | None = None,
) -> list[FrameRequest]:
    """The requests for ``times`` of one pair, each from its two parent frames (:func:`node_parents`), with the
    node's seed unless ``seeds`` overrides it."""
    requests = []
    for t in times:
        a, b = parents[t]
        node = (seeds or {}).get(t, node_seed(seed, pair_index, t))
        requests.append(FrameRequest(known[a], known[b], float((t - a) / (b - a)), node))
    return requests


def stages(settings: InterpolationSettings, backend: Backend, refine: Backend | None = None) -> list[Stage]:
    """The backend calls of one pair, in order: one per recursion level of midpoints, then the times filled
    in (by ``refine`` in hybrid mode). ``backend``/``refine`` need only ``name`` and ``supports_any_t``."""
    plan = _plan(settings, backend, refine)
    levels = [Stage(tuple(level), refine=False) for level in plan.anchor_levels]
    return levels + ([Stage(tuple(plan.filled), refine=refine is not None)] if plan.filled else [])


def node_parents(
    settings: InterpolationSettings, backend: Backend, refine: Backend | None = None
) -> dict[Fraction, tuple[Fraction, Fraction]]:
    """Each in-between time → the times of the two frames it is made from (0 and 1 are the keyframes).

    A midpoint-only backend makes t = 1/4 from (0, 1/2), so re-making 1/2 means re-making 1/4 too; a
    backend that supports any t makes every frame from (0, 1).
    """
    return _parents(_plan(settings, backend, refine))


def _parents(plan: _Plan) -> dict[Fraction, tuple[Fraction, Fraction]]:
    known = {Fraction(0), Fraction(1)}
    parents: dict[Fraction, tuple[Fraction, Fraction]] = {}
    for times in (*plan.anchor_levels, plan.filled):
        parents.update((t, _neighbours(known, t)) for t in times)
        known.update(times)
    return parents


def interpolate_pair(
    first: np.ndarray,
    last: np.ndarray,
    backend: Backend,
    settings: InterpolationSettings,
    *,
    refine: Backend | None = None,
    pair_index: int = 0,
    progress: Progress | None = None,
    seeds: Mapping[Fraction, int] | None = None,
    keep: Mapping[Fraction, np.ndarray] | None = None,
) -> Iterator[np.ndarray]:
    """Yield ``first`` and then the in-betweens of one pair in temporal order (not ``last``).

    ``seeds`` overrides the seeds of some nodes (time → seed; the others derive from (seed, pair, node));
    ``keep`` holds frames already made (time → frame), used as they are and not made again.
    """
    if first.shape != last.shape:
        raise VFIError(
            f"The two frames differ in size: {first.shape[1]}×{first.shape[0]} vs {last.shape[1]}×{last.shape[0]}."
        )
    plan = _plan(settings, backend, refine)
    parents = _parents(plan)
    keep = keep or {}
    progress = progress or Progress(plan.count - len(keep))
    known: dict[Fraction, np.ndarray] = {Fraction(0): first, Fraction(1): last, **keep}

    def make(who: Backend, times: list[Fraction]) -> None:
        times = [t for t in times if t not in keep]
        requests = _requests(known, times, parents, settings.seed, pair_index, seeds)
        known.update(zip(times, run_requests(who, requests, progress)))

    for level in plan.anchor_levels:
        make(backend, level)
    if plan.filled:
        make(refine or backend, plan.filled)
    yield first
    for t in settings.times:
        yield known[t]


class Levels:
    """The frames of every consecutive pair of ``keyframes``, made one :func:`stages` step at a time.

    :meth:`requests` gives a stage's requests for all pairs (in order); :meth:`add` takes their frames in that
    order, in one or more chunks, and says where each lands in the output sequence. Frames and seeds are those of
    :func:`interpolate_frames`. ``backend``/``refine`` need only ``name`` and ``supports_any_t``.
    """

    def __init__(
        self,
        keyframes: Sequence[np.ndarray],
        backend: Backend,
        settings: InterpolationSettings,
        refine: Backend | None = None,
    ) -> None:
        if len(keyframes) < 2:
            raise VFIError("There are no frames to interpolate.")
        if any(frame.shape != keyframes[0].shape for frame in keyframes):
            raise VFIError("The keyframes differ in size.")
        self.settings = settings
        self.stages = stages(settings, backend, refine)
        self._parents = node_parents(settings, backend, refine)
        self._known = [{Fraction(0): a, Fraction(1): b} for a, b in zip(keyframes, keyframes[1:])]
        self._position = {t: i + 1 for i, t in enumerate(settings.times)}
        self._pending: list[tuple[int, Fraction]] = []
        #: The keyframes by their index in the output sequence.
        self.keyframes = {index * settings.frames_per_pair: frame for index, frame in enumerate(keyframes)}

    def requests(self, stage: Stage) -> list[FrameRequest]:
        """The requests of ``stage`` for every pair; the previous stage's frames must all have been added."""
        self.finish_stage()
        self._pending = [(p, t) for p in range(len(self._known)) for t in stage.times]
        seed = self.settings.seed
        return [r for p, pair in enumerate(self._known) for r in _requests(pair, stage.times, self._parents, seed, p)]

    def add(self, frames: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
        """The next ``frames`` of the current stage, in request order → the new output frames by index."""
        nodes, self._pending = self._pending[: len(frames)], self._pending[len(frames) :]
        new: dict[int, np.ndarray] = {}
        for (p, t), frame in zip(nodes, frames, strict=True):
            self._known[p][t] = frame
            if t in self._position:
                new[p * self.settings.frames_per_pair + self._position[t]] = frame
        return new

    def finish_stage(self) -> None:
        """Refuse a stage whose frames were not all made (a backend returned too few)."""
        if self._pending:
            raise RuntimeError(f"{len(self._pending)} frames of a stage were not made")


def interpolate_levels(
    keyframes: Sequence[np.ndarray],
    backend: Backend,
    settings: InterpolationSettings,
    make: Callable[[Stage, list[FrameRequest]], Iterable[list[np.ndarray]]],
    *,
    refine: Backend | None = None,
) -> Iterator[dict[int, np.ndarray]]:
    """Interpolate every consecutive pair of ``keyframes`` stage by stage (:class:`Levels`): yields the keyframes
    first, then the frames of each chunk ``make(stage, requests)`` yields for a stage, keyed by output index."""
    levels = Levels(keyframes, backend, settings, refine)
    yield levels.keyframes
    for stage in levels.stages:
        requests = levels.requests(stage)
        for chunk in make(stage, requests):
            yield levels.add(chunk)
        levels.finish_stage()


def interpolate_frames(
    frames: Iterable[np.ndarray],
    backend: Backend,
    settings: InterpolationSettings,
    *,
    refine: Backend | None = None,
    num_frames: int | None = None,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Iterator[np.ndarray]:
    """Interpolate every consecutive pair of ``frames`` and yield the whole output sequence.

    ``num_frames`` (if known) sets the progress total; otherwise it counts per pair as it goes.
    """
    per_pair = count_generated(settings, backend, refine)
    total = per_pair * (num_frames - 1) if num_frames else 0
    progress = Progress(total, on_progress, should_cancel)
    previous: np.ndarray | None = None
    for index, frame in enumerate(frames):
        if previous is not None:
            if not num_frames:
                progress.total += per_pair
            yield from interpolate_pair(
                previous, frame, backend, settings, refine=refine, pair_index=index - 1, progress=progress
            )
        previous = frame
    if previous is None:
        raise VFIError("There are no frames to interpolate.")
    yield previous
