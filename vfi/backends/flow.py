"""The CPU default: bidirectional DIS optical flow, backward warping to time t, occlusion-aware blending.

DIS cannot follow motion beyond its coarsest level, so it starts from a prior: a global shift (phase
correlation) for pans, or where the motion is large, a flow first estimated at 64 px (parts that move apart
need more than one shift). DIS also works coarse to fine, so a small object that moves farther than its own
size (a thrown ball) is lost at the coarse levels and comes out as two faint ghosts. Blocks that the flow
leaves unexplained are therefore block-matched over a wide window (coarse to fine); a match that is far
better than the flow, unique (repetitive texture such as blinds matches in many places) and confirmed by
matching back replaces the flow there, and at time t those fast blocks are carried to where they are then
(forward splatting) instead of being read at the same place.

DIS's errors are not symmetric under rotation (its patch grid and its propagation sweep have a direction), so
large frames, which have the time to spare, are also interpolated with flow estimated on the pair turned by
180° (turned back before use), and the two frames at t are averaged: a test-time ensemble.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vfi.backends.base import FrameRequest
from vfi.errors import VFIError

if "OPENCV_FOR_THREADS_NUM" not in os.environ:  # else capped by the user (--threads, vfi.distributed.limit_threads)
    cv2.setNumThreads(2)

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class FlowConfig:
    """Settings of :class:`FlowBackend`; the defaults are tuned on half of the evaluation triplets and hold up on
    the other half (docs/benchmarks.md).

    ``preset``: DIS preset (``ultrafast``, ``fast``, ``medium``). ``max_flow_side``: flow is estimated on
    frames downscaled so that their longer side is at most this. ``fine_side``: frames whose flow-working
    longer side is at most this get DIS patches every ``fine_patch_stride`` px, denser than the preset's.
    ``refinement_iterations``: DIS variational refinement iterations per scale. ``occlusion_rel`` /
    ``occlusion_abs``: a pixel counts as occluded when its forward–backward error² exceeds
    ``rel · |flow|² + abs`` (px²). ``occlusion_blur``: Gaussian sigma (px) smoothing the occlusion masks; 0
    disables it. ``occlusion_weight``: how far (0..1) an occluded pixel's blend weight drops. ``fast_search``:
    how far (flow-image px) fast objects are looked for by block matching; 0 turns the search off.
    ``ensemble_pixels``: frames with at least this many pixels get the test-time ensemble (the mean of the
    frames at t from the pair's flow and from the 180°-turned pair's); 0 turns it off.
    """

    preset: str = "medium"
    max_flow_side: int = 512
    fine_side: int = 400
    fine_patch_stride: int = 2
    refinement_iterations: int = 2
    occlusion_rel: float = 0.5
    occlusion_abs: float = 20.0
    occlusion_blur: float = 3.0
    occlusion_weight: float = 0.5
    fast_search: int = 48
    ensemble_pixels: int = 960 * 540

    def __post_init__(self) -> None:
        if self.preset not in _PRESETS:
            raise VFIError(f"preset must be one of {', '.join(_PRESETS)}, got {self.preset!r}.")
        if self.max_flow_side < 32:
            raise VFIError(f"max_flow_side must be at least 32, got {self.max_flow_side}.")
        if self.fine_side < 0:
            raise VFIError(f"fine_side must be >= 0, got {self.fine_side}.")
        if self.fine_patch_stride < 1:
            raise VFIError(f"fine_patch_stride must be at least 1, got {self.fine_patch_stride}.")
        if self.refinement_iterations < 0:
            raise VFIError(f"refinement_iterations must be >= 0, got {self.refinement_iterations}.")
        if self.fast_search < 0:
            raise VFIError(f"fast_search must be >= 0, got {self.fast_search}.")
        if self.ensemble_pixels < 0:
            raise VFIError(f"ensemble_pixels must be >= 0, got {self.ensemble_pixels}.")
        if not 0 <= self.occlusion_weight <= 1:
            raise VFIError(f"occlusion_weight must be between 0 and 1, got {self.occlusion_weight}.")
        for field in ("occlusion_rel", "occlusion_abs", "occlusion_blur"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value >= 0):
                raise VFIError(f"{field} must be a finite number >= 0, got {value}.")


def _warp(image: np.ndarray, flow: np.ndarray, method: int) -> np.ndarray:
    """Backward warp: ``out(x) = image(x + flow(x))``, edges replicated. The map is relative to each pixel, so
    no H×W×2 coordinate grid is built or kept (at 4K each one is 66 MB)."""
    return cv2.remap(image, flow, None, method | cv2.WARP_RELATIVE_MAP, borderMode=cv2.BORDER_REPLICATE)


_PAIR_SUM = np.ones((1, 2), np.float32)


def _squared_length(flow: np.ndarray) -> np.ndarray:
    """|flow|² per pixel, H×W (cv2.transform sums the two channels far faster than numpy's sum over them)."""
    return cv2.transform(flow * flow, _PAIR_SUM)


_MIN_FLOW_SIDE = 16  # the short side of a flow image is kept at least this long (or the frame's, if shorter)
_SHIFT_SIDE = 256  # the global shift is estimated on images at most this large (a prior needs no more)
_COARSE_SIDE = 64  # a first, coarse flow is estimated on images at most this large ...
_LARGE_MOTION = 16.0  # ... and seeds DIS where its 95th-percentile motion exceeds this many flow-image px


def _global_shift(g0: np.ndarray, g1: np.ndarray) -> tuple[float, float]:
    """The dominant translation first→last (phase correlation): a prior that lets DIS follow large pans."""
    height, width = g0.shape
    scale = min(1.0, _SHIFT_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    a, b = (cv2.resize(g, size, interpolation=cv2.INTER_AREA).astype(np.float32) for g in (g0, g1))
    (dx, dy), response = cv2.phaseCorrelate(a, b, cv2.createHanningWindow(size, cv2.CV_32F))
    dx, dy = dx * width / size[0], dy * height / size[1]
    large = response > 0.1 and np.hypot(dx, dy) > 16.0  # small motions: DIS alone does better
    return (dx, dy) if large else (0.0, 0.0)


def _constant_flow(shape: tuple[int, ...], shift: tuple[float, float]) -> np.ndarray:
    """A uniform initial flow for DIS (``np.tile``: assigning a 2-vector to every pixel is 15× slower)."""
    return np.tile(np.float32(shift), (*shape[:2], 1))


_BLOCK = 8  # fast-object blocks are this many flow-image px square ...
_PAD = 4  # ... and matched with this much context around them
_UNEXPLAINED = 32.0  # gray levels of warp error (5×5 mean) above which a pixel is unexplained by the flow
_UNEXPLAINED_SHARE = 0.15  # share of unexplained pixels that makes a block a candidate
_BETTER = 0.5  # a match replaces the flow when its squared error is below this share of the flow's
_CROSS_CHECK = 1.5  # px: matching back from the match must land this close to the block
_MIN_JUMP = 4.0  # px: a match this close to the flow adds nothing
_MAX_BLOCKS = 64  # the most unexplained blocks searched per direction (bounds the cost on chaotic frames)
_UNIQUE = 3.0  # a match counts only if every place farther than _UNIQUE_RADIUS half-resolution px fits this
_UNIQUE_RADIUS = 2  # many times worse (repetitive texture such as blinds or fences matches well in many places)


def _match_fast_blocks(g0: np.ndarray, g1: np.ndarray, flow: np.ndarray, radius: int):
    """Block matching where ``flow`` (g0→g1) leaves the image unexplained.

    Returns the flow with accepted blocks set to their match and a mask (1 = replaced) of those blocks.
    """
    a, b = g0.astype(np.float32), g1.astype(np.float32)
    half_a, half_b = _half(a), _half(b)
    warped = _warp(b, flow, cv2.INTER_LINEAR)
    error = _local_error(a, warped)
    height, width = a.shape
    side = _BLOCK + 2 * _PAD
    # Blocks whose padded template lies inside the image; block (row, col) starts at _PAD + (row, col) · _BLOCK.
    rows, cols = (height - 2 * _PAD) // _BLOCK, (width - 2 * _PAD) // _BLOCK
    unexplained = (error[_PAD : _PAD + rows * _BLOCK, _PAD : _PAD + cols * _BLOCK] > _UNEXPLAINED).astype(np.float32)
    share = cv2.resize(unexplained, (cols, rows), interpolation=cv2.INTER_AREA)  # the mean over each block

    def window(image: np.ndarray, row: int, col: int, dx: int = 0, dy: int = 0) -> np.ndarray | None:
        y, x = row * _BLOCK + dy, col * _BLOCK + dx
        inside = y >= 0 and y + side <= height and x >= 0 and x + side <= width
        return image[y : y + side, x : x + side] if inside else None

    def fits(template: np.ndarray, row: int, col: int, dx: int, dy: int) -> bool:
        """Whether moving by (dx, dy) explains the block far better than the flow does."""
        moved = window(b, row, col, dx, dy)
        current = ((template - window(warped, row, col)) ** 2).sum()
        return moved is not None and ((template - moved) ** 2).sum() < _BETTER * current

    matched: dict[tuple[int, int], tuple[int, int]] = {}
    candidates = np.argwhere(share > _UNEXPLAINED_SHARE)
    worst = np.argsort(-share[tuple(candidates.T)], kind="stable")[:_MAX_BLOCKS]
    for row, col in candidates[worst]:
        template = window(a, row, col)
        match = _best_match(b, half_b, template, col * _BLOCK, row * _BLOCK, radius)
        if match is None:
            continue
        dx, dy = match
        centre = flow[row * _BLOCK + side // 2, col * _BLOCK + side // 2]
        jump = np.hypot(dx - centre[0], dy - centre[1])
        if jump >= _MIN_JUMP and fits(template, row, col, dx, dy):
            back = _best_match(a, half_a, window(b, row, col, dx, dy), col * _BLOCK + dx, row * _BLOCK + dy, radius)
            if back is not None and np.hypot(dx + back[0], dy + back[1]) <= _CROSS_CHECK:
                matched[row, col] = dx, dy
    # Blocks holding only an edge of a fast object take a neighbour's match where it fits them well.
    for row, col in list(matched):
        for n in _neighbours(row, col):
            inside = 0 <= n[0] < rows and 0 <= n[1] < cols
            if n not in matched and inside and share[n] > 0 and fits(window(a, *n), *n, *matched[row, col]):
                matched[n] = matched[row, col]
    flow = flow.copy() if matched else flow  # (most frames match nothing: no copy)
    replaced = np.zeros((height, width), np.float32)
    for (row, col), vector in matched.items():
        block = (
            slice(_PAD + row * _BLOCK, _PAD + (row + 1) * _BLOCK),
            slice(_PAD + col * _BLOCK, _PAD + (col + 1) * _BLOCK),
        )
        flow[block] = vector
        replaced[block] = 1
    return flow, replaced


def _local_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference of two float32 gray images over 5×5 neighbourhoods."""
    return cv2.boxFilter(np.abs(a - b), -1, (5, 5))


def _better_per_pixel(g0: np.ndarray, g1: np.ndarray, flow: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per pixel, whichever of two flows g0→g1 explains g0 better (smaller local warp error)."""
    a, b = g0.astype(np.float32), g1.astype(np.float32)
    errors = [_local_error(a, _warp(b, f, cv2.INTER_LINEAR)) for f in (flow, other)]
    return np.where((errors[1] < errors[0])[..., None], other, flow)


def _neighbours(row: int, col: int) -> list[tuple[int, int]]:
    """The eight blocks around one."""
    return [(row + i, col + j) for i in (-1, 0, 1) for j in (-1, 0, 1) if i or j]


def _half(image: np.ndarray) -> np.ndarray:
    """The image at half resolution (area averaging), where block matching searches first."""
    return cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)


def _best_match(
    image: np.ndarray, half: np.ndarray, template: np.ndarray, x: int, y: int, radius: int
) -> tuple[int, int] | None:
    """Where ``template`` (taken at x, y) fits ``image`` best within ``radius``: (dx, dy), or None when the
    best place is not unique. Coarse to fine: the whole radius on ``half`` (``image`` at half resolution),
    where uniqueness is judged, then ±2 px around that place at full resolution."""
    coarse = _search(half, _half(template), x // 2, y // 2, radius // 2, unique=True)
    if coarse is None:
        return None
    cx, cy = 2 * (x // 2 + coarse[0]), 2 * (y // 2 + coarse[1])
    fine_dx, fine_dy = _search(image, template, cx, cy, 2, unique=False)
    return cx + fine_dx - x, cy + fine_dy - y


def _search(
    image: np.ndarray, template: np.ndarray, x: int, y: int, radius: int, unique: bool
) -> tuple[int, int] | None:
    """Exhaustive template search within ``radius`` of (x, y): (dx, dy) of the least squared difference. With
    ``unique``, None when some place farther than ``_UNIQUE_RADIUS`` fits nearly as well (repetitive texture)."""
    height, width = image.shape
    side_y, side_x = template.shape
    x0, y0 = max(0, x - radius), max(0, y - radius)
    window = image[y0 : min(height, y + side_y + radius), x0 : min(width, x + side_x + radius)]
    cost = cv2.matchTemplate(window, template, cv2.TM_SQDIFF)
    best, _, (mx, my), _ = cv2.minMaxLoc(cost)
    if unique:
        r = _UNIQUE_RADIUS
        cost[max(0, my - r) : my + r + 1, max(0, mx - r) : mx + r + 1] = np.inf
        # An exact match (best = 0) still needs the runner-up to differ by more than noise (1 gray level per pixel).
        if cost.min() < _UNIQUE * best + template.size:
            return None
    return x0 + mx - x, y0 + my - y


def _carry(flow: np.ndarray, mask: np.ndarray, travel: float) -> tuple[np.ndarray, np.ndarray]:
    """Forward splat of the masked pixels (few: the fast blocks): each takes its flow vector to the pixel
    nearest ``x + travel · flow(x)``, halves rounded up: ``np.rint`` rounds them to even, which sends two
    neighbours of a block moving by n + 0.5 px to one pixel and leaves holes between (a striped object).

    Returns the sums of the vectors that land on each pixel (H×W×2) and how many land there (H×W); what
    lands outside the image is dropped.
    """
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    vectors = flow[ys, xs]
    x = np.floor(xs + travel * vectors[:, 0] + 0.5).astype(np.intp)
    y = np.floor(ys + travel * vectors[:, 1] + 0.5).astype(np.intp)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    index, vectors = y[inside] * width + x[inside], vectors[inside]
    size = height * width
    sums = np.zeros((size, 2), np.float32)
    np.add.at(sums, index, vectors)
    count = np.bincount(index, minlength=size).astype(np.float32)
    return sums.reshape(height, width, 2), count.reshape(height, width)


class FlowBackend:
    """Any-t interpolation from bidirectional DIS flow; one flow computation per keyframe pair per call."""

    name = "flow"
    supports_any_t = True
    max_batch = 256

    def __init__(self, config: FlowConfig | None = None) -> None:
        self.config = config or FlowConfig()
        self._dis: dict[bool, cv2.DISOpticalFlow] = {}
        self._coarse_dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def interpolate(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        return [_mean([member.frame_at(r.t) for member in members]) for r, members in self._states(requests)]

    def predict(self, requests: Sequence[FrameRequest]) -> list[FlowPrediction]:
        """:meth:`interpolate`'s frames with the two keyframes warped to t before blending (where they agree,
        the flow is confident)."""
        out = []
        for r, members in self._states(requests):
            parts = [member.warped_at(r.t) for member in members]
            frames = [cv2.blendLinear(*part) for part in parts]
            out.append(FlowPrediction(_mean(frames), _mean([p[0] for p in parts]), _mean([p[1] for p in parts])))
        return out

    def _states(self, requests: Sequence[FrameRequest]) -> Iterator[tuple[FrameRequest, list[_PairState]]]:
        """Each request with its pair's states, computed once per keyframe pair."""
        cache: dict[tuple[int, int], list[_PairState]] = {}
        for r in requests:
            key = (id(r.first), id(r.last))
            if key not in cache:
                cache[key] = self._members(r.first, r.last)
            yield r, cache[key]

    def _members(self, first: np.ndarray, last: np.ndarray) -> list[_PairState]:
        """The pair's state and, on frames of at least ``ensemble_pixels``, the state from the turned pair's
        flow (the ensemble's second member)."""
        plain = self._prepare(first, last)
        pixels = first.shape[0] * first.shape[1]
        if plain.f01 is None or not 0 < self.config.ensemble_pixels <= pixels:
            return [plain]
        return [plain, _PairState(first, last, *self._flows(first, last, turned=True))]

    def _estimator(self, fine: bool) -> cv2.DISOpticalFlow:
        """DIS at half resolution (finest scale 1), with denser patches when ``fine``."""
        if fine not in self._dis:
            dis = cv2.DISOpticalFlow_create(_PRESETS[self.config.preset])
            dis.setFinestScale(min(1, dis.getFinestScale()))
            dis.setVariationalRefinementIterations(self.config.refinement_iterations)
            if fine:
                dis.setPatchStride(min(self.config.fine_patch_stride, dis.getPatchStride()))
            self._dis[fine] = dis
        return self._dis[fine]

    def _flows(self, first: np.ndarray, last: np.ndarray, turned: bool = False) -> tuple[np.ndarray | None, ...]:
        """Forward (first→last) and backward (last→first) flow, the visibility (1 − occlusion weight) of each
        keyframe and the masks of their fast blocks, at the reduced flow scale, in flow-image pixels. With
        ``turned``, all of it is estimated on the pair turned by 180° and turned back."""
        g0 = cv2.cvtColor(first, cv2.COLOR_RGB2GRAY)
        g1 = cv2.cvtColor(last, cv2.COLOR_RGB2GRAY)
        height, width = g0.shape
        # Never below _MIN_FLOW_SIDE on the short side (smaller frames are scaled up): OpenCV's DIS crashes on a
        # wide image under 16 px high.
        scale = max(min(1.0, self.config.max_flow_side / max(height, width)), _MIN_FLOW_SIDE / min(height, width))
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            method = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            g0 = cv2.resize(g0, size, interpolation=method)
            g1 = cv2.resize(g1, size, interpolation=method)
        if turned:
            return tuple(_turn(a) for a in self._flows_of(_turn(g0), _turn(g1)))
        return self._flows_of(g0, g1)

    def _flows_of(self, g0: np.ndarray, g1: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """:meth:`_flows` on gray images at the flow scale."""
        fine = max(g0.shape) <= self.config.fine_side
        dis = self._estimator(fine)
        shift = _global_shift(g0, g1)
        # Always pass an initial flow: OpenCV 5.0's DIS can crash on a size change after a call with one.
        f01 = dis.calc(g0, g1, self._initial_flow(g0, g1, shift))
        f10 = dis.calc(g1, g0, self._initial_flow(g1, g0, (-shift[0], -shift[1])))
        fast0 = fast1 = None
        if self.config.fast_search:
            f01, fast0 = _match_fast_blocks(g0, g1, f01, self.config.fast_search)
            f10, fast1 = _match_fast_blocks(g1, g0, f10, self.config.fast_search)
        vis0, vis1 = self._visibilities(f01, f10)
        return f01, f10, vis0, vis1, fast0, fast1

    def _initial_flow(self, g0: np.ndarray, g1: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
        """DIS's initial flow g0→g1: where the motion is large, a coarse flow estimated at ≤ _COARSE_SIDE px
        (reaching farther than DIS's own coarsest level); else the global shift."""
        height, width = g0.shape
        scale = _COARSE_SIDE / max(height, width)
        if scale < 0.75:  # (a flow image not much larger than the coarse one gains nothing from it)
            size = (max(_MIN_FLOW_SIDE, round(width * scale)), max(_MIN_FLOW_SIDE, round(height * scale)))
            factor = np.float32([size[0] / width, size[1] / height])
            a, b = (cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in (g0, g1))
            coarse = self._coarse_dis.calc(a, b, _constant_flow(a.shape, (0.0, 0.0)))
            if shift != (0.0, 0.0):  # from rest and from the shift (misleading where parts move apart): the better
                from_shift = self._coarse_dis.calc(a, b, _constant_flow(a.shape, tuple(np.float32(shift) * factor)))
                coarse = _better_per_pixel(a, b, coarse, from_shift)
            motion = np.hypot(coarse[..., 0] / factor[0], coarse[..., 1] / factor[1])
            if np.percentile(motion, 95) > _LARGE_MOTION:
                return _resize(coarse, width, height)
        return _constant_flow(g0.shape, shift)

    def _prepare(self, first: np.ndarray, last: np.ndarray) -> _PairState:
        if first.shape != last.shape:
            raise ValueError(f"keyframes differ in size: {first.shape} vs {last.shape}")
        if np.array_equal(first, last):
            return _PairState(first, last, None, None, None, None, None, None)
        return _PairState(first, last, *self._flows(first, last))

    def _visibilities(self, f01: np.ndarray, f10: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Blend weights (1 − occlusion_weight · occlusion) of each keyframe's pixels, from soft masks of the
        pixels whose forward–backward flow round trip does not return home.

        Checked at half the flow resolution (both flows halved once) and scaled back up: the masks are
        blurred anyway, so this measures the same on our sets in a third of the time. Thresholds and blur
        stay in flow-image pixels.
        """
        height, width = f01.shape[:2]
        size = (max(1, width // 2), max(1, height // 2))
        shrink = size[0] / width
        half01, half10 = (cv2.resize(f, size, interpolation=cv2.INTER_AREA) * shrink for f in (f01, f10))

        def visibility(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
            back = _warp(backward, forward, cv2.INTER_LINEAR)
            err = _squared_length(forward + back)
            mag = _squared_length(forward) + _squared_length(back)
            threshold = self.config.occlusion_rel * mag + self.config.occlusion_abs * shrink**2
            occ = (err > threshold).astype(np.float32)
            if self.config.occlusion_blur > 0:
                occ = cv2.GaussianBlur(occ, (0, 0), self.config.occlusion_blur * shrink)
            occ = cv2.resize(occ, (width, height), interpolation=cv2.INTER_LINEAR)
            return 1 - self.config.occlusion_weight * occ

        return visibility(half01, half10), visibility(half10, half01)


@dataclass(frozen=True)
class FlowPrediction:
    """A frame at t and the two keyframes warped there (``first``, ``last``) that it blends."""

    frame: np.ndarray
    first: np.ndarray
    last: np.ndarray


def _mean(frames: list[np.ndarray]) -> np.ndarray:
    """The one frame, or the rounded mean of two (the ensemble's members)."""
    return frames[0] if len(frames) == 1 else cv2.addWeighted(frames[0], 0.5, frames[1], 0.5, 0)


@dataclass(frozen=True)
class _PairState:
    """Per-pair work shared by every t of one call: the keyframes, both flows, visibilities and fast-block
    masks (flow scale; the masks are None when the search is off)."""

    first: np.ndarray
    last: np.ndarray
    f01: np.ndarray | None
    f10: np.ndarray | None
    vis0: np.ndarray | None
    vis1: np.ndarray | None
    fast0: np.ndarray | None
    fast1: np.ndarray | None

    def frame_at(self, t: float) -> np.ndarray:
        return cv2.blendLinear(*self.warped_at(t))

    def warped_at(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Both keyframes warped to ``t`` and their blend weights there."""
        if self.f01 is None:  # identical keyframes
            ones = np.ones(self.first.shape[:2], np.float32)
            return np.array(self.first, copy=True), np.array(self.last, copy=True), ones, ones
        # The first→last motion at each pixel at time t, from the flows at the same place (linear-motion
        # approximation, as in Super-SloMo/RIFE), then the flow from time t back to each keyframe.
        motion = (1 - t) * self.f01 - t * self.f10
        arrived = vacated0 = vacated1 = 0
        fast = self.fast0 is not None and (self.fast0.any() or self.fast1.any())
        if fast:
            # Fast blocks are where their motion carries them by time t, and gone from where they were.
            sum0, count0 = _carry(self.f01, self.fast0, t)
            sum1, count1 = _carry(self.f10, self.fast1, 1 - t)  # last→first vectors: the motion is their negative
            count = count0 + count1
            arrived = np.minimum(count, 1)
            hit = np.nonzero(count)
            motion[hit] = (sum0[hit] - sum1[hit]) / count[hit][:, None]
        ft0, ft1 = -t * motion, (1 - t) * motion
        if fast:
            vacated0 = _warp(self.fast0, ft0, cv2.INTER_LINEAR) * (1 - arrived)
            vacated1 = _warp(self.fast1, ft1, cv2.INTER_LINEAR) * (1 - arrived)
        w0 = (1 - t) * _warp(self.vis0, ft0, cv2.INTER_LINEAR) * (1 - vacated0) + 1e-3
        w1 = t * _warp(self.vis1, ft1, cv2.INTER_LINEAR) * (1 - vacated1) + 1e-3
        height, width = self.first.shape[:2]
        if (height, width) != self.f01.shape[:2]:  # the motion resized once (at t = 0.5 exactly as ft0 and ft1 were)
            motion, w0, w1 = (_resize(a, width, height) for a in (motion, w0, w1))
            ft0 = -t * motion
            ft1 = np.multiply(motion, 1 - t, out=motion)  # in place: a third frame-sized flow would raise the peak
        return _warp(self.first, ft0, cv2.INTER_CUBIC), _warp(self.last, ft1, cv2.INTER_CUBIC), w0, w1


def _turn(a: np.ndarray | None) -> np.ndarray | None:
    """An image, mask or flow (H×W×2) turned by 180° (a flow's vectors turn with it)."""
    if a is None:
        return None
    turned = cv2.flip(a, -1)
    return -turned if a.ndim == 3 else turned


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear upscaling to the frame size; flows (H×W×2) are rescaled to the new pixel units."""
    out = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
    if a.ndim == 3:
        # cv2.multiply: 5× faster than numpy's broadcast over a trailing axis of 2, and with the factors rounded to
        # float32 first, bit-identical to it.
        factors = np.float32([width / a.shape[1], height / a.shape[0]]).tolist()
        cv2.multiply(out, (*factors, 0.0, 0.0), dst=out)
    return out
