"""The one image loader: every keyframe, upload and evaluation frame comes in through :func:`load_image`.

Whatever goes in (a path, encoded bytes, a PIL image or a numpy array), what comes out is an H×W×3
uint8 RGB array, C-contiguous. Bad input raises :class:`~vfi.errors.VFIError` with one sentence that
names the file; huge images are refused from their header, before they are decoded.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from vfi.errors import VFIError
from vfi.io.files import check_input

ImageSource = str | Path | bytes | bytearray | memoryview | Image.Image | np.ndarray

#: Default pixel limit (36 megapixels, e.g. 6000×6000 or 8000×4500). Checked from the file header.
DEFAULT_MAX_PIXELS = 36_000_000
#: Smallest accepted side in pixels.
MIN_SIDE = 16
#: Default relative aspect-ratio difference :func:`fit_to` will absorb by center cropping.
DEFAULT_TOLERANCE = 0.02
#: Formats we open; others (EPS, which runs Ghostscript, and exotic formats) are refused.
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "PPM", "TGA")
_FORMAT_NAMES = "PNG, JPEG, WebP, BMP, TIFF, GIF, PPM or TGA"

# Phone and camera PNGs carry EXIF/XMP in text chunks of several MB; Pillow's default 1 MB per chunk
# makes them fail to open. Raised once here (never lowered); MAX_TEXT_MEMORY still bounds the total.
PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, 32 << 20)

# What Pillow raises for corrupt, truncated or hostile files.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ARRAY_MODES = ("1", "L", "LA", "RGB", "RGBA", "I", "F", *_SIXTEEN_BIT_MODES)


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load any accepted image as an H×W×3 uint8 RGB array (C-contiguous).

    Args:
        source: a file path, the encoded bytes of a file, a PIL image or a numpy array.
            Files and PIL images: PNG (8/16-bit), JPEG, WebP, BMP, TIFF, single-frame GIF, PPM, TGA in
            any mode; the EXIF orientation is applied. Animated or multi-page images are refused.
            Numpy arrays: H×W, H×W×1 (gray), H×W×2 (gray + alpha), H×W×3 (RGB) or H×W×4 (RGBA) of
            dtype uint8 (0–255), uint16 (0–65535, scaled to 8 bit), bool (False/True → 0/255) or
            float (0.0–1.0, clipped; NaN → 0). Pillow's "I" mode is read as 16-bit (0–65535), "F" as 0–1.
            Transparent images (alpha channel, palette transparency) are composited over white.
        max_pixels: refuse images with more pixels than this (checked before decoding).

    Raises:
        VFIError: missing, empty, corrupt, truncated, non-image, animated, too large or smaller than
            ``MIN_SIDE`` pixels on a side.
    """
    if isinstance(source, np.ndarray):
        array = _with_channel_axis(source, "The array")
        _check_size(array.shape[1], array.shape[0], "The array", max_pixels)
        return _to_rgb8(array, "The array")
    if isinstance(source, Image.Image):
        with _decode_errors("The image"):
            return _from_pil(source, "The image", max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise VFIError("The image data is empty.")
        return _open_and_convert(io.BytesIO(source), "The image data", max_pixels)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise VFIError(f"Image file not found: {path}.")
        check_input(path, f"Image file {path.name}")  # a folder, a device, a pipe or a socket
        if path.stat().st_size == 0:  # named by its file name only: an app's upload path is the server's business
            raise VFIError(f"Image file {path.name} is empty.")
        return _open_and_convert(path, f"Image file {path.name}", max_pixels)
    raise VFIError(f"Cannot load an image from a {type(source).__name__}; give a path, bytes, a PIL image or an array.")


def fit_to(frame: np.ndarray, width: int, height: int, *, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Resize and center-crop ``frame`` (H×W×3 uint8) to exactly ``width``×``height``.

    The frame is scaled to cover the target (antialiased bicubic) and the excess is cropped evenly from
    both sides; a warning says so whenever the frame changes. A frame already of that size is returned
    unchanged.

    Raises:
        VFIError: the aspect ratios differ by more than ``tolerance`` (relative), or a bad target size.
    """
    if width < 1 or height < 1:
        raise VFIError(f"Cannot fit a frame to {width}×{height}: the target size must be positive.")
    if tolerance < 0:
        raise VFIError(f"tolerance must be at least 0, got {tolerance}.")
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    mismatch = _aspect_mismatch(w, h, width, height)
    if mismatch > tolerance:
        raise VFIError(
            f"Cannot fit a {w}×{h} frame to {width}×{height}: the aspect ratios differ by "
            f"{mismatch:.1%}, more than the {tolerance:.1%} tolerance."
        )
    resized = _cover(frame, width, height)
    scale = max(width / w, height / h)
    cropped = f" (center crop of {w - width / scale:.0f}×{h - height / scale:.0f} source px)" if mismatch > 0 else ""
    warnings.warn(f"Resized a {w}×{h} frame to {width}×{height}{cropped}.", stacklevel=2)
    return resized


def _cover(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` scaled (antialiased bicubic) to cover ``width``×``height``, the excess cropped evenly."""
    h, w = frame.shape[:2]
    scale = max(width / w, height / h)
    crop_w, crop_h = width / scale, height / scale
    box = ((w - crop_w) / 2, (h - crop_h) / 2, (w + crop_w) / 2, (h + crop_h) / 2)
    return np.array(Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC, box=box))


#: How :func:`match_keyframes` treats a last keyframe whose aspect ratio differs from the first's beyond the
#: tolerance: fit it if the ratios are at most :data:`MAX_AUTO_MISMATCH` apart and refuse beyond (auto, the
#: default), scale and center-crop it to the first's size whatever its shape, scale it inside and pad with black,
#: or refuse.
MISMATCH_MODES = ("auto", "fit", "pad", "refuse")
#: The largest relative aspect-ratio difference ``auto`` fits (1.0: one ratio twice the other); beyond it only an
#: explicit ``fit`` or ``pad`` changes the keyframe that much.
MAX_AUTO_MISMATCH = 1.0


@dataclass(frozen=True)
class KeyframePair:
    """Two keyframes of one size; ``note`` says how the last was changed to match the first (None: untouched)."""

    first: np.ndarray
    last: np.ndarray
    note: str | None = None


def match_keyframes(
    first: ImageSource,
    last: ImageSource,
    *,
    mismatch: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tolerance: float = DEFAULT_TOLERANCE,
    name: str = "The last keyframe",
) -> KeyframePair:
    """Load both keyframes and bring ``last`` to ``first``'s size.

    Within ``tolerance`` (relative aspect difference) ``last`` is resized and center-cropped (as :func:`fit_to`
    does); beyond it ``mismatch`` decides (see :data:`MISMATCH_MODES`). The note calls ``last`` ``name``. Odd
    sizes are kept (the video writer makes sizes even).
    """
    if mismatch not in MISMATCH_MODES:
        raise VFIError(f"mismatch must be one of {', '.join(MISMATCH_MODES)}, got {mismatch!r}.")
    first_rgb = load_image(first, max_pixels=max_pixels)
    last_rgb = load_image(last, max_pixels=max_pixels)
    (h, w), (lh, lw) = first_rgb.shape[:2], last_rgb.shape[:2]
    if (lw, lh) == (w, h):
        return KeyframePair(first_rgb, last_rgb)
    difference = _aspect_mismatch(lw, lh, w, h)
    if difference > tolerance and mismatch == "refuse":
        raise VFIError(
            f"The keyframes cannot be matched: the last is {lw}×{lh}, the first {w}×{h}, and their aspect "
            f"ratios differ by {difference:.1%} (more than the {tolerance:.1%} tolerance)."
        )
    if difference > MAX_AUTO_MISMATCH and mismatch == "auto":
        raise VFIError(
            f"{name} ({lw}×{lh}) and the first ({w}×{h}) have aspect ratios more than 2× apart ({difference:.0%}); "
            "choose mismatch fit or pad to change it that much anyway."
        )
    if difference > tolerance and mismatch == "pad":
        how, fitted = "scaled to fit inside and padded with black to", pad_to(last_rgb, w, h)
    else:
        how = "scaled and center-cropped to" if difference else "scaled to"
        fitted = _cover(last_rgb, w, h)  # said in the note, not in a warning
    note = f"{name} ({lw}×{lh}) was {how} the first's {w}×{h} (aspect ratios differ by {difference:.1%})."
    return KeyframePair(first_rgb, fitted, note)


def pad_to(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` scaled (antialiased bicubic) to fit inside ``width``×``height``, centred on black."""
    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    size = (max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale))))
    inner = np.array(Image.fromarray(frame).resize(size, Image.Resampling.BICUBIC))
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = inner
    return out


def _aspect_mismatch(w: int, h: int, width: int, height: int) -> float:
    """Relative difference between the aspect ratios w/h and width/height (symmetric: larger/smaller − 1)."""
    ratio = (w / h) / (width / height)
    return max(ratio, 1.0 / ratio) - 1.0


def _check_size(width: int, height: int, label: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise VFIError(
            f"{label} is too large: {width}×{height} is {width * height / 1e6:.1f} megapixels, "
            f"more than the {max_pixels / 1e6:g}-megapixel limit."
        )
    if min(width, height) < MIN_SIDE:
        raise VFIError(f"{label} is too small: {width}×{height}; each side must be at least {MIN_SIDE} pixels.")


def _open_and_convert(fp: Path | io.BytesIO, label: str, max_pixels: int) -> np.ndarray:
    """Open lazily (header only), then check, decode and convert."""
    with _decode_errors(label), Image.open(fp, formats=FORMATS) as image:
        return _from_pil(image, label, max_pixels)


@contextmanager
def _decode_errors(label: str) -> Iterator[None]:
    """Turn what Pillow raises for unreadable, hostile or broken files into one-sentence VFIErrors."""
    try:
        yield
    except UnidentifiedImageError:
        raise VFIError(f"{label} is not an image we can read ({_FORMAT_NAMES}).") from None
    except Image.DecompressionBombError:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise VFIError(
            f"{label} is too large: more than Pillow's safety limit of {limit / 1e6:.0f} megapixels."
        ) from None
    except _DECODE_ERRORS as error:
        raise VFIError(f"{label} is corrupt or truncated and cannot be decoded ({error}).") from None


def _from_pil(image: Image.Image, label: str, max_pixels: int) -> np.ndarray:
    """Check size and frame count (from the header), then decode, apply EXIF orientation, convert."""
    _check_size(image.width, image.height, label, max_pixels)
    if image.format != "MPO" and getattr(image, "is_animated", False):  # MPO: extra frames are previews
        raise VFIError(f"{label} is animated or has several pages; give a single still image.")
    image.load()
    image = ImageOps.exif_transpose(image)
    if image.mode not in _ARRAY_MODES:
        transparent = image.mode in ("PA", "La", "RGBa") or "transparency" in image.info
        image = image.convert("RGBA" if transparent else "RGB")
    array = np.array(image)
    if image.mode == "I":
        array = np.clip(array, 0, 65535).astype(np.uint16)
    return _to_rgb8(array, label)


def _with_channel_axis(array: np.ndarray, label: str) -> np.ndarray:
    """H×W×C view of an accepted array shape, or a VFIError."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise VFIError(f"{label} has shape {array.shape}; expected H×W, H×W×1, H×W×2, H×W×3 or H×W×4.")
    return array


def _to_rgb8(array: np.ndarray, label: str) -> np.ndarray:
    """Any accepted array (see :func:`load_image`) as H×W×3 uint8 RGB, alpha composited over white."""
    array = _to_uint8(_with_channel_axis(array, label), label)
    if array.shape[2] in (2, 4):
        colour, alpha = array[..., :-1].astype(np.uint32), array[..., -1:].astype(np.uint32)
        array = (255 - ((255 - colour) * alpha + 127) // 255).astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray, label: str) -> np.ndarray:
    """Scale an accepted dtype to uint8 (rounding, not truncating)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if array.dtype.kind == "f":
        scaled = np.clip(np.nan_to_num(array.astype(np.float32), nan=0.0), 0.0, 1.0) * 255.0 + 0.5
        return scaled.astype(np.uint8)
    raise VFIError(f"{label} has dtype {array.dtype}; use uint8 (0–255), uint16 (0–65535), float (0–1) or bool.")


def label_frame(frame: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``frame`` with ``text`` in white on a black box at its top left."""
    import cv2

    out = frame.copy()
    scale = max(0.4, frame.shape[1] / 640)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (w + 12, h + base + 12), (0, 0, 0), -1)
    cv2.putText(out, text, (6, h + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def side_by_side(runs: Sequence[Sequence[np.ndarray]], names: Sequence[str]) -> list[np.ndarray]:
    """Frames of several runs of equal length, each labelled with its name, next to each other."""
    labelled = [[label_frame(frame, name) for frame in frames] for name, frames in zip(names, runs)]
    return [np.concatenate(row, axis=1) for row in zip(*labelled)]
