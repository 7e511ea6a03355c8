"""Confidence fallback: an implausible generated frame is named (blank, saturated, far from a confident flow
prediction); a plausible one (the true middle, blurred or a little shifted) is not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scenes import panned_triplet

from vfi.backends.base import FrameRequest
from vfi.backends.fallback import implausible
from vfi.backends.flow import FlowBackend
from vfi.qwen.registration import GlobalMotion, apply_global_motion


@pytest.fixture(scope="module")
def case():
    first, middle, last = panned_triplet()
    return middle, FlowBackend().predict([FrameRequest(first, last, 0.5)])[0]


def test_the_prediction_holds_the_keyframes_warped_to_t(case):
    middle, prediction = case
    first, _, last = panned_triplet()
    assert np.array_equal(prediction.frame, FlowBackend().interpolate([FrameRequest(first, last, 0.5)])[0])
    for warped in (prediction.first, prediction.last):
        assert np.abs(warped[8:-8, 8:-8].astype(int) - middle[8:-8, 8:-8]).mean() < 3


@pytest.mark.parametrize(
    "make", [lambda m: m, lambda m: cv2.GaussianBlur(m, (0, 0), 2.0), lambda m: apply_global_motion(m, GlobalMotion(3))]
)
def test_a_plausible_frame_is_kept(case, make):
    middle, prediction = case
    assert implausible(make(middle), prediction) is None


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (lambda m: np.full_like(m, 128), "blank"),
        (lambda m: np.where(m > 100, 255, 0).astype(np.uint8), "saturated"),
        (lambda m: np.random.default_rng(0).integers(0, 256, m.shape, dtype=np.uint8), "disagrees"),
        (lambda m: np.ascontiguousarray(m[::-1]), "disagrees"),
    ],
    ids=["blank", "saturated", "noise", "another frame"],
)
def test_an_implausible_frame_is_named(case, frame, reason):
    middle, prediction = case
    assert implausible(frame(middle), prediction).startswith(reason)


def test_a_fade_to_black_is_not_blank():
    black = np.zeros((96, 128, 3), np.uint8)
    prediction = FlowBackend().predict([FrameRequest(black, black.copy(), 0.5)])[0]
    assert implausible(black, prediction) is None
