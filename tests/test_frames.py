"""vfi.io.images: the one loader (every accepted input, every refused one) and keyframe fitting."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageFile, PngImagePlugin
from scenes import textured_image

from vfi.errors import VFIError
from vfi.io.images import DEFAULT_MAX_PIXELS, MIN_SIDE, fit_to, load_image, match_keyframes
from vfi.quality.metrics import psnr


def encode(image: Image.Image, fmt: str = "PNG", **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` but whose pixel data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture
def rgb() -> np.ndarray:
    return textured_image(48, 64, seed=3)


# --- accepted sources -------------------------------------------------------------------------------


def test_path_str_bytes_pil_and_array_give_the_same_pixels(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "frame.png"
    Image.fromarray(rgb).save(path)
    for source in (path, str(path), path.read_bytes(), Image.open(path), rgb):
        out = load_image(source)
        assert out.dtype == np.uint8 and out.shape == (48, 64, 3) and out.flags.c_contiguous
        np.testing.assert_array_equal(out, rgb)


def test_non_contiguous_array_comes_back_contiguous(rgb: np.ndarray) -> None:
    out = load_image(rgb[:, ::2])
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb[:, ::2])


def test_jpeg_loads_close_to_the_original(rgb: np.ndarray) -> None:
    out = load_image(encode(Image.fromarray(rgb), "JPEG", quality=95))
    assert out.shape == rgb.shape and psnr(out, rgb) > 30


def test_exif_orientation_is_applied() -> None:
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = load_image(encode(Image.fromarray(image), "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == (40, 20, 3)
    assert out[:18].mean() > 200 and out[22:].mean() < 50  # the white left half is now on top


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("L", (20, 20), 77), (77, 77, 77)),
        (Image.new("1", (20, 20), 1), (255, 255, 255)),
        (Image.new("CMYK", (20, 20), (0, 255, 255, 0)), (255, 0, 0)),
        (Image.new("RGBA", (20, 20), (10, 20, 30, 255)), (10, 20, 30)),
        (Image.new("RGBA", (20, 20), (10, 20, 30, 0)), (255, 255, 255)),  # transparent → white
        (Image.new("RGBA", (20, 20), (0, 0, 0, 128)), (127, 127, 127)),  # half over white
        (Image.new("LA", (20, 20), (0, 255)), (0, 0, 0)),
        (Image.new("LA", (20, 20), (0, 0)), (255, 255, 255)),
    ],
    ids=["L", "1", "CMYK", "RGBA-opaque", "RGBA-clear", "RGBA-half", "LA-opaque", "LA-clear"],
)
def test_modes_convert_to_rgb(image: Image.Image, expected: tuple[int, int, int]) -> None:
    for source in (image, encode(image, "TIFF")):
        out = load_image(source)
        assert out.shape == (20, 20, 3)
        np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), expected, atol=1)


def test_palette_with_and_without_transparency() -> None:
    palette_image = Image.new("P", (20, 20), 1)
    palette_image.putpalette([0, 0, 0, 200, 10, 30] + [0] * 762)
    np.testing.assert_array_equal(load_image(encode(palette_image))[0, 0], (200, 10, 30))
    np.testing.assert_array_equal(load_image(encode(palette_image, transparency=1))[0, 0], (255, 255, 255))


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257 * 100, 32768, 65535]], np.uint16).repeat(16, axis=0).repeat(4, axis=1)
    data = encode(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    out = load_image(data)
    assert out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out[0, ::4, 0], [0, 100, 128, 255])


def test_sixteen_bit_rgb_png_loads(rgb: np.ndarray) -> None:
    import cv2  # Pillow cannot write 16-bit RGB PNGs

    ok, data = cv2.imencode(".png", rgb[..., ::-1].astype(np.uint16) * 257)
    assert ok
    np.testing.assert_array_equal(load_image(data.tobytes()), rgb)


def test_png_with_large_text_chunk_loads(rgb: np.ndarray) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type app1", "0" * (6 << 20), zip=True)  # 6 MB decompressed, like phone EXIF
    out = load_image(encode(Image.fromarray(rgb), pnginfo=info))
    np.testing.assert_array_equal(out, rgb)


# --- numpy arrays -----------------------------------------------------------------------------------


def test_numpy_dtypes_and_shapes() -> None:
    np.testing.assert_array_equal(load_image(np.full((16, 16), 7, np.uint8))[0, 0], (7, 7, 7))
    np.testing.assert_array_equal(load_image(np.full((16, 16, 1), 9, np.uint8))[0, 0], (9, 9, 9))
    np.testing.assert_array_equal(load_image(np.full((16, 16, 3), 65535, np.uint16))[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(load_image(np.full((16, 16, 3), 0.5, np.float32))[0, 0], (128, 128, 128))
    np.testing.assert_array_equal(load_image(np.full((16, 16, 3), 2.0))[0, 0], (255, 255, 255))  # clipped
    np.testing.assert_array_equal(load_image(np.full((16, 16, 3), -1.0))[0, 0], (0, 0, 0))
    np.testing.assert_array_equal(load_image(np.full((16, 16, 3), np.nan))[0, 0], (0, 0, 0))
    np.testing.assert_array_equal(load_image(np.ones((16, 16), bool))[0, 0], (255, 255, 255))
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 2] = 200
    rgba[:8, :, 3] = 255
    out = load_image(rgba)
    np.testing.assert_array_equal(out[0, 0], (0, 0, 200))
    np.testing.assert_array_equal(out[-1, 0], (255, 255, 255))
    gray_alpha = np.zeros((16, 16, 2), np.uint8)
    gray_alpha[..., 1] = 255
    np.testing.assert_array_equal(load_image(gray_alpha)[0, 0], (0, 0, 0))


@pytest.mark.parametrize(
    "array", [np.zeros((16, 16), np.int64), np.zeros((16, 16, 5), np.uint8), np.zeros(300, np.uint8)]
)
def test_unsupported_arrays_are_refused(array: np.ndarray) -> None:
    with pytest.raises(VFIError, match="^The array has (dtype|shape)"):
        load_image(array)


def test_unsupported_source_type_is_refused() -> None:
    with pytest.raises(VFIError, match="Cannot load an image from a list"):
        load_image([[0]])  # type: ignore[arg-type]


# --- refused inputs ---------------------------------------------------------------------------------


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(VFIError, match=r"not found: .*nope\.png\."):
        load_image(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VFIError, match="is not a file"):
        load_image(tmp_path)


def test_empty_bytes_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(VFIError, match="empty"):
        load_image(b"")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(VFIError, match=r"empty\.png is empty"):
        load_image(tmp_path / "empty.png")


def test_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n" * 10)
    with pytest.raises(VFIError, match=r"notes\.png is not an image we can read"):
        load_image(path)


def test_corrupt_bytes_are_refused() -> None:
    noise = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    with pytest.raises(VFIError, match="^The image data is (not an image|corrupt)"):
        load_image(b"\x89PNG\r\n\x1a\n" + noise)


def test_truncated_png_and_jpeg_are_refused(tmp_path: Path, rgb: np.ndarray) -> None:
    for fmt in ("PNG", "JPEG"):
        data = encode(Image.fromarray(rgb), fmt)
        path = tmp_path / f"cut.{fmt.lower()}"
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(VFIError, match=rf"cut\.{fmt.lower()} is corrupt or truncated") as caught:
            load_image(path)
        assert "\n" not in str(caught.value)


def test_unsupported_format_is_refused(rgb: np.ndarray) -> None:
    with pytest.raises(VFIError, match="not an image we can read"):
        load_image(encode(Image.fromarray(rgb), "EPS"))  # would run Ghostscript


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_animated_or_multipage_images_are_refused(fmt: str, rgb: np.ndarray) -> None:
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(VFIError, match="animated"):
        load_image(data)


def test_single_frame_gif_loads(rgb: np.ndarray) -> None:
    assert load_image(encode(Image.fromarray(rgb), "GIF")).shape == rgb.shape


def test_pixel_limit_is_checked_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(self):
        raise AssertionError("decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    side = int(DEFAULT_MAX_PIXELS**0.5) + 100  # over our limit, under Pillow's own warning limit
    with pytest.raises(VFIError, match="too large.*megapixel limit"):
        load_image(png_header_only(side, side))
    with pytest.raises(VFIError, match="too large"):  # Pillow's DecompressionBombError, as a VFIError
        load_image(png_header_only(100_000, 100_000))


def test_pixel_limit_is_configurable(rgb: np.ndarray) -> None:
    with pytest.raises(VFIError, match="too large"):
        load_image(encode(Image.fromarray(rgb)), max_pixels=1000)
    with pytest.raises(VFIError, match="too large"):
        load_image(rgb, max_pixels=1000)


def test_tiny_images_are_refused() -> None:
    with pytest.raises(VFIError, match=f"too small.*at least {MIN_SIDE}"):
        load_image(encode(Image.new("RGB", (MIN_SIDE - 1, 64))))
    assert load_image(np.zeros((MIN_SIDE, MIN_SIDE, 3), np.uint8)).shape == (MIN_SIDE, MIN_SIDE, 3)


# --- fitting ----------------------------------------------------------------------------------------


def test_fit_to_same_size_is_a_no_op(rgb: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fit_to(rgb, 64, 48) is rgb


def test_fit_to_resizes_with_a_warning_and_keeps_the_content() -> None:
    big = textured_image(96, 128, seed=5)
    with pytest.warns(UserWarning, match="Resized a 128×96 frame to 64×48"):
        small = fit_to(big, 64, 48)
    assert small.shape == (48, 64, 3) and small.dtype == np.uint8
    box_average = big.reshape(48, 2, 64, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)
    assert psnr(small, box_average) > 35


def test_fit_to_center_crops_the_excess_evenly() -> None:
    frame = textured_image(50, 120, seed=7)
    with pytest.warns(UserWarning, match="center crop of 20×0"):
        out = fit_to(frame, 100, 50, tolerance=0.25)
    np.testing.assert_allclose(out, frame[:, 10:110], atol=1)


def test_fit_to_refuses_different_aspect_ratios(rgb: np.ndarray) -> None:
    with pytest.raises(VFIError, match="aspect ratios differ by 33.3%"):
        fit_to(rgb, 48, 48)
    with pytest.warns(UserWarning, match="center crop of 16×0"):
        assert fit_to(rgb, 48, 48, tolerance=0.4).shape == (48, 48, 3)


def test_match_keyframes_fits_the_last_to_the_first(tmp_path: Path) -> None:
    first, last = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(textured_image(33, 45)).save(first)  # odd sizes are kept
    Image.fromarray(textured_image(66, 90)).save(last)
    pair = match_keyframes(first, last)
    assert pair.first.shape == pair.last.shape == (33, 45, 3)
    assert pair.note.startswith("The last keyframe (90×66) was scaled to the first's 45×33")


def test_match_keyframes_refuses_mismatched_aspect_ratios(tmp_path: Path) -> None:
    with pytest.raises(VFIError, match="keyframes cannot be matched.*last is 64×64, the first 64×48"):
        match_keyframes(textured_image(48, 64), textured_image(64, 64), mismatch="refuse")


def test_match_keyframes_leaves_the_process_wide_warning_filters_alone(monkeypatch) -> None:
    """The app matches keyframes in several threads at once: swapping the warning filters (what
    ``warnings.catch_warnings`` does) there would hide or show other threads' warnings."""
    import vfi.io.images

    def swap_filters(*args, **kwargs):
        raise AssertionError("match_keyframes swapped the process-wide warning filters")

    guarded = SimpleNamespace(warn=warnings.warn, catch_warnings=swap_filters, simplefilter=swap_filters)
    monkeypatch.setattr(vfi.io.images, "warnings", guarded)
    pair = match_keyframes(textured_image(48, 64), textured_image(60, 64))  # within the tolerance: cropped
    assert pair.last.shape == (48, 64, 3) and "center-cropped" in pair.note


@pytest.mark.parametrize(
    ("mode", "how"), [("fit", "scaled and center-cropped to"), ("pad", "scaled to fit inside and padded with black to")]
)
def test_mismatched_keyframes_are_fitted_or_padded_and_the_note_says_so(mode: str, how: str) -> None:
    first, last = textured_image(48, 64), textured_image(64, 64)
    pair = match_keyframes(first, last, mismatch=mode)
    assert pair.last.shape == first.shape
    assert pair.note == f"The last keyframe (64×64) was {how} the first's 64×48 (aspect ratios differ by 33.3%)."
    border = pair.last[:, :8]
    assert (border == 0).all() if mode == "pad" else border.any()
    with pytest.raises(VFIError, match="mismatch must be one of auto, fit, pad, refuse, got 'crop'"):
        match_keyframes(first, last, mismatch="crop")


def test_keyframes_more_than_twice_apart_in_aspect_are_fitted_only_when_asked() -> None:
    first, last = textured_image(240, 320), textured_image(900, 100)
    with pytest.raises(VFIError, match=r"^The last keyframe \(100×900\) and the first \(320×240\) have aspect ratios"):
        match_keyframes(first, last)
    assert "center-cropped" in match_keyframes(first, last, mismatch="fit").note
    assert "padded" in match_keyframes(first, last, mismatch="pad").note
    near = match_keyframes(first, textured_image(160, 320))  # 2× apart exactly: still fitted by default
    assert near.last.shape == first.shape and "center-cropped" in near.note
