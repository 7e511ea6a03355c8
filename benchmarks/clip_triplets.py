"""Triplet folders from clips, for checks at larger motion than the shared triplet sets have.

    python benchmarks/clip_triplets.py CLIP.mp4 [CLIP.mp4 ...] -o OUT_DIR [--gap 2 4 6] [--per-clip 8]

Writes ``OUT_DIR/gapK/<clip>_<start>/im1.png, im2.png, im3.png`` (Vimeo90K names: frames start,
start + K, start + 2K; im2 is the ground truth), evenly spread over each clip and never across a scene
cut or a fade, then prints how many it wrote. Score them with ``benchmarks/quality.py OUT_DIR/gapK``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vfi.io.video import read_frames  # noqa: E402
from vfi.modes.scenes import SCENE_THRESHOLD, FrameSummary  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder for the gapK/ triplet folders")
    parser.add_argument("--gap", nargs="+", type=int, default=[2, 4, 6], help="frames between im1 and im2")
    parser.add_argument("--per-clip", type=int, default=8, help="triplets per clip and gap, at most")
    return parser.parse_args(argv)


def unbroken_starts(frames: list[np.ndarray], gap: int) -> list[int]:
    """Start frames whose span (start … start + 2·gap) holds no scene cut or fade: every step between
    neighbouring frames changes the picture by less than the clip-mode cut threshold."""
    summaries = [FrameSummary.of(frame, keep_image=False) for frame in frames]
    calm = [a.change(b) < SCENE_THRESHOLD for a, b in zip(summaries, summaries[1:])]
    return [s for s in range(len(frames) - 2 * gap) if all(calm[s : s + 2 * gap])]


def write_triplets(clip: Path, out: Path, gaps: list[int], per_clip: int) -> int:
    """Write up to ``per_clip`` triplets per gap from ``clip``; returns how many were written."""
    import cv2

    frames = list(read_frames(clip))
    written = 0
    for gap in gaps:
        starts = unbroken_starts(frames, gap)
        chosen = (
            sorted({starts[i] for i in np.linspace(0, len(starts) - 1, per_clip).round().astype(int)}) if starts else []
        )
        for start in chosen:
            folder = out / f"gap{gap}" / f"{clip.stem}_{start:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for name, index in zip(("im1.png", "im2.png", "im3.png"), (start, start + gap, start + 2 * gap)):
                cv2.imwrite(str(folder / name), cv2.cvtColor(frames[index], cv2.COLOR_RGB2BGR))
            written += 1
    return written


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for clip in args.clips:
        print(f"{clip.name}: {write_triplets(clip, args.out, args.gap, args.per_clip)} triplets")


if __name__ == "__main__":
    main()
