"""The Qwen transformer benchmarks: FLOP arithmetic, input packing, and both scripts end to end on CPU (tiny config)."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import _qwen_transformer as qt
from benchmarks import gpu_throughput, train_throughput

CPU = torch.device("cpu")
FAST = ["--device", "cpu", "--tiny", "--warmup", "1", "--repeats", "2"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices: threads only add contention on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def table_lines(output: str) -> list[list[str]]:
    """The table part of a benchmark's stdout, split into cells (the first line is the setup summary)."""
    return [line.split() for line in output.strip().splitlines()[1:]]


def test_full_config_at_1024_with_two_conditioning_frames_matches_the_cost_model():
    shape = qt.Shape(1024, "multi", 1, qt.text_tokens(1024, "multi"))
    assert shape.target_tokens == 64 * 64
    assert shape.tokens == 3 * 64 * 64 + 2 * 14 * 14 + qt.PROMPT_TOKENS == 12_744  # cost model: ≈12.7k tokens
    flops = qt.forward_flops(qt.FULL_CONFIG, shape)
    assert 280e12 < flops < 300e12  # cost model: ≈290 TFLOP per forward
    ratio = flops / qt.forward_flops(qt.FULL_CONFIG, qt.Shape(512, "multi", 1, qt.text_tokens(512, "multi")))
    assert 4.5 < ratio < 6  # cost model: 512² is ≈5× cheaper


def test_text_tokens_follow_the_conditioning_bound():
    """Side-by-side at 1024²: the VL encoder sees [first|last] at ≈1 MP (1428×728 after its 28-px rounding)."""
    assert qt.text_tokens(1024, "side-by-side") == 26 * 51 + qt.PROMPT_TOKENS
    assert qt.text_tokens(2048, "side-by-side") == qt.text_tokens(1024, "side-by-side")  # bounded
    assert qt.text_tokens(512, "side-by-side") == 18 * 37 + qt.PROMPT_TOKENS  # under 1 MP: as is
    assert qt.text_tokens(2048, "multi") == 2 * 14 * 14 + qt.PROMPT_TOKENS


def test_flop_terms_scale_as_linear_and_quadratic_in_tokens():
    small, large = qt.Shape(256, "single", 1, 64), qt.Shape(512, "single", 1, 64)
    a, b = qt.flop_terms(qt.FULL_CONFIG, small), qt.flop_terms(qt.FULL_CONFIG, large)
    token_ratio = large.tokens / small.tokens
    assert b["attention"] / a["attention"] == pytest.approx(token_ratio**2)
    assert b["linear"] / a["linear"] == pytest.approx(token_ratio, rel=0.02)
    batched = qt.forward_flops(qt.FULL_CONFIG, qt.Shape(512, "single", 4, 64))
    assert batched == pytest.approx(4 * qt.forward_flops(qt.FULL_CONFIG, large))
    halved = qt.forward_flops({**qt.FULL_CONFIG, "num_layers": 30}, large)
    assert halved == pytest.approx(qt.forward_flops(qt.FULL_CONFIG, large) / 2, rel=0.01)


def test_layouts_pack_the_conditioning_grids_as_the_edit_pipelines_do():
    assert qt.Shape(64, "single", 1, 8).grids == [(1, 4, 4), (1, 4, 4)]
    assert qt.Shape(64, "side-by-side", 1, 8).grids == [(1, 4, 4), (1, 4, 8)]
    assert qt.Shape(64, "multi", 3, 8).img_shapes == [[(1, 4, 4)] * 3] * 3
    with pytest.raises(ValueError, match="resolution"):
        qt.Shape(100, "multi", 1, 8)
    with pytest.raises(ValueError, match="layout"):
        qt.Shape(64, "stacked", 1, 8)


def test_transformer_output_covers_every_image_token_and_fusing_keeps_the_lora_output():
    model = qt.build_transformer(qt.TINY_CONFIG, CPU, torch.float32)
    shape = qt.Shape(64, "side-by-side", 2, qt.text_tokens(64, "side-by-side"))
    inputs = qt.make_inputs(qt.TINY_CONFIG, shape, CPU, torch.float32)
    with torch.no_grad():
        base = model(**inputs)[0]
        qt.attach_lora(model, 8, qt.ATTENTION_TARGETS)
        attached = model(**inputs)[0]
        gpu_throughput.set_lora_state(model, "fused", "attached")
        fused = model(**inputs)[0]
    assert base.shape == (2, shape.image_tokens, 4 * qt.TINY_CONFIG["out_channels"])
    assert not torch.allclose(attached, base, atol=1e-6)  # the adapter is not a no-op
    torch.testing.assert_close(fused, attached, rtol=1e-4, atol=1e-5)


def test_gpu_throughput_runs_on_cpu_and_prints_one_row_per_configuration(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    argv = [*FAST, "--resolutions", "32", "--layouts", "single,multi", "--batches", "1,2", "--json", str(out)]
    rows = gpu_throughput.main([*argv, "--steps", "8"])
    lines = table_lines(capsys.readouterr().out)
    assert lines[0] == [header for _, header, _ in gpu_throughput.COLUMNS]
    assert len(lines) - 1 == len(rows) == 2 * 2 * 2  # LoRA states × layouts × batches
    assert {(line[0], line[1]) for line in lines[1:]} == {("eager", "attached"), ("eager", "fused")}
    saved = json.loads(out.read_text())
    assert saved["config"]["num_layers"] == qt.TINY_CONFIG["num_layers"] and saved["steps"] == 8
    for row in saved["rows"]:
        assert row["seconds"] > 0 and row["tflops"] > 0 and row["peak_gib"] is None  # no GPU memory on CPU
        assert row["seconds_per_frame"] == pytest.approx(row["seconds"] * 8 * 2 / row["batch"])


def test_gpu_throughput_flops_only_reports_the_full_size_counts(capsys):
    rows = gpu_throughput.main(["--device", "cpu", "--full", "--flops-only", "--batches", "1"])
    lines = table_lines(capsys.readouterr().out)
    assert len(lines) - 1 == len(rows) == 2 * 3  # 512 and 1024 × single, side-by-side, multi
    largest = max(rows, key=lambda row: row["tflop"])  # side-by-side: its one ≈1 MP VL image has the most text
    assert (largest["layout"], largest["text_tokens"], largest["tokens"]) == ("side-by-side", 1390, 13_678)


def test_train_throughput_runs_on_cpu_and_reports_positive_timings(tmp_path, capsys):
    out = tmp_path / "train.json"
    rows = train_throughput.main([*FAST, "--resolutions", "32,64", "--rank", "4", "--json", str(out)])
    lines = table_lines(capsys.readouterr().out)
    assert lines[0][:4] == ["res", "layout", "cond", "batch"] and lines[0][-1] == "loss"
    assert [line[0] for line in lines[1:]] == ["32", "64"] and len(rows) == 2
    saved = json.loads(out.read_text())
    assert 0 < saved["trainable"] < saved["params"]
    for row in saved["rows"]:
        assert row["seconds"] > 0 and row["samples_per_s"] > 0 and row["loss"] > 0
        assert row["target_tokens"] < row["tokens"]  # the loss covers the target, not the conditioning


def test_qwen_tiny_measures_load_frames_and_the_share_outside_the_transformer(tmp_path):
    from benchmarks import qwen_tiny
    from vfi.testing.tiny_model import build_tiny_adapter, build_tiny_pipeline

    base = build_tiny_pipeline(tmp_path / "base")
    load, first, later, outside = qwen_tiny.measure(base, build_tiny_adapter(base, tmp_path / "lora"), 64, 3, 2)
    assert load > 0 and first > 0 and later > 0
    assert 0 < outside < 1  # the transformer ran, and something else took time too
