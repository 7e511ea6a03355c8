"""Synthetic test scenes with known ground truth: a textured image panned by a known number of pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, richly textured RGB uint8 image (sum of random sinusoids plus soft blobs)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for _ in range(12):
        fy, fx = rng.uniform(0.01, 0.12, size=2)
        phase = rng.uniform(0, 2 * np.pi)
        colour = rng.uniform(-1, 1, size=3)
        image += np.sin(fy * yy + fx * xx + phase)[..., None] * colour
    image = (image - image.min()) / (image.max() - image.min())
    return (image * 255).astype(np.uint8)


def panned_triplet(
    height: int = 96, width: int = 128, shift: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, middle, last) crops of one larger texture moving ``shift`` px right per half step."""
    big = textured_image(height, width + 2 * shift, seed)
    first = big[:, 2 * shift : 2 * shift + width]
    middle = big[:, shift : shift + width]
    last = big[:, 0:width]
    return first.copy(), middle.copy(), last.copy()


def write_triplet(
    folder: Path, frames: tuple[np.ndarray, np.ndarray, np.ndarray], names=("im1.png", "im2.png", "im3.png")
) -> None:
    """Save (first, middle, last) as a triplet folder (Vimeo90K names by default)."""
    from PIL import Image

    folder.mkdir(parents=True)
    for name, frame in zip(names, frames):
        Image.fromarray(frame).save(folder / name)


def thrown_ball_triplet(
    height: int = 120, width: int = 160, radius: int = 4, step: float = 16
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, middle, last) of a small ball thrown ``step`` px right per half step across a plain sky
    above still, textured ground: an object that moves much farther than its own size. A step of
    n + 0.5 px puts the true middle ball between pixel centres (drawn there, anti-aliasing aside)."""
    yy, xx = np.mgrid[0:height, 0:width]
    sky = np.dstack([150 + yy * 0.3, 190 + yy * 0.2, np.full_like(yy, 235)]).astype(np.uint8)
    ground = textured_image(height, width, seed=3)
    background = np.where((yy > height * 2 // 3)[..., None], ground, sky)
    frames = []
    for centre_x in (width // 4, width // 4 + step, width // 4 + 2 * step):
        frame = background.copy()
        frame[(yy - height // 3) ** 2 + (xx - centre_x) ** 2 <= radius**2] = (200, 90, 30)
        frames.append(frame)
    return frames[0], frames[1], frames[2]


def parting_triplet(height: int = 160, width: int = 256, step: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, middle, last) of two textured bands moving apart: the top ``step`` px right and the bottom
    ``step`` px left per half step (no single shift describes both)."""
    top = textured_image(height // 2, width + 4 * step, seed=1)
    bottom = textured_image(height - height // 2, width + 4 * step, seed=2)
    frames = []
    for i in range(3):
        right = top[:, (2 - i) * step : (2 - i) * step + width]
        left = bottom[:, i * step : i * step + width]
        frames.append(np.vstack([right, left]))
    return frames[0], frames[1], frames[2]
