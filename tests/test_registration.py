"""Global shift/zoom registration: known motions on synthetic textures are recovered and undone, and on
views of real photos a good frame is never made worse by a wrong reference while a shift is still removed."""

from __future__ import annotations

import numpy as np
import pytest
from scenes import textured_image

from benchmarks.registration import PHOTOS, WRONG_REFERENCE, cases, run_case
from vfi.backends.flow import FlowBackend
from vfi.io.images import load_image
from vfi.quality.metrics import psnr
from vfi.qwen.registration import GlobalMotion, apply_global_motion, estimate_global_motion, register_to


def moved_pair(
    motion: GlobalMotion, height: int = 240, width: int = 320, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(moving, reference): centre crops of a larger texture before and after ``motion`` (no border effects)."""
    margin = max(height, width) // 4
    big = textured_image(height + 2 * margin, width + 2 * margin, seed)
    crop = np.s_[margin : margin + height, margin : margin + width]
    return apply_global_motion(big, motion)[crop], big[crop]


def assert_close(estimate: GlobalMotion, truth: GlobalMotion, shift_tol: float = 0.2, scale_tol: float = 0.005) -> None:
    assert abs(estimate.dx - truth.dx) <= shift_tol, (estimate, truth)
    assert abs(estimate.dy - truth.dy) <= shift_tol, (estimate, truth)
    assert abs(estimate.scale - truth.scale) <= scale_tol, (estimate, truth)


@pytest.mark.parametrize(
    "truth",
    [
        GlobalMotion(dx=3.5, dy=-2.0),
        GlobalMotion(scale=1.04),
        GlobalMotion(dx=2.0, dy=1.0, scale=0.97),
        GlobalMotion(dx=-12.0, dy=8.0, scale=0.92),
    ],
    ids=["shift", "zoom", "shift+zoom-out", "large"],
)
def test_known_motion_is_recovered(truth):
    moving, reference = moved_pair(truth)
    assert_close(estimate_global_motion(moving, reference), truth)


def test_register_to_aligns_with_reference():
    moving, reference = moved_pair(GlobalMotion(dx=-5.0, dy=3.0, scale=1.06))
    inner = np.s_[16:-16, 16:-16]  # the undone zoom-in replicates a few border pixels
    assert psnr(moving[inner], reference[inner]) < 25
    registered, motion = register_to(moving, reference)
    assert registered.shape == moving.shape and registered.dtype == np.uint8
    assert psnr(registered[inner], reference[inner]) > 35
    assert not motion.is_identity(0.01)


def test_a_foreign_object_does_not_spoil_the_estimate():
    truth = GlobalMotion(dx=2.0, dy=-3.0, scale=1.05)
    moving, reference = moved_pair(truth)
    moving[10:110, 200:300] = textured_image(100, 100, seed=7)  # 13% of the frame is new content
    assert_close(estimate_global_motion(moving, reference), truth)


def test_identical_images_give_the_identity():
    image = textured_image(120, 160, seed=2)
    assert estimate_global_motion(image, image).is_identity(1e-3)
    registered, _ = register_to(image, image)
    assert psnr(registered, image) > 50


@pytest.mark.parametrize("kind", ["noise", "textures"])
def test_unrelated_images_give_the_identity(kind):
    rng = np.random.default_rng(0)
    if kind == "noise":
        a, b = (rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(2))
    else:
        a, b = textured_image(240, 320, seed=3), textured_image(240, 320, seed=13)
    assert estimate_global_motion(a, b) == GlobalMotion()
    registered, _ = register_to(a, b)
    np.testing.assert_array_equal(registered, a)


def test_zoom_beyond_max_scale_change_is_refused():
    moving, reference = moved_pair(GlobalMotion(scale=1.06))
    assert estimate_global_motion(moving, reference, max_scale_change=0.03) == GlobalMotion()


@pytest.mark.parametrize("size", [(101, 77), (33, 47)])
def test_odd_sizes(size):
    truth = GlobalMotion(dx=1.5, dy=-1.0, scale=1.02)
    moving, reference = moved_pair(truth, *size)
    tol = 0.2 if min(size) > 64 else 0.5  # a 33-pixel frame has little texture to go on
    assert_close(estimate_global_motion(moving, reference), truth, shift_tol=tol, scale_tol=0.01)


def test_tiny_frames_give_the_identity():
    image = textured_image(8, 9)
    assert estimate_global_motion(image, image[::-1].copy()) == GlobalMotion()


def test_full_hd_frame_is_estimated_at_reduced_size():
    truth = GlobalMotion(dx=7.0, dy=-4.5, scale=1.03)
    reference = textured_image(1080, 1920, seed=4)
    moving = apply_global_motion(reference, truth)
    assert_close(estimate_global_motion(moving, reference), truth, shift_tol=0.3)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_apply_keeps_shape_and_dtype_and_inverse_undoes_it(dtype):
    frame = textured_image(61, 83, seed=5).astype(dtype)
    motion = GlobalMotion(dx=2.25, dy=-1.5, scale=1.03)
    moved = apply_global_motion(frame, motion)
    assert moved.shape == frame.shape and moved.dtype == frame.dtype
    back = apply_global_motion(moved, motion.inverse())
    inner = np.s_[8:-8, 8:-8]
    assert np.abs(back[inner].astype(np.float32) - frame[inner]).mean() < 2.0
    identity = apply_global_motion(frame, GlobalMotion())
    np.testing.assert_array_equal(identity, frame)
    assert identity is not frame


def test_invalid_inputs_are_refused():
    image = textured_image(32, 32)
    with pytest.raises(ValueError, match="scale"):
        GlobalMotion(scale=0.0)
    with pytest.raises(ValueError, match="dx"):
        GlobalMotion(dx=float("nan"))
    with pytest.raises(ValueError, match="shape"):
        estimate_global_motion(image, image[:16])
    with pytest.raises(ValueError, match="max_scale_change"):
        estimate_global_motion(image, image, max_scale_change=0.0)


@pytest.fixture(scope="module")
def flow() -> FlowBackend:
    return FlowBackend()


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.stem)
def test_a_wrong_reference_costs_a_near_perfect_frame_at_most_0_3_db(path, flow):
    """Keyframes up to 1.8x zoom or 20 degrees apart, a reference off by 2-16 px, a pan beyond the flow's
    reach, a repeated texture: the reference is wrong, the frame is right."""
    photo = load_image(path)
    grid = [case for case in cases() if case.group in WRONG_REFERENCE]
    assert {case.group for case in grid} == set(WRONG_REFERENCE) and len(grid) >= 28
    for case in grid:
        _, before, after, _, _ = run_case(photo, case, flow)
        assert after >= before - 0.3, (case.label, before, after)


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.stem)
def test_a_3_to_6_px_shift_of_the_generated_frame_is_removed(path, flow):
    photo = load_image(path)
    for case in (case for case in cases() if case.group == "jitter"):
        _, before, after, _, motion = run_case(photo, case, flow)
        assert_close(motion, GlobalMotion(*case.jitter), shift_tol=0.1, scale_tol=0.001)
        assert after > 35 and after > before + 10, (case.label, before, after)


@pytest.mark.parametrize("shift", [0.4, 0.8])
def test_a_sub_pixel_correction_is_not_applied(shift):
    """Resampling costs more than a sub-pixel correction removes: the frame comes back untouched."""
    moving, reference = moved_pair(GlobalMotion(dx=shift, dy=-shift / 2))
    assert abs(estimate_global_motion(moving, reference).dx - shift) < 0.1  # it is seen ...
    registered, motion = register_to(moving, reference)
    assert motion == GlobalMotion()  # ... but not applied
    np.testing.assert_array_equal(registered, moving)


def test_largest_displacement_is_at_a_corner():
    assert GlobalMotion(dx=3.0, dy=-4.0).largest_displacement(100, 50) == pytest.approx(5.0)
    assert GlobalMotion(scale=1.02).largest_displacement(101, 51) == pytest.approx(0.02 * np.hypot(50, 25))
    assert GlobalMotion(dx=1.0, scale=1.02).largest_displacement(101, 1) == pytest.approx(2.0)


def panned_keyframes(pan: float = 8.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, middle, last): centre crops of a texture panned by ``pan`` px, split evenly about the middle."""
    first, middle = moved_pair(GlobalMotion(dx=-pan / 2))
    return first, middle, moved_pair(GlobalMotion(dx=pan / 2))[0]


@pytest.mark.parametrize("shift", [(2.0, 0.0), (0.0, -5.0), (12.0, 0.0)])
def test_a_reference_off_by_a_translation_is_not_followed(shift):
    """The frame is right and the reference is off: the keyframes put the frame at their midpoint."""
    first, middle, last = panned_keyframes()
    reference = moved_pair(GlobalMotion(*shift))[0]
    registered, motion = register_to(middle, reference, (first, last))
    assert motion == GlobalMotion()
    np.testing.assert_array_equal(registered, middle)


def test_the_keyframes_confirm_a_jitter():
    first, middle, last = panned_keyframes()
    jittered = moved_pair(GlobalMotion(dx=3.0, dy=-2.0))[0]
    _, motion = register_to(jittered, middle, (first, last))
    assert_close(motion, GlobalMotion(dx=3.0, dy=-2.0))


def test_a_correction_beyond_the_known_jitter_is_not_applied():
    moving, reference = moved_pair(GlobalMotion(dx=-15.0, dy=6.0))  # 16 px: the reference's error, not jitter
    assert_close(estimate_global_motion(moving, reference), GlobalMotion(dx=-15.0, dy=6.0))
    assert register_to(moving, reference)[1] == GlobalMotion()
