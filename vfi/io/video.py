"""Video I/O through the bundled ffmpeg: probe and read clips, write MP4 / GIF / PNG frames.

Every writer is atomic (a temporary name beside the target, renamed on success) and streams its
frames, so a generator of frames can feed it without holding the whole video in memory.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO

import numpy as np

from vfi.errors import VFIError
from vfi.io.files import atomic_dir, atomic_path, check_input, check_output

MAX_FPS = 240.0
#: The file endings taken as videos where a folder is searched for clips (training data, ``vfi batch``).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
#: The lowest frame rate written (one frame every 10 s): ffmpeg's rationals go no finer (see :func:`fps_arg`).
MIN_FPS = 0.1
#: Frames handed to ffmpeg by a background thread while the next ones are made (writing blocks while the
#: encoder is busy; one process made a 600-frame flow clip ≈ 10 % faster on 2 cores: docs/scale_out.md).
FRAMES_WRITTEN_AHEAD = 2
#: The files :func:`write_png_frames` writes (its folder may hold nothing else: it is replaced whole).
FRAME_NAME = re.compile(r"frame_\d{4,}\.png")
#: A clip is variable-frame-rate if a frame interval differs from the typical one by more than this.
VFR_TOLERANCE = 0.25
#: x264 settings shared by :func:`write_mp4` and the encode benchmark.
X264_ARGS = ("-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p")
#: Tag and convert as BT.709 (what browsers assume for untagged HD video).
COLOUR_ARGS = (
    "-vf",
    "scale=out_color_matrix=bt709:out_range=tv,setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709",
)


@dataclass(frozen=True)
class ClipInfo:
    """What :func:`probe_clip` found. ``num_frames`` and ``fps`` are those :func:`read_frames` delivers
    (for a variable-frame-rate clip: after resampling to a constant ``fps``)."""

    path: Path
    fps: float
    num_frames: int
    width: int
    height: int
    duration: float
    has_audio: bool
    variable_frame_rate: bool


def ffmpeg_exe() -> str:
    """The path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def fps_arg(fps: float) -> str:
    """``fps`` as an exact ffmpeg rational (29.97… → ``30000/1001``)."""
    rate = Fraction(fps).limit_denominator(1001)
    return f"{rate.numerator}/{rate.denominator}"


def check_fps(fps: float | Fraction) -> None:
    """Refuse a frame rate outside :data:`MIN_FPS` to :data:`MAX_FPS` (in one sentence, before any work)."""
    if not (isinstance(fps, int | float | Fraction) and math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise VFIError(f"fps must be a number from {MIN_FPS:g} to {MAX_FPS:g}, got {float(fps)!r}.")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no details"


# --- probing and reading -------------------------------------------------------------------------


def _stream_header(stderr: str) -> tuple[int, int, bool]:
    """(width, height, has_audio) from ffmpeg's description of the input (displayed orientation)."""
    video = re.search(r"Stream #0:\d+.*?: Video: .*?, (\d{1,5})x(\d{1,5})", stderr)
    if video is None:
        raise VFIError("no video stream")
    width, height = int(video.group(1)), int(video.group(2))
    rotation = re.search(r"rotation of (-?[\d.]+) degrees", stderr)
    if rotation and round(abs(float(rotation.group(1)))) % 180 == 90:
        width, height = height, width
    has_audio = re.search(r"Stream #0:\d+.*?: Audio: ", stderr) is not None
    return width, height, has_audio


def _packet_times(stdout: str) -> list[Fraction]:
    """Presentation times (seconds, sorted) of the video packets listed by ffmpeg's framecrc muxer."""
    tb = re.search(r"^#tb 0: (\d+)/(\d+)", stdout, re.MULTILINE)
    if tb is None:
        return []
    base = Fraction(int(tb.group(1)), int(tb.group(2)))
    pts = [int(line.split(",")[2]) for line in stdout.splitlines() if line and not line.startswith("#")]
    return sorted(p * base for p in pts)


def _frame_rate(times: list[Fraction]) -> tuple[float, bool]:
    """(rate, variable): the typical rate for a constant-rate clip; the peak rate for a variable one."""
    if len(times) < 2:
        return 25.0, False
    gaps = np.diff(np.array(times, dtype=np.float64))
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return 25.0, False
    typical = float(np.median(gaps))
    variable = bool(np.any(np.abs(gaps - typical) > VFR_TOLERANCE * typical))
    rate = 1.0 / float(np.percentile(gaps, 10)) if variable else (len(times) - 1) / float(times[-1] - times[0])
    rate = min(float(Fraction(rate).limit_denominator(1001)), MAX_FPS)
    return rate, variable


def _decode_args(path: Path, info: ClipInfo | None) -> list[str]:
    args = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
    ]
    if info is not None and info.variable_frame_rate:
        args += ["-vf", f"fps={fps_arg(info.fps)}"]
    return args


def check_duration(name: str, seconds: float, max_seconds: float | None) -> None:
    """Refuse a clip longer than ``max_seconds`` (None: no limit)."""
    if max_seconds is not None and seconds > max_seconds:
        raise VFIError(f"{name} is {seconds:.1f} s long; the limit is {max_seconds:g} s.")


def probe_clip(path: str | os.PathLike, *, max_seconds: float | None = None) -> ClipInfo:
    """Describe the clip at ``path``; refuse anything that is not a readable video with frames.

    A variable-frame-rate clip is decoded once to count its frames; ``max_seconds`` refuses a longer clip
    before that, from the container's packet times.
    """
    path = check_input(path, f"The video {Path(path).name}")
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-f",
        "framecrc",
        "-",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    try:
        width, height, has_audio = _stream_header(result.stderr)
    except VFIError:
        reason = "has no video stream" if "Input #0" in result.stderr else "is not a readable video file"
        raise VFIError(f"{path.name} {reason}.") from None
    times = _packet_times(result.stdout)
    if result.returncode != 0 or not times:
        detail = (
            "contains no video frames" if result.returncode == 0 else f"could not be read ({_last_line(result.stderr)})"
        )
        raise VFIError(f"{path.name} {detail}.")
    fps, variable = _frame_rate(times)
    info = ClipInfo(path, fps, len(times), width, height, len(times) / fps, has_audio, variable)
    if variable:
        check_duration(path.name, float(times[-1] - times[0]), max_seconds)
        count = _count_decoded(path, info)
        info = ClipInfo(path, fps, count, width, height, count / fps, has_audio, True)
    return info


def _count_decoded(path: Path, info: ClipInfo) -> int:
    """Frames that :func:`read_frames` will deliver, counted by decoding with the same filters."""
    cmd = [*_decode_args(path, info), "-f", "null", "-", "-v", "info", "-stats"]
    result = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    counts = re.findall(r"frame=\s*(\d+)", result.stderr)
    if result.returncode != 0 or not counts or int(counts[-1]) == 0:
        raise VFIError(f"{path.name} could not be decoded ({_last_line(result.stderr)}).")
    return int(counts[-1])


def read_frames(path: str | os.PathLike, *, info: ClipInfo | None = None) -> Iterator[np.ndarray]:
    """Yield the clip's frames as H×W×3 uint8 RGB arrays (a variable-rate clip resampled to ``info.fps``).

    ``info`` is the clip's :func:`probe_clip` result (probed here if not given).
    """
    path = Path(path)
    info = info or probe_clip(path)
    frame_bytes = info.width * info.height * 3
    with tempfile.TemporaryFile() as log:
        cmd = [*_decode_args(path, info), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, bufsize=0)
        try:
            while True:
                buffer = bytearray(frame_bytes)
                if _read_exact(proc.stdout, buffer) < frame_bytes:
                    break
                yield np.frombuffer(buffer, np.uint8).reshape(info.height, info.width, 3)
            if proc.wait() != 0:
                log.seek(0)
                raise VFIError(f"{path.name} could not be decoded ({_last_line(log.read().decode(errors='replace'))}).")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()


def _read_exact(stream: IO[bytes], buffer: bytearray) -> int:
    view, got = memoryview(buffer), 0
    while got < len(buffer):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


# --- writing -------------------------------------------------------------------------------------


class _FrameChecker:
    """Checks that frames are H×W×3 uint8 of one size and pads odd sizes to even (edge replicated)."""

    def __init__(self, first: np.ndarray) -> None:
        self.shape = self._check(first).shape
        self.pad = ((0, self.shape[0] % 2), (0, self.shape[1] % 2), (0, 0))
        self.height, self.width = self.shape[0] + self.pad[0][1], self.shape[1] + self.pad[1][1]

    @staticmethod
    def _check(frame: np.ndarray) -> np.ndarray:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise VFIError("Every frame must be an H×W×3 uint8 RGB array.")
        return frame

    def same(self, frame: np.ndarray) -> np.ndarray:
        """``frame``, refused unless it is like the first."""
        if self._check(frame).shape != self.shape:
            h, w = self.shape[:2]
            raise VFIError(f"All frames must have the same size: got {frame.shape[1]}×{frame.shape[0]} after {w}×{h}.")
        return frame

    def even(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` checked, padded to even width and height, contiguous."""
        frame = self.same(frame)
        if self.pad[0][1] or self.pad[1][1]:
            frame = np.pad(frame, self.pad, mode="edge")
        return np.ascontiguousarray(frame)


def _first_and_rest(frames: Iterable[np.ndarray]) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise VFIError("There are no frames to write.")
    return first, iterator


def _pipe_to_ffmpeg(
    frames: Iterable[np.ndarray], fps: float, output_args: list[str], *, extra_inputs: list[str] = ()
) -> int:
    """Stream raw RGB frames into ffmpeg with ``output_args`` (ending in the output path); return the count."""
    first, rest = _first_and_rest(frames)
    check = _FrameChecker(first)
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{check.width}x{check.height}",
        "-framerate",
        fps_arg(fps),
        "-i",
        "-",
        *extra_inputs,
        *output_args,
    ]
    count = 0
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        writer, pending = ThreadPoolExecutor(max_workers=1), deque()  # one thread: the writes keep their order
        try:
            for frame in _chain(first, rest):
                pending.append(writer.submit(proc.stdin.write, memoryview(check.even(frame)).cast("B")))
                count += 1
                if len(pending) > FRAMES_WRITTEN_AHEAD:
                    pending.popleft().result()
            while pending:
                pending.popleft().result()
            proc.stdin.close()
            code = proc.wait()
        except BrokenPipeError:
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            writer.shutdown(cancel_futures=True)  # a write still blocked ends with ffmpeg
        if code != 0:
            log.seek(0)
            name = Path(output_args[-1]).name  # a temporary name: never a server path in an app error
            raise VFIError(f"ffmpeg could not write {name}: {_last_line(log.read().decode(errors='replace'))}.")
    return count


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def write_mp4(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: float,
    *,
    crf: int = 18,
    audio_from: str | os.PathLike | None = None,
    audio_start: float = 0.0,
) -> Path:
    """Encode ``frames`` (H×W×3 uint8 RGB, one size) as a browser-friendly H.264 MP4 at ``path``.

    yuv420p, BT.709, ``+faststart``; an odd width or height is padded by one replicated pixel (never
    rescaled). ``audio_from``: a clip whose audio track (if any) is muxed in as AAC, padded or cut to
    the video's length, starting ``audio_start`` seconds into it (a trimmed clip). Written atomically: on any error, including one raised by ``frames``, no file
    is left behind.
    """
    check_fps(fps)
    if not (isinstance(crf, int) and 0 <= crf <= 51):
        raise VFIError(f"crf must be an integer from 0 to 51, got {crf!r}.")
    path = Path(path)
    if audio_from is not None and not Path(audio_from).is_file():
        raise VFIError(f"The audio source {audio_from} does not exist.")
    video_args = ["-map", "0:v:0", *X264_ARGS, "-crf", str(crf), *COLOUR_ARGS, "-an"]
    with atomic_path(path) as tmp:
        if audio_from is None:
            _pipe_to_ffmpeg(frames, fps, [*video_args, "-movflags", "+faststart", "-f", "mp4", str(tmp)])
            return path
        silent = tmp.with_name(f"{tmp.stem}.video.mp4")
        try:
            count = _pipe_to_ffmpeg(frames, fps, [*video_args, "-f", "mp4", str(silent)])
            _add_audio(silent, audio_from, audio_start, count / fps, tmp)
        finally:
            silent.unlink(missing_ok=True)
    return path


def _add_audio(video: Path, audio_from: str | os.PathLike, start: float, duration: float, output: Path) -> None:
    """``video`` (copied) with the audio track of ``audio_from`` (if any) from ``start`` s, as AAC padded or cut to
    exactly ``duration`` s. A second pass: while the frames stream in, their duration is not known, and
    ffmpeg's ``-shortest`` cut the audio at a random point (and sometimes failed) on fast-arriving frames."""
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-i",
        str(video),
        *(["-ss", f"{start:.6f}"] if start else []),
        "-i",
        str(audio_from),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0?",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-b:a",
        "160k",
        "-af",
        f"apad,atrim=end={duration:.6f}",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(output),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if result.returncode != 0:
        raise VFIError(f"ffmpeg could not add the audio of {Path(audio_from).name}: {_last_line(result.stderr)}.")


def write_gif(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float, *, max_width: int = 640) -> Path:
    """Write a looping GIF with one adaptive palette for the whole clip, scaled down to ``max_width``."""
    check_fps(fps)
    if max_width < 2:
        raise VFIError(f"max_width must be at least 2, got {max_width}.")
    path = Path(path)
    graph = (
        f"scale='min({max_width},iw)':-2:flags=lanczos,split[a][b];"
        "[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle"
    )
    with atomic_path(path) as tmp:
        _pipe_to_ffmpeg(frames, fps, ["-filter_complex", graph, "-loop", "0", "-f", "gif", str(tmp)])
    return path


def frame_name(index: int) -> str:
    """The file name of frame ``index`` in a frames folder."""
    return f"frame_{index:04d}.png"


def check_frames_dir(directory: str | os.PathLike) -> Path:
    """Refuse, before any work, a frames folder that cannot be written or that holds anything but frames
    (:func:`write_png_frames` replaces it whole); return where it will be written."""
    target = check_output(directory, folder=True)
    others = sorted(p.name for p in target.iterdir() if not FRAME_NAME.fullmatch(p.name)) if target.is_dir() else []
    if others:
        raise VFIError(
            f"The frames folder {directory} holds other files ({others[0]}…) and would be replaced whole; "
            "give a new or empty folder."
        )
    return target


def write_png(frame: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one frame as a PNG (fast compression: these are previews and frame dumps, not archives)."""
    from PIL import Image

    Image.fromarray(frame).save(path, compress_level=1)
    return Path(path)


def write_png_frames(frames: Iterable[np.ndarray], directory: str | os.PathLike) -> Path:
    """Write ``directory/frame_0000.png``, ``frame_0001.png``, … in order (the folder is replaced atomically).

    ``directory`` must be new, empty or hold only such frames (:func:`check_frames_dir`).
    """
    directory = Path(directory)
    check_frames_dir(directory)
    with atomic_dir(directory) as tmp:
        first, rest = _first_and_rest(frames)
        check = _FrameChecker(first)
        for index, frame in enumerate(_chain(first, rest)):
            write_png(check.same(frame), tmp / frame_name(index))
    return directory
