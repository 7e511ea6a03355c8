"""Any target frame rate: each output frame at its own time, made from the two input frames around it.

Output frame k of a clip retimed from ``rate_in`` to ``rate_out`` falls at input position
p = k · rate_in / rate_out (exact fractions, so 24 → 60 or 29.97 → 59.94 never drift). A whole p is an
input frame, copied; otherwise the frame at t = p − ⌊p⌋ is made between input frames ⌊p⌋ and ⌊p⌋ + 1.
The clip keeps its duration: it has round(n · rate_out / rate_in) frames, and the times after the last
input frame hold it (as the input shows it for one frame interval). A scene cut holds the frame before it;
runs of duplicate frames are not bridged here (factor mode does that).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from itertools import groupby, islice

import numpy as np

from vfi.backends.base import Backend, fallback_list
from vfi.distributed import PAIRS_PER_ROUND, zip_ordered
from vfi.errors import VFIError
from vfi.interpolate import MAX_DEPTH, InterpolationSettings, Progress, count_generated, interpolate_pair
from vfi.io.numbers import parse_decimal
from vfi.modes.scenes import CutDetector, FrameSummary


def parse_rate(text: str | float | Fraction) -> Fraction:
    """A frame rate as an exact fraction: ``"60"``, ``"25/2"``, ``"60000/1001"``, or a decimal; a decimal
    within 0.01 of an NTSC rate N·1000/1001 (``"29.97"``, ``"59.94"``, ``"23.976"``) is that rate."""
    try:
        for part in str(text).split("/", 1):
            parse_decimal(part)  # Fraction also reads any Unicode digit ("٦٠" is 60) and "6_0"
        rate = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise VFIError(f"The frame rate {text!r} is not a number (e.g. 60, 59.94 or 60000/1001).") from None
    ntsc = round(rate * Fraction(1001, 1000))
    if rate.denominator != 1 and ntsc and abs(rate * Fraction(1001, 1000) - ntsc) < Fraction(1, 100):
        return Fraction(ntsc * 1000, 1001)
    return rate


def output_positions(count: int, rate_in: Fraction, rate_out: Fraction) -> list[Fraction]:
    """Where each output frame falls, in input frames (0 … count − 1) — see the module docstring."""
    frames = max(1, round(count * rate_out / rate_in))
    return [min(k * rate_in / rate_out, Fraction(count - 1)) for k in range(frames)]


def nearest_depth(rate_in: Fraction, rate_out: Fraction) -> int:
    """The recursion depth whose spacing is nearest the output's (a midpoint-only backend makes that many
    levels; a backend that takes any t places the frames between them)."""
    return min(MAX_DEPTH, max(1, round(math.log2(rate_out / rate_in))))


def interval_settings(times: list[Fraction], seed: int, generative_depth: int | None) -> InterpolationSettings | None:
    """The recursion settings for one input interval's in-between times (None when it has none)."""
    inside = tuple(sorted({t for t in times if 0 < t < 1}))
    return (
        InterpolationSettings(depth=None, at=inside, seed=seed, generative_depth=generative_depth) if inside else None
    )


def _by_interval(positions: list[Fraction]) -> dict[int, list[Fraction]]:
    """Input interval → the times in [0, 1) of the output frames that fall in it."""
    return {i: [p - i for p in group] for i, group in groupby(positions, key=math.floor)}


def count_retimed(
    positions: list[Fraction], backend: Backend, refine: Backend | None, seed: int, generative_depth: int | None
) -> int:
    """Frames the backends make for ``positions`` (no cuts)."""
    total = 0
    for times in _by_interval(positions).values():
        settings = interval_settings(times, seed, generative_depth)
        total += count_generated(settings, backend, refine) if settings else 0
    return total


@dataclass(frozen=True)
class _Interval:
    """Input interval ``index`` from ``first`` to ``last`` (``cut``: a scene cut between them) and the times in
    [0, 1) of the output frames in it."""

    index: int
    first: np.ndarray
    last: np.ndarray
    cut: bool
    times: list[Fraction]


def retime_frames(
    frames: Iterable[np.ndarray],
    positions: list[Fraction],
    backend: Backend,
    *,
    refine: Backend | None,
    seed: int,
    generative_depth: int | None,
    is_cut: CutDetector,
    progress: Progress,
) -> Iterator[np.ndarray]:
    """Yield the output frame at each of ``positions`` from the input ``frames`` (streamed: two at a time);
    ``is_cut`` finds (and counts) the scene cuts. Launched on several processes, the intervals are shared
    (:mod:`vfi.distributed`)."""
    wanted = _by_interval(positions)
    source = iter(frames)
    last = next(source)

    def intervals() -> Iterator[_Interval]:
        nonlocal last
        current = FrameSummary.of(last)
        for index, image in enumerate(source):
            following = FrameSummary.of(image)
            yield _Interval(index, current.image, image, is_cut(current, following), wanted.get(index, []))
            current, last = following, image

    def make(interval: _Interval, progress: Progress) -> dict[Fraction, np.ndarray]:
        settings = interval_settings(interval.times, seed, generative_depth)
        if settings is None:
            return {}
        if interval.cut:
            progress.advance(count_generated(settings, backend, refine))
            return {}
        pair = interpolate_pair(
            interval.first,
            interval.last,
            backend,
            settings,
            refine=refine,
            pair_index=interval.index,
            progress=progress,
        )
        return dict(zip(settings.times, islice(pair, 1, None)))

    count = 0
    shared = {"per_process": PAIRS_PER_ROUND, "to_main": True, "notes": fallback_list(backend)}
    for interval, made in zip_ordered(intervals(), make, progress, **shared):
        count += 1
        if made is None:  # launched on several processes, the main one gets the frames (and writes them)
            continue
        for t in interval.times:
            yield interval.first if t == 0 or interval.cut else made[t]
    yield from [last] * len(wanted.get(count, []))
