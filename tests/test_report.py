"""The clip quality report (vfi.modes.report): drop frames, rebuild them, score them; library and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scenes import textured_image
from test_cli import assert_user_error, run_cli

from vfi.backends import create_backend
from vfi.errors import VFIError
from vfi.modes.clip import ClipSettings, plan_clip
from vfi.modes.report import report_clip, score_clip

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "clip.mp4"


def panned(count: int, step: int = 8, seed: int = 1) -> list[np.ndarray]:
    texture = textured_image(48, 64 + step * count, seed=seed)
    return [texture[:, step * i : step * i + 64].copy() for i in range(count)]


def test_flow_rebuilds_a_pan_better_than_a_blend() -> None:
    frames = panned(9)
    flow = score_clip(iter(frames), 10.0, create_backend("flow"), scene_threshold=0.2)
    blend = score_clip(iter(frames), 10.0, create_backend("crossfade"), scene_threshold=0.2)
    assert [row.index for row in flow.rows] == [1, 3, 5, 7]
    assert [row.time for row in flow.rows] == [0.1, 0.3, 0.5, 0.7]
    assert flow.psnr > blend.psnr + 5 and flow.ssim > blend.ssim
    data = blend.to_dict()
    assert data["n"] == 4 and data["backend"] == "crossfade" and data["skipped_at_cuts"] == 0
    assert [w["psnr"] for w in data["worst"]] == sorted(w["psnr"] for w in data["worst"])
    assert data["worst"][0]["psnr"] == min(f["psnr"] for f in data["frames"])


def test_factor_4_keeps_every_fourth_frame() -> None:
    report = score_clip(iter(panned(9)), 10.0, create_backend("flow"), factor=4, scene_threshold=0.2)
    assert [row.index for row in report.rows] == [1, 2, 3, 5, 6, 7]


def test_windows_across_a_cut_are_skipped() -> None:
    frames = panned(5, seed=1) + panned(4, seed=7)  # a cut between frames 4 and 5
    report = score_clip(iter(frames), 10.0, create_backend("crossfade"), scene_threshold=0.2)
    assert [row.index for row in report.rows] == [1, 3, 7] and report.skipped == 1
    with pytest.raises(VFIError, match="no frames to score"):
        score_clip(iter(frames[:2]), 10.0, create_backend("crossfade"), scene_threshold=0.2)


def test_a_trimmed_clip_reports_times_in_the_whole_clip() -> None:
    plan = plan_clip(EXAMPLE, ClipSettings(start=1.0))
    report = report_clip(plan, create_backend("flow"))
    assert [row.index for row in report.rows] == [13, 15, 17, 19, 21]
    assert report.rows[0].time == pytest.approx(13 / 12)


def test_cli_clip_writes_the_report(tmp_path: Path) -> None:
    out, report = tmp_path / "out.mp4", tmp_path / "r.json"
    result = run_cli("clip", str(EXAMPLE), "-o", str(out), "--factor", "2", "--report", str(report))
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["n"] == 11 and data["psnr"] > 35 and 0.9 < data["ssim"] <= 1
    assert len(data["worst"]) == 5 and {"index", "time", "psnr", "ssim"} == set(data["worst"][0])
    assert "flow rebuilt 11 dropped frames" in result.stderr and out.is_file()


def test_cli_report_beside_the_output_is_refused_before_work(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    assert_user_error(run_cli("clip", str(EXAMPLE), "-o", str(out), "--report", str(out)))
    assert not out.exists()
