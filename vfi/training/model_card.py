"""The model card of a trained adapter: Hub metadata, usage that reproduces vfi's conditioning, validation.

API:

- ``write_model_card(folder, info, *, repo_id, history, flow) -> Path`` writes ``folder/README.md``.
- ``diffusers_snippet(info, repo_id) -> str``: plain-diffusers code that gives what vfi gives for t = 0.5:
  the same working size, layout, prompt, condition sizes, steps, guidance and noise. The stock pipelines
  resize the condition image(s) to about 1 megapixel (side-by-side) or hand the VAE 1-megapixel images
  (multi); the snippet replaces their ``calculate_dimensions`` so the condition stays at the working size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from vfi.backends.qwen_config import DEFAULT_GUIDANCE as GUIDANCE
from vfi.backends.qwen_config import DEFAULT_STEPS as STEPS
from vfi.qwen.adapters import WEIGHT_NAME, AdapterInfo
from vfi.qwen.conditioning import DEFAULT_RESOLUTION, VL_AREA, prompt_text
from vfi.training.loop import CARD_NAME, STRIP_NAME

_SIDE_BY_SIDE = """\
from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit as stock

image = Image.new("RGB", (2 * width, height))  # [first | last]
image.paste(keyframes[0], (0, 0))
image.paste(keyframes[1], (width, 0))
# Stock resizes the condition to about 1 megapixel; the adapter was trained with it at the working size.
# Stock feeds the text encoder and the VAE one image, so this matches vfi while [first | last] is at most
# {vl_area} px; above that vfi gives the text encoder a copy scaled down to {vl_area} px.
stock.calculate_dimensions = lambda area, ratio: (2 * width, height, None)
"""

_MULTI = """\
from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as stock

image = keyframes  # two condition images
# The text encoder sees each frame at most {vl_area} px (as stock); the VAE sees it at the working size
# (stock: about 1 megapixel).
vl = min(1.0, ({vl_area} / (width * height)) ** 0.5)
vl_size = (max(32, round(width * vl / 32) * 32), max(32, round(height * vl / 32) * 32))
stock.calculate_dimensions = lambda area, ratio: (width, height) if area == stock.VAE_IMAGE_SIZE else vl_size
"""

_SNIPPET = """\
import torch
from diffusers import DiffusionPipeline
from PIL import Image

device, dtype, steps, guidance, seed = "cuda", torch.bfloat16, {steps}, {guidance}, 0
pipe = DiffusionPipeline.from_pretrained({base!r}, torch_dtype=dtype).to(device)
pipe.load_lora_weights({repo!r}, weight_name={weight!r})

first, last = Image.open("first.png").convert("RGB"), Image.open("last.png").convert("RGB")
# The working size: longest side {resolution}, both sides multiples of 32, the frames' aspect kept.
scale = {resolution} / max(first.size)
width, height = (max(32, round(side * scale / 32) * 32) for side in first.size)
keyframes = [frame.resize((width, height), Image.Resampling.LANCZOS) for frame in (first, last)]
{layout_part}
middle = pipe(
    image=image,
    prompt={prompt!r},
    negative_prompt=" ",
    width=width,
    height=height,
    num_inference_steps=steps,
    true_cfg_scale=guidance,
    generator=torch.Generator().manual_seed(seed),
).images[0]
middle.resize(first.size, Image.Resampling.LANCZOS).save("middle.png")
"""


def diffusers_snippet(info: AdapterInfo, repo_id: str) -> str:
    """Plain-diffusers code for the middle frame of ``first.png`` and ``last.png``, conditioned as vfi does."""
    layout_part = (_SIDE_BY_SIDE if info.layout == "side-by-side" else _MULTI).format(vl_area=VL_AREA[info.layout])
    return _SNIPPET.format(
        steps=STEPS,
        guidance=GUIDANCE,
        base=info.base_model,
        repo=repo_id,
        weight=WEIGHT_NAME,
        resolution=info.resolution or DEFAULT_RESOLUTION,
        layout_part=layout_part,
        prompt=prompt_text(0.5, info.prompt),
    )


def _table(history: Sequence[dict], flow: dict | None) -> str:
    lines = ["| step | PSNR (dB) | SSIM |", "|---:|---:|---:|"]
    for row in history:
        label = f"{row['step']} (base model)" if row["step"] == 0 else str(row["step"])
        lines.append(f"| {label} | {row['psnr']:.2f} | {row['ssim']:.4f} |")
    if flow:
        lines.append(f"| flow backend (reference) | {flow['psnr']:.2f} | {flow['ssim']:.4f} |")
    return "\n".join(lines)


def write_model_card(
    folder: str | os.PathLike, info: AdapterInfo, *, repo_id: str, history: Sequence[dict], flow: dict | None
) -> Path:
    """Write ``folder/README.md``: Hub metadata, what the adapter does, usage, validation table and strip."""
    from huggingface_hub import ModelCardData

    from vfi.io.files import atomic_path

    folder = Path(folder)
    metadata = ModelCardData(
        base_model=info.base_model,
        library_name="diffusers",
        license="apache-2.0",
        pipeline_tag="image-to-image",
        tags=["lora", "diffusers", "qwen-image-edit", "video-frame-interpolation", "vfi", f"layout-{info.layout}"],
    )
    training = info.training
    resolution = info.resolution or DEFAULT_RESOLUTION
    strip = (
        f"\n![validation: first, base, adapter, flow, ground truth, last]({STRIP_NAME})\n"
        if (folder / STRIP_NAME).exists()
        else ""
    )
    card = f"""---
{metadata.to_yaml()}
---

# {repo_id.split("/")[-1]}: video frame interpolation LoRA for {info.base_model}

Given two frames of one shot, this LoRA makes {info.base_model} generate the frame in between
(the model's **{info.layout}** input layout, working resolution {resolution} px on the longest side).
Trained with `train_lora.py` from the `vfi` project on {training.get("samples", "?")} frame triplets for
{training.get("steps", "?")} steps (rank {training.get("rank", "?")}, alpha {training.get("lora_alpha", "?")},
learning rate {training.get("learning_rate", "?")}).

## Use with vfi

```bash
python -m vfi pair first.png last.png -o out.mp4 --backend qwen-edit --base-model {info.base_model} \\
    --adapter {repo_id} --resolution {resolution} --steps {STEPS} --guidance {GUIDANCE}
python app.py --backend qwen-edit --base-model {info.base_model} --adapter {repo_id}
```

```python
from vfi.backends.qwen_edit import QwenEditBackend
from vfi.backends.base import FrameRequest

backend = QwenEditBackend("{info.base_model}", ["{repo_id}"])
middle = backend.interpolate([FrameRequest(first, last, 0.5, seed=0)])[0]  # uint8 RGB arrays
```

## Use with plain diffusers

The adapter only works with the conditioning it was trained on: both frames resized to the working size
(longest side {resolution}, multiples of 32), the **{info.layout}** layout, this prompt, and the output at the
working size. The stock pipeline would resize the condition to about 1 megapixel; this code keeps it where vfi
keeps it and gives the middle frame (t = 0.5) as vfi does before its last step, which re-registers the frame
(global shift and zoom) to its keyframes. (For the side-by-side layout vfi encodes each frame through the VAE on
its own, so the latent columns at the seam can differ slightly.)

```python
{diffusers_snippet(info, repo_id)}```

## Validation

Held-out triplets, middle frame vs ground truth (step 0 is the base model without the adapter):

{_table(history, flow)}
{strip}
## Training data

{training.get("data", "")}
"""
    path = folder / CARD_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(card)
    return path
