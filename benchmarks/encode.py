"""Encode throughput: vfi.io.video.write_mp4 vs piping the same raw frames straight into the bundled ffmpeg.

    python benchmarks/encode.py [--size 1280x720] [--frames 240] [--repeats 3] [--crf 18]

Both sides use the same x264 settings (``vfi.io.video.X264_ARGS``, ``COLOUR_ARGS``, ``+faststart``); the
table gives the median wall time of each and their ratio (write_mp4 / raw, 1.00 = no overhead).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vfi.io.video import COLOUR_ARGS, X264_ARGS, ffmpeg_exe, write_mp4  # noqa: E402


def make_frames(width: int, height: int, count: int) -> list[np.ndarray]:
    """A smooth texture panning 3 px per frame, with a little noise so x264 has real work to do."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0 : width + 3 * count].astype(np.float32)
    texture = 127 + 60 * np.sin(xx * 0.05) * np.cos(yy * 0.07) + 40 * np.sin((xx + yy) * 0.013)
    texture = np.clip(texture[..., None] + rng.normal(0, 4, (*texture.shape, 3)), 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(texture[:, 3 * i : 3 * i + width]) for i in range(count)]


def raw_pipe(frames: list[np.ndarray], path: Path, fps: float, crf: int) -> None:
    height, width = frames[0].shape[:2]
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
        f"{width}x{height}",
        "-framerate",
        str(fps),
        "-i",
        "-",
        *X264_ARGS,
        "-crf",
        str(crf),
        *COLOUR_ARGS,
        "-movflags",
        "+faststart",
        str(path),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for frame in frames:
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("ffmpeg failed")


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children) of ``fn()``."""
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before))
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT (default 1280x720)")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = make_frames(width, height, args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        methods = {
            "raw ffmpeg pipe": lambda: raw_pipe(frames, Path(tmp) / "raw.mp4", args.fps, args.crf),
            "write_mp4": lambda: write_mp4(frames, Path(tmp) / "vfi.mp4", args.fps, crf=args.crf),
        }
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
        for repeat in range(args.repeats):  # interleaved, alternating order, so background load hits both alike
            for name in sorted(methods, reverse=bool(repeat % 2)):
                runs[name].append(timed(methods[name]))
    raw_wall, raw_cpu = (statistics.median(values) for values in zip(*runs["raw ffmpeg pipe"]))
    print(f"{args.frames} frames {width}x{height}, crf {args.crf}, median of {args.repeats}")
    print(f"{'method':<18}{'wall s':>8}{'frames/s':>10}{'ratio':>7}{'cpu s':>8}{'cpu ratio':>10}")
    for name, values in runs.items():
        wall, cpu = (statistics.median(column) for column in zip(*values))
        print(
            f"{name:<18}{wall:>8.2f}{args.frames / wall:>10.1f}{wall / raw_wall:>7.2f}{cpu:>8.2f}{cpu / raw_cpu:>10.2f}"
        )


if __name__ == "__main__":
    main()
