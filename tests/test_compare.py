"""Comparing two backends on the same keyframes: ``python -m vfi compare`` and :func:`vfi.quality.metrics.agreement`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_user_error, run_cli

from vfi.backends.crossfade import CrossfadeBackend
from vfi.backends.flow import FlowBackend
from vfi.errors import VFIError
from vfi.interpolate import InterpolationSettings, interpolate_frames
from vfi.io.images import match_keyframes
from vfi.io.video import probe_clip
from vfi.quality.metrics import agreement, psnr, ssim


def _run(backend, keyframes, depth: int = 2) -> list[np.ndarray]:
    return list(interpolate_frames(keyframes, backend, InterpolationSettings(depth=depth), num_frames=2))


def test_agreement_is_over_the_in_betweens_only(triplet):
    first, middle, last = triplet
    a, b = [first, middle, last], [first, last, last]
    assert agreement(a, b) == (psnr(middle, last), ssim(middle, last))  # the shared keyframes do not count
    assert agreement(a, a) == (math.inf, 1.0)
    with pytest.raises(VFIError, match="same length"):
        agreement(a, a[:2])


def test_cli_compare_says_how_a_mismatched_last_keyframe_was_fitted(tmp_path, keyframe_files):
    Image.fromarray(np.full((40, 200, 3), 128, np.uint8)).save(tmp_path / "wide.png")
    out = tmp_path / "cmp.mp4"
    args = ("-o", str(out), "--depth", "1", "--mismatch", "fit")  # beyond 2× apart: fitted only when asked for
    result = run_cli("compare", str(keyframe_files[0]), str(tmp_path / "wide.png"), *args)
    assert result.returncode == 0, result.stderr
    assert "note: The last keyframe (200×40) was scaled and center-cropped to the first's 128×96" in result.stderr


def test_cli_compare_writes_both_in_sync_and_prints_psnr_ssim(tmp_path, keyframe_files):
    out = tmp_path / "cmp.mp4"
    result = run_cli("compare", *map(str, keyframe_files), "-o", str(out), "--depth", "2", "--against", "crossfade")
    assert result.returncode == 0, result.stderr
    info = probe_clip(out)
    assert (info.num_frames, info.width, info.height) == (5, 2 * 128, 96)
    pair = match_keyframes(*keyframe_files)
    keyframes = (pair.first, pair.last)
    flow, fade = _run(FlowBackend(), keyframes), _run(CrossfadeBackend(), keyframes)
    mean_psnr, mean_ssim = agreement(flow, fade)
    assert result.stdout.startswith(
        f"flow vs crossfade: in-betweens (mean of 3): PSNR {mean_psnr:.2f} dB, SSIM {mean_ssim:.4f};"
    )
    assert f"middle frame: PSNR {psnr(flow[2], fade[2]):.2f} dB" in result.stdout
    assert_user_error(run_cli("compare", *map(str, keyframe_files), "-o", str(out), "--depth", "9"))
    assert_user_error(run_cli("compare", *map(str, keyframe_files), "-o", str(tmp_path), "--against", "flow"))
