"""Evaluation on ground-truth triplets: make each middle frame, score it (PSNR, SSIM) and time it."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from vfi.backends.base import Backend
from vfi.distributed import map_ordered
from vfi.errors import VFIError
from vfi.interpolate import InterpolationSettings, Progress, interpolate_pair
from vfi.io.images import load_image
from vfi.io.triplets import Triplet, find_triplets
from vfi.quality.metrics import MeanScores, psnr, ssim


@dataclass(frozen=True)
class TripletScore:
    """The result on one triplet: its frame size (``"640×480"``), PSNR (dB), SSIM and the time to make the
    frame (ms)."""

    name: str
    size: str
    psnr: float
    ssim: float
    ms: float


@dataclass(frozen=True)
class EvaluationReport(MeanScores):
    """Per-triplet scores of one backend on one data folder, with their summary (``n``, ``psnr``, ``ssim``)."""

    backend: str
    rows: tuple[TripletScore, ...]

    def __post_init__(self) -> None:
        if not self.rows:
            raise VFIError("An evaluation report needs at least one row.")

    @property
    def ms_per_frame(self) -> float:
        """Median time per generated frame in milliseconds."""
        return statistics.median(row.ms for row in self.rows)

    def by_size(self) -> dict[str, EvaluationReport]:
        """One report per frame size, the largest first."""
        sizes = largest_first(row.size for row in self.rows)
        return {size: EvaluationReport(self.backend, tuple(r for r in self.rows if r.size == size)) for size in sizes}

    def to_dict(self) -> dict[str, Any]:
        """The summary and the per-triplet rows, ready for strict JSON (an infinite PSNR, i.e. a frame
        reproduced exactly, becomes ``None``/``null``)."""
        return {
            "n": self.n,
            "psnr": _finite(self.psnr),
            "ssim": self.ssim,
            "ms_per_frame": self.ms_per_frame,
            "per_triplet": [
                {"name": r.name, "size": r.size, "psnr": _finite(r.psnr), "ssim": r.ssim, "ms": r.ms} for r in self.rows
            ],
            "backend": self.backend,
        }


def largest_first(sizes: Iterable[str]) -> list[str]:
    """Distinct frame sizes written ``W×H``, the largest area first."""
    return sorted(set(sizes), key=lambda size: -math.prod(map(int, size.split("×"))))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def load_triplet(triplet: Triplet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A triplet's (first, middle, last) frames; frames of different sizes are refused."""
    frames = tuple(load_image(path) for path in (triplet.first, triplet.middle, triplet.last))
    sizes = {f"{frame.shape[1]}×{frame.shape[0]}" for frame in frames}
    if len(sizes) > 1:
        raise VFIError(f"Triplet {triplet.name} has frames of different sizes ({', '.join(sorted(sizes))}).")
    return frames


def _middle(first: np.ndarray, last: np.ndarray, backend: Backend, refine: Backend | None) -> np.ndarray:
    """The t = 0.5 frame, made the way the app makes it (the recursion at depth 1, hybrid included)."""
    frames = interpolate_pair(first, last, backend, InterpolationSettings(depth=1), refine=refine)
    return next(islice(frames, 1, None))


def evaluate(
    root: str | Path,
    backend: Backend,
    *,
    refine: Backend | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvaluationReport:
    """Score ``backend`` (optionally with a ``refine`` backend, hybrid mode) on every triplet under ``root``.

    One untimed warm-up call on the first triplet comes first (on each process, when launched on several: the
    triplets are shared, see :mod:`vfi.distributed`); every frame is then timed on its own.
    ``on_progress(done, total)`` is called after each triplet.
    """
    triplets = find_triplets(root)
    warmed = False

    def score(triplet: Triplet, progress: Progress) -> TripletScore:
        nonlocal warmed
        first, middle, last = load_triplet(triplet)
        if not warmed:
            _middle(first, last, backend, refine)
            warmed = True
        start = time.perf_counter()
        made = _middle(first, last, backend, refine)
        ms = (time.perf_counter() - start) * 1000.0
        progress.advance()
        size = f"{middle.shape[1]}×{middle.shape[0]}"
        return TripletScore(triplet.name, size, psnr(made, middle), ssim(made, middle), ms)

    rows = map_ordered(triplets, score, Progress(len(triplets), on_progress))
    return EvaluationReport(backend.name, tuple(rows))


def format_table(report: EvaluationReport) -> str:
    """A fixed-width table: one row per triplet, then the means (and the median time)."""
    width = max(len("triplet"), len("mean / median"), *(len(row.name) for row in report.rows))

    def line(name: str, size: str, psnr_db: float, ssim_value: float, ms: float) -> str:
        db = "inf" if math.isinf(psnr_db) else f"{psnr_db:.2f}"
        return f"{name:<{width}}  {size:>9}  {db:>8}  {ssim_value:>6.4f}  {ms:>9.1f}"

    header = f"{'triplet':<{width}}  {'size':>9}  {'PSNR dB':>8}  {'SSIM':>6}  {'ms/frame':>9}"
    rule = "-" * len(header)
    body = [line(row.name, row.size, row.psnr, row.ssim, row.ms) for row in report.rows]
    total = line("mean / median", "", report.psnr, report.ssim, report.ms_per_frame)
    title = f"backend: {report.backend}, {report.n} triplets"
    return "\n".join([title, header, rule, *body, rule, total])
