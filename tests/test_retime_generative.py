"""A target fps with the midpoint-only generative backend (the tiny model): the nearest recursion level, then flow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scenes import textured_image
from test_cli import run_cli

from vfi.io.video import probe_clip, write_mp4
from vfi.testing.tiny_model import build_tiny_adapter, build_tiny_pipeline

pytestmark = pytest.mark.slow


def test_qwen_edit_at_a_target_fps_makes_midpoints_and_flow_places_the_frames(tmp_path: Path) -> None:
    base = build_tiny_pipeline(tmp_path / "base", "side-by-side")
    adapter = build_tiny_adapter(base, tmp_path / "adapter", seed=1)
    texture = textured_image(48, 64 + 4 * 3)
    clip = write_mp4([texture[:, 4 * i : 4 * i + 64] for i in range(3)], tmp_path / "in.mp4", fps=10)
    out, manifest = tmp_path / "out.mp4", tmp_path / "m.json"
    result = run_cli(
        "clip",
        str(clip),
        "-o",
        str(out),
        "--fps",
        "25",
        "--backend",
        "qwen-edit",
        "--base-model",
        str(base),
        "--adapter",
        str(adapter),
        "--resolution",
        "64",
        "--steps",
        "2",
        "--guidance",
        "1",
        "--manifest",
        str(manifest),
    )
    assert result.returncode == 0, result.stderr
    assert "note: The qwen-edit backend makes midpoints only: it made 1 frame(s) per interval (depth 1) and flow" in (
        result.stderr
    )
    info = probe_clip(out)
    assert (info.num_frames, info.fps) == (8, 25)  # 0.3 s at 25 fps: the duration is kept
    record = json.loads(manifest.read_text())
    (source,) = record["backend"]["adapters"]
    assert source["source"] == str(adapter) and "pytorch_lora_weights.safetensors" in source["files"]
    assert record["backend"]["config"]["steps"] == 2 and np.isfinite(record["timings"]["seconds"])
