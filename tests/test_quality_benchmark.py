"""benchmarks/quality.py end to end on synthetic triplets: one row per backend, and per size when sizes differ."""

from __future__ import annotations

from pathlib import Path

from scenes import panned_triplet, write_triplet

from benchmarks import quality


def test_rows_per_backend_and_per_size(tmp_path: Path, capsys) -> None:
    write_triplet(tmp_path / "pans" / "small", panned_triplet(48, 64, shift=6))
    write_triplet(tmp_path / "pans" / "wide", panned_triplet(48, 96, shift=6))
    write_triplet(tmp_path / "pans" / "wide2", panned_triplet(48, 96, shift=8, seed=1))
    quality.main([str(tmp_path / "pans")])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[3:]]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("pans", "flow", "3"),
        ("pans", "crossfade", "3"),
        ("96×48", "flow", "2"),
        ("96×48", "crossfade", "2"),
        ("64×48", "flow", "1"),
        ("64×48", "crossfade", "1"),
    ]
    psnr = {(row[0], row[1]): float(row[3]) for row in rows}
    assert psnr["pans", "flow"] > psnr["pans", "crossfade"] + 5  # flow follows the pan, a crossfade cannot
