"""Test fixtures for adapters as they exist outside vfi: a pre-filled Hugging Face cache, Lightning-format LoRAs.

``fill_hub_cache`` writes the cache layout ``hf_hub_download`` reads (``models--OWNER--NAME/refs/<branch>``
holding a commit hash, ``snapshots/<hash>/<path in repo>``), so with ``HF_HUB_OFFLINE=1`` the real download
code resolves files exactly as it would online. ``write_lightning_lora`` writes a LoRA in the key layout
of the public ``lightx2v/Qwen-Image-Lightning`` files (``transformer_blocks.N.<module>.lora_down.weight``,
``.lora_up.weight`` and ``.alpha``, no ``transformer.`` prefix), which diffusers converts on load.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: Modules the Lightning LoRAs adapt in every block: the attention projections of both streams, both
#: streams' MLPs and their AdaLN modulation.
LIGHTNING_MODULES = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "img_mlp.net.0.proj",
    "img_mlp.net.2",
    "txt_mlp.net.0.proj",
    "txt_mlp.net.2",
    "img_mod.1",
    "txt_mod.1",
)


def fill_hub_cache(hub_cache: Path, repo_id: str, commit: str, files: dict[str, Path], refs=("main",)) -> Path:
    """Put ``files`` (path in repo → local file) into ``hub_cache`` as snapshot ``commit``; ``refs`` point to it."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    for path_in_repo, source in files.items():
        target = repo / "snapshots" / commit / path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return repo / "snapshots" / commit


def write_lightning_lora(pipeline_dir: Path, out_file: Path, *, rank: int = 4, alpha: float = 8.0, seed: int = 0):
    """A random Lightning-format LoRA for the transformer in ``pipeline_dir`` (shapes read from its weights)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    weights = pipeline_dir / "transformer" / "diffusion_pytorch_model.safetensors"
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    with safe_open(str(weights), "pt") as f:
        blocks = sorted({int(k.split(".")[1]) for k in f.keys() if k.startswith("transformer_blocks.")})  # noqa: SIM118
        for block in blocks:
            for module in LIGHTNING_MODULES:
                key = f"transformer_blocks.{block}.{module}"
                out_features, in_features = f.get_slice(f"{key}.weight").get_shape()
                down = torch.randn(rank, in_features, generator=generator) / in_features**0.5
                up = torch.randn(out_features, rank, generator=generator) / rank**0.5
                tensors[f"{key}.lora_down.weight"] = down.to(torch.bfloat16)
                tensors[f"{key}.lora_up.weight"] = up.to(torch.bfloat16)
                tensors[f"{key}.alpha"] = torch.tensor(alpha, dtype=torch.bfloat16)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_file))
    return out_file
