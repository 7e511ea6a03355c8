"""Clip mode: counts, timing, audio, scene cuts, duplicates, limits and cancelling (crossfade backend)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from scenes import textured_image

from vfi.backends import create_backend
from vfi.errors import Cancelled, VFIError
from vfi.io.video import ffmpeg_exe, probe_clip, read_frames, write_mp4
from vfi.modes.clip import ClipSettings, check_clip, interpolate_clip


@pytest.fixture
def crossfade():
    return create_backend("crossfade")


def panned(count: int, seed: int = 1, width: int = 64, height: int = 48, step: int = 3) -> list[np.ndarray]:
    texture = textured_image(height, width + step * count, seed=seed)
    return [texture[:, step * i : step * i + width].copy() for i in range(count)]


def moving_square(positions: list[int], width: int = 96, height: int = 48) -> list[np.ndarray]:
    frames = []
    for x in positions:
        frame = np.full((height, width, 3), 30, np.uint8)
        frame[16:32, x : x + 16] = 230
        frames.append(frame)
    return frames


def centroid_x(frame: np.ndarray) -> float:
    weight = np.clip(frame[..., 1].astype(np.float64) - 30, 0, None)
    return float((weight * np.arange(frame.shape[1])).sum() / weight.sum())


def test_a_probed_clip_is_not_probed_again(tmp_path: Path, crossfade, monkeypatch) -> None:
    import vfi.modes.clip

    info = check_clip(write_mp4(panned(5), tmp_path / "in.mp4", fps=10), ClipSettings())
    monkeypatch.setattr(vfi.modes.clip, "probe_clip", lambda path: pytest.fail("probed again"))
    assert check_clip(info, ClipSettings(factor=4)) == info
    assert interpolate_clip(info, tmp_path / "out.mp4", crossfade, ClipSettings()).num_frames == 9
    with pytest.raises(VFIError, match="limit"):
        check_clip(info, ClipSettings(max_frames=3))


def test_factor_counts_and_duration(tmp_path: Path, crossfade) -> None:
    clip = write_mp4(panned(5), tmp_path / "in.mp4", fps=10)
    for factor in (2, 4, 8):
        result = interpolate_clip(clip, tmp_path / f"x{factor}.mp4", crossfade, ClipSettings(factor=factor))
        info = probe_clip(result.path)
        assert result.num_frames == info.num_frames == 4 * factor + 1
        assert result.fps == info.fps == 10 * factor
        assert abs(result.duration - 0.5) < 1 / 10  # same duration, within one input frame
        assert (result.scene_cuts, result.duplicates) == (0, 0)


def test_slowmo_keeps_fps_and_drops_audio(tmp_path: Path, crossfade) -> None:
    clip = tmp_path / "in.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(clip),
        ],
        check=True,
    )
    normal = interpolate_clip(clip, tmp_path / "normal.mp4", crossfade, ClipSettings(factor=2))
    assert normal.has_audio and probe_clip(normal.path).has_audio
    slow = interpolate_clip(clip, tmp_path / "slow.mp4", crossfade, ClipSettings(factor=4, slowmo=True))
    assert (slow.num_frames, slow.fps) == (9 * 4 + 1, 10)
    assert slow.duration == pytest.approx(3.7)
    assert not slow.has_audio and not probe_clip(slow.path).has_audio
    assert any("audio" in note for note in slow.notes)


def test_scene_cut_repeats_the_earlier_frame(tmp_path: Path, crossfade) -> None:
    frames = panned(4, seed=1) + panned(4, seed=7)
    clip = write_mp4(frames, tmp_path / "in.mp4", fps=10, crf=0)
    source = list(read_frames(clip))
    result = interpolate_clip(clip, tmp_path / "out.mp4", crossfade, ClipSettings(factor=4, crf=0))
    assert result.scene_cuts == 1
    out = list(read_frames(result.path))
    assert len(out) == 7 * 4 + 1

    def diff(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(int) - b).mean())

    for k in range(12, 16):  # the interval between input frames 3 and 4 (the cut)
        assert diff(out[k], source[3]) < 2, "frames across a cut must repeat the earlier frame"
    assert diff(out[16], source[4]) < 2
    assert diff(out[14], (source[3].astype(int) + source[4]) // 2) > 10  # not a blend
    assert diff(out[2], (source[0].astype(int) + source[1]) // 2) < 2  # normal motion is interpolated


def test_duplicates_do_not_stutter(tmp_path: Path, crossfade) -> None:
    positions = [0, 8, 16, 16, 24, 32, 32, 32, 40, 48]  # one duplicate, then two in a row
    clip = write_mp4(moving_square(positions), tmp_path / "in.mp4", fps=10, crf=0)
    result = interpolate_clip(clip, tmp_path / "out.mp4", crossfade, ClipSettings(factor=2, crf=0))
    assert result.duplicates == 3 and result.scene_cuts == 0
    xs = [centroid_x(frame) for frame in read_frames(result.path)]
    assert len(xs) == 9 * 2 + 1
    assert all(b - a > 0.5 for a, b in zip(xs, xs[1:])), f"motion stalls: {np.round(xs, 1)}"
    assert xs[0] == pytest.approx(7.5, abs=0.5) and xs[-1] == pytest.approx(55.5, abs=0.5)


def test_a_long_pause_stays_still(tmp_path: Path, crossfade) -> None:
    positions = [0, 8] + [16] * 6 + [24, 32]
    clip = write_mp4(moving_square(positions), tmp_path / "in.mp4", fps=10, crf=0)
    result = interpolate_clip(clip, tmp_path / "out.mp4", crossfade, ClipSettings(factor=2, crf=0))
    xs = [centroid_x(frame) for frame in read_frames(result.path)]
    assert result.duplicates == 0
    assert np.ptp(xs[4:15]) < 0.5  # input frames 2..7 hold still, as in the source


def test_progress_and_cancel(tmp_path: Path, crossfade) -> None:
    clip = write_mp4(panned(6), tmp_path / "in.mp4", fps=10)
    seen: list[tuple[int, int]] = []
    interpolate_clip(
        clip, tmp_path / "out.mp4", crossfade, ClipSettings(factor=4), on_progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (15, 15) and all(t == 15 for _, t in seen)
    (tmp_path / "out.mp4").unlink()
    with pytest.raises(Cancelled):
        interpolate_clip(
            clip,
            tmp_path / "out.mp4",
            crossfade,
            ClipSettings(factor=4),
            on_progress=lambda d, t: seen.append((d, t)),
            should_cancel=lambda: seen[-1][0] >= 6,
        )
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"]


def test_a_cancelled_clip_leaves_no_decoder_running(tmp_path: Path, crossfade) -> None:
    """The decoding ffmpeg ends with the run, not when the garbage collector gets to it (the error is still held)."""
    import psutil

    clip = write_mp4(panned(30), tmp_path / "in.mp4", fps=10)
    done: list[int] = []
    with pytest.raises(Cancelled, match=r"Stopped after 3 of \d+ frames\.") as stopped:
        interpolate_clip(
            clip,
            tmp_path / "out.mp4",
            crossfade,
            ClipSettings(factor=2),
            on_progress=lambda d, t: done.append(d),
            should_cancel=lambda: len(done) >= 3,
        )
    assert stopped.value.__traceback__ is not None
    assert [p.name() for p in psutil.Process().children(recursive=True)] == []
    assert not (tmp_path / "out.mp4").exists()


def test_limits_are_checked_before_running(tmp_path: Path) -> None:
    clip = write_mp4(panned(5), tmp_path / "in.mp4", fps=10)
    assert check_clip(clip, ClipSettings()).num_frames == 5
    with pytest.raises(VFIError, match="5 frames; the limit is 4"):
        check_clip(clip, ClipSettings(max_frames=4))
    with pytest.raises(VFIError, match=r"0\.5 s long; the limit is 0\.2 s"):
        check_clip(clip, ClipSettings(max_seconds=0.2))
    fast = write_mp4(panned(3), tmp_path / "fast.mp4", fps=60)
    with pytest.raises(VFIError, match="240 fps limit"):
        check_clip(fast, ClipSettings(factor=8))
    assert check_clip(fast, ClipSettings(factor=8, slowmo=True)).fps == 60
    single = write_mp4(panned(1), tmp_path / "single.mp4", fps=10)
    with pytest.raises(VFIError, match="at least 2"):
        check_clip(single, ClipSettings())


@pytest.mark.parametrize("side", [8, 12])
def test_clips_too_small_for_a_keyframe_are_refused(tmp_path: Path, side: int) -> None:
    clip = write_mp4(panned(3, width=side, height=side), tmp_path / "tiny.mp4", fps=10)
    with pytest.raises(VFIError, match=f"tiny.mp4 is too small: {side}×{side}; each side must be at least 16"):
        check_clip(clip, ClipSettings())


def test_bad_input_leaves_no_output(tmp_path: Path, crossfade) -> None:
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"\x00" * 1000)
    with pytest.raises(VFIError):
        interpolate_clip(bogus, tmp_path / "out.mp4", crossfade, ClipSettings())
    with pytest.raises(VFIError, match="does not exist"):
        interpolate_clip(tmp_path / "nothing.mp4", tmp_path / "out.mp4", crossfade, ClipSettings())
    assert [p.name for p in tmp_path.iterdir()] == ["bogus.mp4"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("factor", 3),
        ("max_seconds", 0),
        ("max_frames", 1),
        ("scene_threshold", 0),
        ("duplicate_threshold", -1),
        ("crf", 60),
        ("seed", -1),
    ],
)
def test_settings_are_validated(field: str, value: object) -> None:
    with pytest.raises(VFIError, match=field):
        ClipSettings(**{field: value})
