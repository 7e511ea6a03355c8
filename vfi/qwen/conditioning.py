"""What the generative model sees: keyframes, time and prompt turned into the pipeline's inputs.

One place for inference (:mod:`vfi.backends.qwen_edit`) and training (``train_lora.py``) alike. No torch here.

API (stable):

- ``LAYOUTS = ("side-by-side", "multi")``: how the two keyframes go in. ``side-by-side`` (the paper's
  ``Qwen/Qwen-Image-Edit``, ``QwenImageEditPipeline``): one condition image ``[first | last]``;
  ``multi`` (``-2509``/``-2511``, ``QwenImageEditPlusPipeline``): two condition images.
  ``check_layout(layout)`` raises :class:`VFIError` for anything else.
- ``working_size(width, height, resolution) -> (w, h)``: the size the model works at: longest side =
  ``resolution``, both sides multiples of 32 (the model's grid), aspect kept.
- ``default_prompt(t=0.5) -> str``: the instruction, naming the task and ``t``; ``prompt_text(t, prompt)``:
  a custom prompt with ``{t}`` filled in, or the default.
- ``build_conditioning(first, last, *, t=0.5, layout, resolution, prompt=None) -> Conditioning``
  (``prompt`` may hold ``{t}``, filled in with the time):
  ``first``/``last`` are H×W×3 uint8 arrays or PIL images of the same size. The result holds
  ``keyframes`` (both at working size; the VAE encodes each once), ``images`` (the condition images the
  layout asks for: one ``[first|last]`` image or two images), ``vl_images`` (the same images as the
  vision-language encoder sees them: at most :data:`VL_AREA` px each, see :func:`vl_size`), ``prompt``,
  ``t`` and the output ``width``/``height`` (= working size of one keyframe). ``to_frame(image, size)``
  turns a generated PIL image back into a uint8 array at the keyframes' size.

The recipe, for conditioning an adapter outside vfi: keyframes Lanczos-resized to the working size;
the VL encoder gets ``vl_images`` (Lanczos, as the stock pipelines' ``image_processor.resize``); the VAE
encodes each keyframe alone at working size, and for ``side-by-side`` the two latents are joined along
the width (the stock pipeline encodes the joined image; only the latent columns at the seam differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from vfi.errors import VFIError

LAYOUTS = ("side-by-side", "multi")
GRID = 32
DEFAULT_RESOLUTION = 512
MAX_RESOLUTION = 2048
#: Pixel area of each image the vision-language text encoder sees, as in the stock pipelines: ≈1 MP for
#: ``QwenImageEditPipeline``'s one condition image, 384² for each of ``QwenImageEditPlusPipeline``'s.
#: Larger images are scaled down to it (never up), so the prompt stays short: the VL encoder makes one
#: text token per 28×28 px, and the transformer's 4096 rotary positions hold the text after the image.
VL_AREA = {"side-by-side": 1024 * 1024, "multi": 384 * 384}


def check_layout(layout: str) -> str:
    """Return ``layout`` if it is one of :data:`LAYOUTS`, else raise :class:`VFIError`."""
    if layout not in LAYOUTS:
        raise VFIError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}.")
    return layout


def check_resolution(resolution: int) -> int:
    """Return ``resolution`` if it is a multiple of 32 between 32 and :data:`MAX_RESOLUTION`."""
    if not (isinstance(resolution, int) and GRID <= resolution <= MAX_RESOLUTION and resolution % GRID == 0):
        raise VFIError(
            f"resolution must be a multiple of {GRID} between {GRID} and {MAX_RESOLUTION}, got {resolution}."
        )
    return resolution


def working_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The (width, height) the model works at: longest side ``resolution``, multiples of 32, aspect kept."""
    check_resolution(resolution)
    if width <= 0 or height <= 0:
        raise VFIError(f"The frame size must be positive, got {width}×{height}.")
    scale = resolution / max(width, height)
    return (max(GRID, round(width * scale / GRID) * GRID), max(GRID, round(height * scale / GRID) * GRID))


def vl_size(width: int, height: int, area: int) -> tuple[int, int]:
    """The size the VL encoder sees an image at: at most ``area`` px, aspect kept, on the 32-px grid.

    Above ``area`` this is the stock pipelines' ``calculate_dimensions(area, width / height)``.
    """
    if width * height <= area:
        return width, height
    ratio = width / height
    scaled = math.sqrt(area * ratio)
    return max(GRID, round(scaled / GRID) * GRID), max(GRID, round(scaled / ratio / GRID) * GRID)


def default_prompt(t: float = 0.5) -> str:
    """The instruction the adapters are trained with: the task and the time ``t`` of the wanted frame."""
    return (
        f"Video frame interpolation: generate the frame at time t={t:.3f} between the first frame (t=0) "
        "and the last frame (t=1) of the same shot, with identical framing, size and style."
    )


def prompt_text(t: float, prompt: str | None = None) -> str:
    """The prompt for a frame at time ``t``: ``prompt`` with ``{t}`` filled in, or the default instruction."""
    return prompt.replace("{t}", f"{t:.3f}") if prompt else default_prompt(t)


def _to_pil(frame: np.ndarray | Image.Image, name: str) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    array = np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise VFIError(f"{name} must be an H×W×3 uint8 RGB image, got {array.dtype} {array.shape}.")
    return Image.fromarray(array)


@dataclass(frozen=True)
class Conditioning:
    """The model inputs for one in-between frame (see :func:`build_conditioning`)."""

    layout: str
    prompt: str
    t: float
    width: int
    height: int
    keyframes: tuple[Image.Image, Image.Image]
    images: tuple[Image.Image, ...]
    vl_images: tuple[Image.Image, ...]

    def __post_init__(self) -> None:
        check_layout(self.layout)
        if not 0.0 < self.t < 1.0:
            raise VFIError(f"t must be strictly between 0 and 1, got {self.t}.")
        if self.width % GRID or self.height % GRID or self.width <= 0 or self.height <= 0:
            raise VFIError(f"width and height must be positive multiples of {GRID}, got {self.width}×{self.height}.")
        if any(k.size != (self.width, self.height) for k in self.keyframes):
            raise VFIError(f"keyframes must be {self.width}×{self.height}.")
        if len(self.images) != (1 if self.layout == "side-by-side" else 2):
            raise VFIError(f"images: the {self.layout} layout takes {1 if self.layout == 'side-by-side' else 2}.")
        if len(self.vl_images) != len(self.images):
            raise VFIError(f"vl_images must hold one image per condition image ({len(self.images)}).")


def build_conditioning(
    first: np.ndarray | Image.Image,
    last: np.ndarray | Image.Image,
    *,
    t: float = 0.5,
    layout: str,
    resolution: int = DEFAULT_RESOLUTION,
    prompt: str | None = None,
) -> Conditioning:
    """Turn two keyframes, a time and an optional prompt into the model inputs for ``layout``."""
    check_layout(layout)
    first_image, last_image = _to_pil(first, "first"), _to_pil(last, "last")
    if first_image.size != last_image.size:
        raise VFIError(f"The two frames differ in size: {first_image.size} vs {last_image.size}.")
    width, height = working_size(*first_image.size, resolution)
    keyframes = tuple(im.resize((width, height), Image.Resampling.LANCZOS) for im in (first_image, last_image))
    if layout == "side-by-side":
        joined = Image.new("RGB", (2 * width, height))
        joined.paste(keyframes[0], (0, 0))
        joined.paste(keyframes[1], (width, 0))
        images: tuple[Image.Image, ...] = (joined,)
    else:
        images = keyframes
    vl_images = tuple(_resize(im, vl_size(*im.size, VL_AREA[layout])) for im in images)
    return Conditioning(layout, prompt_text(t, prompt), float(t), width, height, keyframes, images, vl_images)


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Lanczos resize, as diffusers' ``VaeImageProcessor.resize`` does for PIL images (the stock pipelines)."""
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def to_frame(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """A generated image as an H×W×3 uint8 array resized to ``size`` = (width, height) of the keyframes."""
    return np.asarray(_resize(image.convert("RGB"), tuple(size)), dtype=np.uint8)
