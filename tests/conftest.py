"""Shared fixtures: synthetic frames with known motion, written where tests can load them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scenes import panned_triplet


@pytest.fixture
def triplet() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, ground-truth middle, last): a texture panned 4 px per half step, 128×96."""
    return panned_triplet()


@pytest.fixture
def keyframe_files(tmp_path: Path, triplet) -> tuple[Path, Path]:
    """The triplet's first and last frames written as PNG files."""
    from PIL import Image

    first, _, last = triplet
    paths = tmp_path / "first.png", tmp_path / "last.png"
    Image.fromarray(first).save(paths[0])
    Image.fromarray(last).save(paths[1])
    return paths
