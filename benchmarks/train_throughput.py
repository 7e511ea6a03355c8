"""LoRA training throughput of the Qwen-Image(-Edit) transformer: seconds per optimizer step and peak memory.

    python benchmarks/train_throughput.py [--full|--tiny] [--resolutions 512,1024] [--layouts multi] [--batches 1]
        [--rank 64] [--targets attention,mlp] [--optimizer adamw|adamw8bit] [--no-gradient-checkpointing] [--json OUT]

One step = the flow-matching objective as the Qwen-Image pipelines sample it: packed target latents noised
to ``(1 − σ)·x0 + σ·noise`` (σ logit-normal), the clean conditioning latents appended after them, the
transformer's velocity prediction compared with ``noise − x0`` on the target tokens only; backward through
the LoRA (the base stays frozen), then an AdamW step. Base weights in ``--dtype`` (bf16 on CUDA), LoRA
weights and optimizer state in fp32 (as diffusers' ``cast_training_params``), gradient checkpointing on.

LoRA targets: ``attention`` = the image stream's to_q/to_k/to_v/to_out.0 and the text stream's
add_q/k/v_proj/to_add_out; ``mlp`` = both streams' feed-forward projections (img_mlp/txt_mlp net.0.proj and
net.2). Default both: the edit-to-interpolation change touches what tokens attend to and how they mix.

TFLOP/step counts 3 forwards (the forward, the recomputation under checkpointing, and the backward, which
computes only activation gradients for the frozen base: ≈ one forward); attention's backward costs more than
that, so achieved TFLOP/s is a slight underestimate. Does not depend on ``train_lora.py``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _qwen_transformer as qt  # noqa: E402

TARGET_GROUPS = {"attention": qt.ATTENTION_TARGETS, "mlp": qt.MLP_TARGETS}
FORWARDS_PER_STEP = 3
COLUMNS = [
    ("resolution", "res", "d"),
    ("layout", "layout", ""),
    ("cond_frames", "cond", "d"),
    ("batch", "batch", "d"),
    ("text_tokens", "text", "d"),
    ("tokens", "tokens", "d"),
    ("target_tokens", "target", "d"),
    ("seconds", "s/step", ".4f"),
    ("samples_per_s", "samples/s", ".3f"),
    ("tflop", "TFLOP/step", ".4g"),
    ("tflops", "TFLOP/s", ".4g"),
    ("peak_gib", "peak_GiB", ".2f"),
    ("loss", "loss", ".4f"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    qt.add_common_arguments(parser, layouts="multi", batches="1")
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--targets", default="attention,mlp", help="LoRA target groups: attention, mlp")
    parser.add_argument(
        "--optimizer", choices=("adamw", "adamw8bit"), default="adamw", help="adamw8bit needs bitsandbytes"
    )
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    groups = [group for group in args.targets.split(",") if group]
    if not groups or any(group not in TARGET_GROUPS for group in groups):
        parser.error(f"--targets takes a comma-separated subset of {', '.join(TARGET_GROUPS)}")
    args.targets = [name for group in groups for name in TARGET_GROUPS[group]]
    if args.optimizer == "adamw8bit":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            parser.error("--optimizer adamw8bit needs bitsandbytes (pip install bitsandbytes)")
    return args


def make_optimizer(params: list[torch.nn.Parameter], name: str, lr: float) -> torch.optim.Optimizer:
    if name == "adamw8bit":
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr)


def train_step(model, optimizer: torch.optim.Optimizer, inputs: dict[str, Any], target_tokens: int) -> torch.Tensor:
    """One flow-matching step on the target tokens; the conditioning tokens follow them in the sequence."""
    packed = inputs["hidden_states"]
    clean, conditioning = packed[:, :target_tokens], packed[:, target_tokens:]
    noise = torch.randn_like(clean)
    sigma = torch.sigmoid(torch.randn(clean.shape[0], device=clean.device)).to(clean.dtype)
    noisy = (1 - sigma[:, None, None]) * clean + sigma[:, None, None] * noise
    prediction = model(**{**inputs, "hidden_states": torch.cat([noisy, conditioning], dim=1), "timestep": sigma})[0]
    loss = F.mse_loss(prediction[:, :target_tokens].float(), (noise - clean).float())
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def benchmark(setup: qt.Setup, args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Measure one row per shape; also returns the parameter counts."""
    model = qt.build_transformer(setup.config, setup.device, setup.dtype)
    qt.attach_lora(model, args.rank, args.targets)
    trainable = [param for param in model.parameters() if param.requires_grad]
    for param in trainable:
        param.data = param.data.float()
    if args.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    optimizer = make_optimizer(trainable, args.optimizer, args.learning_rate)
    counts = {"params": sum(p.numel() for p in model.parameters()), "trainable": sum(p.numel() for p in trainable)}
    rows = []
    for shape in setup.shapes:
        inputs = qt.make_inputs(setup.config, shape, setup.device, setup.dtype)
        step = functools.partial(train_step, model, optimizer, inputs, shape.target_tokens)
        with qt.peak_memory(setup.device) as memory:
            times, loss = qt.measure(step, setup.device, warmup=setup.warmup, repeats=setup.repeats)
        flops = FORWARDS_PER_STEP * qt.forward_flops(setup.config, shape)
        row = qt.timing_row(shape, times, flops, memory["peak_gib"])
        row.update(target_tokens=shape.target_tokens, samples_per_s=shape.batch / row["seconds"], loss=loss.item())
        rows.append(row)
        qt.progress("train", row)
    return rows, counts


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    setup = qt.resolve_setup(args)
    rows, counts = benchmark(setup, args)
    print(
        f"{setup.device} {str(setup.dtype).removeprefix('torch.')}, {setup.config['num_layers']} layers, "
        f"{counts['params'] / 1e6:,.1f}M params, LoRA rank {args.rank} ({counts['trainable'] / 1e6:,.2f}M trainable), "
        f"{args.optimizer}, checkpointing {'on' if args.gradient_checkpointing else 'off'}, median of {setup.repeats}"
    )
    print(qt.format_table(rows, COLUMNS))
    if setup.json_path:
        qt.write_json(setup.json_path, setup, rows, rank=args.rank, optimizer=args.optimizer, **counts)
    return rows


if __name__ == "__main__":
    main()
