"""Shared fixtures: synthetic frames with known motion, written where tests can load them.

Every temporary file of a test run (this process's, gradio's and gradio_client's, and those of the app servers and
CLIs it starts) goes under :data:`TEMP_ROOT`, removed when the run ends; pytest's own ``tmp_path`` stays where it is.
Set here, before any test module imports gradio (it reads ``GRADIO_TEMP_DIR`` once, on import).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from scenes import panned_triplet

os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
TEMP_ROOT = Path(tempfile.mkdtemp(prefix="vfi-tests-"))
os.environ["TMPDIR"] = tempfile.tempdir = str(TEMP_ROOT)
os.environ["GRADIO_TEMP_DIR"] = str(TEMP_ROOT / "gradio")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(TEMP_ROOT, ignore_errors=True)


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


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """Tiny random pipelines and a random adapter for each: side-by-side, multi (2509-style) and multi-2511.

    The 2511-style variant has the same weights as ``multi`` (same seed) and sets ``zero_cond_t``.
    """
    from vfi.testing.tiny_model import build_tiny_adapter, build_tiny_pipeline

    root = tmp_path_factory.mktemp("tiny_models")
    models = {}
    for name, layout, zero_cond_t in (
        ("side-by-side", "side-by-side", False),
        ("multi", "multi", False),
        ("multi-2511", "multi", True),
    ):
        base = build_tiny_pipeline(root / name, layout, zero_cond_t=zero_cond_t)
        models[name] = {"base": base, "adapter": build_tiny_adapter(base, root / f"{name}-adapter", seed=1)}
    return models
