"""The method in miniature: synthetic triplets, the pretrained miniature editor, and that the chain learns.

The slow tests build the miniature editor once (6 minutes on a quiet 2-core machine, twice that when it is
loaded) into ``$VFI_MINIATURE_CACHE`` (default ``~/.cache/vfi/miniature``, shared with
``benchmarks/miniature.py``), reuse it, and make one ``--quick`` run (1.3 more minutes).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.miniature_editor import EditorConfig
from benchmarks.synthetic import render_scene, write_triplets
from vfi.errors import VFIError
from vfi.quality.metrics import psnr

CACHE = Path(os.environ.get("VFI_MINIATURE_CACHE", "~/.cache/vfi/miniature")).expanduser()


def test_scenes_are_deterministic_and_differ_by_seed():
    a = render_scene(np.random.default_rng([0, 1]))
    b = render_scene(np.random.default_rng([0, 1]))
    c = render_scene(np.random.default_rng([0, 2]))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    assert all(frame.shape == (64, 64, 3) and frame.dtype == np.uint8 for frame in a)


def test_middle_frame_is_the_true_midpoint():
    """The flow backend (which knows nothing of the renderer) beats crossfade by far: the middle frames are
    where the motion puts them, not a blend and not another time."""
    from vfi.backends import FrameRequest, create_backend

    flow = create_backend("flow")
    gains = []
    for i in range(12):
        first, middle, last = render_scene(np.random.default_rng([5, i]))
        blend = ((first.astype(np.float32) + last) / 2 + 0.5).astype(np.uint8)
        made = flow.interpolate([FrameRequest(first, last, 0.5)])[0]
        gains.append(psnr(made, middle) - psnr(blend, middle))
        assert not np.array_equal(first, middle) and not np.array_equal(middle, last)
    assert np.mean(gains) > 1.0


def test_grid_scenes_move_by_whole_grid_steps():
    """With ``grid``, almost every pixel of the middle frame is a pixel of the first moved by a whole grid step
    (only uncovered background and shape edges are not); with the default sub-step motion, few are."""

    def on_grid(first: np.ndarray, middle: np.ndarray, grid: int = 8, margin: int = 16) -> float:
        first, middle, inner = first.astype(int), middle.astype(int), slice(margin, -margin)
        found = np.zeros(middle[inner, inner].shape[:2], bool)
        for dy in (-grid, 0, grid):
            for dx in (-grid, 0, grid):
                moved = first[margin - dy : first.shape[0] - margin - dy, margin - dx : first.shape[1] - margin - dx]
                found |= np.abs(moved - middle[inner, inner]).max(axis=-1) <= 1
        return float(found.mean())

    scenes = {grid: [render_scene(np.random.default_rng([7, i]), 64, grid) for i in range(8)] for grid in (0, 8)}
    assert np.mean([on_grid(first, middle) for first, middle, _ in scenes[8]]) > 0.7
    assert np.mean([on_grid(middle, last) for _, middle, last in scenes[8]]) > 0.7
    assert np.mean([on_grid(first, middle) for first, middle, _ in scenes[0]]) < 0.5


def test_pools_of_different_seeds_are_disjoint(tmp_path):
    pool = write_triplets(tmp_path / "a", 4, seed=1)
    held = write_triplets(tmp_path / "b", 4, seed=2)
    again = write_triplets(tmp_path / "c", 4, seed=1)
    middles = [np.asarray(Image.open(p / "im2.png")) for p in pool]
    assert all(np.array_equal(m, np.asarray(Image.open(p / "im2.png"))) for m, p in zip(middles, again))
    assert not any(np.array_equal(m, np.asarray(Image.open(p / "im2.png"))) for m in middles for p in held)


def test_control_keyframes_keep_colours_but_no_structure_and_pass_the_data_filters(tmp_path):
    from benchmarks.miniature import destroy_keyframes
    from vfi.training.data import DataSettings, build_dataset

    pool = tmp_path / "pool"
    write_triplets(pool, 6, seed=3)
    control = destroy_keyframes(pool, tmp_path / "control", seed=0)
    for scene in sorted(control.iterdir()):
        middle = np.asarray(Image.open(scene / "im2.png"))
        assert np.array_equal(middle, np.asarray(Image.open(pool / scene.name / "im2.png")))
        for name in ("im1.png", "im3.png"):
            key = np.asarray(Image.open(scene / name))
            assert np.array_equal(np.sort(key.reshape(-1, 3), axis=0), np.sort(middle.reshape(-1, 3), axis=0))
            grey = key.astype(np.float64).mean(axis=2).ravel(), middle.astype(np.float64).mean(axis=2).ravel()
            assert abs(np.corrcoef(*grey)[0, 1]) < 0.1  # no spatial structure left
    settings = DataSettings(size=6, num_validation=0, min_motion=0.0, max_motion=0.99)
    assert len(build_dataset([control], tmp_path / "work", settings).train) == 6


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("layout", "grid"),
        ("size", 48),
        ("vae_steps", 0),
        ("head_dim", 24),
        ("edit_lr", 2.0),
        ("layers", 1.5),
        ("vae_factor", 8),
        ("shift_examples", -1),
        ("colour_examples", 2.0),
        ("max_shift", 17),
        ("shift_step", 6),
    ],
)
def test_editor_config_errors_name_the_field(field, value):
    with pytest.raises(VFIError, match=field):
        EditorConfig(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"), [("train", 0), ("steps", -1), ("inference_steps", 1), ("grid", -8), ("grid", 17)]
)
def test_run_settings_errors_name_the_field(field, value):
    from benchmarks.miniature import Settings

    with pytest.raises(VFIError, match=field):
        Settings(**{field: value})


def test_benchmark_editor_option_sets_config_fields_and_names_bad_ones():
    from benchmarks.miniature import editor_config

    assert editor_config(["layers=4", "vae_lr=0.003"]) == EditorConfig(layers=4, vae_lr=0.003)
    assert editor_config([]) == EditorConfig()
    for bad, field in (["depth=4"], "depth"), (["layers=four"], "layers"), (["vae_factor=3"], "vae_factor"):
        with pytest.raises(VFIError, match=field):
            editor_config(bad)


def test_the_default_editor_is_pre_trained_on_the_copy_edits_alone():
    from benchmarks.miniature_editor import EDIT_TASKS, _edit_examples

    examples = list(_edit_examples(EditorConfig(edit_examples=2, size=32)))
    assert [prompt for prompt, *_ in examples] == [prompt for prompt in EDIT_TASKS for _ in range(2)]


def test_shift_and_colour_edits_make_the_named_targets():
    """A shift edit's target is the named picture moved by the named offset; the colour edit's second picture is
    its target in grey."""
    from benchmarks.miniature_editor import COLOUR_PROMPT, EDIT_TASKS, _edit_examples, shift_image

    config = EditorConfig(edit_examples=1, shift_examples=3, colour_examples=2, size=32, max_shift=4)
    examples = list(_edit_examples(config))
    assert [e[0] for e in examples[: len(EDIT_TASKS)]] == list(EDIT_TASKS)
    shifts, colours = examples[len(EDIT_TASKS) : -2], examples[-2:]
    assert len(shifts) == 6 and [prompt.split()[1] for prompt, *_ in shifts] == ["1"] * 3 + ["2"] * 3
    for prompt, first, target, second in shifts:
        _, which, dx, dy = prompt.split()
        dx, dy, picture = int(dx), int(dy), (first, second)[int(which) - 1]
        assert abs(dx) <= 4 and abs(dy) <= 4
        assert np.array_equal(target[4 + dy : 28 + dy, 4 + dx : 28 + dx], picture[4:28, 4:28])
    for prompt, first, target, second in colours:
        offsets = [(dx, dy) for dx in range(-4, 5) for dy in range(-4, 5)]
        assert prompt == COLOUR_PROMPT and any(np.array_equal(target, shift_image(first, *o)) for o in offsets)
        assert np.abs(target.mean(axis=2) - second[..., 0]).max() <= 0.5 and np.ptp(second, axis=2).max() == 0


def test_editor_cache_key_follows_the_config():
    assert EditorConfig().key() == EditorConfig().key()
    assert EditorConfig().key() != EditorConfig(seed=1).key()


#: Measured (README): the adapter learns from the keyframes but does not yet reach crossfade, so this fails today.
not_learned_yet = pytest.mark.xfail(
    strict=True, reason="the miniature adapter does not yet reach crossfade within the CPU budget (see README)"
)


@pytest.fixture(scope="module")
def one_thread():
    """1 torch thread, as ``benchmarks/miniature.py`` defaults to: the editor a build makes depends on the thread
    count (float summation order), and the README's numbers are for 1."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def editor(one_thread) -> Path:
    pytest.importorskip("diffusers")
    from benchmarks.miniature_editor import cached_editor

    return cached_editor(EditorConfig(), CACHE)


@pytest.fixture(scope="module")
def loaded(editor):
    from vfi.qwen.pipeline import load_pipeline

    return load_pipeline(str(editor), device="cpu", dtype="float32", memory="none")


@pytest.mark.slow
def test_editor_loads_with_from_pretrained_and_its_vae_reconstructs(editor, loaded):
    from benchmarks.miniature_editor import editor_facts

    assert type(loaded.pipe).__name__ == "QwenImageEditPlusPipeline"  # the multi layout
    assert editor_facts(editor)["vae_psnr"] >= 28.0
    prefix = loaded.pipe.prompt_template_encode.split("{}")[0]  # Plus puts the images in the user text
    assert len(loaded.pipe.tokenizer(prefix).input_ids) == loaded.pipe.prompt_template_encode_start_idx


@pytest.mark.slow
def test_editor_obeys_the_edit_named_in_the_prompt(loaded):
    import torch

    from vfi.qwen.conditioning import build_conditioning, to_frame
    from vfi.qwen.pipeline import generate

    left, right = (render_scene(np.random.default_rng([11, i]))[0] for i in range(2))

    def made(prompt: str) -> np.ndarray:
        cond = build_conditioning(left, right, layout=loaded.layout, resolution=64, prompt=prompt)
        return to_frame(generate(loaded, [cond], [torch.Generator().manual_seed(0)], steps=4)[0], (64, 64))

    copy = made("copy 1")
    assert psnr(copy, left) > psnr(copy, right) + 3
    other = made("copy 2")
    assert psnr(other, right) > psnr(other, left) + 3


@pytest.fixture(scope="module")
def quick_run(editor, tmp_path_factory) -> dict:
    """One ``benchmarks/miniature.py --quick`` run."""
    from benchmarks.miniature import QUICK, run

    return run(QUICK, tmp_path_factory.mktemp("quick"), cache_dir=CACHE)


@pytest.mark.slow
def test_the_adapter_learns_from_the_keyframes_and_the_control_does_not(quick_run):
    """The trained adapter beats the base editor and, by far, the same training with the keyframes destroyed,
    which stays below crossfade: the gain comes from reading the keyframes through the condition tokens."""
    from benchmarks.miniature import QUICK

    assert quick_run["n"] == QUICK.held_out
    # By how much varies from build to build (README: 1.57 dB at 1 torch thread, 0.47 at 2); an adapter that is
    # not applied, or saved empty, gives exactly the base's frames.
    assert quick_run["adapter_psnr"] > quick_run["base_psnr"]
    assert quick_run["adapter_psnr"] > quick_run["control_psnr"] + 3
    assert quick_run["control_psnr"] <= quick_run["crossfade_psnr"]
    assert quick_run["vae_middle_psnr"] >= 28.0  # the true middle frames survive the editor's VAE


@pytest.mark.slow
@not_learned_yet
def test_the_adapter_reaches_the_issue_targets(quick_run):
    """The issue's targets for ``--quick``: adapter ≥ crossfade + 1 dB and ≥ base + 3 dB."""
    assert quick_run["adapter_psnr"] >= quick_run["crossfade_psnr"] + 1
    assert quick_run["adapter_psnr"] >= quick_run["base_psnr"] + 3
