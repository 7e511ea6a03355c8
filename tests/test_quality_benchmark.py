"""benchmarks/quality.py and clip_triplets.py end to end on synthetic data."""

from __future__ import annotations

from pathlib import Path

from scenes import panned_triplet, textured_image, write_triplet

from benchmarks import clip_triplets, quality
from vfi.io.video import write_mp4


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


def test_clip_triplets_never_span_a_cut(tmp_path: Path) -> None:
    pan = [textured_image(48, 64 + 40, seed=1)[:, i * 2 : i * 2 + 64] for i in range(20)]
    other = [textured_image(48, 64 + 40, seed=7)[:, i * 2 : i * 2 + 64] for i in range(20)]
    clip = write_mp4(pan + other, tmp_path / "cut.mp4", fps=10)  # a cut between frames 19 and 20
    clip_triplets.main([str(clip), "-o", str(tmp_path / "out"), "--gap", "2", "5", "--per-clip", "4"])
    for gap in (2, 5):
        folders = sorted((tmp_path / "out" / f"gap{gap}").iterdir())
        starts = [int(folder.name.split("_")[1]) for folder in folders]
        assert len(starts) == 4 and starts[0] == 0 and starts[-1] == 40 - 1 - 2 * gap
        assert not any(start < 20 <= start + 2 * gap for start in starts)
        assert sorted(path.name for path in folders[0].iterdir()) == ["im1.png", "im2.png", "im3.png"]
