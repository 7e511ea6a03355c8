"""vfi.quality.evaluate and `python -m vfi evaluate` on tiny synthetic triplet folders."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scenes import panned_triplet, write_triplet

from vfi.backends import FrameRequest, create_backend
from vfi.errors import VFIError
from vfi.quality.evaluate import EvaluationReport, TripletScore, evaluate, format_table
from vfi.quality.metrics import psnr, ssim

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Two panned triplets: one Vimeo90K-style, one Middlebury-style."""
    root = tmp_path / "data"
    write_triplet(root / "a", panned_triplet(40, 48, shift=2, seed=1))
    write_triplet(root / "b", panned_triplet(40, 48, shift=3, seed=2), ("frame10.png", "frame10i11.png", "frame11.png"))
    return root


class CountingCrossfade:
    """Crossfade that counts its calls (to see the warm-up)."""

    name = "counting"
    supports_any_t = True
    max_batch = 8

    def __init__(self) -> None:
        self.inner = create_backend("crossfade")
        self.calls = 0

    def interpolate(self, requests):
        self.calls += 1
        assert [r.t for r in requests] == [0.5]
        return self.inner.interpolate(requests)


def test_evaluate_scores_every_triplet(data_dir: Path) -> None:
    backend = CountingCrossfade()
    progress = []
    report = evaluate(data_dir, backend, on_progress=lambda done, total: progress.append((done, total)))
    assert backend.calls == 3  # one untimed warm-up, then one call per triplet
    assert progress == [(1, 2), (2, 2)]
    assert report.n == 2 and [row.name for row in report.rows] == ["a", "b"]
    first, middle, last = panned_triplet(40, 48, shift=2, seed=1)
    blend = create_backend("crossfade").interpolate([FrameRequest(first, last, 0.5)])[0]
    assert report.rows[0].psnr == pytest.approx(psnr(blend, middle))
    assert report.rows[0].ssim == pytest.approx(ssim(blend, middle))
    assert report.psnr == pytest.approx((report.rows[0].psnr + report.rows[1].psnr) / 2)
    assert report.ms_per_frame == pytest.approx(np.median([row.ms for row in report.rows]))
    assert all(row.ms > 0 for row in report.rows)
    assert math.isfinite(report.psnr) and 0 < report.ssim < 1


def test_report_to_dict_and_table() -> None:
    report = EvaluationReport(
        "crossfade",
        (
            TripletScore("seq/1", "64×48", 30.0, 0.9, 2.0),
            TripletScore("seq/2", "64×48", math.inf, 1.0, 4.0),
            TripletScore("seq/3", "320×240", 20.0, 0.8, 9.0),
        ),
    )
    assert report.to_dict() == {
        "n": 3,
        "psnr": None,
        "ssim": pytest.approx(0.9),
        "ms_per_frame": 4.0,
        "per_triplet": [
            {"name": "seq/1", "size": "64×48", "psnr": 30.0, "ssim": 0.9, "ms": 2.0},
            {"name": "seq/2", "size": "64×48", "psnr": None, "ssim": 1.0, "ms": 4.0},
            {"name": "seq/3", "size": "320×240", "psnr": 20.0, "ssim": 0.8, "ms": 9.0},
        ],
        "backend": "crossfade",
    }
    lines = format_table(report).splitlines()
    assert lines[0] == "backend: crossfade, 3 triplets"
    assert lines[3].split() == ["seq/1", "64×48", "30.00", "0.9000", "2.0"]
    assert lines[4].split() == ["seq/2", "64×48", "inf", "1.0000", "4.0"]
    assert lines[-1].split() == ["mean", "/", "median", "inf", "0.9000", "4.0"]
    sizes = report.by_size()
    assert list(sizes) == ["320×240", "64×48"]  # the largest first
    assert (sizes["320×240"].n, sizes["64×48"].n, sizes["64×48"].ms_per_frame) == (1, 2, 3.0)
    assert len({len(line) for line in lines[1:]}) == 1  # fixed width


def test_empty_report_is_refused() -> None:
    with pytest.raises(VFIError, match="at least one row"):
        EvaluationReport("crossfade", ())


def test_triplet_with_mixed_sizes_names_the_triplet(tmp_path: Path) -> None:
    first, middle, last = panned_triplet(40, 48)
    write_triplet(tmp_path / "odd", (first, middle, last[:, :40]))
    with pytest.raises(VFIError, match="Triplet odd has frames of different sizes"):
        evaluate(tmp_path, create_backend("crossfade"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vfi", "evaluate", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_evaluate_writes_json(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = _cli(str(data_dir), "--backend", "crossfade", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "mean / median" in result.stdout
    report = json.loads(out.read_text())
    assert report["n"] == 2 and report["backend"] == "crossfade"
    assert [row["name"] for row in report["per_triplet"]] == ["a", "b"]
    assert set(report) == {"n", "psnr", "ssim", "ms_per_frame", "per_triplet", "backend"}


def test_cli_evaluate_empty_folder_is_a_user_error(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = _cli(str(tmp_path), "--backend", "crossfade", "--json", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: No triplets found")
    assert not out.exists()
