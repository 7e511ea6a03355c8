"""A tiny random Qwen-Image-Edit(-Plus) pipeline and LoRA adapter, built offline, for tests and demos.

API (stable; the training script builds on it):

- ``build_tiny_pipeline(out_dir, layout="side-by-side", *, zero_cond_t=False) -> Path`` writes a pipeline of
  the real classes (``QwenImageEditPipeline`` for the side-by-side layout, ``QwenImageEditPlusPipeline`` for
  ``multi``; ``zero_cond_t=True`` for the 2511-style transformer) with random weights via ``save_pretrained``;
  ``DiffusionPipeline.from_pretrained(out_dir)`` loads it with the real loading code. Everything is tiny: one
  call at 64 px runs in about a second on CPU.
- ``build_tiny_adapter(pipeline_dir, out_dir, *, rank=4, seed=0, ...) -> Path`` writes a random LoRA on
  the transformer's attention projections (non-zero B, so it changes the output) as
  ``pytorch_lora_weights.safetensors`` in diffusers' format plus ``vfi_adapter.json``
  (:class:`vfi.qwen.adapters.AdapterInfo`). ``pipe.load_lora_weights(out_dir)`` loads it.

It mirrors the real configs where a bug could hide: the processor's pixel bounds, the VAE's 16 latent
channels with their real ``latents_mean``/``latents_std``, the scheduler, the special tokens and a tokenizer
under which the pipelines' prompt template drops exactly its system part. Its pixels depend on the
transformer: a random adapter or another seed changes a decoded 64-px frame visibly (PSNR < 40 dB).

The tokenizer is byte-level BPE (merges learnt from the prompt template) plus the Qwen special tokens, wrapped
in ``Qwen2TokenizerFast``; the processor is ``Qwen2VLProcessor`` with ``Qwen2VLImageProcessor`` and
``Qwen2VLVideoProcessor`` (torchvision needed). Vocabulary size = tokenizer length; the text encoder's
vision token ids are the tokenizer's special-token ids.
"""

from __future__ import annotations

import re
from pathlib import Path

from vfi.io.files import atomic_dir
from vfi.qwen.adapters import LORA_TARGETS, WEIGHT_NAME, AdapterInfo
from vfi.qwen.conditioning import LAYOUTS, check_layout
from vfi.qwen.pipeline import CLASS_OF_LAYOUT, LAYOUT_OF_CLASS

#: The special tokens of the real Qwen2.5-VL tokenizer (``Qwen/Qwen-Image-Edit`` ``tokenizer/tokenizer_config.json``,
#: ``added_tokens_decoder`` ids 151643–151656), in their order; appended after the ordinary tokens as there.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
#: Pixel bounds of the real ``Qwen2VLImageProcessor`` (``Qwen/Qwen-Image-Edit`` ``processor/preprocessor_config.json``:
#: 4 to 16384 merged 28×28 patches), so a condition image's text tokens grow with its area as on the real model.
MIN_PIXELS, MAX_PIXELS = 3136, 12_845_056
#: Multiplier of the tiny VAE decoder's random weights: with the default init the decoded pixels all but ignore
#: the latents (a random adapter moved a 64-px frame by 0.05/255 on average, 60.7 dB).
DECODER_GAIN = 1.5


def _tokenizer():
    """Byte-level BPE whose merges are learnt from the pipelines' own prompt template, then the special tokens.

    Every word of the template becomes one token, as in the real tokenizer, so the template's system part is
    exactly ``prompt_template_encode_start_idx`` (64) tokens long and the pipelines drop what they drop on the
    real model. Other text falls back to byte tokens.
    """
    from diffusers import QwenImageEditPipeline
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    template = QwenImageEditPipeline(*[None] * 6).prompt_template_encode
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=4096, initial_alphabet=alphabet, show_progress=False)
    core.train_from_iterator(re.split(r"<\|[a-z_]+\|>|\{\}", template), trainer)
    core.add_special_tokens(list(SPECIAL_TOKENS))
    return Qwen2TokenizerFast(
        tokenizer_object=core,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )


def _processor(tokenizer):
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    video_processor = Qwen2VLVideoProcessor()
    return Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor)


def _text_encoder(tokenizer):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = tokenizer.convert_tokens_to_ids
    hidden = 16
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "bos_token_id": None,
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [1, 1, 2]},
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "fullatt_block_indexes": [0],
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval(), hidden


def _amplify(gain: float, *modules) -> None:
    """Scale the random weights of ``modules`` by ``gain`` so their output depends visibly on their input."""
    import torch

    with torch.no_grad():
        for module in modules:
            for name, param in module.named_parameters():
                if name.endswith("weight") and param.ndim > 1:
                    param.mul_(gain)


def build_tiny_pipeline(
    out_dir: str | Path, layout: str = "side-by-side", *, seed: int = 0, zero_cond_t: bool = False
) -> Path:
    """Write a tiny random pipeline for ``layout`` to ``out_dir`` (atomically) and return the folder.

    ``zero_cond_t=True`` makes the 2511-style variant: its transformer gives the condition tokens timestep 0.
    """
    import diffusers
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel

    check_layout(layout)
    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    text_encoder, text_dim = _text_encoder(tokenizer)
    # z_dim 16 as the real VAE, whose latents_mean/latents_std are the class defaults (16 values, not 0/1).
    vae = AutoencoderKLQwenImage(
        base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=4 * vae.config.z_dim,
        out_channels=vae.config.z_dim,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=text_dim,
        axes_dims_rope=(4, 6, 6),
        zero_cond_t=zero_cond_t,
    )
    _amplify(DECODER_GAIN, vae.decoder, vae.post_quant_conv)
    # The scheduler of Qwen/Qwen-Image-Edit (-2509, -2511 alike), scheduler/scheduler_config.json.
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        base_image_seq_len=256,
        base_shift=0.5,
        max_image_seq_len=8192,
        max_shift=0.9,
        shift=1.0,
        shift_terminal=0.02,
        use_dynamic_shifting=True,
        time_shift_type="exponential",
    )
    pipeline_class = getattr(diffusers, CLASS_OF_LAYOUT[layout])
    pipe = pipeline_class(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        processor=_processor(tokenizer),
        transformer=transformer,
    )
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
    return out_dir


def build_tiny_adapter(
    pipeline_dir: str | Path,
    out_dir: str | Path,
    *,
    rank: int = 4,
    seed: int = 0,
    scale: float = 1.0,
    prompt: str | None = None,
    resolution: int = 64,
    base_model: str | None = None,
    layout: str | None = None,
) -> Path:
    """Write a random LoRA for the transformer in ``pipeline_dir`` to ``out_dir`` and return the folder.

    ``base_model`` and ``layout`` default to the pipeline folder and its class's layout; they are written
    to ``vfi_adapter.json`` (pass others to make a deliberately mismatched adapter for tests).
    """
    import json

    import torch
    from safetensors.torch import save_file

    pipeline_dir = Path(pipeline_dir)
    class_name = json.loads((pipeline_dir / "model_index.json").read_text())["_class_name"]
    own_layout = LAYOUT_OF_CLASS[class_name]
    config = json.loads((pipeline_dir / "transformer" / "config.json").read_text())
    inner = config["num_attention_heads"] * config["attention_head_dim"]
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for block in range(config["num_layers"]):
        for name in LORA_TARGETS:
            out_features = in_features = inner  # the text stream is projected to the inner dim before the blocks
            key = f"transformer.transformer_blocks.{block}.attn.{name}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(rank, in_features, generator=generator) / in_features**0.5
            tensors[f"{key}.lora_B.weight"] = scale * torch.randn(out_features, rank, generator=generator) / rank**0.5
    info = AdapterInfo(
        base_model=base_model or str(pipeline_dir),
        layout=layout or own_layout,
        prompt=prompt,
        resolution=resolution,
        training={"kind": "random tiny adapter", "rank": rank, "seed": seed},
    )
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        save_file(tensors, str(tmp / WEIGHT_NAME))
        info.save(tmp)
    return out_dir


__all__ = ["LAYOUTS", "build_tiny_adapter", "build_tiny_pipeline"]
