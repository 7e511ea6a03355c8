"""Confidence fallback: a generated frame that is implausible is replaced by the flow backend's frame.

A frame is implausible when it is blank (nearly one colour) or saturated (mostly pure black or white)
while the flow frame is not, or when, where the flow is confident (its two keyframes warped to t agree),
it disagrees with the flow frame far beyond the keyframes' own disagreement there. A frame with
non-finite values never reaches here: the pipeline refuses it (``vfi.qwen.pipeline.NonFiniteOutput``).
"""

from __future__ import annotations

import cv2
import numpy as np

from vfi.backends.flow import FlowPrediction

#: A frame whose gray levels deviate by less than this (standard deviation) is blank ...
BLANK_STD = 2.0
#: ... and a frame with more than this fraction of its values at 0 or 255 is saturated, unless the flow
#: frame is so too (a fade to black, a white sky).
SATURATED_FRACTION = 0.5
#: A pixel is confident when its two warped keyframes differ by less than this many gray levels (blurred).
CONFIDENT_LEVELS = 12.0
#: The disagreement is judged only where at least this fraction of the frame is confident.
MIN_CONFIDENT_FRACTION = 0.25
#: Where confident, a frame falls back when it differs from the flow frame by more than this many times the
#: keyframes' own mean difference, and by more than :data:`MIN_DISAGREEMENT` gray levels on average. On
#: a panned texture and three real triplets, plausible frames (the true middle, blurred by 2 px, shifted
#: by 3 px) differ by at most 7.2 levels; noise or an unrelated frame by at least 19.4.
DISAGREEMENT_RATIO = 4.0
MIN_DISAGREEMENT = 14.0


def implausible(frame: np.ndarray, prediction: FlowPrediction) -> str | None:
    """Why ``frame`` (uint8 RGB) is implausible beside the flow ``prediction`` of it, or None if it is not."""
    gray, flow = (_gray(image) for image in (frame, prediction.frame))
    if gray.std() < BLANK_STD <= flow.std():
        return "blank"
    saturated, flow_saturated = (float(np.mean((x == 0) | (x == 255))) for x in (frame, prediction.frame))
    if saturated > SATURATED_FRACTION and saturated > 2 * flow_saturated:
        return "saturated"
    own = np.abs(_gray(prediction.first) - _gray(prediction.last))
    confident = own < CONFIDENT_LEVELS
    if confident.mean() < MIN_CONFIDENT_FRACTION:
        return None
    disagreement = float(np.abs(gray - flow)[confident].mean())
    if disagreement > max(DISAGREEMENT_RATIO * float(own[confident].mean()), MIN_DISAGREEMENT):
        return f"disagrees with the flow frame ({disagreement:.0f} gray levels where the flow is confident)"
    return None


def fallback_note(record: dict) -> str:
    """One line on a generated frame that fell back (a backend's ``fallbacks`` record: seed, t, reason)."""
    return f"the generated frame with seed {record['seed']} fell back to the flow frame: {record['reason']}"


def _gray(image: np.ndarray) -> np.ndarray:
    """Float32 grayscale, slightly blurred (fine detail and noise are not disagreement)."""
    return cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 2.0)
