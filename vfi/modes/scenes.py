"""Scene cuts and duplicate frames: small per-frame summaries and the scores that compare neighbours.

Used by clip mode (never interpolate across a cut, bridge duplicates) and by the training data
(no triplet across a cut), so both agree on what a cut is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Scene-change score above which (when it is also a spike) two frames are a cut.
SCENE_THRESHOLD = 0.2
_THUMB_SIDE = 64
_DETAIL_SIDE = 256


@dataclass(frozen=True, eq=False)
class FrameSummary:
    """A decoded frame with the small summaries used to compare it with its neighbours."""

    image: np.ndarray
    thumb: np.ndarray
    detail: np.ndarray
    hist: np.ndarray

    @classmethod
    def of(cls, image: np.ndarray, keep_image: bool = True) -> FrameSummary:
        """Summarise ``image``; without ``keep_image`` only the small summaries are kept."""
        import cv2

        def shrink(side: int) -> np.ndarray:
            h, w = image.shape[:2]
            scale = min(1.0, side / max(h, w))
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            return cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float32)

        thumb = shrink(_THUMB_SIDE)
        bins = (thumb.astype(np.uint8) // 8).reshape(-1, 3)
        hist = np.stack([np.bincount(bins[:, c], minlength=32) for c in range(3)]) / len(bins)
        return cls(image if keep_image else np.empty(0, np.uint8), thumb, shrink(_DETAIL_SIDE), hist)

    def change(self, other: FrameSummary) -> float:
        """Scene-change score in [0, 1]: mean of histogram distance and thumbnail difference."""
        hist_distance = 0.5 * np.abs(self.hist - other.hist).sum(axis=1).mean()
        pixel_distance = np.abs(self.thumb - other.thumb).mean() / 255
        return float(0.5 * (hist_distance + pixel_distance))

    def duplicates(self, other: FrameSummary, threshold: float) -> bool:
        return float(np.abs(self.detail - other.detail).max()) <= threshold


def is_scene_cut(change: float, previous: float, threshold: float) -> bool:
    """A cut is a large change that is also a spike against the previous interval (not sustained fast motion)."""
    return change > threshold and change > 2 * previous


class CutDetector:
    """Applies the cut rule to consecutive frames in order (it remembers the previous interval's change) and
    counts the cuts it found."""

    def __init__(self, threshold: float = SCENE_THRESHOLD) -> None:
        self.threshold = threshold
        self.cuts = 0
        self._previous = 0.0

    def __call__(self, a: FrameSummary, b: FrameSummary) -> bool:
        """Whether the interval from ``a`` to the next frame ``b`` is a cut."""
        change = a.change(b)
        previous, self._previous = self._previous, change
        cut = is_scene_cut(change, previous, self.threshold)
        self.cuts += cut
        return cut
