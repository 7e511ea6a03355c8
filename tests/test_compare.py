"""Comparing two backends on the same keyframes: ``python -m vfi compare`` and :func:`vfi.metrics.agreement`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_cli import assert_user_error, run_cli

from vfi.backends.crossfade import CrossfadeBackend
from vfi.backends.flow import FlowBackend
from vfi.errors import VFIError
from vfi.frames import load_keyframes
from vfi.interpolate import InterpolationSettings, interpolate_frames
from vfi.metrics import agreement, psnr, ssim
from vfi.video import probe_clip


def _run(backend, keyframes, depth: int = 2) -> list[np.ndarray]:
    return list(interpolate_frames(keyframes, backend, InterpolationSettings(depth=depth), num_frames=2))


def test_agreement_is_over_the_in_betweens_only(triplet):
    first, middle, last = triplet
    a, b = [first, middle, last], [first, last, last]
    assert agreement(a, b) == (psnr(middle, last), ssim(middle, last))  # the shared keyframes do not count
    assert agreement(a, a) == (math.inf, 1.0)
    with pytest.raises(VFIError, match="same length"):
        agreement(a, a[:2])


def test_cli_compare_writes_both_in_sync_and_prints_psnr_ssim(tmp_path, keyframe_files):
    out = tmp_path / "cmp.mp4"
    result = run_cli("compare", *map(str, keyframe_files), "-o", str(out), "--depth", "2", "--against", "crossfade")
    assert result.returncode == 0, result.stderr
    info = probe_clip(out)
    assert (info.num_frames, info.width, info.height) == (5, 2 * 128, 96)
    keyframes = load_keyframes(*keyframe_files)
    flow, fade = _run(FlowBackend(), keyframes), _run(CrossfadeBackend(), keyframes)
    mean_psnr, mean_ssim = agreement(flow, fade)
    assert result.stdout.startswith(
        f"flow vs crossfade: in-betweens (mean of 3): PSNR {mean_psnr:.2f} dB, SSIM {mean_ssim:.4f};"
    )
    assert f"middle frame: PSNR {psnr(flow[2], fade[2]):.2f} dB" in result.stdout
    assert_user_error(run_cli("compare", *map(str, keyframe_files), "-o", str(out), "--depth", "9"))
    assert_user_error(run_cli("compare", *map(str, keyframe_files), "-o", str(tmp_path), "--against", "flow"))
