"""The flow backend on synthetic pans with known ground truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scenes import panned_triplet, parting_triplet, textured_image, thrown_ball_triplet

from vfi.backends import create_backend
from vfi.backends import flow as flow_module
from vfi.backends.base import FrameRequest
from vfi.backends.crossfade import CrossfadeBackend
from vfi.backends.flow import FlowBackend, FlowConfig, _best_match, _half, _resize
from vfi.errors import VFIError


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def inner(a: np.ndarray, margin: int = 8) -> np.ndarray:
    """Crop the borders, where the pan brings in content neither keyframe has."""
    return a[margin:-margin, margin:-margin]


def middle(backend, first, last, t=0.5) -> np.ndarray:
    return backend.interpolate([FrameRequest(first, last, t)])[0]


@pytest.mark.parametrize("shift,floor", [(4, 35.0), (24, 28.0)])
def test_pan_beats_crossfade(shift, floor):
    first, gt, last = panned_triplet(96, 160, shift=shift)
    out = middle(create_backend("flow"), first, last)
    fade = middle(CrossfadeBackend(), first, last)
    m = shift + 4
    assert psnr(inner(out, m), inner(gt, m)) >= floor
    assert psnr(inner(out, m), inner(gt, m)) > psnr(inner(fade, m), inner(gt, m)) + 5


def test_quarter_time_matches_quarter_shift():
    big = textured_image(96, 160 + 16)
    first, last = big[:, 16:176].copy(), big[:, 0:160].copy()
    quarter = big[:, 12:172]  # a quarter of the way from first to last
    out = middle(FlowBackend(), first, last, t=0.25)
    assert psnr(inner(out, 16), inner(quarter, 16)) >= 33.0


def test_time_is_symmetric():
    first, _, last = panned_triplet(96, 128, shift=6)
    backend = FlowBackend()
    a = middle(backend, first, last, t=0.3)
    b = middle(backend, last, first, t=0.7)
    assert psnr(inner(a, 12), inner(b, 12)) >= 35.0


def test_identical_frames_are_copied():
    frame = textured_image(40, 50)
    out = middle(FlowBackend(), frame, frame, t=0.4)
    assert np.array_equal(out, frame)


def test_batch_computes_flow_once_per_pair(monkeypatch):
    first, _, last = panned_triplet()
    backend = FlowBackend()
    calls = []
    original = backend._flows
    monkeypatch.setattr(backend, "_flows", lambda a, b: calls.append(1) or original(a, b))
    times = [i / 8 for i in range(1, 8)]
    outs = backend.interpolate([FrameRequest(first, last, t) for t in times])
    assert len(calls) == 1
    assert len(outs) == 7
    backend.interpolate([FrameRequest(first, last, 0.5), FrameRequest(last, first, 0.5)])
    assert len(calls) == 3


@pytest.mark.parametrize("shape", [(96, 128), (37, 53)])
def test_dtype_and_shape(shape):
    first = textured_image(*shape, seed=1)
    last = np.roll(first, 2, axis=1)
    out = middle(FlowBackend(), first, last)
    assert out.dtype == np.uint8
    assert out.shape == (*shape, 3)


class SpyEstimator:
    """Wraps a DIS estimator and records the size of every image it is given."""

    def __init__(self, estimator, sizes: list) -> None:
        self.estimator, self.sizes = estimator, sizes

    def calc(self, a, b, flow):
        self.sizes.append(a.shape)
        return self.estimator.calc(a, b, flow)


class BlindEstimator:
    """Sees no motion at all: what DIS returns where a small object outruns its coarse levels."""

    def calc(self, a, b, flow):
        return np.zeros((*a.shape, 2), np.float32)


def ball_error(out: np.ndarray, gt: np.ndarray) -> float:
    """PSNR over the ball's path (the rows it flies along), where a ghost or a gap would show."""
    return psnr(out[30:50], gt[30:50])


def test_a_fast_small_object_lost_by_the_flow_is_found_and_carried():
    first, gt, last = thrown_ball_triplet(radius=4, step=16)
    found, lost = FlowBackend(), FlowBackend(FlowConfig(fast_search=0))
    for backend in (found, lost):
        backend._dis = {fine: BlindEstimator() for fine in (True, False)}
    state = found._prepare(first, last)
    assert state.fast0[40, 40] == 1 and tuple(state.f01[40, 40]) == (32, 0)  # the ball's block, matched
    assert state.fast1[40, 72] == 1 and tuple(state.f10[40, 72]) == (-32, 0)
    assert state.fast0[100, 100] == 0 and not state.f01[100, 100].any()  # the still ground keeps its flow
    assert ball_error(middle(found, first, last), gt) >= 30.0
    assert ball_error(middle(found, first, last), gt) > ball_error(middle(lost, first, last), gt) + 8


def test_a_fast_object_carried_half_a_pixel_off_the_grid_stays_whole():
    # 33 px first→last: at t = 0.5 the ball travels 16.5 px. Rounding half to even (np.rint) sent every
    # other column of it to the same pixel and left the rest as holes: a striped ball (26.3 dB; 33.4 whole).
    first, gt, last = thrown_ball_triplet(radius=4, step=16.5)
    backend = FlowBackend()
    backend._dis = {fine: BlindEstimator() for fine in (True, False)}
    assert ball_error(middle(backend, first, last), gt) >= 30.0


def test_parts_moving_far_apart_are_followed(monkeypatch):
    # 32 px each way between the keyframes: beyond DIS's coarsest level, and the global shift fits only one part.
    first, gt, last = parting_triplet(step=16)
    inside = (slice(8, -8), slice(40, -40))  # away from the edges, where either part brings in new content
    assert psnr(middle(FlowBackend(), first, last)[inside], gt[inside]) >= 28.0
    monkeypatch.setattr(flow_module, "_LARGE_MOTION", float("inf"))  # never seed DIS with the coarse flow
    assert psnr(middle(FlowBackend(), first, last)[inside], gt[inside]) < 20.0


def test_block_matching_refuses_repetitive_texture():
    # Blinds or a fence match equally well one period away: such a match must not replace the flow.
    yy, xx = np.mgrid[0:96, 0:96]
    stripes = np.where(xx % 6 < 3, 60, 200).astype(np.float32)
    assert _best_match(stripes, _half(stripes), stripes[40:56, 40:56], 40, 40, radius=24) is None
    texture = textured_image(96, 96)[..., 0].astype(np.float32)
    assert _best_match(texture, _half(texture), texture[40:56, 51:67], 40, 40, radius=24) == (11, 0)


@pytest.mark.parametrize("height,width", [(16, 600), (600, 16), (16, 16), (12, 40), (1, 1), (3, 1)])
def test_extreme_shapes_keep_a_flow_image_dis_can_take(height, width):
    # A 16×600 frame scaled to 512 px would be 14 px high, and a 12×40 frame is, which crashes OpenCV's DIS
    # (a segfault); tiny frames also broke the phase correlation and the block search.
    image = textured_image(height + 4, width + 4)
    first, last = image[:height, :width].copy(), image[4:, 4:].copy()
    out = middle(FlowBackend(), first, last)
    assert out.shape == first.shape


def test_large_frame_uses_reduced_scale():
    big = textured_image(300, 420 + 16)
    first, last = big[:, 16:].copy(), big[:, :420].copy()
    gt = big[:, 8:428]
    backend = FlowBackend(FlowConfig(max_flow_side=128))
    sizes: list = []
    backend._dis = {fine: SpyEstimator(backend._estimator(fine), sizes) for fine in (True, False)}
    out = middle(backend, first, last)
    assert sizes and all(max(s) <= 128 for s in sizes)
    assert out.shape == first.shape
    assert psnr(inner(out, 20), inner(gt, 20)) >= 30.0


@pytest.mark.parametrize("shape,size", [((100, 37, 2), (333, 97)), ((288, 512, 2), (854, 480)), ((30, 40), (70, 50))])
def test_resizing_a_flow_rescales_it_as_numpy_float32_would(shape, size):
    """_resize scales flows with cv2.multiply (5× numpy's speed); only with its factors rounded to float32 first is
    that bit-identical to numpy's float32 product (in double they are an ulp off where 97 / 100 is)."""
    flow = np.random.default_rng(0).normal(0, 30, shape).astype(np.float32)
    out = _resize(flow, *size)
    expected = cv2.resize(flow, size, interpolation=cv2.INTER_LINEAR)
    if flow.ndim == 3:
        expected = expected * np.float32([size[0] / shape[1], size[1] / shape[0]])
    assert out.dtype == np.float32 and np.array_equal(out, expected)


@pytest.mark.parametrize(
    "field,value",
    [
        ("preset", "slow"),
        ("max_flow_side", 8),
        ("fine_side", -1),
        ("occlusion_rel", -1.0),
        ("occlusion_blur", float("nan")),
        ("fine_patch_stride", 0),
        ("occlusion_weight", 1.5),
        ("fast_search", -1),
        ("refinement_iterations", -1),
        ("ensemble_pixels", -1),
    ],
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(VFIError, match=field):
        FlowConfig(**{field: value})


def test_small_frames_get_denser_patches():
    backend = FlowBackend(FlowConfig(ensemble_pixels=0))  # one member (two DIS calls) per pair at every size
    assert backend._estimator(True).getPatchStride() == FlowConfig().fine_patch_stride
    assert backend._estimator(False).getPatchStride() > FlowConfig().fine_patch_stride
    used: dict[bool, list] = {True: [], False: []}
    backend._dis = {fine: SpyEstimator(backend._estimator(fine), used[fine]) for fine in (True, False)}
    for side in (96, 1000):
        first, _, last = panned_triplet(side * 3 // 4, side, shift=2)
        middle(backend, first, last)
    assert [max(s) for s in used[True]] == [96, 96] and [max(s) for s in used[False]] == [512, 512]


def turned(image: np.ndarray) -> np.ndarray:
    """The image turned by 180°."""
    return np.ascontiguousarray(image[::-1, ::-1])


def test_large_frames_average_the_turned_pair_and_so_turn_with_it():
    # DIS's errors are not rotation-symmetric: alone, turning this pair by 180° changes its frame at t by up to
    # 108 gray levels (40 dB apart). From 960×540 up the frame is the mean of the plain pair's and the turned
    # pair's (turned back), so turning the pair turns the frame (up to rounding).
    first, gt, last = parting_triplet(540, 960, step=16)
    backend = FlowBackend()
    out = middle(backend, first, last)
    assert psnr(out, turned(middle(backend, turned(first), turned(last)))) >= 60.0
    inside = (slice(8, -8), slice(40, -40))
    alone = middle(FlowBackend(FlowConfig(ensemble_pixels=0)), first, last)
    assert psnr(out[inside], gt[inside]) >= psnr(alone[inside], gt[inside]) + 1.0  # 39.2 against 37.2 dB


def test_only_frames_of_ensemble_pixels_and_more_get_the_ensemble():
    backend = FlowBackend()
    sizes: list = []
    backend._dis = {fine: SpyEstimator(backend._estimator(fine), sizes) for fine in (True, False)}
    for height, width in ((450, 800), (540, 960)):  # 360,000 pixels, then FlowConfig().ensemble_pixels
        first, _, last = panned_triplet(height, width, shift=4)
        middle(backend, first, last)
    assert [s[1] for s in sizes] == [512] * 2 + [512] * 4  # two DIS calls per member, one member below


def test_protocol_attributes():
    backend = create_backend("flow")
    assert backend.name == "flow" and backend.supports_any_t and backend.max_batch >= 16
    assert backend.config == FlowConfig()


def test_memory_per_frame_is_bounded_and_nothing_frame_sized_is_kept():
    # Large frames (4K) must not cost memory in proportion to full-size coordinate grids: a cached H×W×2 grid
    # per size stayed behind after each call (3 frames' worth at 1080p) and the warps built two more per frame.
    import tracemalloc

    first, _, last = panned_triplet(1080, 1920, shift=6)
    backend = FlowBackend()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = middle(backend, first, last)
        retained, peak = (size - before for size in tracemalloc.get_traced_memory())
    finally:
        tracemalloc.stop()
    assert retained - out.nbytes < first.nbytes
    # 13.7× today: 12× for one frame at t (a float32 H×W×2 flow is 2.7 frames), and 1080p frames get the
    # ensemble, whose first member's frame is held while the second's is made; it was 19×.
    assert peak < 14 * first.nbytes
