"""Train a video frame interpolation LoRA for Qwen-Image-Edit(-Plus) on frame triplets.

    accelerate launch train_lora.py --base_model Qwen/Qwen-Image-Edit --data TRIPLETS_OR_VIDEOS \
        --output_dir out/vfi-lora --max_train_steps 1500 [--push_to_hub --hub_model_id ORG/NAME]

Data (:mod:`vfi.training.data`) → model inputs cached to disk (:func:`vfi.training.loop.cache_samples`, the inference
conditioning) → LoRA (peft) trained with the flow-matching loss (:func:`vfi.training.loop.flow_matching_loss`) →
validation on held-out triplets against the flow backend → ``pytorch_lora_weights.safetensors``,
``vfi_adapter.json``, ``README.md`` (model card), ``validation.png``; optionally pushed to the Hub.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from vfi.errors import VFIError
from vfi.io.files import atomic_path
from vfi.io.numbers import parse_decimal, parse_whole
from vfi.qwen.adapters import ADAPTER_INFO_FILE, LORA_TARGETS, WEIGHT_NAME, AdapterInfo, is_hub_id
from vfi.qwen.conditioning import DEFAULT_RESOLUTION, check_resolution
from vfi.training.checkpoints import (
    FINAL_PREFIX,
    find_checkpoint,
    read_state,
    register_lora_hooks,
    remove_partials,
    restart_log,
    save_lora,
    write_checkpoint,
)
from vfi.training.data import Dataset, DataSettings, build_dataset, build_validation_set
from vfi.training.loop import (
    STRIP_NAME,
    WEIGHTING_SCHEMES,
    cache_samples,
    cache_shape,
    epoch_batches,
    flow_matching_loss,
    load_batch,
    lora_target_modules,
    push_folder,
    step_generator,
    validation_round,
)
from vfi.training.model_card import write_model_card


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a frame interpolation LoRA for Qwen-Image-Edit.")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--base_model", help="Hub id or folder of a QwenImageEdit(Plus)Pipeline, e.g. Qwen/Qwen-Image-Edit"
    )
    model.add_argument(
        "--base_model_id",
        help="the base model's Hub id (ORG/NAME) for the model card when --base_model is a local folder",
    )
    model.add_argument(
        "--resolution",
        type=parse_whole,
        default=DEFAULT_RESOLUTION,
        help="working resolution: longest side, multiple of 32",
    )
    model.add_argument("--prompt", help="training prompt ({t} is replaced by the time); default: vfi's prompt")
    model.add_argument("--rank", type=parse_whole, default=16, help="LoRA rank")
    model.add_argument("--lora_alpha", type=parse_decimal, help="LoRA alpha (default: the rank)")
    model.add_argument("--lora_dropout", type=parse_decimal, default=0.0)
    model.add_argument("--target_modules", default=",".join(LORA_TARGETS), help="comma-separated transformer modules")

    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", nargs="+", type=Path, help="triplet folders (Vimeo90K/Middlebury), videos or folders of videos"
    )
    data.add_argument("--num_samples", type=parse_whole, default=128, help="training triplets (a diverse subset)")
    data.add_argument("--num_validation", type=parse_whole, default=4, help="held-out validation triplets")
    data.add_argument("--validation_data", type=Path, help="take the validation triplets from here instead")
    data.add_argument("--gap", type=parse_whole, help="fixed frame gap in videos (default: chosen for motion)")
    data.add_argument("--max_gap", type=parse_whole, default=8)
    data.add_argument(
        "--min_motion",
        type=parse_decimal,
        default=DataSettings.min_motion,
        help="skip triplets moving less (fraction of width)",
    )
    data.add_argument(
        "--max_motion", type=parse_decimal, default=DataSettings.max_motion, help="skip triplets moving more"
    )
    data.add_argument(
        "--other_times", type=parse_decimal, default=0.0, help="fraction of video triplets with t other than 0.5"
    )

    train = parser.add_argument_group("training")
    train.add_argument("--output_dir", type=Path, default=Path("vfi-lora"))
    train.add_argument(
        "--cache_dir", type=Path, help="cached latents and prompt embeddings (default: OUTPUT_DIR/cache)"
    )
    train.add_argument("--seed", type=parse_whole, default=0)
    train.add_argument("--max_train_steps", type=parse_whole, default=1000)
    train.add_argument("--train_batch_size", type=parse_whole, default=1)
    train.add_argument("--gradient_accumulation_steps", type=parse_whole, default=1)
    train.add_argument("--learning_rate", type=parse_decimal, default=1e-4)
    train.add_argument("--lr_scheduler", default="constant", help="diffusers.optimization scheduler name")
    train.add_argument("--lr_warmup_steps", type=parse_whole, default=0)
    train.add_argument("--adam_beta1", type=parse_decimal, default=0.9)
    train.add_argument("--adam_beta2", type=parse_decimal, default=0.999)
    train.add_argument("--adam_weight_decay", type=parse_decimal, default=1e-4)
    train.add_argument("--adam_epsilon", type=parse_decimal, default=1e-8)
    train.add_argument("--use_8bit_adam", action="store_true", help="bitsandbytes AdamW8bit")
    train.add_argument("--max_grad_norm", type=parse_decimal, default=1.0)
    train.add_argument("--weighting_scheme", default="none", choices=WEIGHTING_SCHEMES)
    train.add_argument("--logit_mean", type=parse_decimal, default=0.0)
    train.add_argument("--logit_std", type=parse_decimal, default=1.0)
    train.add_argument("--mode_scale", type=parse_decimal, default=1.29)
    train.add_argument("--mixed_precision", choices=("no", "bf16", "fp16"), help="default: bf16 on GPU, no on CPU")
    train.add_argument("--gradient_checkpointing", action=argparse.BooleanOptionalAction, help="default: on for GPU")
    train.add_argument("--checkpointing_steps", type=parse_whole, default=250)
    train.add_argument("--checkpoints_total_limit", type=parse_whole, default=2)
    train.add_argument("--resume_from_checkpoint", help='a checkpoint folder or "latest"')

    val = parser.add_argument_group("validation")
    val.add_argument(
        "--validation_steps", type=parse_whole, default=250, help="validate every N steps (and before and after)"
    )
    val.add_argument("--validation_inference_steps", type=parse_whole, default=30)
    val.add_argument(
        "--validation_guidance", type=parse_decimal, default=4.0, help="true CFG scale for validation (1 = off)"
    )

    hub = parser.add_argument_group("hub")
    hub.add_argument("--push_to_hub", action="store_true")
    hub.add_argument("--hub_model_id", help="ORG/NAME")
    hub.add_argument("--private", action="store_true")
    hub.add_argument("--push_only", type=Path, metavar="DIR", help="push a finished output folder and exit")
    args = parser.parse_args(input_args)

    if (args.push_to_hub or args.push_only) and not args.hub_model_id:
        parser.error("--push_to_hub and --push_only need --hub_model_id ORG/NAME")
    if args.push_only:
        return args
    if not args.base_model or not args.data:
        parser.error("--base_model and --data are required")
    if args.base_model_id and not is_hub_id(args.base_model_id):
        parser.error(f"--base_model_id must be a Hub id ORG/NAME, got {args.base_model_id!r}")
    if args.push_to_hub and not is_hub_id(args.base_model_id or args.base_model):
        parser.error("--push_to_hub with a local --base_model needs --base_model_id ORG/NAME (its Hub id)")
    for name in (
        "max_train_steps",
        "train_batch_size",
        "gradient_accumulation_steps",
        "rank",
        "checkpointing_steps",
        "validation_steps",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.validation_inference_steps < 2:
        parser.error("--validation_inference_steps must be at least 2")
    if args.checkpoints_total_limit is not None and args.checkpoints_total_limit < 1:
        parser.error("--checkpoints_total_limit must be at least 1")
    try:
        check_resolution(args.resolution)
    except VFIError as error:
        parser.error(str(error))
    if args.prompt and args.other_times and "{t}" not in args.prompt:
        parser.error("with --other_times the --prompt must contain {t}")
    args.lora_alpha = args.lora_alpha or float(args.rank)
    return args


def _dataset(args, accelerator) -> Dataset:
    """Build (main process) or reload the dataset; a resumed run reuses the saved one."""
    folder = args.output_dir / "data"
    if accelerator.is_main_process and not (args.resume_from_checkpoint and (folder / "dataset.json").exists()):
        settings = DataSettings(
            size=args.num_samples,
            num_validation=0 if args.validation_data else args.num_validation,
            gap=args.gap,
            max_gap=args.max_gap,
            min_motion=args.min_motion,
            max_motion=args.max_motion,
            other_times=args.other_times,
            seed=args.seed,
        )
        dataset = build_dataset(args.data, folder, settings)
        if args.validation_data and args.num_validation:
            held = build_validation_set(
                [args.validation_data], folder / "validation", replace(settings, num_validation=args.num_validation)
            )
            dataset = replace(dataset, validation=held)
        folder.mkdir(parents=True, exist_ok=True)
        dataset.save(folder)
    accelerator.wait_for_everyone()
    return Dataset.load(folder)


def _optimizer(args, params):
    import torch

    if args.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise VFIError("--use_8bit_adam needs bitsandbytes: pip install bitsandbytes (CUDA only).") from None
        optimizer_class = bnb.optim.AdamW8bit
    else:
        optimizer_class = torch.optim.AdamW
    return optimizer_class(
        params,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
        eps=args.adam_epsilon,
    )


def main(args: argparse.Namespace) -> dict:
    """Train (or, with ``--push_only``, push); return a summary (losses, validation history, output folder)."""
    if args.push_only:
        return {"url": push_folder(args.push_only, args.hub_model_id, private=args.private)}

    import torch
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params, free_memory
    from peft import LoraConfig

    from vfi.qwen import pipeline as vfi_pipeline

    cuda = torch.cuda.is_available()
    mixed = args.mixed_precision or ("bf16" if cuda else "no")
    accelerator = Accelerator(
        mixed_precision=mixed, project_config=ProjectConfiguration(project_dir=str(args.output_dir))
    )
    rank, world = accelerator.process_index, accelerator.num_processes
    set_seed(args.seed)
    log_path = args.output_dir / "logs" / "metrics.jsonl"  # folders made when written to: a failed run leaves none

    def log(record: dict) -> None:
        if accelerator.is_main_process:
            accelerator.print(json.dumps(record))
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    # 1. Data.
    dataset = _dataset(args, accelerator)
    accelerator.print(dataset.summary())

    # 2. Base pipeline (fresh: training changes its transformer), model inputs cached to disk.
    dtype = {"bf16": "bfloat16", "fp16": "float16"}.get(mixed, "float32")
    vfi_pipeline.clear_cache()
    try:
        loaded = vfi_pipeline.load_pipeline(args.base_model, device=str(accelerator.device), dtype=dtype, memory="none")
        pipe = loaded.pipe
        cache_dir = args.cache_dir or args.output_dir / "cache"
        cached = cache_samples(
            loaded,
            dataset.train,
            resolution=args.resolution,
            prompt=args.prompt,
            cache_dir=cache_dir,
            shard=(rank, world),
        )
        accelerator.wait_for_everyone()
        if cuda:  # the text encoder only comes back for validation
            pipe.text_encoder.to("cpu")
            free_memory()

        # 3. LoRA on the transformer.
        transformer = pipe.transformer
        for module in (transformer, pipe.vae, pipe.text_encoder):
            module.requires_grad_(False)
        transformer.add_adapter(
            LoraConfig(
                r=args.rank,
                lora_alpha=args.lora_alpha,
                lora_dropout=args.lora_dropout,
                init_lora_weights="gaussian",
                target_modules=lora_target_modules(
                    transformer, [m.strip() for m in args.target_modules.split(",") if m.strip()]
                ),
            )
        )
        cast_training_params(transformer, dtype=torch.float32)
        if args.gradient_checkpointing if args.gradient_checkpointing is not None else cuda:
            transformer.enable_gradient_checkpointing()

        register_lora_hooks(accelerator, type(pipe), transformer)

        params = [p for p in transformer.parameters() if p.requires_grad]
        optimizer = _optimizer(args, params)
        lr_scheduler = get_scheduler(
            args.lr_scheduler,
            optimizer=optimizer,
            num_warmup_steps=args.lr_warmup_steps * world,
            num_training_steps=args.max_train_steps * world,
        )
        model, optimizer, lr_scheduler = accelerator.prepare(transformer, optimizer, lr_scheduler)

        # 4. Resume.
        global_step, history, flow = 0, [], None
        resume = find_checkpoint(args.output_dir, args.resume_from_checkpoint)
        if resume is not None:
            accelerator.load_state(str(resume))
            state = read_state(resume)
            global_step, history, flow = state["global_step"], state["history"], state["flow"]
            accelerator.print(f"resumed from {resume} at step {global_step}")
        if accelerator.is_main_process:
            restart_log(log_path, global_step if resume is not None else None)
            for name in remove_partials(args.output_dir):
                accelerator.print(f"removed {name}, left by an interrupted run")

        # 5. Validation (step 0: the base model, adapter disabled).
        def run_validation(step: int) -> None:
            nonlocal flow
            if not dataset.validation or not accelerator.is_main_process:
                return
            metrics, flow = validation_round(
                loaded,
                dataset.validation,
                step=step,
                flow=flow,
                strip_path=args.output_dir / "logs" / f"validation-{step:06d}.png",
                offload=cuda,
                resolution=args.resolution,
                prompt=args.prompt,
                steps=args.validation_inference_steps,
                guidance=args.validation_guidance,
                seed=args.seed,
            )
            history.append({"step": step, **metrics})
            log({"step": step, "validation": metrics, "flow": flow})

        if not history:
            run_validation(0)

        # 6. Train: micro-batch m of the run is fixed by (seed, m): the same order and noise when resumed.
        keys = [cache_shape(p) for p in cached]

        @lru_cache(maxsize=2)
        def batches_of(epoch: int) -> list[list[int]]:
            return epoch_batches(keys, args.train_batch_size, epoch, args.seed, rank, world)

        def micro_batch(m: int) -> list[int]:
            epoch, position = divmod(m, len(batches_of(0)))
            return batches_of(epoch)[position]

        weight_dtype = getattr(torch, dtype)
        losses, started = [], time.perf_counter()
        model.train()
        accum = args.gradient_accumulation_steps
        scheduler_config = dict(pipe.scheduler.config)
        while global_step < args.max_train_steps:
            step_loss = 0.0
            for j in range(accum):
                m = global_step * accum + j
                batch = load_batch([cached[i] for i in micro_batch(m)], accelerator.device, weight_dtype)
                with accelerator.no_sync(model) if j < accum - 1 else nullcontext(), accelerator.autocast():
                    loss = flow_matching_loss(
                        model,
                        batch,
                        step_generator(args.seed, m, rank),
                        scheduler_config=scheduler_config,
                        weighting_scheme=args.weighting_scheme,
                        logit_mean=args.logit_mean,
                        logit_std=args.logit_std,
                        mode_scale=args.mode_scale,
                    )
                    accelerator.backward(loss / accum)
                step_loss += loss.detach().item() / accum
            accelerator.clip_grad_norm_(params, args.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            global_step += 1
            losses.append(step_loss)
            log({"step": global_step, "loss": round(step_loss, 6), "lr": lr_scheduler.get_last_lr()[0]})
            if global_step % args.validation_steps == 0 or global_step == args.max_train_steps:
                run_validation(global_step)
            if global_step % args.checkpointing_steps == 0 and accelerator.is_main_process:
                state = {"global_step": global_step, "history": history, "flow": flow}
                write_checkpoint(accelerator, args.output_dir, global_step, state, args.checkpoints_total_limit)
        elapsed = time.perf_counter() - started

        # 7. Outputs.
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            _write_outputs(args, pipe, accelerator.unwrap_model(model), loaded.layout, dataset, history, flow)
        accelerator.end_training()
    finally:
        vfi_pipeline.clear_cache()
    return {"losses": losses, "history": history, "flow": flow, "output_dir": args.output_dir, "seconds": elapsed}


def _write_outputs(args, pipe, transformer, layout: str, dataset: Dataset, history: list, flow: dict | None) -> None:
    final = [row for row in history if row["step"] > 0]
    info = AdapterInfo(
        base_model=args.base_model_id or args.base_model,
        layout=layout,
        prompt=args.prompt,  # a template with {t} stays one: the backend fills in each frame's time
        resolution=args.resolution,
        training={
            "steps": args.max_train_steps,
            "samples": len(dataset.train),
            "rank": args.rank,
            "lora_alpha": args.lora_alpha,
            "learning_rate": args.learning_rate,
            "batch_size": args.train_batch_size * args.gradient_accumulation_steps,
            "seed": args.seed,
            "validation": history,
            "validation_final": final[-1] if final else None,
            "flow_baseline": flow,
            "data": dataset.summary(),
        },
    )
    with tempfile.TemporaryDirectory(dir=args.output_dir, prefix=FINAL_PREFIX) as tmp:
        save_lora(type(pipe), transformer, Path(tmp))
        info.save(tmp)
        for name in (WEIGHT_NAME, ADAPTER_INFO_FILE):
            (Path(tmp) / name).replace(args.output_dir / name)
    strips = sorted((args.output_dir / "logs").glob("validation-*.png"))
    if strips and history:
        with atomic_path(args.output_dir / STRIP_NAME) as tmp:
            _combined_strip(strips[0], strips[-1]).save(tmp, format="PNG")
    repo_id = args.hub_model_id or args.output_dir.name
    write_model_card(args.output_dir, info, repo_id=repo_id, history=history, flow=flow)
    if args.push_to_hub:
        push_folder(args.output_dir, args.hub_model_id, private=args.private)


def _combined_strip(top_path: Path, bottom_path: Path):
    """The card's image: the first strip (base + flow) on top of the last (trained adapter)."""
    from PIL import Image

    with Image.open(top_path) as top, Image.open(bottom_path) as bottom:
        combined = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height), "white")
        combined.paste(top, (0, 0))
        combined.paste(bottom, (0, top.height))
    return combined


if __name__ == "__main__":
    try:
        main(parse_args())
    except VFIError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(
            "interrupted: the last complete checkpoint is kept; resume with --resume_from_checkpoint latest",
            file=sys.stderr,
        )
        sys.exit(130)
