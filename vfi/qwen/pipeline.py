"""Load a Qwen-Image-Edit(-Plus) base pipeline once per process, attach LoRA adapters, and generate.

API:

- ``load_pipeline(base_model, *, device=None, dtype=None, memory="auto") -> LoadedPipeline``: ``base_model`` is a
  folder or ``OWNER/NAME[:REVISION]`` (``resolve_base`` gives the folder and the snapshot commit); cached per
  (base, dtype, device, memory mode); a second call with the same key returns the same object. The class
  comes from the model's ``model_index.json`` (``QwenImageEditPipeline`` → layout ``side-by-side``,
  ``QwenImageEditPlusPipeline`` → ``multi``). ``base_loads()`` counts real loads (tests).
- ``LoadedPipeline.use_adapters(adapters, lightning=None, *, fuse=False)``: loads each adapter once
  (:class:`vfi.qwen.adapters.AdapterSpec`, fetched by :func:`vfi.qwen.adapters.fetch_adapter`; ``vfi_adapter.json``
  checked against base and layout), then switches with
  ``set_adapters`` / ``disable_lora``; the base is never reloaded.
- ``encode_image(loaded, image) -> Tensor``: one keyframe at working size → normalised VAE latents
  (1, C, 1, h/8, w/8). Training uses it too.
- ``encode_prompts(pipe, prompts, conditionings, device) -> (embeds, mask)`` and
  ``condition_tokens(pipe, conditioning, (first_latents, last_latents)) -> (packed tokens, img_shapes)``:
  the two building blocks of the transformer's input, public so training builds exactly the same input.
- ``generate(loaded, conditionings, generators, *, steps, true_cfg_scale, negative_prompt, keyframe_latents=None)
  -> list[PIL.Image]``: the ONE place that runs the denoising loop. Unlike the stock ``__call__`` it works at
  the conditioning's working size (not a fixed ≈1 MP), takes pre-encoded keyframe latents, and batches
  both layouts. Output images are at the working size.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vfi.errors import VFIError
from vfi.qwen.adapters import AdapterInfo, AdapterSpec, fetch_adapter, hub_errors, hub_snapshot
from vfi.qwen.conditioning import Conditioning

log = logging.getLogger("vfi")

DEFAULT_BASE_MODEL = "Qwen/Qwen-Image-Edit"
MEMORY_MODES = ("auto", "none", "model", "sequential")
LAYOUT_OF_CLASS = {"QwenImageEditPipeline": "side-by-side", "QwenImageEditPlusPipeline": "multi"}
CLASS_OF_LAYOUT = {layout: name for name, layout in LAYOUT_OF_CLASS.items()}
#: Scheduler settings of the distilled few-step (Lightning) LoRAs.
LIGHTNING_SCHEDULER = {"base_shift": math.log(3), "max_shift": math.log(3), "shift_terminal": None}

_CACHE: dict[tuple[str, str, str, str], LoadedPipeline] = {}
_LOADS = {"base": 0}


def base_loads() -> int:
    """How many times a base pipeline was actually loaded in this process."""
    return _LOADS["base"]


def clear_cache() -> None:
    """Forget every cached pipeline (frees memory once nothing else holds them)."""
    _CACHE.clear()


#: GPU memory a denoising call needs beside the weights: per frame at 1024² (≈13k tokens × 3072 wide in bf16)
#: a block holds its input, q/k/v, the attention output and the 4×-wide MLP (≈1 GiB), × the default batch of 4.
ACTIVATION_BYTES = 4 * 2**30
#: Why ``fuse`` and sequential offload do not mix (said before anything is loaded where possible).
FUSE_SEQUENTIAL = (
    "Fusing adapters (fuse) does not work with sequential CPU offload (memory sequential, or auto on a GPU "
    "too small for the transformer), whose weights stay off the GPU until each layer runs: use memory model "
    "or none, or do not fuse."
)


def _choose_memory_mode(pipe: Any, device: str) -> str:
    """'none' if the whole pipeline plus :data:`ACTIVATION_BYTES` fits in free GPU memory, 'model' (one
    component on the GPU at a time) if its largest part does, else 'sequential' (layer by layer).

    Qwen-Image-Edit in bf16: transformer 20.4B parameters = 38.1 GiB, text encoder 8.3B = 15.4 GiB, VAE 0.2 GiB.
    An 80 GB card runs it whole; a 48 GB one (≈44.5 GiB free) holds the transformer and 4 GiB of activations:
    'model'; a 40 GB one (≈39.4 GiB free) cannot: 'sequential'.
    """
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    sizes = [
        sum(p.numel() * p.element_size() for p in module.parameters())
        for module in pipe.components.values()
        if isinstance(module, torch.nn.Module)
    ]
    if sum(sizes) + ACTIVATION_BYTES < free:
        return "none"
    return "model" if max(sizes) + ACTIVATION_BYTES < free else "sequential"


@dataclass(eq=False)
class LoadedPipeline:
    """A cached base pipeline with the adapters loaded into it so far."""

    pipe: Any
    base_model: str
    layout: str
    device: str
    memory: str
    adapters: dict[str, AdapterInfo | None] = field(default_factory=dict)
    active: tuple[tuple[str, float], ...] = ()
    fused: bool = False
    compiled: bool = False
    #: Base weights (on the CPU) of the layers the fused adapters changed, restored exactly on unfusing.
    unfused_weights: dict[str, Any] = field(default_factory=dict)

    def _load_adapter(self, spec: AdapterSpec, *, check: bool) -> str:
        name = spec.name
        if name in self.adapters:
            return name
        folder, weight, info = fetch_adapter(spec)
        if info is not None and check:
            info.check(self.base_model, self.layout, name=f"adapter {spec.reference}")
        elif check:
            log.warning(
                "The adapter %s has no vfi_adapter.json; its base model and layout are not checked.", spec.reference
            )
        try:
            self.pipe.load_lora_weights(str(folder), weight_name=weight, adapter_name=name, use_safetensors=True)
        except (ValueError, RuntimeError, KeyError, OSError) as error:
            raise VFIError(
                f"The adapter {spec.reference} does not fit {self.base_model} ({str(error).splitlines()[0][:200]})."
            ) from None
        self.adapters[name] = info
        return name

    def info(self, spec: AdapterSpec) -> AdapterInfo | None:
        """The ``vfi_adapter.json`` of a loaded adapter (None if it had none)."""
        return self.adapters.get(spec.name)

    def use_adapters(
        self, adapters: Sequence[AdapterSpec] = (), lightning: AdapterSpec | None = None, *, fuse: bool = False
    ) -> None:
        """Make exactly these adapters (at their scales) active; load the ones not loaded yet."""
        if fuse and self.memory == "sequential":
            raise VFIError(FUSE_SEQUENTIAL)
        wanted = [(self._load_adapter(spec, check=True), spec.scale) for spec in adapters]
        if lightning is not None:
            wanted.append((self._load_adapter(lightning, check=False), lightning.scale))
        if tuple(wanted) == self.active and fuse == self.fused:
            return
        if self.fused:
            self._unfuse()
        if not wanted:
            if self.adapters:
                self.pipe.disable_lora()
        else:
            self.pipe.enable_lora()
            self.pipe.set_adapters([n for n, _ in wanted], [s for _, s in wanted])
            if fuse:
                self._fuse([n for n, _ in wanted])
        self.active = tuple(wanted)

    def _fuse(self, names: list[str]) -> None:
        """Fuse the named adapters into the transformer, keeping the base weights they change."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        for module_name, module in self.pipe.transformer.named_modules():
            if isinstance(module, BaseTunerLayer) and any(name in module.lora_A for name in names):
                self.unfused_weights[module_name] = module.get_base_layer().weight.detach().to("cpu", copy=True)
        self.pipe.fuse_lora(components=["transformer"], adapter_names=names)
        self.fused = True

    def _unfuse(self) -> None:
        """Undo :meth:`_fuse` exactly: ``unfuse_lora`` subtracts the LoRA again, which drifts in bf16, so the
        kept base weights are copied back (any number of switches leaves the base as loaded)."""
        import torch

        self.pipe.unfuse_lora()
        modules = dict(self.pipe.transformer.named_modules())
        with torch.no_grad():
            for module_name, weight in self.unfused_weights.items():
                modules[module_name].get_base_layer().weight.copy_(weight)
        self.unfused_weights.clear()
        self.fused = False

    def compile(self) -> None:
        """``torch.compile`` the transformer (once)."""
        if not self.compiled:
            self.pipe.transformer.compile()
            self.compiled = True


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_pipeline(
    base_model: str, *, device: str | None = None, dtype: str | None = None, memory: str = "auto"
) -> LoadedPipeline:
    """The cached pipeline for ``base_model`` (Hub id or folder), loading it on first use."""
    import torch

    device = device or _default_device()
    dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    if memory not in MEMORY_MODES:
        raise VFIError(f"memory must be one of {', '.join(MEMORY_MODES)}, got {memory!r}.")
    if not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise VFIError(f"dtype must be a torch dtype name such as bfloat16 or float32, got {dtype!r}.")
    key = (base_model, dtype, device, memory)
    if key in _CACHE:
        return _CACHE[key]
    pipe = _load_base(base_model, getattr(torch, dtype))
    layout = LAYOUT_OF_CLASS.get(type(pipe).__name__)
    if layout is None:
        raise VFIError(f"{base_model} is a {type(pipe).__name__}, not a Qwen-Image-Edit pipeline.")
    mode = memory
    if device.startswith("cuda"):
        if memory == "auto":  # ZeroGPU's free memory is emulated: there the pipeline simply goes to cuda
            mode = "none" if os.environ.get("SPACES_ZERO_GPU") else _choose_memory_mode(pipe, device)
        if mode == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif mode == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)
    else:
        mode = "none"
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    loaded = LoadedPipeline(pipe, base_model, layout, device, mode)
    _CACHE[key] = loaded
    return loaded


def resolve_base(base_model: str) -> tuple[str, str | None]:
    """(folder to load, its Hub snapshot commit or None) of a base model: a folder, or ``OWNER/NAME[:REVISION]``
    fetched into the Hugging Face cache (once per process and cache: what loaded is what a manifest records)."""
    if os.path.isdir(base_model):
        snapshot = hub_snapshot(base_model) or hub_snapshot(Path(base_model).resolve())
        return base_model, snapshot[1] if snapshot else None
    repo, colon, revision = base_model.partition(":")
    if base_model.startswith((".", "/", "~")) or repo.count("/") != 1 or (colon and not revision):
        raise VFIError(
            f"The base model {base_model} is neither a folder nor a Hub repo id (owner/name, optionally :revision)."
        )
    from huggingface_hub import constants

    return _download_base(repo, revision or None, constants.HF_HUB_CACHE)


@functools.cache
def _download_base(repo: str, revision: str | None, cache: str) -> tuple[str, str | None]:
    from diffusers import DiffusionPipeline

    try:
        folder = str(DiffusionPipeline.download(repo, revision=revision, use_safetensors=True))
    except hub_errors() as error:
        at = f" at revision {revision}" if revision else ""
        raise VFIError(
            f"Could not load the base model {repo}{at} from the Hugging Face Hub ({type(error).__name__}): "
            "check the name, the revision, the connection and that its weights are safetensors."
        ) from None
    snapshot = hub_snapshot(folder)
    return folder, snapshot[1] if snapshot else None


def _load_base(base_model: str, torch_dtype: Any) -> Any:
    from diffusers import DiffusionPipeline

    folder, _ = resolve_base(base_model)
    try:
        pipe = DiffusionPipeline.from_pretrained(folder, dtype=torch_dtype, use_safetensors=True)
    except hub_errors() as error:
        raise VFIError(
            f"Could not load the base model {base_model} from the folder {folder} ({type(error).__name__}): "
            "check that its weights are safetensors."
        ) from None
    _LOADS["base"] += 1
    return pipe


# --- generation -------------------------------------------------------------------------------------------


def encode_image(loaded: LoadedPipeline, image: Any) -> Any:
    """One image (PIL, sides multiples of 32) → normalised VAE latents of shape (1, C, 1, h/8, w/8)."""
    import torch

    pipe = loaded.pipe
    device = pipe._execution_device
    pixels = pipe.image_processor.preprocess(image, image.height, image.width).unsqueeze(2)
    with torch.inference_mode():
        return pipe._encode_vae_image(pixels.to(device=device, dtype=pipe.vae.dtype), generator=None)


def encode_prompts(pipe: Any, prompts: Sequence[str], conds: Sequence[Conditioning], device: Any) -> tuple[Any, Any]:
    """Prompt embeddings for each (prompt, images) pair, padded to one batch with a mask."""
    import torch

    embeds, masks = [], []
    for prompt, cond in zip(prompts, conds):
        images = cond.vl_images[0] if cond.layout == "side-by-side" else list(cond.vl_images)
        embed, mask = pipe.encode_prompt(prompt=prompt, image=images, device=device)
        embeds.append(embed[0])
        masks.append(mask[0] if mask is not None else torch.ones(embed.shape[1], dtype=torch.long, device=device))
    return pad_prompt_embeds(embeds, masks)


def pad_prompt_embeds(embeds: Sequence[Any], masks: Sequence[Any]) -> tuple[Any, Any]:
    """Stack per-prompt embeddings (L×D) and masks (L) zero-padded to one length; the mask is None if all ones."""
    import torch

    length = max(e.shape[0] for e in embeds)
    embed = torch.stack([torch.cat([e, e.new_zeros(length - e.shape[0], e.shape[1])]) for e in embeds])
    mask = torch.stack([torch.cat([m, m.new_zeros(length - m.shape[0])]) for m in masks])
    return embed, (None if bool(mask.all()) else mask)


def condition_tokens(pipe: Any, cond: Conditioning, latents: tuple[Any, Any]) -> tuple[Any, list[tuple[int, int, int]]]:
    """Packed condition latents of one request and their (frames, rows, cols) shapes, per layout."""
    import torch

    parts = [torch.cat(latents, dim=-1)] if cond.layout == "side-by-side" else list(latents)
    packed = [pipe._pack_latents(p, 1, p.shape[1], p.shape[3], p.shape[4]) for p in parts]
    return torch.cat(packed, dim=1), [(1, p.shape[3] // 2, p.shape[4] // 2) for p in parts]


def shift_mu(scheduler_config: dict, seq_len: int) -> float:
    """The resolution-dependent shift ``mu`` the pipelines use for ``seq_len`` target tokens (same defaults)."""
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit import calculate_shift

    return calculate_shift(
        seq_len,
        scheduler_config.get("base_image_seq_len", 256),
        scheduler_config.get("max_image_seq_len", 4096),
        scheduler_config.get("base_shift", 0.5),
        scheduler_config.get("max_shift", 1.15),
    )


class NonFiniteOutput(VFIError):
    """The denoised latents hold NaN or infinite values."""


def generate(
    loaded: LoadedPipeline,
    conditionings: Sequence[Conditioning],
    generators: Sequence[Any],
    *,
    steps: int,
    true_cfg_scale: float = 1.0,
    negative_prompt: str = " ",
    keyframe_latents: Sequence[tuple[Any, Any]] | None = None,
    lightning: bool = False,
    callback_on_step_end: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """Denoise one batch of requests at their working size; returns PIL images at that size.

    ``keyframe_latents`` (from :func:`encode_image`, per request (first, last)) skips the VAE encoder.
    CFG runs when ``true_cfg_scale > 1``; ``lightning`` uses the few-step LoRAs' scheduler shift.
    ``callback_on_step_end(step, steps)`` is called after each denoising step (step counts from 1).
    """
    import numpy as np
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit import retrieve_timesteps
    from diffusers.utils.torch_utils import randn_tensor

    conds = list(conditionings)
    if not conds or len(generators) != len(conds):
        raise ValueError("generate needs one generator per conditioning")
    if {(c.layout, c.width, c.height) for c in conds} != {(loaded.layout, conds[0].width, conds[0].height)}:
        raise ValueError(f"all conditionings must use the {loaded.layout} layout and one working size")
    if steps < 2:
        raise VFIError(f"steps must be at least 2, got {steps}.")
    pipe = loaded.pipe
    device = pipe._execution_device
    width, height = conds[0].width, conds[0].height
    with torch.inference_mode():
        # 1. Text (with the condition images) → embeddings.
        prompt_embeds, prompt_mask = encode_prompts(pipe, [c.prompt for c in conds], conds, device)
        do_cfg = true_cfg_scale > 1.0
        if do_cfg:
            negative_embeds, negative_mask = encode_prompts(pipe, [negative_prompt] * len(conds), conds, device)
        dtype = prompt_embeds.dtype

        # 2. Keyframes → packed condition tokens (pre-encoded latents are reused).
        if keyframe_latents is None:
            keyframe_latents = [
                (encode_image(loaded, c.keyframes[0]), encode_image(loaded, c.keyframes[1])) for c in conds
            ]
        tokens, shapes = zip(*(condition_tokens(pipe, c, lat) for c, lat in zip(conds, keyframe_latents)))
        image_latents = torch.cat(tokens).to(device=device, dtype=dtype)

        # 3. Noise, one generator per request.
        channels = pipe.transformer.config.in_channels // 4
        rows, cols = height // pipe.vae_scale_factor, width // pipe.vae_scale_factor
        noise = [
            randn_tensor((1, 1, channels, rows, cols), generator=g, device=device, dtype=dtype) for g in generators
        ]
        latents = pipe._pack_latents(torch.cat(noise), len(conds), channels, rows, cols)
        img_shapes = [[(1, rows // 2, cols // 2), *s] for s in shapes]

        # 4. Timesteps (a fresh scheduler per call: nothing shared between callers).
        config = dict(pipe.scheduler.config, **(LIGHTNING_SCHEDULER if lightning else {}))
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(config)
        mu = shift_mu(config, latents.shape[1])
        sigmas = np.linspace(1.0, 1 / steps, steps)
        timesteps, _ = retrieve_timesteps(scheduler, steps, device, sigmas=sigmas, mu=mu)
        scheduler.set_begin_index(0)

        # 5. Denoising loop.
        def predict(embeds: Any, mask: Any, model_input: Any, timestep: Any) -> Any:
            out = pipe.transformer(
                hidden_states=model_input,
                timestep=timestep / 1000,
                guidance=None,
                encoder_hidden_states_mask=mask,
                encoder_hidden_states=embeds,
                img_shapes=img_shapes,
                attention_kwargs={},
                return_dict=False,
            )[0]
            return out[:, : latents.shape[1]]

        for index, t in enumerate(timesteps):
            model_input = torch.cat([latents, image_latents], dim=1)
            timestep = t.expand(latents.shape[0]).to(dtype)
            with pipe.transformer.cache_context("cond"):
                noise_pred = predict(prompt_embeds, prompt_mask, model_input, timestep)
            if do_cfg:
                with pipe.transformer.cache_context("uncond"):
                    negative_pred = predict(negative_embeds, negative_mask, model_input, timestep)
                combined = negative_pred + true_cfg_scale * (noise_pred - negative_pred)
                noise_pred = combined * (noise_pred.norm(dim=-1, keepdim=True) / combined.norm(dim=-1, keepdim=True))
            latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
            if callback_on_step_end is not None:
                callback_on_step_end(index + 1, len(timesteps))

        if not bool(torch.isfinite(latents).all()):
            raise NonFiniteOutput("The model produced invalid (NaN) values; try float32 or more steps.")

        # 6. Decode, one frame at a time (the decoder's activations grow with the batch: ≈6 GiB a frame at 2048²).
        latents = pipe._unpack_latents(latents, height, width, pipe.vae_scale_factor).to(pipe.vae.dtype)
        images = [_decode_latents(pipe, latents[i : i + 1])[0] for i in range(latents.shape[0])]
    pipe.maybe_free_model_hooks()
    return images


def _decode_latents(pipe: Any, latents: Any) -> list[Any]:
    """Normalised latents (B, C, 1, h, w) → PIL images, de-normalised exactly as the stock pipelines do: ``std``
    cast to the latents' dtype, inverted there, divided by (``latents * std`` rounds otherwise in bf16: up to
    9 levels apart on the tiny decoder)."""
    import torch

    shape = (1, pipe.vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(pipe.vae.config.latents_mean).view(shape).to(latents.device, latents.dtype)
    inverse_std = 1.0 / torch.tensor(pipe.vae.config.latents_std).view(shape).to(latents.device, latents.dtype)
    decoded = pipe.vae.decode(latents / inverse_std + mean, return_dict=False)[0][:, :, 0]
    return pipe.image_processor.postprocess(decoded, output_type="pil")
