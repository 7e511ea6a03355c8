"""An adapter that makes garbage: what the confidence fallback must catch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vfi.testing.tiny_model import build_tiny_adapter


def build_nan_adapter(base: Path, folder: Path) -> Path:
    """A LoRA adapter for the tiny pipeline ``base`` whose weights blow the latents up to NaN."""
    from safetensors.numpy import load_file, save_file

    build_tiny_adapter(base, folder, seed=3)
    weights = folder / "pytorch_lora_weights.safetensors"
    tensors = load_file(weights)
    save_file({k: v * np.float32(1e30) if "lora_B" in k else v for k, v in tensors.items()}, weights)
    return folder
