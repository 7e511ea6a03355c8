"""Flow backend cost vs resolution: one t=0.5 frame, median of repeats, per size.

Usage: python benchmarks/flow_resolution.py [IMAGE_PAIR_DIR]  (a folder with two images; default: synthetic pan)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vfi.backends.base import FrameRequest  # noqa: E402
from vfi.backends.flow import FlowBackend  # noqa: E402

SIZES = [(320, 240), (640, 480), (1280, 720), (1920, 1080)]


def pair_at(width: int, height: int, source: Path | None) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    if source is None:
        rng = np.random.default_rng(0)
        noise = cv2.GaussianBlur(rng.uniform(0, 255, (height, width + 16, 3)).astype(np.float32), (0, 0), 3)
        big = cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        return big[:, 16:].copy(), big[:, :width].copy()
    from vfi.io.images import load_image

    first, last = (load_image(p) for p in sorted(source.iterdir())[:2])
    return tuple(cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in (first, last))


def dis_yardstick_ms() -> float:
    """Machine speed, to compare tables from different machines: median ms of one bare DIS call (medium
    preset, OpenCV's defaults) on the 640×480 synthetic pair scaled to 512×384."""
    import cv2

    first, last = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in pair_at(512, 384, None))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    times = []
    for _ in range(11):
        start = time.perf_counter()
        dis.calc(first, last, None)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[1:]))


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else None
    backend = FlowBackend()
    print(f"# machine yardstick: one bare DIS call at 512x384 takes {dis_yardstick_ms():.1f} ms")
    rows = []
    for width, height in SIZES:
        first, last = pair_at(width, height, source)
        repeats = 7 if width * height <= 640 * 480 else 3
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            backend.interpolate([FrameRequest(first, last, 0.5)])
            times.append(time.perf_counter() - start)
        rows.append((width, height, 1000 * float(np.median(times[1:]))))
    ref = next(ms / (w * h) for w, h, ms in rows if (w, h) == (640, 480))
    print(f"{'size':>10} {'ms/frame':>9} {'ms/MP':>7} {'vs 640x480 per px':>18}")
    for w, h, ms in rows:
        print(f"{w:>4}x{h:<5} {ms:9.1f} {ms / (w * h / 1e6):7.1f} {ms / (w * h) / ref:18.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
