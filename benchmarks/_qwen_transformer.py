"""Shared parts of the Qwen-Image transformer benchmarks (``gpu_throughput.py``, ``train_throughput.py``).

The transformer is diffusers' ``QwenImageTransformer2DModel`` with random weights, built directly on the
target device in the target dtype (20B parameters never pass through CPU memory). Its inputs are packed the
way the Qwen edit pipelines pack them: the target frame's tokens first, then the conditioning image(s)'
tokens, ``img_shapes`` listing one ``(frame, height, width)`` grid per image, and Qwen2.5-VL prompt
embeddings as ``encoder_hidden_states``.

Conditioning layouts (the keyframes as the model sees them):

- ``single``: one conditioning frame of the output size (plain image editing; 1 frame).
- ``side-by-side``: the two keyframes as one double-width image (``Qwen/Qwen-Image-Edit``; 2 frames).
- ``multi``: the two keyframes as two images (``-2509`` / ``-2511``; 2 frames). Same token count as
  side-by-side; only the rope layout differs.

Arithmetic FLOP count of one forward (:func:`forward_flops`), per sample, with D = heads × head_dim,
L layers, n_img image tokens (target + conditioning), n_txt text tokens, n = n_img + n_txt:

- token-wise linear layers, 2 · params · tokens: per layer and token 12·D² weights (q, k, v, out: 4·D²;
  the MLP D → 4D → D: 8·D²; the image and text streams have their own copies but each token goes through
  one), so ``L · 24·D²·n``; plus ``img_in`` 2·C_in·D·n_img, ``txt_in`` 2·J·D·n_txt and ``proj_out``
  2·D·(p²·C_out)·n_img;
- joint attention, ``L · 4·n²·D`` (Qᵀ·K and attention·V, 2·n²·D each);
- per-sample terms (timestep embedding, AdaLN modulation: ≈ 24·D² per layer per sample) and element-wise
  work (norms, rope, softmax, GELU) are left out: below 0.1 % at these sizes. LoRA adapters add
  2·r·(in + out) per adapted layer and token (≈ 4 % of that layer at r = 64) and are not counted: the
  count is the useful work of the base model, so unfused LoRA shows as lower TFLOP/s.

Text tokens (:func:`text_tokens`) come from the conditioning: the instruction plus the Qwen2.5-VL
encoder's tokens for the images it sees (one per 28×28 px after the processor's rounding), which
:mod:`vfi.qwen.conditioning` bounds to ≈1 MP for side-by-side and 384² per image for multi. At 1024²: multi
456 text tokens, n = 3 × 64² + 456 = 12,744 tokens, 173 TFLOP linear + 120 TFLOP attention ≈ 293 TFLOP per
forward (the project's cost model: ≈ 12.7k tokens, ≈ 290 TFLOP); side-by-side 1,390 text tokens (2,765
without the bound), n = 13,678, ≈ 324 TFLOP.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from vfi.qwen.conditioning import VL_AREA, vl_size
from vfi.testing.tiny_model import MAX_PIXELS, MIN_PIXELS

# The real Qwen-Image / Qwen-Image-Edit transformer (diffusers' class defaults are this config).
FULL_CONFIG: dict[str, Any] = {
    "patch_size": 2,
    "in_channels": 64,
    "out_channels": 16,
    "num_layers": 60,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 3584,
    "guidance_embeds": False,
    "axes_dims_rope": (16, 56, 56),
}
# Scaled down for CPU: same code paths, seconds instead of hours (rope axes sum to the head dim).
TINY_CONFIG: dict[str, Any] = {
    **FULL_CONFIG,
    "num_layers": 2,
    "attention_head_dim": 32,
    "num_attention_heads": 2,
    "joint_attention_dim": 64,
    "axes_dims_rope": (8, 12, 12),
}
# Pixels per text token of the real Qwen-Image-Edit processor (14-px patches merged 2 × 2); its pixel bounds are
# the tiny model's MIN_PIXELS / MAX_PIXELS (the real ones).
VL_TOKEN_SIDE = 28
# Text tokens besides the images': vfi's default instruction (≈45 Qwen tokens) and what the chat template
# keeps after the dropped system prompt (≈10), rounded up.
PROMPT_TOKENS = 64
FULL_RESOLUTIONS = (512, 1024)
TINY_RESOLUTIONS = (64, 128)
PIXELS_PER_TOKEN = 16  # the VAE downsamples 8×, the transformer packs 2 × 2 latents into one token
LAYOUTS = {"single": 1, "side-by-side": 2, "multi": 2}  # layout -> conditioning frames

# LoRA targets (module-name suffixes matched by peft). Attention: the image stream's q/k/v/out and the
# text stream's added projections; MLP: both streams' feed-forward in/out projections. The AdaLN
# modulation, img_in/txt_in and proj_out are left frozen, as in diffusers' Qwen-Image LoRA recipes.
ATTENTION_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
MLP_TARGETS = ("img_mlp.net.0.proj", "img_mlp.net.2", "txt_mlp.net.0.proj", "txt_mlp.net.2")

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass(frozen=True)
class Shape:
    """The geometry of one transformer call: square frames of ``resolution`` pixels, a layout, a batch."""

    resolution: int
    layout: str
    batch: int
    text_tokens: int

    def __post_init__(self) -> None:
        if self.resolution <= 0 or self.resolution % PIXELS_PER_TOKEN:
            raise ValueError(f"resolution must be a positive multiple of {PIXELS_PER_TOKEN}, got {self.resolution}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")
        if self.text_tokens < 1:
            raise ValueError(f"text_tokens must be at least 1, got {self.text_tokens}")

    @property
    def grids(self) -> list[tuple[int, int, int]]:
        """One (frame, height, width) token grid per image: the target first, then the conditioning."""
        side = self.resolution // PIXELS_PER_TOKEN
        conditioning = {"single": [(1, side, side)], "side-by-side": [(1, side, 2 * side)]}
        return [(1, side, side), *conditioning.get(self.layout, [(1, side, side)] * 2)]

    @property
    def img_shapes(self) -> list[list[tuple[int, int, int]]]:
        """``img_shapes`` as the Qwen edit pipelines pass it (one list of grids per sample)."""
        return [self.grids] * self.batch

    @property
    def target_tokens(self) -> int:
        frames, height, width = self.grids[0]
        return frames * height * width

    @property
    def image_tokens(self) -> int:
        return sum(f * h * w for f, h, w in self.grids)

    @property
    def tokens(self) -> int:
        """Sequence length of the joint attention, per sample."""
        return self.image_tokens + self.text_tokens


def text_tokens(resolution: int, layout: str) -> int:
    """Prompt length for square frames of ``resolution`` px: instruction plus the VL encoder's image tokens."""
    images = {"single": [(resolution, resolution)], "side-by-side": [(2 * resolution, resolution)]}
    area = VL_AREA["multi" if layout == "multi" else "side-by-side"]
    tokens = PROMPT_TOKENS
    for width, height in images.get(layout, [(resolution, resolution)] * 2):
        width, height = vl_size(width, height, area)
        rows, cols = smart_resize(height, width, VL_TOKEN_SIDE, MIN_PIXELS, MAX_PIXELS)
        tokens += rows * cols // VL_TOKEN_SIDE**2
    return tokens


def flop_terms(config: dict[str, Any], shape: Shape) -> dict[str, float]:
    """Arithmetic FLOPs of one forward over the whole batch, as ``linear`` and ``attention`` (module docstring)."""
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    n_img, n_txt = shape.image_tokens, shape.text_tokens
    n = n_img + n_txt
    embed = 2 * config["in_channels"] * dim * n_img + 2 * config["joint_attention_dim"] * dim * n_txt
    out = 2 * dim * config["patch_size"] ** 2 * config["out_channels"] * n_img
    layers = config["num_layers"]
    return {
        "linear": float(shape.batch * (layers * 24 * dim * dim * n + embed + out)),
        "attention": float(shape.batch * layers * 4 * n * n * dim),
    }


def forward_flops(config: dict[str, Any], shape: Shape) -> float:
    """Total arithmetic FLOPs of one forward over the whole batch."""
    return sum(flop_terms(config, shape).values())


@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_transformer(config: dict[str, Any], device: torch.device, dtype: torch.dtype):
    """A random-weight ``QwenImageTransformer2DModel``, allocated on ``device`` in ``dtype`` from the start."""
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(0)
    with torch.device(device), _default_dtype(dtype):
        model = QwenImageTransformer2DModel(**config)
    return model.requires_grad_(False).eval()


def attach_lora(model, rank: int, targets: Sequence[str]) -> None:
    """Add a peft LoRA adapter (alpha = rank) with random non-zero B, so fusing it changes the weights."""
    from peft import LoraConfig

    model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=list(targets)))
    generator = torch.Generator().manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.copy_(torch.randn(param.shape, generator=generator) * 1e-3)


def make_inputs(config: dict[str, Any], shape: Shape, device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Random packed latents (target + conditioning), prompt embeddings and a timestep for ``shape``."""
    generator = torch.Generator(device).manual_seed(0)

    def randn(*size: int) -> torch.Tensor:
        return torch.randn(size, generator=generator, device=device, dtype=dtype)

    return {
        "hidden_states": randn(shape.batch, shape.image_tokens, config["in_channels"]),
        "encoder_hidden_states": randn(shape.batch, shape.text_tokens, config["joint_attention_dim"]),
        "encoder_hidden_states_mask": None,  # the pipelines drop an all-ones mask (keeps flash attention)
        "timestep": torch.full((shape.batch,), 0.5, device=device, dtype=dtype),
        "img_shapes": shape.img_shapes,
        "return_dict": False,
    }


def measure(fn: Callable[[], Any], device: torch.device, *, warmup: int, repeats: int) -> tuple[list[float], Any]:
    """Seconds per call of ``fn`` for ``repeats`` calls after ``warmup`` (CUDA events on a GPU), and the last result."""
    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            result = fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000)
        else:
            begin = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - begin)
    return times, result


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, float | None]]:
    """Yields a dict whose ``"peak_gib"`` is set on exit: max allocated GPU memory inside the block (None on CPU)."""
    result: dict[str, float | None] = {"peak_gib": None}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield result
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        result["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30


def shape_columns(shape: Shape) -> dict[str, Any]:
    """The geometry columns of a row: resolution, layout, condition frames, batch, text and total tokens."""
    return {
        "resolution": shape.resolution,
        "layout": shape.layout,
        "cond_frames": LAYOUTS[shape.layout],
        "batch": shape.batch,
        "text_tokens": shape.text_tokens,
        "tokens": shape.tokens,
    }


def timing_row(shape: Shape, times: list[float], flops: float, peak_gib: float | None) -> dict[str, Any]:
    """The columns both benchmarks share: geometry, median seconds, TFLOP and achieved TFLOP/s, peak memory."""
    seconds = statistics.median(times)
    return {
        **shape_columns(shape),
        "seconds": seconds,
        "tflop": flops / 1e12,
        "tflops": flops / 1e12 / seconds,
        "peak_gib": peak_gib,
    }


def progress(label: str, row: dict[str, Any]) -> None:
    """One line on stderr per measured row, so a long GPU run shows where it is."""
    shape = f"{row['resolution']}px {row['layout']} batch {row['batch']}"
    print(f"  {label} {shape}: {row['seconds']:.4f} s", file=sys.stderr, flush=True)


def format_table(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> str:
    """A plain-text table: ``columns`` are (key, header, format spec); missing values print as ``-``."""
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append(["-" if row.get(key) is None else format(row[key], spec) for key, _, spec in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in cells)


@dataclass(frozen=True)
class Setup:
    """What the common command-line options resolve to."""

    config: dict[str, Any]
    device: torch.device
    dtype: torch.dtype
    shapes: list[Shape]
    warmup: int
    repeats: int
    json_path: Path | None


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _layout_list(text: str) -> list[str]:
    layouts = [part for part in text.split(",") if part]
    for layout in layouts:
        if layout not in LAYOUTS:
            raise argparse.ArgumentTypeError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    return layouts


def add_common_arguments(parser: argparse.ArgumentParser, *, layouts: str, batches: str) -> None:
    """Options both benchmarks take (device, size of the model, shapes, repeats, JSON output)."""
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=DTYPES, help="default: bf16 on CUDA, fp32 on CPU")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", dest="tiny", action="store_true", default=None, help="scaled-down config (CPU default)")
    size.add_argument("--full", dest="tiny", action="store_false", help="the real 60-layer config (CUDA default)")
    parser.add_argument("--layers", type=int, help="override the number of transformer blocks")
    parser.add_argument("--resolutions", type=_int_list, help="square sizes in pixels (default 512,1024; tiny 64,128)")
    parser.add_argument("--layouts", type=_layout_list, default=_layout_list(layouts), help=f"default {layouts}")
    parser.add_argument("--batches", type=_int_list, default=_int_list(batches), help=f"default {batches}")
    parser.add_argument(
        "--text-tokens", type=int, help="prompt length (default: from the conditioning of each shape, text_tokens())"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")


def resolve_setup(args: argparse.Namespace) -> Setup:
    """Turn the common options into a :class:`Setup` (tiny on CPU, full on CUDA unless told otherwise)."""
    device = torch.device(args.device)
    tiny = device.type != "cuda" if args.tiny is None else args.tiny
    config = dict(TINY_CONFIG if tiny else FULL_CONFIG)
    if args.layers is not None:
        config["num_layers"] = args.layers
    dtype = DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    resolutions = args.resolutions or (TINY_RESOLUTIONS if tiny else FULL_RESOLUTIONS)
    shapes = [
        Shape(resolution, layout, batch, args.text_tokens or text_tokens(resolution, layout))
        for resolution in resolutions
        for layout in args.layouts
        for batch in args.batches
    ]
    return Setup(config, device, dtype, shapes, args.warmup, args.repeats, args.json)


def write_json(path: Path, setup: Setup, rows: list[dict[str, Any]], **extra: Any) -> None:
    """Write the configuration and the measured rows to ``path``."""
    info = {
        "device": torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else str(setup.device),
        "dtype": str(setup.dtype).removeprefix("torch."),
        "config": setup.config,
        **extra,
        "rows": rows,
    }
    path.write_text(json.dumps(info, indent=2) + "\n")
