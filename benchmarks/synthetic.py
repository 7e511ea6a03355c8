"""Synthetic frame triplets with exact ground truth: textured shapes moving over textured backgrounds.

Every frame is rendered from the scene's description at its own time (t = 0, 0.5, 1), never interpolated,
so the middle frame is the exact answer. A scene is a textured background panned by the camera and one to
three textured shapes (ellipses, boxes, triangles) that move, rotate and scale linearly in time at a speed
class drawn per scene; later shapes pass over earlier ones (occlusions). Shapes are drawn at 4× and
reduced by area, so edges are anti-aliased. With ``grid`` > 0 the motion is on a grid instead: shapes and pan
move by whole ``grid``-px steps per half step (e.g. 8, one token of the miniature editor), without spin or
growth. Nothing here imports torch.

API:

- ``render_scene(rng, size, grid=0) -> (first, middle, last)``: one random scene's frames (uint8 H×W×3).
- ``write_triplets(folder, count, *, size=64, seed=0, grid=0) -> list[Path]``: ``count`` scenes as triplet folders
  ``folder/NNNN/im1.png, im2.png, im3.png`` (Vimeo90K names); scenes of different seeds never repeat.
- ``textured(rng, height, width) -> uint8 image``: a smooth random colour texture.
- ``SPEEDS``: pixels per half step (first → middle) of the speed classes, at a 64-px frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Motion per half step in pixels at a 64-px frame (scaled with the frame): slow, medium, fast.
SPEEDS = (1.5, 3.0, 5.0)
_SUPERSAMPLE = 4
#: The directions of a grid step (``grid`` > 0): each axis -1, 0 or +1 grid cell, never both 0.
_GRID_DIRECTIONS = np.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy], dtype=np.float64)


def textured(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour texture: a few oriented sinusoids of random colours over a base colour."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.broadcast_to(rng.uniform(0.2, 0.8, 3).astype(np.float32), (height, width, 3)).copy()
    for _ in range(5):
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(8, 32)
        wave = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * 2 * math.pi / period + rng.uniform(0, 2 * math.pi))
        image += 0.12 * wave[..., None] * rng.uniform(-1, 1, 3).astype(np.float32)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


@dataclass(frozen=True)
class _Shape:
    """A textured shape: its mask and texture (square, side ``side`` px), and its motion in time."""

    texture: np.ndarray
    mask: np.ndarray
    centre: np.ndarray  # (x, y) at t = 0
    velocity: np.ndarray  # px per unit time
    angle: float  # degrees at t = 0
    spin: float  # degrees per unit time
    scale: float  # at t = 0
    growth: float  # scale change per unit time

    def draw(self, canvas: np.ndarray, t: float, factor: int) -> None:
        """Paste the shape at time ``t`` onto ``canvas`` (rendered at ``factor``× the frame size)."""
        import cv2

        side = self.mask.shape[0]
        centre = (self.centre + self.velocity * t) * factor
        scale = (self.scale + self.growth * t) * factor
        matrix = cv2.getRotationMatrix2D((side / 2, side / 2), self.angle + self.spin * t, scale)
        matrix[:, 2] += centre - side / 2
        size = (canvas.shape[1], canvas.shape[0])
        alpha = cv2.warpAffine(self.mask, matrix, size, flags=cv2.INTER_LINEAR)[..., None]
        colour = cv2.warpAffine(self.texture, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        canvas[:] = canvas * (1 - alpha) + colour * alpha


def _grid_step(rng: np.random.Generator, grid: int) -> np.ndarray:
    """A random displacement (x, y) of whole ``grid``-px steps: each axis -grid, 0 or +grid, not both 0."""
    return _GRID_DIRECTIONS[rng.integers(len(_GRID_DIRECTIONS))] * grid


def _shape(rng: np.random.Generator, size: int, speed: float, grid: int) -> _Shape:
    import cv2

    side = 32
    mask = np.zeros((side, side), np.float32)
    kind = rng.integers(3)
    if kind == 0:
        cv2.ellipse(mask, (16, 16), (int(rng.integers(8, 15)), int(rng.integers(6, 15))), 0, 0, 360, 1.0, -1)
    elif kind == 1:
        half = rng.integers(6, 14, 2)
        cv2.rectangle(mask, (16 - int(half[0]), 16 - int(half[1])), (16 + int(half[0]), 16 + int(half[1])), 1.0, -1)
    else:
        points = (16 + rng.uniform(-15, 15, (3, 2))).astype(np.int32)
        cv2.fillConvexPoly(mask, points, 1.0)
    if grid:
        velocity = 2 * _grid_step(rng, grid)  # 2 half steps per unit time
    else:
        direction = rng.uniform(0, 2 * math.pi)
        velocity = 2 * speed * np.array([math.cos(direction), math.sin(direction)])
    middle = rng.uniform(0.25 * size, 0.75 * size, 2)
    return _Shape(
        texture=textured(rng, side, side).astype(np.float32),
        mask=mask,
        centre=middle - velocity / 2,
        velocity=velocity,
        angle=float(rng.uniform(0, 360)),
        spin=0.0 if grid else float(rng.choice([0.0, rng.uniform(-30, 30)])),
        scale=float(rng.uniform(0.5, 1.0)) * size / 64,
        growth=0.0 if grid else float(rng.choice([0.0, rng.uniform(-0.2, 0.2)])) * size / 64,
    )


def render_scene(rng: np.random.Generator, size: int = 64, grid: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, middle, last) of one random scene, ``size``×``size`` px, the middle at exactly t = 0.5.

    ``grid`` > 0: every shape, and the pan when there is one, moves by a whole-``grid``-px step per half step
    (each axis -grid, 0 or +grid, not both 0), with no spin or growth; 0: the speed classes of :data:`SPEEDS`.
    """
    import cv2

    if grid:
        speed, pan = 0.0, _grid_step(rng, grid) * rng.choice([0.0, 1.0])
    else:
        speed = float(rng.choice(SPEEDS)) * size / 64
        pan = rng.uniform(-1, 1, 2) * speed * rng.choice([0.0, 1.0])
    margin = int(math.ceil(2 * np.abs(pan).max())) + 1
    background = textured(rng, size + 2 * margin, size + 2 * margin)
    shapes = [_shape(rng, size, speed, grid) for _ in range(int(rng.integers(1, 4)))]
    frames = []
    for t in (0.0, 0.5, 1.0):
        offset = margin + pan * 2 * t
        shift = np.float32([[1, 0, -offset[0]], [0, 1, -offset[1]]])
        ground = cv2.warpAffine(background, shift, (size, size), flags=cv2.INTER_LINEAR)
        big = _SUPERSAMPLE * size
        canvas = cv2.resize(ground, (big, big), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        for shape in shapes:
            shape.draw(canvas, t, _SUPERSAMPLE)
        frame = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
        frames.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    return frames[0], frames[1], frames[2]


def write_triplets(folder: str | Path, count: int, *, size: int = 64, seed: int = 0, grid: int = 0) -> list[Path]:
    """Write ``count`` random scenes (motion on a ``grid``, see :func:`render_scene`) as triplet folders under
    ``folder``; return the folders."""
    from PIL import Image

    folder = Path(folder)
    out = []
    for index in range(count):
        frames = render_scene(np.random.default_rng([seed, index]), size, grid)
        scene = folder / f"{index:04d}"
        scene.mkdir(parents=True, exist_ok=True)
        for name, frame in zip(("im1.png", "im2.png", "im3.png"), frames):
            Image.fromarray(frame).save(scene / name)
        out.append(scene)
    return out


__all__ = ["SPEEDS", "render_scene", "textured", "write_triplets"]
