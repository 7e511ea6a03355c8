"""Scale-out: wall time of ``python -m vfi clip`` (flow, ``--threads 1``) on one process and on two (torchrun, CPU).

Usage: ``python benchmarks/scale_out.py [--frames 240] [--width 640 --height 360] [--factor 2]``. A synthetic
panning clip is written to a temporary folder; both runs read it and their decoded outputs must be equal.
Prints each wall time (launch and model/library start included), the ratio two / one and the load average
(``/proc/loadavg``: 1, 5 and 15 minutes) before and after, since timings on a shared machine depend on it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vfi.io.video import read_frames, write_mp4  # noqa: E402


def synthetic_clip(path: Path, frames: int, width: int, height: int) -> Path:
    """A smooth random texture panning 3 px right per frame."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (-(-height // 8), -(-(width + 3 * frames) // 8), 3), dtype=np.uint8)
    big = np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)
    return write_mp4((big[:, 3 * i : 3 * i + width] for i in range(frames)), path, fps=30)


def run(clip: Path, output: Path, factor: int, processes: int) -> float:
    """Seconds ``python -m vfi clip`` takes on ``processes`` processes."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else []
    command = [sys.executable, *launcher, "-m", "vfi", "clip", str(clip), "-o", str(output)]
    command += ["--backend", "flow", "--factor", str(factor), "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACCELERATE_USE_CPU": "1"}
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages ("?" where /proc/loadavg is missing)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--factor", type=int, default=2, choices=(2, 4, 8))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clip = synthetic_clip(Path(folder) / "in.mp4", args.frames, args.width, args.height)
        load_before = load_average()
        one = run(clip, Path(folder) / "one.mp4", args.factor, 1)
        two = run(clip, Path(folder) / "two.mp4", args.factor, 2)
        same = all(
            np.array_equal(a, b)
            for a, b in zip(read_frames(Path(folder) / "one.mp4"), read_frames(Path(folder) / "two.mp4"))
        )
        print(f"clip: {args.frames} frames {args.width}×{args.height}, flow ×{args.factor}, --threads 1 per process")
        print(f"1 process:   {one:.1f} s")
        print(f"2 processes: {two:.1f} s")
        print(f"ratio: {two / one:.2f} (outputs identical: {same})")
        print(f"load average before: {load_before}, after: {load_average()}")


if __name__ == "__main__":
    main()
