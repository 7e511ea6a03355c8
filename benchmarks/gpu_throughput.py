"""Inference throughput of the Qwen-Image(-Edit) transformer: seconds per denoising step and per frame.

    python benchmarks/gpu_throughput.py [--full|--tiny] [--resolutions 512,1024] [--layouts single,side-by-side,multi]
        [--batches 1,4] [--lora attached,fused] [--compile|--no-compile] [--steps 50] [--cfg|--no-cfg] [--json OUT]
    python benchmarks/gpu_throughput.py --full --flops-only   # token and FLOP counts only, no model built

One row per (mode, LoRA state, resolution, layout, batch): one transformer forward over the packed sequence
(target + conditioning + prompt tokens; random weights, LoRA rank ``--rank`` on the attention projections),
median of ``--repeats`` after ``--warmup`` calls. ``s/frame`` = s/step × steps × (2 with CFG) / batch.
TFLOP/s is measured against the arithmetic count of ``_qwen_transformer.forward_flops`` (formula there).
``compiled`` uses regional compilation (each transformer block through ``torch.compile``); its rows run after
all eager rows (``--compile`` adds them; eager is always measured). On CUDA the default is the real
60-layer model in bf16 (20.4B parameters, 38 GiB of weights: an 80 GB GPU); on CPU a scaled-down config
that finishes in seconds. The full eager sweep is ≈ 60 PFLOP of forwards (a few minutes on an H100); the
compiled rows add one block recompilation per shape and LoRA state, so on a time-limited machine run
them as a separate, smaller call (e.g. ``--compile --lora fused --batches 1``).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _qwen_transformer as qt  # noqa: E402

COLUMNS = [
    ("mode", "mode", ""),
    ("lora", "lora", ""),
    ("resolution", "res", "d"),
    ("layout", "layout", ""),
    ("cond_frames", "cond", "d"),
    ("batch", "batch", "d"),
    ("text_tokens", "text", "d"),
    ("tokens", "tokens", "d"),
    ("seconds", "s/step", ".4f"),
    ("seconds_per_frame", "s/frame", ".3f"),
    ("tflop", "TFLOP/fwd", ".4g"),
    ("tflops", "TFLOP/s", ".4g"),
    ("peak_gib", "peak_GiB", ".2f"),
]
FLOP_COLUMNS = [
    ("resolution", "res", "d"),
    ("layout", "layout", ""),
    ("cond_frames", "cond", "d"),
    ("batch", "batch", "d"),
    ("target_tokens", "target", "d"),
    ("image_tokens", "image", "d"),
    ("text_tokens", "text", "d"),
    ("tokens", "tokens", "d"),
    ("tflop", "TFLOP/fwd", ".1f"),
    ("attention_share", "attn %", ".1f"),
]
LORA_STATES = ("attached", "fused")
COMPILED_WARMUP = 4  # after a recompile the first calls stay slow for a few calls (measured on CPU: 3)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    qt.add_common_arguments(parser, layouts="single,side-by-side,multi", batches="1,4")
    parser.add_argument("--lora", default="attached,fused", help="LoRA states to measure (attached, fused)")
    parser.add_argument("--rank", type=int, default=64, help="LoRA rank on the attention projections")
    parser.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, help="also measure torch.compile (CUDA default)"
    )
    parser.add_argument("--steps", type=int, default=50, help="denoising steps per frame for s/frame")
    parser.add_argument(
        "--cfg", action=argparse.BooleanOptionalAction, default=True, help="true CFG: 2 forwards per step"
    )
    parser.add_argument("--flops-only", action="store_true", help="print token and FLOP counts, build nothing")
    args = parser.parse_args(argv)
    args.lora = [state for state in args.lora.split(",") if state]
    if not args.lora or any(state not in LORA_STATES for state in args.lora):
        parser.error(f"--lora takes a comma-separated subset of {', '.join(LORA_STATES)}")
    return args


def flop_rows(setup: qt.Setup) -> list[dict[str, Any]]:
    """Token counts and arithmetic FLOPs of each shape (no model needed)."""
    rows = []
    for shape in setup.shapes:
        terms = qt.flop_terms(setup.config, shape)
        flops = sum(terms.values())
        rows.append(
            {
                **qt.shape_columns(shape),
                "target_tokens": shape.target_tokens,
                "image_tokens": shape.image_tokens,
                "tflop": flops / 1e12,
                "attention_share": 100 * terms["attention"] / flops,
            }
        )
    return rows


def set_lora_state(model, state: str, current: str | None) -> str:
    """Fuse or unfuse the adapter weights; returns the new state."""
    if state == "fused" and current != "fused":
        model.fuse_lora()
    elif state == "attached" and current == "fused":
        model.unfuse_lora()
    return state


def benchmark(setup: qt.Setup, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Measure every (mode, LoRA state, shape) combination; one row each."""
    model = qt.build_transformer(setup.config, setup.device, setup.dtype)
    qt.attach_lora(model, args.rank, qt.ATTENTION_TARGETS)
    compile_ = setup.device.type == "cuda" if args.compile is None else args.compile
    passes = 2 if args.cfg else 1
    rows, lora_state = [], None
    warmup = {"eager": setup.warmup, "compiled": max(setup.warmup, COMPILED_WARMUP)}
    for mode in ("eager", "compiled") if compile_ else ("eager",):
        if mode == "compiled":
            torch._dynamo.config.recompile_limit = 64  # one recompile per shape and LoRA state
            model.compile_repeated_blocks(dynamic=False)  # specialised per shape, as a pipeline runs it
        for state in args.lora:
            lora_state = set_lora_state(model, state, lora_state)
            for shape in setup.shapes:
                inputs = qt.make_inputs(setup.config, shape, setup.device, setup.dtype)
                forward = functools.partial(model, **inputs)
                with torch.inference_mode(), qt.peak_memory(setup.device) as memory:
                    times, _ = qt.measure(forward, setup.device, warmup=warmup[mode], repeats=setup.repeats)
                flops = qt.forward_flops(setup.config, shape)
                row = {"mode": mode, "lora": state, **qt.timing_row(shape, times, flops, memory["peak_gib"])}
                row["seconds_per_frame"] = row["seconds"] * args.steps * passes / shape.batch
                rows.append(row)
                qt.progress(f"{mode} {state}", row)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    setup = qt.resolve_setup(args)
    layers = setup.config["num_layers"]
    if args.flops_only:
        rows = flop_rows(setup)
        print(f"arithmetic count, {layers} layers")
        print(qt.format_table(rows, FLOP_COLUMNS))
    else:
        rows = benchmark(setup, args)
        print(
            f"{setup.device} {str(setup.dtype).removeprefix('torch.')}, {layers} layers, LoRA rank {args.rank}, "
            f"s/frame = {args.steps} steps{' × 2 (CFG)' if args.cfg else ''}, median of {setup.repeats}"
        )
        print(qt.format_table(rows, COLUMNS))
    if setup.json_path:
        qt.write_json(setup.json_path, setup, rows, rank=args.rank, steps=args.steps, cfg=args.cfg)
    return rows


if __name__ == "__main__":
    main()
