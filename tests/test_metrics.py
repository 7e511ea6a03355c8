"""vfi.quality.metrics: PSNR and SSIM against known values and scikit-image; the triplet-folder reader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scenes import panned_triplet, textured_image
from skimage.metrics import structural_similarity

from vfi.errors import VFIError
from vfi.io.triplets import Triplet, find_triplets
from vfi.quality.metrics import psnr, ssim


def test_psnr_of_a_known_mse() -> None:
    a = np.zeros((16, 16, 3), np.uint8)
    b = np.full((16, 16, 3), 10, np.uint8)  # MSE 100
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))
    assert psnr(b, a) == psnr(a, b)


def test_psnr_of_identical_images_is_infinite() -> None:
    image = textured_image(16, 16)
    assert psnr(image, image.copy()) == math.inf


def test_psnr_does_not_wrap_around_uint8() -> None:
    a = np.zeros((16, 16, 3), np.uint8)
    b = np.full((16, 16, 3), 255, np.uint8)
    assert psnr(a, b) == pytest.approx(0.0)


@pytest.mark.parametrize("shift", [0, 1, 4])
def test_ssim_matches_scikit_image(shift: int) -> None:
    first, middle, _ = panned_triplet(40, 56, shift=shift, seed=shift)
    noisy = np.clip(middle + np.random.default_rng(shift).normal(0, 8, middle.shape), 0, 255).astype(np.uint8)
    reference = structural_similarity(
        first, noisy, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(first, noisy) == pytest.approx(reference, abs=1e-9)


def test_ssim_bounds() -> None:
    image = textured_image(32, 32)
    assert ssim(image, image) == pytest.approx(1.0)
    assert ssim(image, 255 - image) < 0


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_size_mismatch_is_a_user_error(metric) -> None:
    with pytest.raises(VFIError, match="different shapes"):
        metric(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 17, 3), np.uint8))


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_find_triplets_reads_both_layouts_recursively(tmp_path: Path) -> None:
    _touch(tmp_path / "vimeo" / "00002" / "0001", "im1.png", "im2.png", "im3.png")
    _touch(tmp_path / "vimeo" / "00001" / "0007", "im1.png", "im2.png", "im3.png", "im4.png")
    _touch(tmp_path / "middlebury" / "Dimetrodon", "frame10.png", "frame10i11.png", "frame11.png")
    _touch(tmp_path / "incomplete", "im1.png", "im3.png")
    triplets = find_triplets(tmp_path)
    assert [t.name for t in triplets] == ["middlebury/Dimetrodon", "vimeo/00001/0007", "vimeo/00002/0001"]
    mb = triplets[0]
    assert mb == Triplet(
        "middlebury/Dimetrodon",
        tmp_path / "middlebury/Dimetrodon/frame10.png",
        tmp_path / "middlebury/Dimetrodon/frame10i11.png",
        tmp_path / "middlebury/Dimetrodon/frame11.png",
    )
    assert triplets[1].middle == tmp_path / "vimeo/00001/0007/im2.png"


def test_root_that_is_itself_a_triplet(tmp_path: Path) -> None:
    _touch(tmp_path / "seq", "im1.png", "im2.png", "im3.png")
    assert [t.name for t in find_triplets(tmp_path / "seq")] == ["seq"]


def test_find_triplets_errors(tmp_path: Path) -> None:
    with pytest.raises(VFIError, match="not found"):
        find_triplets(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(VFIError, match="is not a folder"):
        find_triplets(tmp_path / "file.txt")
    _touch(tmp_path / "empty" / "sub", "im1.png")
    with pytest.raises(VFIError, match="No triplets found"):
        find_triplets(tmp_path / "empty")


def test_triplet_validates_its_fields(tmp_path: Path) -> None:
    with pytest.raises(VFIError, match="name"):
        Triplet("", tmp_path, tmp_path, tmp_path)
    with pytest.raises(VFIError, match="middle"):
        Triplet("x", tmp_path, "im2.png", tmp_path)  # type: ignore[arg-type]
