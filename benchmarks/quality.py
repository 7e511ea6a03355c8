"""Quality and speed of each backend on triplet folders, against the crossfade baseline.

    python benchmarks/quality.py DATA_DIR [DATA_DIR ...] [--backends flow crossfade]

Prints one row per (data folder, backend): triplet count, mean PSNR, mean SSIM, median ms per frame,
time relative to crossfade and PSNR gain over crossfade (crossfade is always run as the reference); a folder
with frames of several sizes also gets one row per (size, backend) under it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vfi.backends import BACKEND_NAMES, create_backend  # noqa: E402
from vfi.quality.evaluate import EvaluationReport, evaluate  # noqa: E402

BASELINE = "crossfade"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dirs", nargs="+", type=Path, help="folders searched recursively for triplets")
    parser.add_argument("--backends", nargs="+", default=["flow", BASELINE], choices=BACKEND_NAMES)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    names = list(dict.fromkeys([*args.backends, BASELINE]))  # the baseline always runs, once
    backends = {name: create_backend(name) for name in names}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    header = (
        f"{'set':<22} {'backend':<10} {'n':>3} {'PSNR dB':>8} {'SSIM':>7} {'ms/frame':>9} {'time ×cf':>9} {'ΔPSNR':>7}"
    )
    print(header)
    print("-" * len(header))
    for data_dir in args.data_dirs:
        reports: dict[str, EvaluationReport] = {name: evaluate(data_dir, backends[name]) for name in names}
        print_rows(data_dir.name, reports)
        sizes = {name: report.by_size() for name, report in reports.items()}
        if len(sizes[BASELINE]) > 1:
            for size in sizes[BASELINE]:
                print_rows(f"  {size}", {name: by_size[size] for name, by_size in sizes.items()})


def print_rows(label: str, reports: dict[str, EvaluationReport]) -> None:
    """One table row per backend, against the crossfade baseline."""
    base = reports[BASELINE]
    for name, report in reports.items():
        ratio = report.ms_per_frame / base.ms_per_frame
        gain = report.psnr - base.psnr
        print(
            f"{label:<22} {name:<10} {report.n:>3} {report.psnr:>8.2f} {report.ssim:>7.4f} "
            f"{report.ms_per_frame:>9.1f} {ratio:>8.1f}× {gain:>+7.2f}"
        )


if __name__ == "__main__":
    main()
