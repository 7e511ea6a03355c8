"""Training speed and peak memory of train_lora.py on the tiny offline pipeline (CPU).

    .venv/bin/python benchmarks/train_tiny.py DATA [--steps 20] [--resolution 64 128]

DATA: triplet folders or a video (as ``--data``). Prints one row per resolution: steps/s of the training
loop (after caching, without validation) and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train_lora  # noqa: E402
from vfi.testing.tiny_model import build_tiny_pipeline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="+", type=Path)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--resolution", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = build_tiny_pipeline(Path(tmp) / "base")
        for resolution in [min(args.resolution), *args.resolution]:  # the first run only warms up
            argv = [
                "--base_model",
                str(base),
                "--data",
                *map(str, args.data),
                "--output_dir",
                f"{tmp}/out-{len(rows)}",
                "--resolution",
                str(resolution),
                "--rank",
                str(args.rank),
                "--num_samples",
                str(args.samples),
                "--num_validation",
                "0",
                "--max_train_steps",
                str(args.steps),
                "--checkpointing_steps",
                str(args.steps),
            ]
            result = train_lora.main(train_lora.parse_args(argv))
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows.append(
                (resolution, args.steps / result["seconds"], peak_mb, result["losses"][0], result["losses"][-1])
            )
    print(f"\n{'resolution':>10} {'steps/s':>8} {'peak RSS MB':>12} {'first loss':>10} {'last loss':>10}")
    for resolution, speed, peak, first, last in rows[1:]:
        print(f"{resolution:>10} {speed:>8.2f} {peak:>12.0f} {first:>10.3f} {last:>10.3f}")


if __name__ == "__main__":
    main()
