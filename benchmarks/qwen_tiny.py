"""The generative path's own overhead, on the tiny offline pipeline (CPU): load, first frame, later frames.

    .venv/bin/python benchmarks/qwen_tiny.py [--resolutions 64 256] [--frames 6] [--steps 4]

One row per (layout, working resolution): seconds to load the base pipeline and the adapter (cold, through
``from_pretrained``), to make the first midpoint (includes encoding both keyframes), the median of the later
ones (keyframes cached), and the share of the later frames' time spent outside the transformer (VAE, text
encoder, packing, scheduler, registration). With the real 20B model the transformer dominates; this measures
what vfi adds around it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from vfi.backends.base import FrameRequest  # noqa: E402
from vfi.backends.qwen_edit import QwenEditBackend  # noqa: E402
from vfi.qwen.pipeline import clear_cache  # noqa: E402
from vfi.testing.tiny_model import build_tiny_adapter, build_tiny_pipeline  # noqa: E402


class _TransformerClock:
    """Adds up the wall time spent inside ``module.forward``."""

    def __init__(self, module) -> None:
        self.seconds = 0.0
        module.register_forward_pre_hook(self._start)
        module.register_forward_hook(self._stop)

    def _start(self, *_) -> None:
        self._t0 = time.perf_counter()

    def _stop(self, *_) -> None:
        self.seconds += time.perf_counter() - self._t0


def measure(base: Path, adapter: Path, resolution: int, frames: int, steps: int) -> tuple[float, float, float, float]:
    """(load s, first frame s, later frames median s, share outside the transformer) for one configuration."""
    clear_cache()
    t0 = time.perf_counter()
    backend = QwenEditBackend(str(base), [str(adapter)], resolution=resolution, steps=steps, guidance=1.0, device="cpu")
    load = time.perf_counter() - t0
    clock = _TransformerClock(backend.loaded.pipe.transformer)
    rng = np.random.default_rng(0)
    first, last = (rng.integers(0, 256, (resolution * 3 // 4, resolution, 3), dtype=np.uint8) for _ in range(2))
    times, inside = [], []
    for seed in range(frames):
        clock.seconds = 0.0
        t0 = time.perf_counter()
        backend.interpolate([FrameRequest(first, last, 0.5, seed)])
        times.append(time.perf_counter() - t0)
        inside.append(clock.seconds)
    later = statistics.median(times[1:])
    outside = 1 - sum(inside[1:]) / sum(times[1:])
    return load, times[0], later, outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--frames", type=int, default=6, help="midpoints per configuration (the first is cold)")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("side-by-side", "multi"):
            base = build_tiny_pipeline(Path(tmp) / layout, layout)
            adapter = build_tiny_adapter(base, Path(tmp) / f"{layout}-lora")
            measure(base, adapter, min(args.resolutions), 2, args.steps)  # warm-up: imports, allocator
            for resolution in args.resolutions:
                rows.append((layout, resolution, *measure(base, adapter, resolution, args.frames, args.steps)))
    print(f"\n{'layout':>12} {'res':>5} {'load s':>7} {'first s':>8} {'later s':>8} {'outside transformer':>20}")
    for layout, resolution, load, first, later, outside in rows:
        print(f"{layout:>12} {resolution:>5} {load:7.2f} {first:8.3f} {later:8.3f} {outside:20.0%}")


if __name__ == "__main__":
    main()
