"""The method in miniature (``benchmarks/``): synthetic triplets, the miniature editor, and a smoke run of the
whole chain on a tiny editor. The full run, which takes minutes to hours, is ``benchmarks/miniature.py``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmarks.miniature_editor import EditorConfig
from benchmarks.synthetic import render_scene, write_triplets
from vfi.errors import VFIError
from vfi.quality.metrics import psnr


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


#: The smallest editor and run that still go through every stage: build (VAE and edit pre-training), save,
#: ``from_pretrained``, LoRA training on real triplet folders, generation with and without the adapter, scores.
SMOKE_EDITOR = EditorConfig(size=32, vae_steps=4, head_dim=16, edit_examples=2, edit_steps=4)


@pytest.mark.slow
def test_the_whole_miniature_runs_in_seconds(tmp_path):
    """The miniature end to end on a tiny editor (the full run is ``benchmarks/miniature.py``, opt-in; its results
    are in docs/miniature.md). A few training steps must change the frames: an adapter that is not applied, or is
    saved empty, gives exactly the base editor's frames and scores."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from benchmarks.miniature import Settings, run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        settings = Settings(train=4, held_out=2, steps=4, batch=2, learning_rate=0.05, editor=SMOKE_EDITOR)
        results = run(settings, tmp_path / "work", cache_dir=tmp_path / "cache")
    finally:
        torch.set_num_threads(threads)
    assert results["n"] == 2
    assert (tmp_path / "cache" / SMOKE_EDITOR.key() / "model_index.json").is_file()
    scores = [results[f"{row}_psnr"] for row in ("base", "adapter", "control", "crossfade")]
    assert all(np.isfinite(scores)) and all(0 < score < 100 for score in scores)
    assert results["adapter_psnr"] != results["base_psnr"]
    assert results["adapter_psnr"] != results["control_psnr"]  # trained on other keyframes: other weights
