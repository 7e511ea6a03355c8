"""Image quality metrics: PSNR and SSIM of uint8 images."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

from vfi.errors import VFIError

_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): an 11×11 window, as skimage's gaussian_weights=True
_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise VFIError(f"Cannot compare images of different shapes: {a.shape} and {b.shape}.")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise VFIError(f"Metrics need uint8 images, got {a.dtype} and {b.dtype}.")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (data range 255); ``inf`` if identical."""
    _check_pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) of two uint8 images, averaged over channels.

    Gaussian window (σ = 1.5, 11×11), K1 = 0.01, K2 = 0.03, data range 255, population covariances,
    the mean taken over pixels at least 5 px from the border: the same number as
    ``skimage.metrics.structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)``.
    """
    import cv2

    _check_pair(a, b)
    if min(a.shape[:2]) <= 2 * _SSIM_RADIUS:
        raise VFIError(
            f"SSIM needs images larger than {2 * _SSIM_RADIUS}×{2 * _SSIM_RADIUS}, got {a.shape[1]}×{a.shape[0]}."
        )
    x, y = a.astype(np.float64), b.astype(np.float64)
    size = 2 * _SSIM_RADIUS + 1

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (size, size), _SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _SSIM_C1) * (2 * cov + _SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + _SSIM_C1) * (var_x + var_y + _SSIM_C2)
    ssim_map = (numerator / denominator)[_SSIM_RADIUS:-_SSIM_RADIUS, _SSIM_RADIUS:-_SSIM_RADIUS]
    return float(ssim_map.mean())


def agreement(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM between two runs' in-between frames (their first and last, the keyframes, left out).

    Identical runs give ``inf`` dB and SSIM 1.
    """
    if len(a) != len(b) or len(a) < 3:
        raise VFIError(f"Need two runs of the same length with in-betweens, got {len(a)} and {len(b)} frames.")
    pairs = list(zip(a[1:-1], b[1:-1]))
    return float(np.mean([psnr(x, y) for x, y in pairs])), float(np.mean([ssim(x, y) for x, y in pairs]))


def describe_agreement(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> str:
    """One line: how alike two runs are over their in-betweens (see :func:`agreement`) and at the middle frame."""
    mean_psnr, mean_ssim = agreement(a, b)
    middle = len(a) // 2
    return (
        f"in-betweens (mean of {len(a) - 2}): PSNR {mean_psnr:.2f} dB, SSIM {mean_ssim:.4f}; middle frame: "
        f"PSNR {psnr(a[middle], b[middle]):.2f} dB, SSIM {ssim(a[middle], b[middle]):.4f} (higher = more alike)."
    )


class MeanScores:
    """``n`` and the mean PSNR/SSIM of a report's ``rows`` (each with ``psnr`` and ``ssim``)."""

    rows: tuple[Any, ...]

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def psnr(self) -> float:
        """Mean PSNR in dB (``inf`` if a frame was reproduced exactly and its PSNR was not capped)."""
        return statistics.fmean(row.psnr for row in self.rows)

    @property
    def ssim(self) -> float:
        """Mean SSIM."""
        return statistics.fmean(row.ssim for row in self.rows)
