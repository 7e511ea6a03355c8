"""How well a backend does on the user's own clip: drop frames, rebuild them, score them against the real ones.

With factor f, every f-th input frame is kept and the f − 1 frames between each two kept ones are rebuilt
by the backend (at t = j/f, the way clip mode makes them) and scored (PSNR, SSIM). A window with a scene
cut inside (:class:`vfi.modes.scenes.CutDetector`) is skipped: no backend can rebuild a frame across a cut.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from vfi.backends.base import Backend, fallback_list
from vfi.distributed import PAIRS_PER_ROUND, zip_ordered
from vfi.errors import VFIError
from vfi.interpolate import InterpolationSettings, Progress, count_generated, interpolate_pair
from vfi.modes.scenes import CutDetector, FrameSummary
from vfi.quality.metrics import MeanScores, psnr, ssim

if TYPE_CHECKING:
    from vfi.modes.clip import ClipPlan

#: A rebuilt frame identical to the real one has an infinite PSNR; it counts as this in the mean.
PSNR_CAP = 100.0
#: How many of the worst frames the report lists.
WORST = 5


@dataclass(frozen=True)
class FrameScore:
    """One rebuilt frame: its index and time in the input clip, PSNR (dB, capped) and SSIM."""

    index: int
    time: float
    psnr: float
    ssim: float


@dataclass(frozen=True)
class ClipReport(MeanScores):
    """The scores of one backend on one clip (``n``, mean ``psnr`` and ``ssim`` from :class:`MeanScores`)."""

    backend: str
    factor: int
    rows: tuple[FrameScore, ...]
    skipped: int

    def __post_init__(self) -> None:
        if not self.rows:
            raise VFIError(
                "The clip has no frames to score: it is too short for this factor or every window crosses a cut."
            )

    def worst(self, count: int = WORST) -> list[FrameScore]:
        """The ``count`` frames with the lowest PSNR, worst first."""
        return sorted(self.rows, key=lambda row: (row.psnr, row.index))[:count]

    def to_dict(self) -> dict[str, Any]:
        """The summary, the worst frames and every frame, for JSON."""

        def row(r: FrameScore) -> dict[str, Any]:
            return {"index": r.index, "time": round(r.time, 4), "psnr": round(r.psnr, 3), "ssim": round(r.ssim, 5)}

        return {
            "backend": self.backend,
            "factor": self.factor,
            "n": self.n,
            "psnr": round(self.psnr, 3),
            "ssim": round(self.ssim, 5),
            "skipped_at_cuts": self.skipped,
            "worst": [row(r) for r in self.worst()],
            "frames": [row(r) for r in self.rows],
        }

    def summary(self) -> str:
        worst = ", ".join(f"{r.time:.2f} s ({r.psnr:.1f} dB)" for r in self.worst(3))
        return (
            f"{self.backend} rebuilt {self.n} dropped frames at {self.psnr:.2f} dB PSNR, SSIM {self.ssim:.4f} "
            f"(worst: {worst}; {self.skipped} skipped at cuts)."
        )


@dataclass(frozen=True)
class _Window:
    """``factor`` + 1 input frames from input frame ``start``: the first and last kept, the others rebuilt (``cut``:
    a scene cut inside, so skipped)."""

    start: int
    frames: tuple[np.ndarray, ...]
    cut: bool


def score_clip(
    frames: Iterator[np.ndarray],
    fps: float,
    backend: Backend,
    *,
    factor: int = 2,
    refine: Backend | None = None,
    first_index: int = 0,
    num_frames: int | None = None,
    scene_threshold: float,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> ClipReport:
    """Keep every ``factor``-th of ``frames`` (input frames ``first_index``… at ``fps``), rebuild the others
    with ``backend`` and score them; ``num_frames`` (if known) sets the progress total. Launched on several
    processes, the windows are shared (:mod:`vfi.distributed`)."""
    settings = InterpolationSettings(depth=int(math.log2(factor)), seed=seed)
    per_window = count_generated(settings, backend, refine)
    windows = (num_frames - 1) // factor if num_frames else 0
    progress = Progress(windows * per_window, on_progress, should_cancel)
    is_cut = CutDetector(scene_threshold)

    def each_window() -> Iterator[_Window]:
        window = [FrameSummary.of(next(frames))]
        cut, start = False, first_index
        for image in frames:
            window.append(FrameSummary.of(image))
            cut |= is_cut(window[-2], window[-1])
            if len(window) == factor + 1:
                yield _Window(start, tuple(summary.image for summary in window), cut)
                window, cut, start = window[-1:], False, start + factor

    def score(window: _Window, progress: Progress) -> list[FrameScore]:
        if window.cut:
            progress.advance(per_window)
            return []
        made = islice(
            interpolate_pair(
                window.frames[0],
                window.frames[-1],
                backend,
                settings,
                refine=refine,
                pair_index=window.start,
                progress=progress,
            ),
            1,
            None,
        )
        rows = []
        for index, (rebuilt, real) in enumerate(zip(made, window.frames[1:-1]), start=window.start + 1):
            rows.append(FrameScore(index, index / fps, min(psnr(rebuilt, real), PSNR_CAP), ssim(rebuilt, real)))
        return rows

    rows: list[FrameScore] = []
    skipped = 0
    shared = {"per_process": PAIRS_PER_ROUND, "notes": fallback_list(backend)}
    for window, scores in zip_ordered(each_window(), score, progress, **shared):
        rows.extend(scores)
        skipped += factor - 1 if window.cut else 0
    return ClipReport(backend.name, factor, tuple(rows), skipped)


def report_clip(
    plan: ClipPlan,
    backend: Backend,
    *,
    refine: Backend | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> ClipReport:
    """The report on a checked clip (its trim, scene threshold, seed and ``report_factor``)."""
    from vfi.io.video import read_frames

    info, settings, kept = plan.info, plan.settings, plan.frame_range
    with closing(read_frames(info.path, info=info)) as decoded:  # the decoder ends with the report, whatever happens
        return score_clip(
            islice(decoded, kept.start, kept.stop),
            info.fps,
            backend,
            factor=plan.report_factor,
            refine=refine,
            first_index=kept.start,
            num_frames=len(kept),
            scene_threshold=settings.scene_threshold,
            seed=settings.seed,
            on_progress=on_progress,
            should_cancel=should_cancel,
        )
