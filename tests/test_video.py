"""vfi.io.video: probing, reading and the MP4 / GIF / PNG writers, on clips made here with the bundled ffmpeg."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scenes import textured_image

from vfi.errors import Cancelled, VFIError
from vfi.io.video import ffmpeg_exe, probe_clip, read_frames, write_gif, write_mp4, write_png_frames


def ffmpeg(*args: str) -> str:
    """Run the bundled ffmpeg; return its stderr (the stream description when only ``-i`` is given)."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True, text=True)
    return result.stderr


def lavfi_clip(path: Path, *, seconds: float = 2, fps: int = 10, audio: bool = True, size: str = "96x64") -> Path:
    inputs = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    ffmpeg("-v", "error", "-y", *inputs, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    return path


def panned(count: int, width: int = 64, height: int = 48, step: int = 3) -> list[np.ndarray]:
    texture = textured_image(height, width + step * count, seed=1)
    return [texture[:, step * i : step * i + width].copy() for i in range(count)]


def container_duration(path: Path) -> float:
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", ffmpeg("-i", str(path))).groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_mp4_round_trip(tmp_path: Path) -> None:
    frames = panned(12)
    path = write_mp4(iter(frames), tmp_path / "out.mp4", fps=12)
    info = probe_clip(path)
    assert (info.num_frames, info.fps, info.width, info.height) == (12, 12.0, 64, 48)
    assert not info.has_audio and not info.variable_frame_rate
    assert info.duration == pytest.approx(1.0)
    stream = ffmpeg("-i", str(path))
    assert re.search(r"Video: h264 .*yuv420p", stream)
    data = path.read_bytes()
    assert 0 < data.index(b"moov") < data.index(b"mdat"), "faststart: moov must come before mdat"
    back = list(read_frames(path))
    assert len(back) == 12 and back[0].dtype == np.uint8 and back[0].shape == (48, 64, 3)
    for original, decoded in zip(frames, back):
        assert np.abs(original.astype(int) - decoded).mean() < 4
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_odd_size_is_padded_not_rescaled(tmp_path: Path) -> None:
    frame = textured_image(241, 321, seed=2)
    info = probe_clip(write_mp4([frame, frame], tmp_path / "odd.mp4", fps=5))
    assert (info.width, info.height) == (322, 242)
    decoded = next(read_frames(tmp_path / "odd.mp4"))
    assert np.abs(decoded[:241, :321].astype(int) - frame).mean() < 3  # same pixels, not resampled
    assert np.abs(decoded[:, 321].astype(int) - decoded[:, 320]).mean() < 3  # replicated edge


def test_1080p_stays_1080(tmp_path: Path) -> None:
    frame = np.zeros((1080, 1920, 3), np.uint8)
    info = probe_clip(write_mp4([frame, frame], tmp_path / "hd.mp4", fps=30))
    assert (info.width, info.height) == (1920, 1080)


def test_audio_is_carried_over(tmp_path: Path) -> None:
    source = lavfi_clip(tmp_path / "src.mp4", seconds=2, fps=10)
    assert probe_clip(source).has_audio
    out = write_mp4(read_frames(source), tmp_path / "out.mp4", fps=10, audio_from=source)
    info = probe_clip(out)
    assert info.has_audio and info.num_frames == 20
    assert abs(container_duration(out) - 2.0) <= 1 / 10


def audio_seconds(path: Path) -> float:
    """The decoded length of ``path``'s audio track (samples at 48 kHz, mono), 0 without one."""
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a?", "-f", "s16le", "-ac", "1", "-ar", "48000", "-"]
    return len(subprocess.run(cmd, capture_output=True, check=True).stdout) / 2 / 48000


@pytest.mark.parametrize(("frames", "fps"), [(60, 20), (19, 20), (48, 24)])
def test_audio_is_padded_or_cut_to_exactly_the_videos_length(tmp_path: Path, frames: int, fps: int) -> None:
    """Frames that arrive fast (a crossfade, a dry run) once made ffmpeg's -shortest cut the audio at a random
    point (0.25 s of 3) or fail; audio shorter (1 s) and longer (5 s) than the video, three times each."""
    video = [np.full((48, 64, 3), 5 * i % 256, np.uint8) for i in range(frames)]
    for seconds in (1, 5):
        source = lavfi_clip(tmp_path / f"src{seconds}.mp4", seconds=seconds)
        for _ in range(3):
            out = write_mp4(video, tmp_path / "out.mp4", fps=fps, audio_from=source)
            assert audio_seconds(out) == pytest.approx(frames / fps, abs=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "src1.mp4", "src5.mp4"]  # no temporary left


def test_audio_from_a_silent_clip_gives_no_audio(tmp_path: Path) -> None:
    source = lavfi_clip(tmp_path / "silent.mp4", audio=False)
    out = write_mp4(read_frames(source), tmp_path / "out.mp4", fps=10, audio_from=source)
    assert not probe_clip(out).has_audio


def test_gif_loops_with_every_frame(tmp_path: Path) -> None:
    frames = panned(7)
    with Image.open(write_gif(frames, tmp_path / "out.gif", fps=10)) as gif:
        assert gif.n_frames == 7
        assert gif.info["loop"] == 0
        assert gif.size == (64, 48)


def test_gif_width_is_capped(tmp_path: Path) -> None:
    frame = textured_image(100, 200)
    with Image.open(write_gif([frame, frame], tmp_path / "out.gif", fps=10, max_width=100)) as gif:
        assert gif.size == (100, 50)


def test_png_frames_in_order(tmp_path: Path) -> None:
    frames = [np.full((8, 10, 3), 20 * i, np.uint8) for i in range(12)]
    folder = write_png_frames(iter(frames), tmp_path / "frames")
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(12)]
    for i, name in enumerate(names):
        assert np.array_equal(np.asarray(Image.open(folder / name)), frames[i])


def failing_frames(exception: Exception):
    yield from panned(3)
    raise exception


@pytest.mark.parametrize("exception", [Cancelled("stop"), RuntimeError("boom")])
@pytest.mark.parametrize("writer", ["mp4", "gif", "png"])
def test_writers_leave_nothing_behind_on_error(tmp_path: Path, writer: str, exception: Exception) -> None:
    write = {
        "mp4": lambda frames: write_mp4(frames, tmp_path / "out.mp4", fps=10),
        "gif": lambda frames: write_gif(frames, tmp_path / "out.gif", fps=10),
        "png": lambda frames: write_png_frames(frames, tmp_path / "frames"),
    }[writer]
    threads = threading.active_count()
    with pytest.raises(type(exception)):
        write(failing_frames(exception))
    assert list(tmp_path.iterdir()) == []
    assert threading.active_count() == threads  # the thread that fed ffmpeg ended with it


def test_mixed_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(VFIError, match="same size"):
        write_mp4([np.zeros((48, 64, 3), np.uint8), np.zeros((50, 64, 3), np.uint8)], tmp_path / "out.mp4", fps=10)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fps", [0, -1, 241, float("nan")])
def test_bad_fps_is_refused(tmp_path: Path, fps: float) -> None:
    with pytest.raises(VFIError, match="fps"):
        write_mp4(panned(2), tmp_path / "out.mp4", fps=fps)


def test_no_frames_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VFIError, match="no frames"):
        write_mp4([], tmp_path / "out.mp4", fps=10)
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(VFIError, match="does not exist"):
        probe_clip(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(VFIError, match="not a readable video"):
        probe_clip(text)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(lavfi_clip(tmp_path / "full.mp4").read_bytes()[:3000])
    with pytest.raises(VFIError):
        probe_clip(truncated)
    audio_only = tmp_path / "audio.m4a"
    ffmpeg("-v", "error", "-f", "lavfi", "-i", "sine=duration=1", str(audio_only))
    with pytest.raises(VFIError, match="no video stream"):
        probe_clip(audio_only)


def test_zero_frame_video_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    ffmpeg("-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "0", "-c:v", "libx264", str(empty))
    with pytest.raises(VFIError):
        probe_clip(empty)


def vfr_clip(path: Path, slow: float) -> Path:
    """10 frames ``slow`` s apart, then 30 frames at 30 fps (1 s): a variable-frame-rate clip."""
    ffmpeg(
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=30",
        "-frames:v",
        "40",
        "-vf",
        f"setpts='if(lt(N,10),N*{slow}/TB,({10 * slow:g}+(N-10)/30)/TB)'",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-video_track_timescale",
        "30000",
        str(path),
    )
    return path


def test_variable_frame_rate_is_resampled(tmp_path: Path) -> None:
    vfr = vfr_clip(tmp_path / "vfr.mp4", 0.1)
    info = probe_clip(vfr)
    assert info.variable_frame_rate
    assert info.fps == 30.0
    assert info.num_frames == 60 and info.duration == pytest.approx(2.0)
    assert sum(1 for _ in read_frames(vfr, info=info)) == 60


def test_a_long_variable_rate_clip_is_refused_before_it_is_decoded(tmp_path: Path, monkeypatch) -> None:
    import vfi.io.video

    vfr = vfr_clip(tmp_path / "vfr.mp4", 0.5)

    def decode(*args):
        raise AssertionError("the clip was decoded")

    monkeypatch.setattr(vfi.io.video, "_count_decoded", decode)
    with pytest.raises(VFIError, match=r"vfr\.mp4 is 6\.0 s long; the limit is 5 s\."):
        probe_clip(vfr, max_seconds=5)


def test_constant_rate_clip_is_not_vfr(tmp_path: Path) -> None:
    path = lavfi_clip(tmp_path / "cfr.mp4", seconds=2, fps=25)
    info = probe_clip(path)
    assert not info.variable_frame_rate
    assert (info.fps, info.num_frames, info.has_audio) == (25.0, 50, True)
    assert sum(1 for _ in read_frames(path, info=info)) == 50
