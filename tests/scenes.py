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
