"""The pieces of ``train_lora.py``: cached model inputs, the flow-matching loss, data order, validation,
checkpoints, model card and Hub upload.

Everything the transformer sees in training is built by the functions inference uses:
:func:`vfi.qwen.conditioning.build_conditioning` (working size, layout, prompt), :func:`vfi.qwen.pipeline.encode_image`,
:func:`vfi.qwen.pipeline.encode_prompts` and :func:`vfi.qwen.pipeline.condition_tokens`; validation runs
:func:`vfi.qwen.pipeline.generate`, the app's denoising loop. torch/diffusers/peft are imported lazily.

API:

- ``cache_samples(loaded, samples, *, resolution, prompt, cache_dir, shard=(0, 1)) -> list[Path]``: one
  safetensors file per sample (packed target latents, packed condition tokens, prompt embeddings, mask, token
  shapes), reused when base, layout, resolution, prompt and files are unchanged. ``load_batch(paths)`` collates.
- ``lora_target_modules(transformer, names) -> list[str]``: the layers a LoRA goes on (all get gradients).
- ``sample_sigmas(scheduler_config, seq_len, u)`` and ``flow_matching_loss(transformer, batch, generator, *,
  scheduler_config, weighting_scheme, ...)``: the objective (see the function docstrings).
- ``epoch_batches(keys, batch_size, epoch, seed, rank=0, world=1)``: the seeded data order of one epoch.
- ``validate(loaded, samples, *, resolution, prompt, steps, guidance, seed)`` → (metrics, frames);
  ``flow_baseline(samples)``; ``save_strip(path, samples, columns)``; ``validation_round(...)``: one
  validation during training (metrics, flow baseline, strip). Checkpoints: :mod:`vfi.training.checkpoints`.
- ``push_folder(folder, repo_id, private)`` (the model card: :mod:`vfi.training.model_card`);
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vfi.errors import VFIError
from vfi.qwen.adapters import ADAPTER_INFO_FILE, WEIGHT_NAME, AdapterInfo, is_hub_id
from vfi.qwen.conditioning import build_conditioning, prompt_text, to_frame
from vfi.training.data import Sample

STRIP_NAME = "validation.png"
CARD_NAME = "README.md"
#: What ``--push_to_hub`` uploads, and nothing else (no optimizer state, logs, caches or checkpoints).
STRIP_ROW_HEIGHT = 160  # px per triplet in the validation image
UPLOAD_ALLOW = (WEIGHT_NAME, ADAPTER_INFO_FILE, CARD_NAME, STRIP_NAME)
WEIGHTING_SCHEMES = ("none", "sigma_sqrt", "logit_normal", "mode", "cosmap")
CACHE_VERSION = 2  # 2: the VL encoder sees at most the stock area (vfi.qwen.conditioning.VL_AREA), Lanczos


# --- cached model inputs ----------------------------------------------------------------------------------


def _cache_key(loaded: Any, sample: Sample, resolution: int, prompt: str) -> str:
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (sample.first, sample.middle, sample.last)]
    facts = [
        CACHE_VERSION,
        loaded.base_model,
        loaded.layout,
        str(loaded.pipe.dtype),
        resolution,
        prompt,
        sample.t,
        files,
    ]
    return hashlib.sha1(json.dumps(facts).encode()).hexdigest()[:20]


def cache_samples(
    loaded: Any,
    samples: Sequence[Sample],
    *,
    resolution: int,
    prompt: str | None,
    cache_dir: str | os.PathLike,
    shard: tuple[int, int] = (0, 1),
) -> list[Path]:
    """Encode each sample once (VAE + text encoder) into ``cache_dir``; return the file of every sample.

    Only the samples of this ``shard`` = (rank, world) are encoded here; the others' paths are returned too.
    """
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from vfi.io.files import atomic_path
    from vfi.qwen.pipeline import condition_tokens, encode_image, encode_prompts

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    pipe = loaded.pipe
    paths = []
    for index, sample in enumerate(samples):
        text = prompt_text(sample.t, prompt)
        path = cache_dir / f"{_cache_key(loaded, sample, resolution, text)}.safetensors"
        paths.append(path)
        if path.exists() or index % shard[1] != shard[0]:
            continue
        first, middle, last = sample.load()
        cond = build_conditioning(first, last, t=sample.t, layout=loaded.layout, resolution=resolution, prompt=text)
        target_image = Image.fromarray(middle).resize((cond.width, cond.height), Image.Resampling.LANCZOS)
        with torch.inference_mode():
            target = encode_image(loaded, target_image)
            keyframes = (encode_image(loaded, cond.keyframes[0]), encode_image(loaded, cond.keyframes[1]))
            tokens, shapes = condition_tokens(pipe, cond, keyframes)
            embeds, mask = encode_prompts(pipe, [cond.prompt], [cond], pipe._execution_device)
        channels, rows, cols = target.shape[1], target.shape[3], target.shape[4]
        tensors = {
            "target": pipe._pack_latents(target, 1, channels, rows, cols)[0],
            "cond": tokens[0],
            "embeds": embeds[0],
            "mask": mask[0] if mask is not None else torch.ones(embeds.shape[1], dtype=torch.long),
        }
        shapes = [(1, rows // 2, cols // 2), *shapes]
        meta = {"shapes": json.dumps(shapes), "name": sample.name, "t": str(sample.t)}
        with atomic_path(path) as tmp:
            save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    return paths


def cache_shape(path: Path) -> tuple[tuple[int, ...], ...]:
    """The token shapes of a cached sample (samples batch together only when these are equal)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return tuple(tuple(s) for s in json.loads(f.metadata()["shapes"]))


def load_batch(paths: Sequence[Path], device: Any, dtype: Any) -> dict[str, Any]:
    """Collate cached samples of equal token shapes: prompt embeddings padded to one length with a mask."""
    import torch
    from safetensors.torch import load_file

    from vfi.qwen.pipeline import pad_prompt_embeds

    items = [load_file(str(p)) for p in paths]
    shapes = [cache_shape(p) for p in paths]
    if len(set(shapes)) != 1:
        raise ValueError("a batch needs samples of one working size")
    embeds, mask = pad_prompt_embeds([i["embeds"] for i in items], [i["mask"] for i in items])
    return {
        "target": torch.stack([i["target"] for i in items]).to(device, dtype),
        "cond": torch.stack([i["cond"] for i in items]).to(device, dtype),
        "embeds": embeds.to(device, dtype),
        "mask": None if mask is None else mask.to(device),
        "img_shapes": [list(s) for s in shapes],
    }


# --- LoRA targets -------------------------------------------------------------------------------------------

#: Modules of the last transformer block whose output the model discards (the text stream ends there): a LoRA
#: on them never gets a gradient, and multi-process (DDP) training stops at step 2 waiting for one.
LAST_BLOCK_UNUSED = ("attn.to_add_out", "txt_mlp.")


def lora_target_modules(transformer: Any, names: Sequence[str]) -> list[str]:
    """Full names of the transformer's linear layers that ``names`` select (by name or dotted suffix, as peft
    matches), without those of the last block whose output is discarded (:data:`LAST_BLOCK_UNUSED`)."""
    import torch

    last = f"transformer_blocks.{len(transformer.transformer_blocks) - 1}."
    found = []
    for full, module in transformer.named_modules():
        if not isinstance(module, torch.nn.Linear) or not any(full == n or full.endswith("." + n) for n in names):
            continue
        if full.startswith(last) and full.removeprefix(last).startswith(LAST_BLOCK_UNUSED):
            continue
        found.append(full)
    if not found:
        raise VFIError(f"--target_modules {','.join(names)} names no linear layer of the transformer.")
    return found


# --- the objective --------------------------------------------------------------------------------------


def sample_sigmas(scheduler_config: dict, seq_len: int, u: Any) -> Any:
    """Noise levels for uniform-ish draws ``u`` in (0, 1), shifted as the scheduler shifts its sigmas."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from vfi.qwen.pipeline import shift_mu

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config)
    u = u.clamp(1e-4, 1.0)
    if scheduler_config.get("use_dynamic_shifting"):
        return scheduler.time_shift(shift_mu(scheduler_config, seq_len), 1.0, u)
    shift = scheduler_config.get("shift", 1.0)
    return shift * u / (1 + (shift - 1) * u)


def flow_matching_loss(
    transformer: Any,
    batch: dict[str, Any],
    generator: Any,
    *,
    scheduler_config: dict,
    weighting_scheme: str = "none",
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    mode_scale: float = 1.29,
) -> Any:
    """Rectified-flow loss of one batch, as the Qwen-Image pipelines sample.

    Packed target latents x0 and noise ε give x_σ = (1 − σ)·x0 + σ·ε with σ drawn by ``weighting_scheme``
    and shifted by ``mu`` for the target's token count; the transformer sees [x_σ, condition tokens]
    (the order :func:`vfi.qwen.pipeline.generate` uses) at timestep σ and predicts the velocity ε − x0. The loss
    is the (weighted) MSE on the target tokens only. ``generator`` (CPU) makes noise and σ reproducible.
    """
    import torch
    from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3

    x0 = batch["target"]
    size, tokens = x0.shape[0], x0.shape[1]
    u = compute_density_for_timestep_sampling(
        weighting_scheme, size, logit_mean=logit_mean, logit_std=logit_std, mode_scale=mode_scale, generator=generator
    )
    sigmas = sample_sigmas(scheduler_config, tokens, u).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float32).to(x0.device, x0.dtype)
    s = sigmas.view(-1, 1, 1).to(x0.dtype)
    noisy = (1.0 - s) * x0 + s * noise
    prediction = transformer(
        hidden_states=torch.cat([noisy, batch["cond"]], dim=1),
        timestep=sigmas.to(x0.dtype),
        guidance=None,
        encoder_hidden_states=batch["embeds"],
        encoder_hidden_states_mask=batch["mask"],
        img_shapes=batch["img_shapes"],
        return_dict=False,
    )[0][:, :tokens]
    weighting = compute_loss_weighting_for_sd3(weighting_scheme, sigmas).view(-1, 1, 1).float()
    error = weighting * (prediction.float() - (noise - x0).float()) ** 2
    return error.reshape(size, -1).mean(1).mean()


def step_generator(seed: int, micro_step: int, rank: int = 0) -> Any:
    """The CPU generator of one micro-batch: a function of (seed, micro step, rank) only, so resuming repeats it."""
    import torch

    state = np.random.SeedSequence([seed, micro_step, rank]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def epoch_batches(
    keys: Sequence[Any], batch_size: int, epoch: int, seed: int, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """This rank's batches of one epoch: a seeded permutation, grouped so a batch has one key (working size).

    Incomplete groups at the end of an epoch are dropped; an epoch has at least one batch if any group is full.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(keys))
    groups: dict[Any, list[int]] = {}
    batches = []
    for index in order:
        group = groups.setdefault(keys[index], [])
        group.append(int(index))
        if len(group) == batch_size:
            batches.append(group.copy())
            group.clear()
    if len(batches) < world:
        raise VFIError(f"Too few samples of one working size for batches of {batch_size} on {world} process(es).")
    usable = len(batches) - len(batches) % world
    return batches[rank:usable:world]


# --- validation ----------------------------------------------------------------------------------------


def validate(
    loaded: Any,
    samples: Sequence[Sample],
    *,
    resolution: int,
    prompt: str | None,
    steps: int,
    guidance: float,
    seed: int,
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Generate each held-out middle frame with the pipeline as it is now; mean PSNR/SSIM vs ground truth."""
    import torch

    from vfi.quality.metrics import psnr, ssim
    from vfi.qwen.pipeline import generate

    scores, frames = [], []
    for index, sample in enumerate(samples):
        first, middle, last = sample.load()
        cond = build_conditioning(first, last, t=sample.t, layout=loaded.layout, resolution=resolution, prompt=prompt)
        generator = torch.Generator("cpu").manual_seed(seed + index)
        image = generate(loaded, [cond], [generator], steps=steps, true_cfg_scale=guidance)[0]
        frame = to_frame(image, (first.shape[1], first.shape[0]))
        frames.append(frame)
        scores.append((psnr(frame, middle), ssim(frame, middle)))
    return _means(scores), frames


def validation_round(
    loaded: Any,
    samples: Sequence[Sample],
    *,
    step: int,
    flow: dict | None,
    strip_path: str | os.PathLike,
    offload: bool,
    **settings: Any,
) -> tuple[dict[str, float], dict]:
    """One validation during training; returns (metrics, flow baseline) and writes the strip to ``strip_path``.

    Step 0 scores the base model (the adapter disabled) and the flow backend; later steps the adapter as
    trained so far. The text encoder comes to the pipeline's device for it when ``offload``. ``settings``: resolution,
    prompt, steps, guidance and seed of :func:`validate`.
    """
    from diffusers.training_utils import offload_models

    columns = {}
    if flow is None or step == 0:
        flow, columns["flow"] = flow_baseline(samples)
    transformer = loaded.pipe.transformer
    transformer.eval()
    if step == 0:
        transformer.disable_adapters()
    try:
        with offload_models(loaded.pipe.text_encoder, device=loaded.device, offload=offload):
            metrics, columns["base" if step == 0 else f"step {step}"] = validate(loaded, samples, **settings)
    finally:
        if step == 0:
            transformer.enable_adapters()
        transformer.train()
    save_strip(strip_path, samples, columns)
    return metrics, flow


def flow_baseline(samples: Sequence[Sample]) -> tuple[dict[str, float], list[np.ndarray]]:
    """The flow backend's middle frames and mean PSNR/SSIM on the same triplets (the bar to beat)."""
    from vfi.backends import FrameRequest, create_backend
    from vfi.quality.metrics import psnr, ssim

    backend = create_backend("flow")
    scores, frames = [], []
    for sample in samples:
        first, middle, last = sample.load()
        frame = backend.interpolate([FrameRequest(first, last, sample.t, 0)])[0]
        frames.append(frame)
        scores.append((psnr(frame, middle), ssim(frame, middle)))
    return _means(scores), frames


def _means(scores: list[tuple[float, float]]) -> dict[str, float]:
    finite = [p for p, _ in scores if math.isfinite(p)] or [100.0]
    return {"psnr": round(float(np.mean(finite)), 3), "ssim": round(float(np.mean([s for _, s in scores])), 4)}


def save_strip(path: str | os.PathLike, samples: Sequence[Sample], columns: dict[str, list[np.ndarray]]) -> Path:
    """One row per triplet: first | each named column of frames | ground truth | last, labelled on top."""
    from PIL import Image, ImageDraw

    from vfi.io.files import atomic_path

    height = STRIP_ROW_HEIGHT
    rows = []
    for index, sample in enumerate(samples):
        first, middle, last = sample.load()
        cells = [first, *(frames[index] for frames in columns.values()), middle, last]
        width = round(first.shape[1] * height / first.shape[0])
        rows.append([Image.fromarray(c).resize((width, height), Image.Resampling.LANCZOS) for c in cells])
    labels = ["first", *columns, "ground truth", "last"]
    widths = [max(row[k].width for row in rows) for k in range(len(labels))]
    strip = Image.new("RGB", (sum(widths), 14 + height * len(rows)), "white")
    draw = ImageDraw.Draw(strip)
    for k, label in enumerate(labels):
        x = sum(widths[:k])
        draw.text((x + 3, 1), label, fill="black")
        for r, row in enumerate(rows):
            strip.paste(row[k], (x, 14 + r * height))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        strip.save(tmp, format="PNG")
    return path


# --- upload ----------------------------------------------------------------------------


def push_folder(folder: str | os.PathLike, repo_id: str, *, private: bool = False) -> str:
    """Create ``repo_id`` (if needed) and upload the adapter files of ``folder`` (allow-list only); return the URL.

    The token comes from ``HF_TOKEN`` or the saved login (``hf auth login``); it is never printed.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder)
    if not (folder / WEIGHT_NAME).is_file():
        raise VFIError(f"{folder} has no {WEIGHT_NAME}: nothing to push.")
    info = AdapterInfo.load(folder)
    if not is_hub_id(repo_id):
        raise VFIError(f"hub_model_id must look like ORG/NAME, got {repo_id!r}.")
    if not is_hub_id(info.base_model):
        raise VFIError(
            f"The adapter's base model is the local path {info.base_model}; train with --base_model_id "
            "ORG/NAME (its Hub id) so the model card and vfi_adapter.json name it, then push."
        )
    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=url.repo_id,
            folder_path=folder,
            allow_patterns=list(UPLOAD_ALLOW),
            commit_message="Upload video frame interpolation LoRA (vfi train_lora.py)",
        )
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise VFIError(
            f"Could not push to the Hugging Face Hub ({type(error).__name__}); check the repo id, login and connection."
        ) from None
    print(f"pushed {', '.join(n for n in UPLOAD_ALLOW if (folder / n).exists())} to {url}")
    return str(url)
