"""Registration of a generated frame to the flow backend's prediction: what it costs and what it removes.

Usage: python benchmarks/registration.py [IMAGE_OR_TRIPLET_DIR…] [--json FILE]
(default: the photos in examples/*_first.png)

Grids on views of photos, each case a keyframe pair, its true middle frame, a "generated" frame and the
flow backend's prediction (the reference ``QwenEditBackend`` registers to, with the keyframes):

- *zoom*, *rotation*: the keyframes differ by a zoom (up to 1.8×) or a rotation (up to 20°), which the
  flow prediction gets wrong; the generated frame is the true middle plus noise (≈42 dB), so
  registration can only make it worse. PSNR must drop by at most 0.3 dB.
- *translation*: the reference is wrong by a global translation: the flow prediction replaced by the true
  middle shifted 2–16 px (a flow off by a shift), and real flow predictions that are off (a pan beyond
  the flow's reach, a repeated texture panned by more than half its period). Same target as above.
- *jitter*: the keyframes differ by a small pan the flow gets right; the generated frame is the true
  middle shifted by 3–6 px (Qwen-Image-Edit's known jitter), plus noise. Registration must remove it
  (gain ≥ 10 dB).
- *jitter_soft*: the jitter on a blurred generated frame (not near-perfect, as real generated frames are not).

An argument that is a folder holding a triplet (``im1.png``, ``im2.png``, ``im3.png``) adds its real
keyframes: a *jitter* and a *translation* case on the real motion (the middle frame shifted by the
jitter, or the flow prediction shifted), and its middle frame is the photo of the grids. Prints one row per
case: PSNR against the true middle of the reference, of the generated frame before and after
:func:`vfi.qwen.registration.register_to`, and after the raw estimate applied unconditionally ("forced":
registration before it checked corrections), and the correction applied. ``--json FILE`` writes
``{"cases": [{"group", "name", "before_db", "after_db", ...}, ...]}``.
"""

from __future__ import annotations

import argparse
import json
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
#: Shifts (px) of the reference against the true middle: a flow prediction wrong by a translation.
REFERENCE_SHIFTS = (
    (2.0, 0.0),
    (0.0, -3.0),
    (5.0, 0.0),
    (-4.0, 3.0),
    (8.0, 0.0),
    (0.0, 12.0),
    (-12.0, -9.0),
    (16.0, 0.0),
)
#: Pans (px) beyond the flow backend's reach on these small views, and (period, pan) of a repeated texture.
FAR_PANS = (64.0, 96.0)
REPEATS = ((12, 20.0), (16, 26.0))
#: Shifts (px) of the generated frame against the true middle: the jitter registration must remove.
SHIFTS = ((3.0, 0.0), (0.0, -4.0), (4.5, 2.5), (-6.0, 3.0))
#: Standard deviation (levels) of the noise on the generated frame: about 42 dB against the truth.
NOISE = 2.0
#: Gaussian blur (px) of the generated frame in the "jitter_soft" grid: a frame that is not near-perfect.
SOFT = 1.5
#: Groups where the reference is wrong and the generated frame right: registration must cost ≤ 0.3 dB.
WRONG_REFERENCE = ("zoom", "rotation", "translation")


@dataclass(frozen=True)
class Case:
    """Keyframes ``zoom``× / ``angle``° / ``pan`` px apart (split evenly about the middle) of a photo (or of
    a tiling of its ``period``-px centre patch), the generated frame moved by ``jitter`` from the true
    middle and blurred by ``blur`` px, and the reference moved by ``ref_shift`` (None: the flow prediction)."""

    group: str
    label: str
    zoom: float = 1.0
    angle: float = 0.0
    pan: float = 0.0
    jitter: tuple[float, float] = (0.0, 0.0)
    blur: float = 0.0
    ref_shift: tuple[float, float] | None = None
    period: int = 0


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
    """The wrong-reference grids (zoom, rotation, translation), then the jitter grids."""
    for zoom in ZOOMS:
        yield Case("zoom", f"zoom {zoom:g}x", zoom=zoom)
    for angle in ROTATIONS:
        yield Case("rotation", f"rotation {angle:g} deg", angle=angle)
    for dx, dy in REFERENCE_SHIFTS:
        yield Case("translation", f"reference off ({dx:+g}, {dy:+g}) px", pan=8.0, ref_shift=(dx, dy))
    for pan in FAR_PANS:
        yield Case("translation", f"flow: pan {pan:g} px", pan=pan)
    for period, pan in REPEATS:
        yield Case("translation", f"flow: {period}-px texture, pan {pan:g} px", pan=pan, period=period)
    for blur in (0.0, SOFT):
        for dx, dy in SHIFTS:
            label = f"shift ({dx:+g}, {dy:+g}) px"
            yield Case("jitter_soft" if blur else "jitter", label, pan=8.0, jitter=(dx, dy), blur=blur)


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


def repeated(photo: np.ndarray, period: int) -> np.ndarray:
    """``photo`` replaced by a tiling of its centre ``period``-px patch (a repeated texture)."""
    height, width = photo.shape[:2]
    y, x = (height - period) // 2, (width - period) // 2
    return np.tile(photo[y : y + period, x : x + period], (height // period + 1, width // period + 1, 1))[
        :height, :width
    ]


def noisy(frame: np.ndarray, blur: float = 0.0, seed: int = 0) -> np.ndarray:
    """A "generated" frame: ``frame`` blurred by ``blur`` px plus Gaussian noise of :data:`NOISE` levels."""
    out = frame.astype(np.float64)
    if blur:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    out += np.random.default_rng(seed).normal(0.0, NOISE, frame.shape)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def score(
    truth: np.ndarray, generated: np.ndarray, reference: np.ndarray, keyframes: tuple[np.ndarray, np.ndarray]
) -> tuple:
    """The fields of :class:`Result` after ``photo`` and ``case``, for one generated frame."""
    registered, motion = register_to(generated, reference, keyframes)
    forced = apply_global_motion(generated, estimate_global_motion(generated, reference).inverse())
    inner = np.s_[8:-8, 8:-8]  # the generated frame's shifted-in border is unknown content
    scores = (psnr(image[inner], truth[inner]) for image in (generated, registered, forced))
    return (psnr(reference[inner], truth[inner]), *scores, motion)


def run_case(photo: np.ndarray, case: Case, flow: FlowBackend, seed: int = 0) -> tuple:
    """The fields of :class:`Result` after ``photo`` and ``case``, for one case on one photo."""
    size = window_size(photo)
    if case.period:
        photo = repeated(photo, case.period)
    half_zoom = case.zoom**0.5
    first = view(photo, size, 1 / half_zoom, -case.angle / 2, -case.pan / 2)
    last = view(photo, size, half_zoom, case.angle / 2, case.pan / 2)
    truth = view(photo, size)
    generated = noisy(view(photo, size, dx=case.jitter[0], dy=case.jitter[1]), case.blur, seed)
    if case.ref_shift is None:
        reference = flow.interpolate([FrameRequest(first, last, 0.5)])[0]
    else:
        reference = view(photo, size, dx=case.ref_shift[0], dy=case.ref_shift[1])
    return score(truth, generated, reference, (first, last))


def triplet_cases(first: np.ndarray, middle: np.ndarray, last: np.ndarray, flow: FlowBackend) -> Iterator[tuple]:
    """(case, fields of :class:`Result`) on a real triplet: the middle jittered, and the prediction shifted."""
    prediction = flow.interpolate([FrameRequest(first, last, 0.5)])[0]
    for dx, dy in SHIFTS:
        generated = noisy(apply_global_motion(middle, GlobalMotion(dx, dy)))
        case = Case("jitter", f"triplet: shift ({dx:+g}, {dy:+g}) px", jitter=(dx, dy))
        yield case, score(middle, generated, prediction, (first, last))
    for dx, dy in REFERENCE_SHIFTS[::2]:
        reference = apply_global_motion(prediction, GlobalMotion(dx, dy))
        case = Case("translation", f"triplet: reference off ({dx:+g}, {dy:+g}) px", ref_shift=(dx, dy))
        yield case, score(middle, noisy(middle), reference, (first, last))


def run(paths: tuple[Path, ...] = PHOTOS) -> Iterator[Result]:
    """Every case on every photo (a triplet folder: its real cases, then the grids on its middle frame)."""
    flow = FlowBackend()
    for path in paths:
        name = path.name if path.is_dir() else path.stem
        if path.is_dir():
            first, photo, last = (load_image(path / f"im{i}.png") for i in (1, 2, 3))
            for case, fields in triplet_cases(first, photo, last, flow):
                yield Result(name, case, *fields)
        else:
            photo = load_image(path)
        for case in cases():
            yield Result(name, case, *run_case(photo, case, flow))


def _db(value: float) -> float | None:
    """A PSNR for JSON: rounded, None where infinite (identical images)."""
    return round(value, 3) if np.isfinite(value) else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="photos or triplet folders (default: examples/*_first.png)")
    parser.add_argument("--json", type=Path, help="write the cases to this JSON file")
    args = parser.parse_args(argv)
    print(
        f"{'photo':<18} {'group':<12} {'case':<36} {'ref dB':>7} {'before':>7} {'after':>7} {'change':>7} "
        f"{'forced':>7}  correction applied"
    )
    rows = []
    for r in run(tuple(args.paths) or PHOTOS):
        m = r.applied
        correction = "none" if m.is_identity() else f"dx {m.dx:+.2f} dy {m.dy:+.2f} scale {m.scale:.4f}"
        print(
            f"{r.photo:<18} {r.case.group:<12} {r.case.label:<36} {r.reference_db:7.2f} {r.before_db:7.2f} "
            f"{r.after_db:7.2f} {r.after_db - r.before_db:+7.2f} {r.forced_db:7.2f}  {correction}",
            flush=True,
        )
        rows.append(
            {
                "group": r.case.group,
                "name": f"{r.photo}: {r.case.label}",
                "before_db": _db(r.before_db),
                "after_db": _db(r.after_db),
                "reference_db": _db(r.reference_db),
                "forced_db": _db(r.forced_db),
            }
        )
    if args.json:
        args.json.write_text(json.dumps({"cases": rows}, indent=1) + "\n")
    for group in dict.fromkeys(row["group"] for row in rows):
        changes = [r["after_db"] - r["before_db"] for r in rows if r["group"] == group and r["after_db"] is not None]
        print(f"{group:<12} {len(changes):3d} cases, change min {min(changes):+.2f} dB, max {max(changes):+.2f} dB")


if __name__ == "__main__":
    main()
