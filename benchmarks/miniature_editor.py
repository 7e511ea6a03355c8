"""A tiny *pretrained* Qwen-Image-Edit "editor": the method of the project in miniature, on a CPU.

The real base model knows how to edit an image but has never seen an in-between frame; an interpolation
LoRA teaches it that. The miniature editor is built the same way, small enough for minutes on two CPU cores:

1. the tokenizer, processor, text encoder and scheduler of :func:`vfi.testing.tiny_model.build_tiny_pipeline`, the
   tokenizer given the pieces of the pipeline's system prompt as added tokens so that, as with the real
   tokenizer, the prompt template's prefix is exactly the ``prompt_template_encode_start_idx`` (64) tokens the
   pipeline drops. (The tiny tokenizer has since learnt the template's words itself, so its prefix is already 64
   tokens; the added tokens still change the token ids and their random embeddings, and every measured number
   of the miniature was made with them, so they stay until the editor is rebuilt and measured without.)
2. a small ``AutoencoderKLQwenImage`` (4× downsampling by default, 16 latent channels) trained to reconstruct the
   synthetic frames of :mod:`benchmarks.synthetic`, its ``latents_mean``/``latents_std`` measured on them;
3. a small ``QwenImageTransformer2DModel`` pre-trained, with vfi's own conditioning and flow-matching loss
   (:func:`vfi.training.loop.cache_samples`, :func:`vfi.training.loop.load_batch`, :func:`vfi.training.loop.flow_matching_loss`),
   on timeless edits named in the prompt: reproduce the first or the second condition image. The two
   condition images come from unrelated scenes: no time, no motion.

The result is a ``QwenImageEditPlusPipeline`` folder (``layout="multi"``, the default; ``QwenImageEditPipeline``
for ``side-by-side``) written with ``save_pretrained``: ``--base-model`` for vfi and ``--base_model`` for
``train_lora.py``. torch and diffusers are imported lazily.

API:

- ``EditorConfig``: sizes, steps and seed (frozen, validated); ``config.key()`` names the cached build.
- ``build_editor(out_dir, config) -> Path``: build and save (atomically); ``miniature.json`` in the folder
  records the config and what was measured (VAE reconstruction PSNR, edit losses).
- ``cached_editor(config, cache_dir=None) -> Path``: the build for ``config`` under ``cache_dir``
  (default ``~/.cache/vfi/miniature``), built on first use.
- ``reconstruction_psnr(vae, images, targets=None) -> float``: PSNR after a VAE round trip.
- ``loss_ends(losses) -> [first, last]``: mean loss over the first and the last tenth of a run.
- ``EDIT_TASKS``: the pre-training edits (prompt → how the target is made from the two images).
- ``SHIFT_PROMPT``, ``COLOUR_PROMPT``, ``shift_image``, ``grey``: the optional shift and colour edits (off by default; tried
  and measured, see docs/miniature.md).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vfi.errors import VFIError
from vfi.qwen.conditioning import check_layout

CACHE_DIR = Path("~/.cache/vfi/miniature")
FACTS_FILE = "miniature.json"
#: Timeless edits the transformer is pre-trained on: prompt → target from (first image, second image).
#: Short prompts: every text token is transformer input, and the tiny text encoder is random anyway.
EDIT_TASKS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "copy 1": lambda first, second: first,
    "copy 2": lambda first, second: second,
}
#: With ``EditorConfig.shift_examples``, also edits that move one condition image by an offset named in the prompt
#: (``shift 1 +3 -2``: picture 1 moved 3 px right and 2 px up, see :func:`shift_image`): no time, no in-between.
SHIFT_PROMPT = "shift {which} {dx:+d} {dy:+d}"
#: With ``EditorConfig.colour_examples``: picture 2 is picture 1 moved by an unnamed offset and turned grey; the
#: target is picture 2 in picture 1's colours. Finding each grey pixel's colour needs the correspondence between
#: the two pictures (the ingredient interpolation needs), but involves no time and no in-between.
COLOUR_PROMPT = "colour 2 from 1"
_SOURCES = ("benchmarks/miniature_editor.py", "benchmarks/synthetic.py", "vfi/testing/tiny_model.py")


@dataclass(frozen=True)
class EditorConfig:
    """How the miniature editor is built.

    Args:
        layout: ``multi`` (``QwenImageEditPlusPipeline``: each condition image's tokens sit at the target's
            positions, so reading the condition is a same-position look-up) or ``side-by-side``.
        size: side of the training images and the working resolution (px, multiple of 32).
        vae_factor: the VAE's downsampling, 4 or 2 (one stage fewer: a transformer token covers 4 px, not 8).
        vae_steps, vae_lr: reconstruction training of the VAE (batches of 8 crops of half the size).
        layers, heads, head_dim: the transformer (head_dim split 1:1.5:1.5 over the rotary axes (frame, row,
            column), so a multiple of 16; 64 gives each spatial axis 12 frequencies: with 16 (3 frequencies, only
            one of them fast) the tokens cannot tell nearby positions apart and the editor never learns to copy).
        edit_examples: image pairs per edit task; edit_steps, edit_lr, edit_batch: the edit pre-training.
        shift_examples: image pairs per shifted picture (1 and 2) of the shift edits (:data:`SHIFT_PROMPT`), each
            with its own offset: a multiple of ``shift_step`` px of at most ``max_shift`` along each axis (few
            distinct offsets: more examples of each); 0: no shift edits.
        colour_examples: examples of the colour edit (:data:`COLOUR_PROMPT`), offsets as the shifts'; 0: none.
        seed: everything random derives from it.
    """

    layout: str = "multi"
    size: int = 64
    vae_factor: int = 4
    vae_steps: int = 1200
    vae_lr: float = 6e-4
    layers: int = 2
    heads: int = 2
    head_dim: int = 64
    edit_examples: int = 48
    edit_steps: int = 3000
    edit_lr: float = 2e-3
    edit_batch: int = 4
    shift_examples: int = 0
    colour_examples: int = 0
    max_shift: int = 5
    shift_step: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_layout(self.layout)
        if not (isinstance(self.size, int) and 32 <= self.size <= 256 and self.size % 32 == 0):
            raise VFIError(f"size must be a multiple of 32 between 32 and 256, got {self.size!r}.")
        if self.vae_factor not in (2, 4):
            raise VFIError(f"vae_factor must be 2 or 4, got {self.vae_factor!r}.")
        for name in ("shift_examples", "colour_examples"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 0):
                raise VFIError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}.")
        if not (isinstance(self.max_shift, int) and 1 <= self.max_shift <= self.size // 4):
            raise VFIError(f"max_shift must be an integer from 1 to a quarter of size, got {self.max_shift!r}.")
        if not (isinstance(self.shift_step, int) and 1 <= self.shift_step <= self.max_shift):
            raise VFIError(f"shift_step must be an integer from 1 to max_shift, got {self.shift_step!r}.")
        for name in ("vae_steps", "layers", "heads", "edit_examples", "edit_steps", "edit_batch"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise VFIError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if not (isinstance(self.head_dim, int) and self.head_dim >= 16 and self.head_dim % 16 == 0):
            raise VFIError(f"head_dim must be a positive multiple of 16, got {self.head_dim!r}.")
        for name in ("vae_lr", "edit_lr"):
            if not 0 < getattr(self, name) < 1:
                raise VFIError(f"{name} must be between 0 and 1, got {getattr(self, name)!r}.")

    def key(self) -> str:
        """A short hash of this config and of the code that builds the editor (a changed builder rebuilds)."""
        root = Path(__file__).resolve().parents[1]
        code = [hashlib.sha1((root / path).read_bytes()).hexdigest() for path in _SOURCES]
        return hashlib.sha1(json.dumps([asdict(self), code]).encode()).hexdigest()[:16]


def _compact_template(pipe: Any) -> None:
    """Add the system prompt's pieces as tokens so the template prefix is the number of tokens the pipeline drops."""
    import re

    from tokenizers import AddedToken

    prefix = pipe.prompt_template_encode.split("{}")[0].split("<|vision_start|>")[0]
    body = prefix.split("<|im_start|>")[1].split("<|im_end|>")[0]
    drop = pipe.prompt_template_encode_start_idx
    pieces = re.findall(r"\S+\s*", body)
    wanted = drop - len(pipe.tokenizer(prefix.replace(body, "")).input_ids)
    while len(pieces) < wanted:  # split the longest piece
        i = max(range(len(pieces)), key=lambda j: len(pieces[j]))
        pieces[i : i + 1] = [pieces[i][: len(pieces[i]) // 2], pieces[i][len(pieces[i]) // 2 :]]
    while len(pieces) > wanted:  # join the shortest neighbours
        i = min(range(len(pieces) - 1), key=lambda j: len(pieces[j]) + len(pieces[j + 1]))
        pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
    for tokenizer in (pipe.tokenizer, pipe.processor.tokenizer):
        tokenizer.add_tokens([AddedToken(p, normalized=False, special=False) for p in pieces])
    pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer))
    if len(pipe.tokenizer(prefix).input_ids) != drop:
        raise RuntimeError("the prompt template prefix did not come out at the pipeline's drop index")


def _images(stream: int, count: int, size: int, seed: int) -> np.ndarray:
    """``count`` frames of distinct random scenes (N×H×W×3 uint8), from their own seed stream."""
    from benchmarks.synthetic import render_scene

    frames = [render_scene(np.random.default_rng([seed, 7919, stream, i]), size)[0] for i in range(count)]
    return np.stack(frames) if frames else np.zeros((0, size, size, 3), np.uint8)


def _to_tensor(images: np.ndarray) -> Any:
    import torch

    return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0).unsqueeze(2)


def reconstruction_psnr(vae: Any, images: np.ndarray, targets: np.ndarray | None = None) -> float:
    """Mean PSNR of ``images`` (N×H×W×3 uint8) after a round trip through ``vae`` (the posterior mode, as the
    pipelines encode) against ``targets`` (default: the images themselves)."""
    import torch

    from vfi.quality.metrics import psnr

    with torch.no_grad():
        out = vae.decode(vae.encode(_to_tensor(images)).latent_dist.mode()).sample[:, :, 0]
    made = ((out.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return float(np.mean([psnr(a, b) for a, b in zip(made, images if targets is None else targets)]))


def _train_vae(config: EditorConfig, log: Callable[[str], None]) -> tuple[Any, dict[str, float]]:
    """A small VAE trained to reconstruct (the posterior mode, as the pipelines encode), latent stats set."""
    import torch
    from diffusers import AutoencoderKLQwenImage

    z_dim = 16
    stages = [1, 2, 2] if config.vae_factor == 4 else [1, 2]  # each stage after the first downsamples 2×
    vae = AutoencoderKLQwenImage(
        base_dim=16,
        z_dim=z_dim,
        dim_mult=stages,
        num_res_blocks=1,
        temperal_downsample=[False, True][: len(stages) - 1],
    )
    train = _to_tensor(_images(0, 384, config.size, config.seed))
    held_out = _images(1, 16, config.size, config.seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.vae_lr, total_steps=config.vae_steps)
    generator = torch.Generator().manual_seed(config.seed)
    crop = config.size // 2
    for step in range(config.vae_steps):
        index = torch.randint(len(train), (8,), generator=generator)
        y, x = torch.randint(0, config.size - crop + 1, (2,), generator=generator).tolist()
        batch = train[index][..., y : y + crop, x : x + crop]
        loss = (vae.decode(vae.encode(batch).latent_dist.mode()).sample - batch).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0:
            log(f"vae step {step}: loss {loss.item():.4f}")
    vae.eval()
    with torch.no_grad():
        latents = torch.cat([vae.encode(train[i : i + 64]).latent_dist.mode() for i in range(0, len(train), 64)])
    vae.register_to_config(
        latents_mean=latents.mean(dim=(0, 2, 3, 4)).tolist(), latents_std=latents.std(dim=(0, 2, 3, 4)).tolist()
    )
    return vae, {"vae_psnr": round(reconstruction_psnr(vae, held_out), 2)}


def shift_image(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``image`` moved ``dx`` px right and ``dy`` px down, the uncovered border filled by reflection."""
    import cv2

    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)


def grey(image: np.ndarray) -> np.ndarray:
    """``image`` in grey: the mean of its channels, in all three."""
    return np.repeat(np.round(image.mean(axis=2, keepdims=True)).astype(np.uint8), 3, axis=2)


def _offset(rng: np.random.Generator, config: EditorConfig) -> tuple[int, int]:
    """A random (dx, dy) of the shift edits: multiples of ``shift_step`` up to ``max_shift`` px."""
    reach = config.max_shift // config.shift_step
    dx, dy = rng.integers(-reach, reach + 1, 2) * config.shift_step
    return int(dx), int(dy)


def _edit_examples(config: EditorConfig) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(prompt, first, target, second) of every pre-training example: :data:`EDIT_TASKS`, then the shift and colour edits."""
    for k, (prompt, edit) in enumerate(EDIT_TASKS.items()):
        lefts = _images(2 + 2 * k, config.edit_examples, config.size, config.seed)
        rights = _images(3 + 2 * k, config.edit_examples, config.size, config.seed)
        yield from ((prompt, left, edit(left, right), right) for left, right in zip(lefts, rights))
    offsets = np.random.default_rng([config.seed, 3])
    for which in (1, 2):
        stream = 2 * len(EDIT_TASKS) + 2 * which
        pairs = zip(*(_images(stream + j, config.shift_examples, config.size, config.seed) for j in (0, 1)))
        for pair in pairs:
            dx, dy = _offset(offsets, config)
            prompt = SHIFT_PROMPT.format(which=which, dx=dx, dy=dy)
            yield prompt, pair[0], shift_image(pair[which - 1], dx, dy), pair[1]
    for image in _images(2 * len(EDIT_TASKS) + 6, config.colour_examples, config.size, config.seed):
        moved = shift_image(image, *_offset(offsets, config))
        yield COLOUR_PROMPT, image, moved, grey(moved)


def _edit_samples(folder: Path, config: EditorConfig) -> dict[str, list[Any]]:
    """Per edit prompt, the (first, target, second) image files of its examples, as :class:`vfi.training.data.Sample`."""
    from PIL import Image

    from vfi.training.data import Sample

    samples: dict[str, list[Any]] = {}
    for i, (prompt, *images) in enumerate(_edit_examples(config)):
        paths = [folder / f"{i}-{name}.png" for name in ("left", "target", "right")]
        for path, image in zip(paths, images):
            Image.fromarray(image).save(path)
        samples.setdefault(prompt, []).append(Sample(str(i), *paths))
    return samples


def _pretrain_edits(loaded: Any, config: EditorConfig, work: Path, log: Callable[[str], None]) -> dict[str, float]:
    """Train the whole transformer on :data:`EDIT_TASKS` with the flow-matching loss of ``train_lora.py``."""
    import torch

    from vfi.training.loop import cache_samples, flow_matching_loss, load_batch, step_generator

    (work / "edits").mkdir()
    paths = []
    for prompt, samples in _edit_samples(work / "edits", config).items():
        paths += cache_samples(loaded, samples, resolution=config.size, prompt=prompt, cache_dir=work / "cache")
    transformer = loaded.pipe.transformer
    transformer.requires_grad_(True).train()
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=config.edit_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.edit_lr, total_steps=config.edit_steps)
    scheduler_config = dict(loaded.pipe.scheduler.config)
    order = np.random.default_rng([config.seed, 1])
    losses = []
    for step in range(config.edit_steps):
        chosen = order.choice(len(paths), config.edit_batch, replace=False)
        batch = load_batch([paths[i] for i in chosen], "cpu", torch.float32)
        loss = flow_matching_loss(
            transformer, batch, step_generator(config.seed, step), scheduler_config=scheduler_config
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % 250 == 0:
            log(f"edit step {step}: loss {loss.item():.4f}")
    transformer.requires_grad_(False).eval()
    first, last = loss_ends(losses)
    return {"edit_loss_first": first, "edit_loss_last": last}


def loss_ends(losses: list[float]) -> list[float]:
    """Mean loss over the first and the last tenth of a training run (4 decimals)."""
    tail = max(1, len(losses) // 10)
    return [round(float(np.mean(losses[:tail])), 4), round(float(np.mean(losses[-tail:])), 4)]


def build_editor(
    out_dir: str | Path, config: EditorConfig = EditorConfig(), *, log: Callable[[str], None] = print
) -> Path:
    """Build the miniature editor for ``config`` and save it to ``out_dir`` (atomically); return the folder."""
    import torch
    from diffusers import DiffusionPipeline, QwenImageTransformer2DModel

    from vfi.io.files import atomic_dir
    from vfi.qwen.pipeline import LoadedPipeline
    from vfi.testing.tiny_model import build_tiny_pipeline

    started = time.perf_counter()
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="vfi-miniature-") as tmp:
        work = Path(tmp)
        parts = DiffusionPipeline.from_pretrained(build_tiny_pipeline(work / "tiny", config.layout, seed=config.seed))
        _compact_template(parts)
        torch.manual_seed(config.seed)
        vae, facts = _train_vae(config, log)
        log(f"vae: {facts['vae_psnr']:.2f} dB on held-out frames")
        third = config.head_dim // 16 * 4
        transformer = QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=4 * vae.config.z_dim,
            out_channels=vae.config.z_dim,
            num_layers=config.layers,
            attention_head_dim=config.head_dim,
            num_attention_heads=config.heads,
            joint_attention_dim=parts.text_encoder.config.text_config.hidden_size,
            axes_dims_rope=(third, (config.head_dim - third) // 2, (config.head_dim - third) // 2),
        )
        pipe = type(parts)(**{**parts.components, "vae": vae, "transformer": transformer})
        loaded = LoadedPipeline(pipe, f"vfi-miniature-{config.key()}", config.layout, "cpu", "none")
        facts.update(_pretrain_edits(loaded, config, work, log))
        facts["build_minutes"] = round((time.perf_counter() - started) / 60, 2)
        with atomic_dir(out_dir) as folder:
            pipe.save_pretrained(folder, safe_serialization=True)
            (folder / FACTS_FILE).write_text(json.dumps({"config": asdict(config), **facts}, indent=2) + "\n")
    log(f"editor built in {facts['build_minutes']:.1f} min: {out_dir}")
    return out_dir


def cached_editor(
    config: EditorConfig = EditorConfig(), cache_dir: str | Path | None = None, *, log: Callable[[str], None] = print
) -> Path:
    """The editor for ``config`` from ``cache_dir`` (default ``~/.cache/vfi/miniature``), built if missing."""
    folder = Path(cache_dir or CACHE_DIR).expanduser() / config.key()
    if (folder / FACTS_FILE).is_file():
        return folder
    return build_editor(folder, config, log=log)


def editor_facts(folder: str | Path) -> dict[str, Any]:
    """What :func:`build_editor` recorded in ``folder/miniature.json``."""
    return json.loads((Path(folder) / FACTS_FILE).read_text())


__all__ = [
    "CACHE_DIR",
    "COLOUR_PROMPT",
    "EDIT_TASKS",
    "SHIFT_PROMPT",
    "EditorConfig",
    "build_editor",
    "cached_editor",
    "editor_facts",
    "grey",
    "loss_ends",
    "reconstruction_psnr",
    "shift_image",
]
