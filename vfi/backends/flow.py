"""The CPU default: bidirectional DIS optical flow, backward warping to time t, occlusion-aware blending."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vfi.backends.base import FrameRequest

cv2.setNumThreads(2)

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class FlowConfig:
    """Settings of :class:`FlowBackend`; the defaults are tuned on the Middlebury and UCF101 triplets.

    ``preset``: DIS preset (``ultrafast``, ``fast``, ``medium``). ``max_flow_side``: flow is estimated on
    frames downscaled so that their longer side is at most this (keeps large frames ~linear in cost).
    ``fine_side``: frames whose flow-working longer side is at most this get DIS patches every
    ``fine_patch_stride`` px, denser than the preset's (small frames have the time to spare; on UCF101's
    320×240 it gains 0.2 dB for 5 ms). ``occlusion_rel`` / ``occlusion_abs``: a pixel counts as occluded
    when its forward–backward error² exceeds ``rel · |flow|² + abs`` (px²). ``occlusion_blur``: Gaussian sigma (px) smoothing the
    occlusion masks; 0 disables it. ``occlusion_weight``: how far (0..1) an occluded pixel's blend weight
    drops; below 1 hedges against false occlusions.
    """

    preset: str = "medium"
    max_flow_side: int = 512
    fine_side: int = 400
    fine_patch_stride: int = 2
    occlusion_rel: float = 0.5
    occlusion_abs: float = 20.0
    occlusion_blur: float = 3.0
    occlusion_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.preset not in _PRESETS:
            raise ValueError(f"preset must be one of {', '.join(_PRESETS)}, got {self.preset!r}")
        if self.max_flow_side < 32:
            raise ValueError(f"max_flow_side must be at least 32, got {self.max_flow_side}")
        if self.fine_side < 0:
            raise ValueError(f"fine_side must be >= 0, got {self.fine_side}")
        if self.fine_patch_stride < 1:
            raise ValueError(f"fine_patch_stride must be at least 1, got {self.fine_patch_stride}")
        if not 0 <= self.occlusion_weight <= 1:
            raise ValueError(f"occlusion_weight must be between 0 and 1, got {self.occlusion_weight}")
        for field in ("occlusion_rel", "occlusion_abs", "occlusion_blur"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{field} must be a finite number >= 0, got {value}")


@functools.lru_cache(maxsize=8)
def _grid(height: int, width: int) -> np.ndarray:
    """Pixel coordinates (x, y) of an image of this size, H×W×2; cached and read-only."""
    grid = np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
    grid.flags.writeable = False
    return grid


def _warp(image: np.ndarray, flow: np.ndarray, grid: np.ndarray, method: int) -> np.ndarray:
    """Backward warp: ``out(x) = image(x + flow(x))``, edges replicated."""
    return cv2.remap(image, grid + flow, None, method, borderMode=cv2.BORDER_REPLICATE)


_SHIFT_SIDE = 256  # the global shift is estimated on images at most this large (a prior needs no more)


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
    """A uniform initial flow for DIS."""
    flow = np.empty((*shape[:2], 2), np.float32)
    flow[...] = shift
    return flow


class FlowBackend:
    """Any-t interpolation from bidirectional DIS flow; one flow computation per keyframe pair per call."""

    name = "flow"
    supports_any_t = True
    max_batch = 256

    def __init__(self, config: FlowConfig | None = None) -> None:
        self.config = config or FlowConfig()
        self._dis: dict[bool, cv2.DISOpticalFlow] = {}

    def interpolate(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        cache: dict[tuple[int, int], _PairState] = {}
        out = []
        for r in requests:
            key = (id(r.first), id(r.last))
            if key not in cache:
                cache[key] = self._prepare(r.first, r.last)
            out.append(cache[key].frame_at(r.t))
        return out

    def _estimator(self, fine: bool) -> cv2.DISOpticalFlow:
        """DIS at half resolution (finest scale 1), with denser patches when ``fine``."""
        if fine not in self._dis:
            dis = cv2.DISOpticalFlow_create(_PRESETS[self.config.preset])
            dis.setFinestScale(min(1, dis.getFinestScale()))
            if fine:
                dis.setPatchStride(min(self.config.fine_patch_stride, dis.getPatchStride()))
            self._dis[fine] = dis
        return self._dis[fine]

    def _flows(self, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, ...]:
        """Forward (first→last) and backward (last→first) flow and the visibility (1 − occlusion weight) of
        each keyframe, at the reduced flow scale, in flow-image pixels."""
        g0 = cv2.cvtColor(first, cv2.COLOR_RGB2GRAY)
        g1 = cv2.cvtColor(last, cv2.COLOR_RGB2GRAY)
        height, width = g0.shape
        scale = min(1.0, self.config.max_flow_side / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            g0 = cv2.resize(g0, size, interpolation=cv2.INTER_AREA)
            g1 = cv2.resize(g1, size, interpolation=cv2.INTER_AREA)
        fine = max(g0.shape) <= self.config.fine_side
        dis = self._estimator(fine)
        shift = _global_shift(g0, g1)
        # Always pass an initial flow: OpenCV 5.0's DIS can crash on a size change after a call with one.
        f01 = dis.calc(g0, g1, _constant_flow(g0.shape, shift))
        f10 = dis.calc(g1, g0, _constant_flow(g0.shape, (-shift[0], -shift[1])))
        grid = _grid(*g0.shape)
        vis0 = 1 - self.config.occlusion_weight * self._occlusion(f01, f10, grid)
        vis1 = 1 - self.config.occlusion_weight * self._occlusion(f10, f01, grid)
        return f01, f10, vis0, vis1

    def _prepare(self, first: np.ndarray, last: np.ndarray) -> _PairState:
        if first.shape != last.shape:
            raise ValueError(f"keyframes differ in size: {first.shape} vs {last.shape}")
        if np.array_equal(first, last):
            return _PairState(first, last, None, None, None, None)
        return _PairState(first, last, *self._flows(first, last))

    def _occlusion(self, forward: np.ndarray, backward: np.ndarray, grid) -> np.ndarray:
        """Soft mask (0..1) of pixels whose forward–backward flow round trip does not return home."""
        back = _warp(backward, forward, grid, cv2.INTER_LINEAR)
        fx, fy = cv2.split(forward)
        bx, by = cv2.split(back)
        err = (fx + bx) ** 2 + (fy + by) ** 2
        mag = fx * fx + fy * fy + bx * bx + by * by
        occ = (err > self.config.occlusion_rel * mag + self.config.occlusion_abs).astype(np.float32)
        if self.config.occlusion_blur > 0:
            occ = cv2.GaussianBlur(occ, (0, 0), self.config.occlusion_blur)
        return occ


@dataclass(frozen=True)
class _PairState:
    """Per-pair work shared by every t of one call: the keyframes, both flows and visibilities (flow scale)."""

    first: np.ndarray
    last: np.ndarray
    f01: np.ndarray | None
    f10: np.ndarray | None
    vis0: np.ndarray | None
    vis1: np.ndarray | None

    def frame_at(self, t: float) -> np.ndarray:
        if self.f01 is None:  # identical keyframes
            return np.array(self.first, copy=True)
        # The first→last motion at each pixel at time t, from the flows at the same place (linear-motion
        # approximation, as in Super-SloMo/RIFE), then the flow from time t back to each keyframe.
        motion = (1 - t) * self.f01 - t * self.f10
        ft0, ft1 = -t * motion, (1 - t) * motion
        grid = _grid(*self.f01.shape[:2])
        w0 = (1 - t) * _warp(self.vis0, ft0, grid, cv2.INTER_LINEAR) + 1e-3
        w1 = t * _warp(self.vis1, ft1, grid, cv2.INTER_LINEAR) + 1e-3
        height, width = self.first.shape[:2]
        if (height, width) != self.f01.shape[:2]:
            ft0, ft1, w0, w1 = (_resize(a, width, height) for a in (ft0, ft1, w0, w1))
        grid = _grid(height, width)
        warped0 = _warp(self.first, ft0, grid, cv2.INTER_CUBIC)
        warped1 = _warp(self.last, ft1, grid, cv2.INTER_CUBIC)
        return cv2.blendLinear(warped0, warped1, w0, w1)


def _resize(a: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear upscaling to the frame size; flows (H×W×2) are rescaled to the new pixel units."""
    out = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
    if a.ndim == 3:
        out *= np.float32([width / a.shape[1], height / a.shape[0]])
    return out
