"""Undo the global shift/zoom jitter of a generated frame by registering it to a reference frame.

Qwen-Image-Edit shifts and zooms pixels between its input and its output (QwenLM/Qwen-Image #160, #229).
For interpolation that is jitter, so each generated frame is re-registered to a reference (the flow
backend's prediction of the same frame, or the keyframes' crossfade): a global translation plus isotropic
scale is estimated with phase correlation and its inverse is applied, so the geometry follows the reference
while the generated content stays.

The reference can be wrong too (the flow prediction under a large zoom or rotation between the keyframes),
and every correction resamples the frame. So :func:`register_to` applies a correction only where it is
trustworthy: it moves some pixel by at least :data:`MIN_CORRECTION_PX` (smaller ones cost more in
resampling than they remove) and it removes most of the disagreement with the reference (after it, at
most :data:`MAX_RESIDUAL_RATIO` of the disagreement before is left). A shifted or zoomed copy of the
reference passes easily; a good frame against a wrong reference does not, since a global motion cannot
explain what the reference got wrong.

A reference wrong by a global translation (a flow prediction off by a shift: a pan it misjudged, a
repeated texture) is a shifted copy of the right frame, so it passes those checks, and following it would
drag a right frame by the reference's own error. So a correction's shift is also capped near the model's
known jitter (:data:`MAX_CORRECTION_PX` or :data:`MAX_CORRECTION_FRACTION` of the longer side) and, given
the keyframes, applied only where they confirm it: the frame's global motion to each keyframe puts it off their global midpoint by the same
motion (within :data:`CONFIRM_PX` or :data:`CONFIRM_RATIO` of the correction). A jittered frame is off
their midpoint; a right frame against a shifted reference is not.

Convention: :class:`GlobalMotion` maps the reference onto the moving frame, i.e.
``apply_global_motion(reference, estimate_global_motion(moving, reference)) ≈ moving``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vfi.io.images import MIN_SIDE

#: Estimation runs on grayscale copies whose longer side is at most this many pixels.
WORK_SIDE = 512
#: A tile of the aligned frames agrees with the reference when its phase-correlation response is at least
#: this (and its residual shift small); unless most tiles agree, the identity is returned. Unrelated real
#: photos reach 0.1 in at most 4 of 9 tiles; matched frames, even against a crossfade, reach about 0.5.
MIN_RESPONSE = 0.2
#: Largest plausible shift, as a fraction of the frame's width / height.
MAX_SHIFT_FRACTION = 0.1
#: Corrections that move no pixel by this many (full-size) pixels are not applied.
MIN_CORRECTION_PX = 1.0
#: A correction is applied only if the disagreement with the reference left after it (mean absolute
#: difference of the brightness-normalised, slightly blurred grayscale images) is at most this fraction of
#: the disagreement before. On views of the example photos (benchmarks/registration.py) undoing a 3-6 px
#: shift leaves under 0.25 of it (under 0.4 for a blurred frame); a good frame against a flow prediction
#: wrong about zoom (1.1-1.8x) or rotation (2.5-20 degrees), above 0.55 wherever the correction is 1 px or more.
MAX_RESIDUAL_RATIO = 0.5
#: Corrections shifting the frame's centre by more than this many pixels or this fraction of its longer side,
#: whichever is larger, are not applied: Qwen-Image-Edit's jitter is a few pixels at its working size (about
#: 1% of the side); larger shifts are the reference's error.
MAX_CORRECTION_PX = 8.0
MAX_CORRECTION_FRACTION = 0.02
#: Given the keyframes, a correction is applied only if the keyframes' own estimate of how far the frame is
#: off their global midpoint differs from it by at most this many (full-size) pixels at any corner ...
CONFIRM_PX = 1.0
#: ... or by at most this fraction of the correction's own largest displacement, whichever is larger.
CONFIRM_RATIO = 0.25

_TILE_MIN_RESPONSE = 0.05  # tiles matching worse than this are left out of the coarse fit
_MIN_TILES = 5  # of the 3×3 tiles, this many must match (coarse fit) and agree after alignment (confidence)
_AGREE_PX = 3.0  # residual tile shift (working-size px) still counted as agreeing: local motion, ghosts
_COARSE_ITERATIONS = 2  # tile-fit passes; they bring the alignment within about a pixel
_FINE_ITERATIONS = 10  # at most this many Gauss-Newton steps ...
_CONVERGED_PX = 0.002  # ... stopping when a step moves no pixel by more than about this (working-size pixels)


@dataclass(frozen=True)
class GlobalMotion:
    """Scale about the frame centre by ``scale``, then translate by (``dx``, ``dy``) pixels."""

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        for field in ("dx", "dy", "scale"):
            if not math.isfinite(getattr(self, field)):
                raise ValueError(f"{field} must be finite, got {getattr(self, field)}")
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")

    def is_identity(self, tol: float = 1e-6) -> bool:
        """True when the shift (px) and the scale change are both within ``tol``."""
        return max(abs(self.dx), abs(self.dy), abs(self.scale - 1.0)) <= tol

    def inverse(self) -> GlobalMotion:
        """The motion that undoes this one."""
        return GlobalMotion(dx=-self.dx / self.scale, dy=-self.dy / self.scale, scale=1.0 / self.scale)

    def largest_displacement(self, width: int, height: int) -> float:
        """How far (px) this motion moves the farthest-moving pixel of a ``width``×``height`` frame (a corner)."""
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        k = self.scale - 1.0
        return max(math.hypot(k * x + self.dx, k * y + self.dy) for x in (-cx, cx) for y in (-cy, cy))

    def matrix(self, width: int, height: int) -> np.ndarray:
        """The 2×3 affine matrix (source → destination pixel coordinates) for a ``width``×``height`` frame."""
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        s = self.scale
        return np.array([[s, 0.0, (1 - s) * cx + self.dx], [0.0, s, (1 - s) * cy + self.dy]], np.float64)


def apply_global_motion(frame: np.ndarray, motion: GlobalMotion) -> np.ndarray:
    """``frame`` moved by ``motion`` (bicubic, replicated borders); same size and dtype."""
    if motion.is_identity(0.0):
        return frame.copy()
    height, width = frame.shape[:2]
    return cv2.warpAffine(
        frame, motion.matrix(width, height), (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )


def estimate_global_motion(moving: np.ndarray, reference: np.ndarray, *, max_scale_change: float = 0.1) -> GlobalMotion:
    """The global motion taking ``reference`` to ``moving`` (uint8 RGB, same shape).

    Coarse: phase correlation of a 3×3 grid of overlapping tiles gives local shifts, a weighted
    least-squares fit of shift + isotropic scale to them is applied, twice (starting from a few zooms if
    too few tiles match at first). Fine: robust Gauss-Newton on the brightness-normalised images (phase
    correlation alone is biased towards zero shift on smooth images).
    Runs on grayscale copies at most :data:`WORK_SIDE` pixels wide. Returns the identity when the match
    is weak (after alignment, fewer than 5 of the 9 tiles match with response ≥ :data:`MIN_RESPONSE`
    within 3 working pixels) or implausible (scale change above ``max_scale_change``, shift above
    :data:`MAX_SHIFT_FRACTION` of the frame).
    """
    if moving.shape != reference.shape or moving.ndim != 3 or moving.shape[2] != 3:
        raise ValueError(f"moving and reference must be H×W×3 of one shape, got {moving.shape} and {reference.shape}")
    if not 0 < max_scale_change < 0.5:
        raise ValueError(f"max_scale_change must be in (0, 0.5), got {max_scale_change}")
    height, width = moving.shape[:2]
    if min(height, width) < MIN_SIDE:  # smaller than any frame we accept: too small to register
        return GlobalMotion()
    mov, ref = _gray(moving), _gray(reference)
    small_h, small_w = ref.shape
    motion = _coarse(mov, ref, max_scale_change)  # in working-size pixels
    if motion is None or abs(motion.scale - 1.0) > max_scale_change:
        return GlobalMotion()
    motion = _refine(mov, ref, motion)
    if motion is None or abs(motion.scale - 1.0) > max_scale_change:
        return GlobalMotion()
    agreeing = _agreeing_tiles(apply_global_motion(mov, motion.inverse()), ref)
    motion = _rescaled(motion, width / small_w, height / small_h)
    if (
        agreeing < _MIN_TILES
        or abs(motion.dx) > MAX_SHIFT_FRACTION * width
        or abs(motion.dy) > MAX_SHIFT_FRACTION * height
    ):
        return GlobalMotion()
    return motion


def register_to(
    moving: np.ndarray,
    reference: np.ndarray,
    keyframes: tuple[np.ndarray, np.ndarray] | None = None,
    **kw: float,
) -> tuple[np.ndarray, GlobalMotion]:
    """``moving`` warped so that its global geometry matches ``reference``, and the motion that was undone.

    The estimate (:func:`estimate_global_motion`) is applied only if it is trustworthy, small enough and,
    given the (first, last) ``keyframes`` ``moving`` lies between, confirmed by them (see the module
    docstring); otherwise ``moving`` comes back unchanged (a copy) with the identity.
    """
    motion = estimate_global_motion(moving, reference, **kw)
    height, width = moving.shape[:2]
    if (
        math.hypot(motion.dx, motion.dy) > max(MAX_CORRECTION_PX, MAX_CORRECTION_FRACTION * max(width, height))
        or not _trustworthy(moving, reference, motion)
        or (keyframes is not None and not _confirmed(moving, keyframes, motion, **kw))
    ):
        motion = GlobalMotion()
    return apply_global_motion(moving, motion.inverse()), motion


def _confirmed(moving: np.ndarray, keyframes: tuple[np.ndarray, np.ndarray], motion: GlobalMotion, **kw: float) -> bool:
    """Whether the keyframes put ``moving`` off their global midpoint by about ``motion``: the mean of its
    global motions to the two keyframes (their own motion cancels out) is ``motion`` within
    :data:`CONFIRM_PX` or :data:`CONFIRM_RATIO` of its displacement at every corner."""
    to_first, to_last = (estimate_global_motion(moving, keyframe, **kw) for keyframe in keyframes)
    offset = GlobalMotion(
        dx=(to_first.dx + to_last.dx) / 2,
        dy=(to_first.dy + to_last.dy) / 2,
        scale=math.sqrt(to_first.scale * to_last.scale),
    )
    height, width = moving.shape[:2]
    miss = _compose(motion, offset.inverse()).largest_displacement(width, height)
    return miss <= max(CONFIRM_PX, CONFIRM_RATIO * motion.largest_displacement(width, height))


def _trustworthy(moving: np.ndarray, reference: np.ndarray, motion: GlobalMotion) -> bool:
    """Whether ``motion`` moves some pixel by :data:`MIN_CORRECTION_PX` or more and undoing it leaves at most
    :data:`MAX_RESIDUAL_RATIO` of the disagreement between ``moving`` and ``reference``."""
    height, width = moving.shape[:2]
    if motion.largest_displacement(width, height) < MIN_CORRECTION_PX:
        return False
    mov, ref = _gray(moving), _gray(reference)
    small_h, small_w = ref.shape
    small = _rescaled(motion, small_w / width, small_h / height)
    valid = _inside(small, *_centred(small_h, small_w), small_h, small_w)
    before = _disagreement(mov, ref, valid)
    return _disagreement(apply_global_motion(mov, small.inverse()), ref, valid) <= MAX_RESIDUAL_RATIO * before


def _disagreement(image: np.ndarray, reference: np.ndarray, valid: np.ndarray) -> float:
    """Mean absolute difference over ``valid`` of the brightness-normalised, slightly blurred images."""
    image, reference = (cv2.GaussianBlur(x, (0, 0), 1.0) for x in (image, reference))
    return float(np.mean(np.abs(_normalised(image, valid) - _normalised(reference, valid))[valid]))


def _rescaled(motion: GlobalMotion, fx: float, fy: float) -> GlobalMotion:
    """``motion`` for a frame resized by ``fx`` × ``fy`` (the scale about the centre is unchanged)."""
    return GlobalMotion(dx=motion.dx * fx, dy=motion.dy * fy, scale=motion.scale)


def _centred(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates relative to the frame centre: a column of ys and a row of xs (float32)."""
    ys = (np.arange(height, dtype=np.float32) - (height - 1) / 2)[:, None]
    xs = (np.arange(width, dtype=np.float32) - (width - 1) / 2)[None, :]
    return ys, xs


def _gray(image: np.ndarray) -> np.ndarray:
    """Float32 grayscale, downscaled (area) so that the longer side is at most :data:`WORK_SIDE`."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    height, width = gray.shape
    factor = WORK_SIDE / max(height, width)
    if factor < 1:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def _phase_correlate(moving: np.ndarray, reference: np.ndarray) -> tuple[tuple[float, float], float]:
    """Shift of ``moving`` relative to ``reference`` and the peak response (mean-free, Hanning-windowed)."""
    window = cv2.createHanningWindow(reference.shape[::-1], cv2.CV_32F)
    return cv2.phaseCorrelate(reference - reference.mean(), moving - moving.mean(), window)


def _tile_shifts(moving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rows (x, y, u, v, response) for a 3×3 grid of overlapping half-size tiles: the tile centre relative
    to the frame centre, and the phase-correlation shift of ``moving`` there."""
    height, width = reference.shape
    th, tw = height // 2, width // 2
    rows = []
    for y0 in (0, height // 4, height - th):
        for x0 in (0, width // 4, width - tw):
            tile = np.s_[y0 : y0 + th, x0 : x0 + tw]
            (u, v), response = _phase_correlate(moving[tile], reference[tile])
            rows.append((x0 + (tw - 1) / 2 - (width - 1) / 2, y0 + (th - 1) / 2 - (height - 1) / 2, u, v, response))
    return np.array(rows)


def _tile_fit(moving: np.ndarray, reference: np.ndarray) -> GlobalMotion | None:
    """Shift + scale fitted (response-weighted least squares, one round of outlier rejection) to the tile
    shifts; None if fewer than :data:`_MIN_TILES` tiles match."""
    tiles = _tile_shifts(moving, reference)
    tiles = tiles[tiles[:, 4] >= _TILE_MIN_RESPONSE]
    for _ in range(2):
        if len(tiles) < _MIN_TILES:
            return None
        x, y, u, v, response = tiles.T
        zeros, ones, w = np.zeros_like(x), np.ones_like(x), np.sqrt(np.concatenate([response, response]))
        design = np.block([[x[:, None], ones[:, None], zeros[:, None]], [y[:, None], zeros[:, None], ones[:, None]]])
        (a, tx, ty), *_ = np.linalg.lstsq(design * w[:, None], np.concatenate([u, v]) * w, rcond=None)
        error = np.hypot(u - (a * x + tx), v - (a * y + ty))
        tiles = tiles[error <= max(1.0, 2.0 * float(np.median(error)))]
    return GlobalMotion(dx=float(tx), dy=float(ty), scale=1.0 + float(a))


def _agreeing_tiles(moving: np.ndarray, reference: np.ndarray) -> int:
    """How many tiles of aligned images match well (response ≥ :data:`MIN_RESPONSE`) at a small shift."""
    tiles = _tile_shifts(moving, reference)
    return int(np.sum((tiles[:, 4] >= MIN_RESPONSE) & (np.hypot(tiles[:, 2], tiles[:, 3]) < _AGREE_PX)))


def _coarse(moving: np.ndarray, reference: np.ndarray, max_scale_change: float) -> GlobalMotion | None:
    """Tile fits applied in turn, starting from the identity or, where too few tiles match there, from the
    first of a few zooms within ``max_scale_change`` where enough do; None if none does."""
    for fraction in (0.0, 0.5, -0.5, 1.0, -1.0):
        motion = GlobalMotion(scale=1.0 + fraction * max_scale_change)
        step = _tile_fit(apply_global_motion(moving, motion.inverse()), reference)
        if step is not None:
            break
    else:
        return None
    motion = _compose(motion, step)
    for _ in range(_COARSE_ITERATIONS - 1):
        step = _tile_fit(apply_global_motion(moving, motion.inverse()), reference)
        if step is None:
            break
        motion = _compose(motion, step)
    return motion


def _compose(outer: GlobalMotion, inner: GlobalMotion) -> GlobalMotion:
    """``outer ∘ inner``: the motion ``inner`` followed by ``outer`` (both about the same centre)."""
    return GlobalMotion(
        dx=outer.scale * inner.dx + outer.dx, dy=outer.scale * inner.dy + outer.dy, scale=outer.scale * inner.scale
    )


def _refine(moving: np.ndarray, reference: np.ndarray, motion: GlobalMotion) -> GlobalMotion | None:
    """Gauss-Newton refinement of ``motion`` (Tukey-weighted, on brightness-normalised, slightly blurred
    images); None if it diverges."""
    height, width = reference.shape
    moving, reference = (cv2.GaussianBlur(image, (0, 0), 1.0) for image in (moving, reference))
    half = max(height, width) / 2.0
    ys, xs = _centred(height, width)
    for _ in range(_FINE_ITERATIONS):
        valid = _inside(motion, ys, xs, height, width)
        if valid.sum() < valid.size / 4:
            return None
        aligned = apply_global_motion(moving, motion.inverse())
        a, r = _normalised(aligned, valid), _normalised(reference, valid)
        gy, gx = np.gradient(a)
        jac = np.stack([((gx * xs + gy * ys) / half)[valid], gx[valid], gy[valid]], axis=1)
        residual = (r - a)[valid]
        cutoff = 4.685 * 1.4826 * float(np.median(np.abs(residual))) + 1e-6
        w = np.clip(1.0 - (residual / cutoff) ** 2, 0.0, None)  # sqrt of Tukey's biweight
        (k, tx, ty), *_ = np.linalg.lstsq(jac * w[:, None], residual * w, rcond=None)
        if not abs(k) + abs(tx) + abs(ty) < half / 4:  # also catches NaN
            return None
        motion = _compose(motion, GlobalMotion(dx=float(tx), dy=float(ty), scale=1.0 + float(k) / half))
        if abs(k) + abs(tx) + abs(ty) < _CONVERGED_PX:
            break
    return motion


def _inside(motion: GlobalMotion, ys: np.ndarray, xs: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixels (centred coordinates ``ys``, ``xs``) that ``motion`` maps at least a pixel inside the frame."""
    x = motion.scale * xs + (width - 1) / 2 + motion.dx
    y = motion.scale * ys + (height - 1) / 2 + motion.dy
    return ((y >= 1) & (y <= height - 2)) & ((x >= 1) & (x <= width - 2))


def _normalised(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``image`` with zero mean and unit deviation over ``valid``."""
    values = image[valid]
    return (image - values.mean()) / max(float(values.std()), 1e-6)
