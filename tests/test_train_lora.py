"""train_lora.py on the tiny offline pipeline: end to end, learning, exact resume, the app loads the adapter, upload."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scenes import panned_triplet

pytest.importorskip("diffusers")

import train_lora  # noqa: E402
from vfi.errors import VFIError  # noqa: E402
from vfi.qwen.adapters import AdapterInfo  # noqa: E402
from vfi.training.loop import UPLOAD_ALLOW, epoch_batches  # noqa: E402

FAST = ["--resolution", "64", "--rank", "4", "--validation_inference_steps", "2", "--validation_guidance", "1"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A tiny side-by-side pipeline and six panned triplets (four train, two held out)."""
    from vfi.testing.tiny_model import build_tiny_pipeline

    root = tmp_path_factory.mktemp("train")
    for i in range(6):
        folder = root / "data" / f"s{i}"
        folder.mkdir(parents=True)
        for name, frame in zip(("im1", "im2", "im3"), panned_triplet(64, 96, shift=3 + i % 3, seed=i)):
            Image.fromarray(frame).save(folder / f"{name}.png")
    return {"base": build_tiny_pipeline(root / "base"), "data": root / "data", "root": root}


def _args(tiny, out: Path, *extra: str):
    return train_lora.parse_args(
        ["--base_model", str(tiny["base"]), "--data", str(tiny["data"]), "--output_dir", str(out), *FAST, *extra]
    )


@pytest.fixture(scope="module")
def trained(tiny) -> dict:
    out = tiny["root"] / "out"
    extra = ["--max_train_steps", "4", "--num_validation", "2", "--validation_steps", "2", "--checkpointing_steps", "2"]
    return train_lora.main(_args(tiny, out, *extra, "--checkpoints_total_limit", "1", "--learning_rate", "3e-2"))


@pytest.mark.slow
def test_end_to_end_outputs(trained):
    out = trained["output_dir"]
    assert {p.name for p in out.iterdir()} >= {*UPLOAD_ALLOW, "checkpoint-4", "logs", "cache", "data"}
    assert not (out / "checkpoint-2").exists(), "checkpoints_total_limit=1 keeps only the newest"
    assert [row["step"] for row in trained["history"]] == [0, 2, 4]
    assert trained["flow"]["psnr"] > 30 and all(np.isfinite(trained["losses"]))
    info = AdapterInfo.load(out)
    assert (info.layout, info.resolution, info.training["samples"], info.training["steps"]) == (
        "side-by-side",
        64,
        4,
        4,
    )
    assert info.training["validation"] == trained["history"]
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == info.base_model and card.data.library_name == "diffusers"
    assert card.data.license == "apache-2.0" and "video-frame-interpolation" in card.data.tags
    assert "| 0 (base model) |" in card.text and "flow backend" in card.text and "load_lora_weights" in card.text
    assert Image.open(out / "validation.png").height > Image.open(out / "logs" / "validation-000004.png").height


@pytest.mark.slow
def test_adapter_runs_in_app_backend_and_base_is_checked(trained, tiny, triplet):
    from vfi.backends.base import FrameRequest
    from vfi.backends.qwen_edit import QwenEditBackend

    first, _, last = triplet
    # The random base makes garbage frames: the fallback would replace both by the flow frame.
    options = {"resolution": 64, "steps": 2, "guidance": 1.0, "device": "cpu", "fallback": False}
    request = [FrameRequest(first, last, 0.5, 3)]
    base = QwenEditBackend(str(tiny["base"]), [], **options).interpolate(request)[0]
    adapted = QwenEditBackend(str(tiny["base"]), [str(trained["output_dir"])], **options).interpolate(request)[0]
    assert np.abs(base.astype(int) - adapted).mean() > 0.05

    wrong = tiny["root"] / "wrong"
    shutil.copytree(
        trained["output_dir"], wrong, ignore=shutil.ignore_patterns("checkpoint-*", "cache", "logs", "data")
    )
    info = AdapterInfo.load(wrong)
    AdapterInfo(str(tiny["root"] / "another-base"), info.layout, info.prompt, info.resolution, info.training).save(
        wrong
    )
    with pytest.raises(VFIError, match="trained on"):
        QwenEditBackend(str(tiny["base"]), [str(wrong)], **options)


@pytest.mark.slow
def test_resume_after_interrupt_equals_one_run(tiny, monkeypatch):
    from safetensors.torch import load_file

    extra = [
        "--max_train_steps",
        "4",
        "--num_validation",
        "0",
        "--checkpointing_steps",
        "2",
        "--train_batch_size",
        "2",
        "--gradient_accumulation_steps",
        "2",
        "--lr_scheduler",
        "linear",
        "--lr_warmup_steps",
        "1",
        "--learning_rate",
        "1e-2",
    ]
    whole = train_lora.main(_args(tiny, tiny["root"] / "whole", *extra))

    from vfi.training import checkpoints

    real_prune = checkpoints.prune_checkpoints

    def interrupt(output_dir, keep):  # Ctrl-C right after checkpoint-2 is written
        real_prune(output_dir, keep)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "prune_checkpoints", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_lora.main(_args(tiny, tiny["root"] / "halves", *extra))
    halves = tiny["root"] / "halves"
    assert [p.name for p in halves.glob("checkpoint-*")] == ["checkpoint-2"] and not (
        halves / "pytorch_lora_weights.safetensors"
    ).exists()
    monkeypatch.setattr(checkpoints, "prune_checkpoints", real_prune)
    log = halves / "logs" / "metrics.jsonl"  # as if killed after logging step 3, while writing checkpoint-4
    log.write_text(log.read_text() + json.dumps({"step": 3, "loss": 1.0}) + "\n" + '{"step": 4, "lo')
    from vfi.io.files import atomic_dir

    writing = atomic_dir(halves / "checkpoint-4")  # entered and never left, as a process killed inside it
    (writing.__enter__() / "optimizer.bin").write_bytes(b"half")
    for name in ("notes.partial", ".checkpoint-notes.partial", ".final-report"):  # not ours: they stay
        (halves / name).mkdir()
    resumed = train_lora.main(_args(tiny, halves, *extra, "--resume_from_checkpoint", "latest"))
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == [1, 2, 3, 4], "each step is logged once after a resume"
    left = {p.name for p in halves.glob("*.partial")} | {p.name for p in halves.glob(".final-*")}
    assert left == {"notes.partial", ".checkpoint-notes.partial", ".final-report"}, "only ours are removed"

    assert resumed["losses"] == pytest.approx(whole["losses"][2:], rel=1e-6)
    a, b = (
        load_file(str(whole["output_dir"] / "pytorch_lora_weights.safetensors")),
        load_file(str(halves / "pytorch_lora_weights.safetensors")),
    )
    assert a.keys() == b.keys() and all(np.allclose(a[k].numpy(), b[k].numpy(), rtol=0, atol=1e-7) for k in a)
    assert any(float(a[k].abs().max()) > 0 for k in a if "lora_B" in k), "the run must have trained something"


@pytest.mark.slow
def test_overfitting_one_batch(tiny, tmp_path):
    """The loss and the LoRA really learn: one fixed batch (same noise and σ) is fitted by a large factor."""
    import torch
    from peft import LoraConfig

    from vfi.qwen import pipeline
    from vfi.training.data import DataSettings, build_dataset
    from vfi.training.loop import cache_samples, flow_matching_loss, load_batch, step_generator

    sample = build_dataset([tiny["data"]], tmp_path, DataSettings(size=1, num_validation=0)).train[0]
    pipeline.clear_cache()
    loaded = pipeline.load_pipeline(str(tiny["base"]), device="cpu")
    try:
        path = cache_samples(loaded, [sample], resolution=64, prompt=None, cache_dir=tmp_path / "cache")
        transformer = loaded.pipe.transformer
        transformer.requires_grad_(False)
        targets = ["to_q", "to_k", "to_v", "to_out.0", "img_in", "img_mlp.net.0.proj", "img_mlp.net.2", "proj_out"]
        transformer.add_adapter(LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian", target_modules=targets))
        optimizer = torch.optim.AdamW([p for p in transformer.parameters() if p.requires_grad], lr=2e-2)
        batch = load_batch(path, "cpu", torch.float32)
        config = dict(loaded.pipe.scheduler.config)
        losses = []
        for _ in range(50):
            loss = flow_matching_loss(transformer, batch, step_generator(0, 0), scheduler_config=config)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    finally:
        pipeline.clear_cache()
    assert losses[-1] < losses[0] / 10, losses[::25]


@pytest.mark.slow
def test_two_process_training_on_cpu(tiny, tmp_path):
    """Real DDP with 2 processes: every LoRA layer must get a gradient, or step 2 dies waiting for a reduction."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "train_lora.py"]
    options = ["--base_model", str(tiny["base"]), "--data", str(tiny["data"]), "--output_dir", str(out), *FAST]
    options += ["--max_train_steps", "3", "--num_validation", "0", "--checkpointing_steps", "100"]
    run = subprocess.run(
        command + options,
        cwd=Path(train_lora.__file__).parent,
        env={**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    steps = [json.loads(line)["step"] for line in (out / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3] and (out / "pytorch_lora_weights.safetensors").is_file()


@pytest.mark.slow
def test_alpha_survives_a_stock_load_lora_weights(tiny, tmp_path):
    """rank 4 / alpha 16: a stock pipeline loading the file is the model validated in memory at the last step."""
    from vfi.qwen import pipeline
    from vfi.training.data import Dataset
    from vfi.training.loop import validate

    out = tmp_path / "alpha"
    extra = ["--max_train_steps", "2", "--num_validation", "1", "--validation_steps", "2", "--learning_rate", "3e-2"]
    trained = train_lora.main(_args(tiny, out, *extra, "--lora_alpha", "16"))
    pipeline.clear_cache()
    try:
        loaded = pipeline.load_pipeline(str(tiny["base"]), device="cpu")  # DiffusionPipeline.from_pretrained
        assert type(loaded.pipe).__name__ == "QwenImageEditPipeline"
        loaded.pipe.load_lora_weights(out)  # the stock loader, nothing of vfi in between
        config = next(iter(loaded.pipe.transformer.peft_config.values()))
        assert (config.r, config.lora_alpha) == (4, 16)
        args = {"resolution": 64, "prompt": None, "steps": 2, "guidance": 1.0, "seed": 0}
        metrics, _ = validate(loaded, Dataset.load(out / "data").validation, **args)
    finally:
        pipeline.clear_cache()
    assert metrics == {k: trained["history"][-1][k] for k in ("psnr", "ssim")}


def test_validation_data_is_filtered_like_the_training_data(tiny, tmp_path):
    """--validation_data gets the run's motion limits: a too slow and a too fast triplet are skipped, and the
    shortfall warning names validation (not training) triplets."""
    from accelerate import Accelerator

    folder = tmp_path / "validation"
    for name, shift in (("slow", 1), ("fast", 9), ("ok1", 4), ("ok2", 4)):
        (folder / name).mkdir(parents=True)
        for image, frame in zip(("im1", "im2", "im3"), panned_triplet(64, 96, shift=shift, seed=shift + len(name))):
            Image.fromarray(frame).save(folder / name / f"{image}.png")
    limits = ["--min_motion", "0.04", "--max_motion", "0.13", "--num_validation", "3", "--num_samples", "6"]
    args = _args(tiny, tmp_path / "out", "--validation_data", str(folder), *limits)
    with pytest.warns(UserWarning, match=r"^Only 2 of the 3 validation triplets asked for"):
        dataset = train_lora._dataset(args, Accelerator(cpu=True))
    assert sorted(sample.name for sample in dataset.validation) == ["ok1", "ok2"]
    assert len(dataset.train) == 6


def test_epoch_order_is_seeded_grouped_and_sharded():
    keys = ["a"] * 5 + ["b"] * 4
    one = epoch_batches(keys, 2, epoch=3, seed=7)
    assert one == epoch_batches(keys, 2, epoch=3, seed=7) and one != epoch_batches(keys, 2, epoch=4, seed=7)
    assert len(one) == 4 and all(len({keys[i] for i in batch}) == 1 for batch in one)
    ranks = [epoch_batches(keys, 2, 3, 7, rank, 2) for rank in (0, 1)]
    assert ranks[0] + ranks[1] and not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}
    with pytest.raises(VFIError, match="Too few"):
        epoch_batches(keys, 6, 0, 0)


def test_push_uploads_only_the_allow_list(tmp_path, monkeypatch):
    """The one mocked network edge: HfApi.create_repo / upload_folder are replaced by recorders."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    from vfi.training.model_card import write_model_card

    folder = tmp_path / "adapter"
    (folder / "checkpoint-2").mkdir(parents=True)
    (folder / "logs").mkdir()
    for name in (
        "pytorch_lora_weights.safetensors",
        "validation.png",
        "optimizer.bin",
        "checkpoint-2/optimizer.bin",
        "logs/metrics.jsonl",
        "logs/validation-000002.png",
        "checkpoint-2/pytorch_lora_weights.safetensors",
    ):
        (folder / name).write_bytes(b"x")
    info = AdapterInfo("Qwen/Qwen-Image-Edit", "side-by-side", None, 512, {"steps": 2, "samples": 64, "rank": 16})
    info.save(folder)
    write_model_card(
        folder,
        info,
        repo_id="me/vfi-lora",
        history=[{"step": 0, "psnr": 20.0, "ssim": 0.7}],
        flow={"psnr": 30.0, "ssim": 0.9},
    )
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        from huggingface_hub import RepoUrl

        calls["create_repo"] = {"repo_id": repo_id, **kwargs}
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, allow_patterns=None, ignore_patterns=None, **kwargs):
        files = [p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file()]
        calls["upload"] = {
            "repo_id": repo_id,
            "files": sorted(filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)),
        }
        calls["card"] = (Path(folder_path) / "README.md").read_text()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    train_lora.main(train_lora.parse_args(["--push_only", str(folder), "--hub_model_id", "me/vfi-lora", "--private"]))

    assert calls["create_repo"]["repo_id"] == "me/vfi-lora" and calls["create_repo"]["private"] is True
    assert calls["upload"] == {
        "repo_id": "me/vfi-lora",
        "files": ["README.md", "pytorch_lora_weights.safetensors", "validation.png", "vfi_adapter.json"],
    }
    front = calls["card"].split("---")[1]
    assert (
        "base_model: Qwen/Qwen-Image-Edit" in front
        and "library_name: diffusers" in front
        and "license: apache-2.0" in front
    )
    assert "hf_secret_token_value" not in json.dumps(calls)


def test_push_refuses_incomplete_folder_and_bad_args(tmp_path):
    with pytest.raises(VFIError, match="nothing to push"):
        train_lora.main(train_lora.parse_args(["--push_only", str(tmp_path), "--hub_model_id", "me/x"]))
    (tmp_path / "pytorch_lora_weights.safetensors").write_bytes(b"x")
    AdapterInfo(str(tmp_path), "side-by-side", None, 64).save(tmp_path)  # trained from a folder, no Hub id
    with pytest.raises(VFIError, match="--base_model_id"):
        train_lora.main(train_lora.parse_args(["--push_only", str(tmp_path), "--hub_model_id", "me/x"]))
    local = ["--base_model", str(tmp_path), "--data", "d", "--push_to_hub", "--hub_model_id", "me/x"]
    assert train_lora.parse_args([*local, "--base_model_id", "Qwen/Qwen-Image-Edit"]).base_model_id
    for argv in (
        local,
        [*local, "--base_model_id", str(tmp_path)],
        ["--push_to_hub"],
        ["--base_model", "b"],
        ["--base_model", "b", "--data", "d", "--resolution", "100"],
        ["--base_model", "b", "--data", "d", "--other_times", "0.5", "--prompt", "no time here"],
        ["--base_model", "b", "--data", "d", "--validation_inference_steps", "1"],
    ):
        with pytest.raises(SystemExit):
            train_lora.parse_args(argv)


def test_a_failed_run_leaves_no_empty_folders(tmp_path):
    """Nothing usable in --data: one sentence, and no empty logs/ (or output folder) left behind."""
    still = np.full((64, 96, 3), 128, np.uint8)
    (tmp_path / "data" / "s0").mkdir(parents=True)
    for name in ("im1", "im2", "im3"):
        Image.fromarray(still).save(tmp_path / "data" / "s0" / f"{name}.png")
    out = tmp_path / "out"
    args = ["--base_model", str(tmp_path / "base"), "--data", str(tmp_path / "data"), "--output_dir", str(out)]
    with pytest.raises(VFIError, match="usable triplets"):
        train_lora.main(train_lora.parse_args(args))
    assert not (out / "logs").exists() and not out.exists()
    out.mkdir()  # a folder the user made stays
    with pytest.raises(VFIError, match="usable triplets"):
        train_lora.main(train_lora.parse_args(args))
    assert out.is_dir() and not any(out.iterdir())
