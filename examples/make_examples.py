"""Make the app's example inputs from scikit-image's bundled public-domain photos.

Run from the repository root (scikit-image is a dev dependency; the outputs are committed so the app
does not need it)::

    python examples/make_examples.py

Writes keyframe pairs ``examples/<name>_first.png`` / ``<name>_last.png`` (a camera pan or zoom over
one photo, so the true in-betweens are known crops) and ``examples/clip.mp4``: a 2 s, 12 fps pan over
a photo with a 440 Hz sine tone, for the Clip tab.
"""

from __future__ import annotations

import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # run as a script from anywhere: import vfi from the checkout

from vfi.io.video import write_mp4  # noqa: E402

#: (name, skimage.data image, output width × height, first view, last view).
#: A view is (center x, center y, zoom) in source pixels; zoom 1 shows a window of the output size.
PAIRS = (
    ("astronaut", "astronaut", (384, 256), (240, 200, 0.9), (276, 212, 0.9)),
    ("coffee", "coffee", (384, 256), (300, 200, 0.7), (300, 200, 0.8)),
    ("rocket", "rocket", (256, 384), (330, 200, 1.0), (318, 224, 1.0)),
)
CLIP = ("chelsea", (320, 240), 24, 12.0)  # image, size, frames, fps
TONE_HZ = 440.0
SAMPLE_RATE = 22050


def _photo(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def view(photo: Image.Image, size: tuple[int, int], cx: float, cy: float, zoom: float) -> np.ndarray:
    """The ``size`` window of ``photo`` centred on (cx, cy), scaled by ``zoom`` (sub-pixel exact)."""
    w, h = size[0] / zoom, size[1] / zoom
    box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    if box[0] < 0 or box[1] < 0 or box[2] > photo.width or box[3] > photo.height:
        raise ValueError(f"view {box} leaves the {photo.width}×{photo.height} photo")
    return np.array(photo.resize(size, Image.Resampling.LANCZOS, box=box))


def _sine_wav(path: Path, seconds: float) -> Path:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    samples = (0.3 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())
    return path


def make_pairs(out_dir: Path = ROOT) -> list[Path]:
    written = []
    for name, image, size, first, last in PAIRS:
        photo = _photo(image)
        for label, spec in (("first", first), ("last", last)):
            path = out_dir / f"{name}_{label}.png"
            Image.fromarray(view(photo, size, *spec)).save(path, optimize=True)
            written.append(path)
    return written


def make_clip(out_dir: Path = ROOT) -> Path:
    image, size, count, fps = CLIP
    photo = _photo(image)
    # A slow pan to the right with a slight zoom in: smooth motion the interpolators can follow.
    frames = [view(photo, size, 200 + 2.0 * i, 150, 1.0 + 0.004 * i) for i in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        wav = _sine_wav(Path(tmp) / "tone.wav", count / fps)
        return write_mp4(frames, out_dir / "clip.mp4", fps, crf=23, audio_from=wav)


def main() -> None:
    for path in [*make_pairs(), make_clip()]:
        print(f"{path.relative_to(ROOT.parent)}  {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
