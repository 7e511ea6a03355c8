"""Registration of a generated frame to the flow backend's prediction: what it costs and what it removes.

Usage: python benchmarks/registration.py [IMAGE…]  (default: the photos in examples/*_first.png)

Two grids on views of real photos, each case a keyframe pair, its true middle frame, a "generated" frame
and the flow backend's prediction (the reference ``QwenEditBackend`` registers to):

- *wrong reference*: the keyframes differ by a zoom (up to 1.8×) or a rotation (up to 20°), which the
  flow prediction gets wrong; the generated frame is the true middle plus noise (≈42 dB), so
  registration can only make it worse. PSNR must drop by at most 0.3 dB.
- *jitter*: the keyframes differ by a small pan the flow gets right; the generated frame is the true
  middle shifted by 3–6 px (Qwen-Image-Edit's known jitter), plus noise. Registration must remove it.

A third grid, *jitter, soft*, repeats the jitter on a blurred generated frame (not near-perfect, as real
generated frames are not). Prints one row per case: PSNR against the true middle of the reference, of the
generated frame before and after :func:`vfi.qwen.registration.register_to`, and after the raw estimate applied
unconditionally ("forced": registration before it checked corrections), and the correction applied.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vfi.backends.base import FrameRequest  # noqa: E402
from vfi.backends.flow import FlowBackend  # noqa: E402
from vfi.io.images import load_image  # noqa: E402
from vfi.quality.metrics import psnr  # noqa: E402
from vfi.qwen.registration import GlobalMotion, apply_global_motion, estimate_global_motion, register_to  # noqa: E402

#: The example photos (views of scikit-image's public-domain photos, committed to the repository).
PHOTOS = tuple(sorted((ROOT / "examples").glob("*_first.png")))
#: Keyframe zooms and rotations (degrees) the flow prediction gets wrong. (The other direction gives the
#: same middle frame and prediction with the keyframes swapped.)
ZOOMS = (1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8)
ROTATIONS = (2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0)
#: Shifts (px) of the generated frame against the true middle: the jitter registration must remove.
SHIFTS = ((3.0, 0.0), (0.0, -4.0), (4.5, 2.5), (-6.0, 3.0))
#: Standard deviation (levels) of the noise on the generated frame: about 42 dB against the truth.
NOISE = 2.0
#: Gaussian blur (px) of the generated frame in the "jitter, soft" grid: a frame that is not near-perfect.
SOFT = 1.5


@dataclass(frozen=True)
class Case:
    """Keyframes ``zoom``× / ``angle``° / ``pan`` px apart (split evenly about the middle) and the
    generated frame moved by ``jitter`` from the true middle and blurred by ``blur`` px."""

    kind: str
    label: str
    zoom: float = 1.0
    angle: float = 0.0
    pan: float = 0.0
    jitter: tuple[float, float] = (0.0, 0.0)
    blur: float = 0.0


@dataclass(frozen=True)
class Result:
    """PSNR (dB) against the true middle: of the reference, of the generated frame before registration, after
    :func:`register_to`, and after the raw estimate applied unconditionally (what registration did before it
    checked that a correction is trustworthy)."""

    photo: str
    case: Case
    reference_db: float
    before_db: float
    after_db: float
    forced_db: float
    applied: GlobalMotion


def cases() -> Iterator[Case]:
    """The wrong-reference grid, then the jitter grid."""
    for zoom in ZOOMS:
        yield Case("wrong reference", f"zoom {zoom:g}x", zoom=zoom)
    for angle in ROTATIONS:
        yield Case("wrong reference", f"rotation {angle:g} deg", angle=angle)
    for blur in (0.0, SOFT):
        for dx, dy in SHIFTS:
            label = f"shift ({dx:+g}, {dy:+g}) px"
            yield Case("jitter, soft" if blur else "jitter", label, pan=8.0, jitter=(dx, dy), blur=blur)


def view(
    photo: np.ndarray, size: tuple[int, int], zoom: float = 1.0, angle: float = 0.0, dx: float = 0.0, dy: float = 0.0
) -> np.ndarray:
    """The ``size`` (w, h) window at the centre of ``photo``, zoomed, rotated (degrees, about the centre)
    and shifted (``dx``, ``dy`` px in the window); bicubic."""
    height, width = photo.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, zoom)
    matrix[:, 2] += ((size[0] - width) / 2 + dx, (size[1] - height) / 2 + dy)
    return cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def window_size(photo: np.ndarray) -> tuple[int, int]:
    """A window (w, h) that stays inside ``photo`` under every case's zoom-out and rotation."""
    height, width = photo.shape[:2]
    return (width * 5 // 8) // 16 * 16, (height * 5 // 8) // 16 * 16


def run_case(photo: np.ndarray, case: Case, flow: FlowBackend, seed: int = 0) -> tuple:
    """The fields of :class:`Result` after ``case``, for one case on one photo."""
    size = window_size(photo)
    half_zoom = case.zoom**0.5
    first = view(photo, size, 1 / half_zoom, -case.angle / 2, -case.pan / 2)
    last = view(photo, size, half_zoom, case.angle / 2, case.pan / 2)
    truth = view(photo, size)
    generated = view(photo, size, dx=case.jitter[0], dy=case.jitter[1]).astype(np.float64)
    if case.blur:
        generated = cv2.GaussianBlur(generated, (0, 0), case.blur)
    noise = np.random.default_rng(seed).normal(0.0, NOISE, truth.shape)
    generated = np.clip(generated + noise, 0, 255).round().astype(np.uint8)
    reference = flow.interpolate([FrameRequest(first, last, 0.5)])[0]
    registered, motion = register_to(generated, reference)
    forced = apply_global_motion(generated, estimate_global_motion(generated, reference).inverse())
    inner = np.s_[8:-8, 8:-8]  # the generated frame's shifted-in border is unknown content
    scores = (psnr(image[inner], truth[inner]) for image in (generated, registered, forced))
    return (psnr(reference, truth), *scores, motion)


def run(photos: tuple[Path, ...] = PHOTOS) -> Iterator[Result]:
    """Every case on every photo."""
    flow = FlowBackend()
    for path in photos:
        photo = load_image(path)
        for case in cases():
            yield Result(path.stem, case, *run_case(photo, case, flow))


def main(argv: list[str] | None = None) -> None:
    photos = tuple(Path(p) for p in (argv if argv is not None else sys.argv[1:])) or PHOTOS
    print(
        f"{'photo':<18} {'grid':<16} {'case':<24} {'ref dB':>7} {'before':>7} {'after':>7} {'change':>7} "
        f"{'forced':>7}  correction applied"
    )
    for r in run(photos):
        m = r.applied
        correction = "none" if m.is_identity() else f"dx {m.dx:+.2f} dy {m.dy:+.2f} scale {m.scale:.4f}"
        print(
            f"{r.photo:<18} {r.case.kind:<16} {r.case.label:<24} {r.reference_db:7.2f} {r.before_db:7.2f} "
            f"{r.after_db:7.2f} {r.after_db - r.before_db:+7.2f} {r.forced_db:7.2f}  {correction}",
            flush=True,
        )


if __name__ == "__main__":
    main()
