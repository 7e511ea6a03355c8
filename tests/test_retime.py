"""Any target frame rate (vfi.modes.retime), trims and the scene threshold: library and CLI."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_user_error, run_cli

from vfi.backends import create_backend
from vfi.errors import VFIError
from vfi.io.video import probe_clip, read_frames, write_mp4
from vfi.modes.clip import ClipSettings, interpolate_clip, plan_clip
from vfi.modes.retime import nearest_depth, output_positions, parse_rate

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "clip.mp4"


def square_clip(path: Path, count: int, fps: float, step: int = 6) -> Path:
    """A bright square moving ``step`` px right per frame on a dark background."""
    frames = []
    for i in range(count):
        frame = np.full((64, 256, 3), 30, np.uint8)
        frame[16:48, 8 + step * i : 40 + step * i] = 230
        frames.append(frame)
    return write_mp4(frames, path, fps=fps, crf=0)


def centroid_x(frame: np.ndarray) -> float:
    weight = np.clip(frame[..., 1].astype(np.float64) - 30, 0, None)
    return float((weight * np.arange(frame.shape[1])).sum() / weight.sum())


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("60", Fraction(60)),
        ("59.94", Fraction(60000, 1001)),
        ("29.97", Fraction(30000, 1001)),
        ("23.976", Fraction(24000, 1001)),
        ("60000/1001", Fraction(60000, 1001)),
        ("12.5", Fraction(25, 2)),
    ],
)
def test_rates_are_exact_fractions(text: str, rate: Fraction) -> None:
    assert parse_rate(text) == rate


def test_a_rate_that_is_not_a_number_is_one_sentence() -> None:
    with pytest.raises(VFIError, match=r"The frame rate 'fast' is not a number \(e\.g\. 60"):
        parse_rate("fast")


def test_positions_keep_the_duration_and_never_drift() -> None:
    positions = output_positions(48, Fraction(24), Fraction(60))  # 2 s at 24 fps → 120 frames at 60 fps
    assert len(positions) == 120 and positions[:4] == [0, Fraction(2, 5), Fraction(4, 5), Fraction(6, 5)]
    assert positions[-1] == 47  # past the last input frame: it is held
    ntsc = output_positions(300, Fraction(30000, 1001), Fraction(60000, 1001))
    assert ntsc == [Fraction(k, 2) for k in range(599)] + [Fraction(299)]
    assert nearest_depth(Fraction(24), Fraction(60)) == 1 and nearest_depth(Fraction(15), Fraction(60)) == 2


@pytest.mark.parametrize("backend", ["crossfade", "flow"])
def test_24_to_60_puts_each_frame_at_its_time(tmp_path: Path, backend: str) -> None:
    clip = square_clip(tmp_path / "in.mp4", 12, fps=24)
    result = interpolate_clip(clip, tmp_path / "out.mp4", create_backend(backend), ClipSettings(fps=Fraction(60)))
    out = probe_clip(result.path)
    assert (result.num_frames, out.num_frames, out.fps) == (30, 30, 60)
    assert out.duration == pytest.approx(probe_clip(clip).duration)
    source = [centroid_x(f) for f in read_frames(clip)]
    for k, frame in enumerate(read_frames(result.path)):
        p = min(Fraction(k * 24, 60), Fraction(11))
        i = int(p)
        expected = source[i] + float(p - i) * ((source[i + 1] if i < 11 else source[i]) - source[i])
        assert centroid_x(frame) == pytest.approx(expected, abs=1.0), k


def test_a_cut_holds_the_frame_before_it_at_any_fps(tmp_path: Path) -> None:
    dark, bright = np.full((48, 64, 3), 20, np.uint8), np.full((48, 64, 3), 235, np.uint8)
    clip = write_mp4([dark] * 4 + [bright] * 4, tmp_path / "cut.mp4", fps=10, crf=0)
    plan = plan_clip(clip, ClipSettings(fps=Fraction(25)))
    result = interpolate_clip(plan, tmp_path / "out.mp4", create_backend("crossfade"))
    assert result.scene_cuts == 1
    means = [float(f.mean()) for f in read_frames(result.path)]
    assert all(m < 40 or m > 215 for m in means)  # nothing blended across the cut
    lenient = plan_clip(clip, ClipSettings(fps=Fraction(25), scene_threshold=1.0))
    blended = interpolate_clip(lenient, tmp_path / "blend.mp4", create_backend("crossfade"))
    assert any(40 < float(f.mean()) < 215 for f in read_frames(blended.path))


def test_trims_keep_their_frames_and_audio(tmp_path: Path) -> None:
    settings = ClipSettings(factor=2, start=0.5, end=1.5)
    plan = plan_clip(EXAMPLE, settings)
    assert plan.frame_range == range(6, 18)
    result = interpolate_clip(plan, tmp_path / "out.mp4", create_backend("crossfade"))
    out = probe_clip(result.path)
    assert (out.num_frames, out.fps, out.has_audio) == (23, 24, True)
    first = next(read_frames(result.path)).astype(int)
    assert np.abs(first - list(read_frames(EXAMPLE))[6]).mean() < 3
    with pytest.raises(VFIError, match=r"clip.mp4 has 0 frame\(s\) from 3 s to the end \(it is 2.00 s long\)"):
        plan_clip(EXAMPLE, ClipSettings(start=3.0))
    with pytest.raises(VFIError, match=r"clip.mp4 as trimmed is 1.0 s long; the limit is 0.5 s."):
        plan_clip(EXAMPLE, ClipSettings(start=1.0, max_seconds=0.5))
    with pytest.raises(VFIError, match=r"end must be a number of seconds after start \(1\)"):
        ClipSettings(start=1.0, end=0.5)
    with pytest.raises(VFIError, match="Give a target fps or slow motion, not both."):
        ClipSettings(fps=Fraction(60), slowmo=True)


def test_cli_clip_at_a_target_fps_keeps_duration_and_audio(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = run_cli("clip", str(EXAMPLE), "-o", str(out), "--fps", "29.97", "--scene-threshold", "0.3")
    assert result.returncode == 0, result.stderr
    info, source = probe_clip(out), probe_clip(EXAMPLE)
    assert info.has_audio and info.num_frames == 60 and info.fps == pytest.approx(30000 / 1001)
    assert abs(info.duration - source.duration) < 0.01
    trimmed = run_cli("clip", str(EXAMPLE), "-o", str(tmp_path / "t.mp4"), "--start", "1", "--fps", "24")
    assert trimmed.returncode == 0, trimmed.stderr
    assert probe_clip(tmp_path / "t.mp4").num_frames == 24


@pytest.mark.parametrize(
    "args", ["--fps 0", "--fps fast", "--fps 60 --slowmo", "--start 5", "--start 1 --end 1", "--scene-threshold 2"]
)
def test_cli_timing_errors_are_one_line(tmp_path: Path, args: str) -> None:
    assert_user_error(run_cli("clip", str(EXAMPLE), "-o", str(tmp_path / "o.mp4"), *args.split()))
    assert not (tmp_path / "o.mp4").exists()


def test_the_gpu_estimate_counts_what_a_midpoint_only_backend_makes_at_a_target_fps() -> None:
    from vfi.app.jobs import ClipJob
    from vfi.backends import Capabilities

    plan = plan_clip(EXAMPLE, ClipSettings(fps=Fraction(30)))  # 12 → 30 fps: depth 1, a midpoint per interval
    assert (plan.midpoint_depth, plan.midpoint_frames, plan.frames_to_make) == (1, 23, 46)
    assert ClipJob("qwen-edit", settings=plan.settings, clip=(plan, "out.mp4")).frames_to_make() == 23
    assert ClipJob("flow", settings=plan.settings, clip=(plan, "out.mp4"), report=True).frames_to_make() == 46 + 11
    deeper = plan_clip(EXAMPLE, ClipSettings(fps=Fraction(48)))
    assert (deeper.midpoint_depth, deeper.midpoint_frames) == (2, 23 * 3)
    hybrid = ClipJob("qwen-edit", settings=plan.settings, clip=(plan, "out.mp4"), refine="flow")
    assert not plan.midpoints_only(Capabilities("qwen-edit"), Capabilities("flow"))  # the run keeps its refine
    assert hybrid.frames_to_make() == plan.frames_to_make  # at most: the levels past generative_depth are flow's


def test_a_long_variable_rate_clip_trimmed_under_the_limit_is_taken(tmp_path: Path) -> None:
    from test_video import vfr_clip

    vfr = vfr_clip(tmp_path / "vfr.mp4", 0.5)  # 6 s
    with pytest.raises(VFIError, match=r"vfr\.mp4 is 6\.0 s long; the limit is 5 s\."):
        plan_clip(vfr, ClipSettings(max_seconds=5))  # refused at the probe, before it is decoded
    plan = plan_clip(vfr, ClipSettings(end=4.0, max_seconds=5))
    assert len(plan.frame_range) == 120


@pytest.mark.parametrize("fps", ["0.0001", "1/100000", "0.05"])
def test_a_target_fps_below_the_lowest_is_refused_before_any_work(tmp_path, fps):
    from vfi.io.video import MIN_FPS

    with pytest.raises(VFIError, match=f"fps must be a number from {MIN_FPS:g} to 240"):
        ClipSettings(fps=parse_rate(fps))
    result = run_cli("clip", str(EXAMPLE), "-o", str(tmp_path / "o.mp4"), "--fps", fps)
    assert_user_error(result)
    assert "fps must be a number from 0.1 to 240" in result.stderr and "partial" not in result.stderr
    with pytest.raises(VFIError, match="fps must be a number from 0.1"):
        write_mp4([np.zeros((16, 16, 3), np.uint8)] * 2, tmp_path / "x.mp4", fps=0.0001)
    assert list(tmp_path.iterdir()) == []


def test_rates_are_read_in_ascii_digits_only():
    with pytest.raises(VFIError, match="is not a number"):
        parse_rate("٦٠")
