"""The keyframes outputs, written most wanted first: the MP4, then the PNG frames and their zip, then the GIF."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class KeyframeOutputs:
    """What the keyframes tab offers: the MP4, then the PNGs (gallery) and their zip, then the GIF."""

    video: Path
    frames: tuple[Path, ...] = ()
    archive: Path | None = None
    gif: Path | None = None


def counted(frames: Sequence[np.ndarray], report: Callable[..., Any] | None, desc: str) -> Iterator[np.ndarray]:
    """``frames``, reporting ``report((i, n), desc=desc, unit="frames")`` as each is consumed (encoding progress)."""
    for index, frame in enumerate(frames):
        if report is not None:
            report((index, len(frames)), desc=desc, unit="frames")
        yield frame


def keyframe_outputs(
    frames: Sequence[np.ndarray], folder: Path, fps: float, report: Callable[..., Any] | None = None
) -> Iterator[KeyframeOutputs]:
    """Write the keyframes tab's outputs, most wanted first: yields after the MP4, after the PNGs and zip,
    and after the GIF (the slowest: about 6× the MP4's time)."""
    from vfi.io.video import write_gif, write_mp4, write_png_frames

    out = KeyframeOutputs(
        Path(write_mp4(counted(frames, report, "encoding the MP4"), folder / "interpolated.mp4", fps=fps))
    )
    yield out
    frame_dir = write_png_frames(counted(frames, report, "writing the PNG frames"), folder / "frames")
    archive = Path(shutil.make_archive(str(folder / "frames"), "zip", frame_dir))
    out = replace(out, frames=tuple(sorted(frame_dir.glob("*.png"))), archive=archive)
    yield out
    yield replace(
        out, gif=Path(write_gif(counted(frames, report, "writing the GIF"), folder / "interpolated.gif", fps=fps))
    )
