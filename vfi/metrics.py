"""Image quality metrics (PSNR, SSIM) and the reader for folders of ground-truth triplets."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vfi.errors import VFIError

#: Recognised triplet layouts: (first, ground-truth middle, last) file names in one folder.
LAYOUTS = (
    ("im1.png", "im2.png", "im3.png"),  # Vimeo90K (also the UCF101 / Middlebury copies in this layout)
    ("frame10.png", "frame10i11.png", "frame11.png"),  # Middlebury "other" set
)

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


@dataclass(frozen=True)
class Triplet:
    """One evaluation sample: the keyframes ``first`` and ``last`` and the ground-truth ``middle``."""

    name: str
    first: Path
    middle: Path
    last: Path

    def __post_init__(self) -> None:
        if not self.name:
            raise VFIError("Triplet name must not be empty.")
        for field in ("first", "middle", "last"):
            if not isinstance(getattr(self, field), Path):
                raise VFIError(f"Triplet {field} must be a Path, got {type(getattr(self, field)).__name__}.")


def find_triplets(root: str | Path) -> list[Triplet]:
    """Every triplet folder under ``root`` (recursively, ``root`` included), sorted by name.

    A folder is a triplet if it holds one of the :data:`LAYOUTS` (Vimeo90K ``im1/im2/im3.png`` with im2
    the ground truth, or Middlebury ``frame10/frame10i11/frame11.png``). The name is the folder's path
    relative to ``root`` (``root``'s own name if ``root`` itself is a triplet).
    """
    root = Path(root)
    if not root.is_dir():
        raise VFIError(f"Triplet folder not found: {root}." if not root.exists() else f"{root} is not a folder.")
    triplets = []
    for folder, _dirs, files in os.walk(root):
        names = set(files)
        layout = next((layout for layout in LAYOUTS if names.issuperset(layout)), None)
        if layout is not None:
            path = Path(folder)
            name = path.relative_to(root).as_posix() if path != root else root.resolve().name
            triplets.append(Triplet(name, *(path / file for file in layout)))
    if not triplets:
        raise VFIError(
            f"No triplets found in {root}: expected folders with im1.png, im2.png, im3.png (Vimeo90K) "
            "or frame10.png, frame10i11.png, frame11.png (Middlebury)."
        )
    return sorted(triplets, key=lambda triplet: triplet.name)
