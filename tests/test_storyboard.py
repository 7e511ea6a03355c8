"""Storyboards (N keyframes → one video) and re-rolling/locking one in-between, in the library and the CLI."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scenes import panned_triplet
from test_cli import assert_user_error, run_cli
from test_interpolate import MidpointRecorder

from vfi.backends.crossfade import CrossfadeBackend
from vfi.backends.flow import FlowBackend
from vfi.errors import VFIError
from vfi.interpolate import InterpolationSettings, interpolate_frames, node_parents
from vfi.io.video import probe_clip
from vfi.modes.storyboard import Storyboard, load_storyboard, make_storyboard, redo_indices, reroll


@pytest.fixture
def three_keyframes(tmp_path: Path) -> list[Path]:
    """Three 128×96 keyframes of one panned texture; the third saved at 256×192 (fitted back on load)."""
    first, middle, last = panned_triplet(shift=6)
    paths = [tmp_path / f"k{i}.png" for i in range(3)]
    Image.fromarray(first).save(paths[0])
    Image.fromarray(middle).save(paths[1])
    Image.fromarray(last).resize((256, 192), Image.Resampling.NEAREST).save(paths[2])
    return paths


def test_cli_sequence_chains_transitions_with_each_keyframe_once(tmp_path, three_keyframes):
    out, frames_dir = tmp_path / "story.mp4", tmp_path / "frames"
    result = run_cli(
        "sequence",
        *map(str, three_keyframes),
        "-o",
        str(out),
        "--depth",
        "1,2",
        "--fps",
        "10",
        "--frames-dir",
        str(frames_dir),
        "--backend",
        "crossfade",
    )
    assert result.returncode == 0, result.stderr
    info = probe_clip(out)
    assert (info.num_frames, info.width, info.height) == (2 + 4 + 1, 128, 96)
    frames = [np.asarray(Image.open(p)) for p in sorted(frames_dir.glob("*.png"))]
    keyframes, _ = load_storyboard(three_keyframes)
    for index, keyframe in zip((0, 2, 6), keyframes):  # each keyframe once, unchanged, at its place
        np.testing.assert_array_equal(frames[index], keyframe)
    assert sum(any(np.array_equal(f, k) for f in frames) for k in keyframes) == 3
    assert keyframes[2].shape == (96, 128, 3)  # the larger third keyframe was fitted to the first, and said so
    assert "note: Keyframe 3 (256×192) was scaled to the first's 128×96" in result.stderr


def test_cli_sequence_user_errors(tmp_path, three_keyframes):
    k = list(map(str, three_keyframes))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("walk left\nturn around\n")
    out = str(tmp_path / "o.mp4")
    assert_user_error(run_cli("sequence", k[0], "-o", out))
    assert_user_error(run_cli("sequence", *k, "-o", out, "--depth", "1,2,3"))
    assert_user_error(run_cli("sequence", *k, "-o", out, "--depth", "two"))
    assert_user_error(run_cli("sequence", *k[:2], "-o", out, "--prompts", str(prompts)))  # 2 lines, 1 transition
    prompts.write_text("walk left\n")
    assert_user_error(run_cli("sequence", *k[:2], "-o", out, "--prompts", str(prompts)))  # flow takes no prompt
    assert_user_error(run_cli("sequence", *k, "-o", out, "--frames-per-pair", "3", "--backend", "qwen-edit"))
    assert not Path(out).exists()


def test_an_empty_depth_is_refused_in_the_cli_as_in_the_app(tmp_path, three_keyframes):
    result = run_cli("sequence", *map(str, three_keyframes), "-o", str(tmp_path / "o.mp4"), "--depth", " ")
    assert_user_error(result)
    assert "error: depth is empty; give one depth for all transitions (e.g. 3)" in result.stderr


def test_uniform_storyboard_equals_chained_pairs(three_keyframes):
    keyframes, _ = load_storyboard(three_keyframes)
    take = make_storyboard(keyframes, FlowBackend(), Storyboard.build(3, depth=2))
    chained = list(interpolate_frames(keyframes, FlowBackend(), InterpolationSettings(depth=2), num_frames=3))
    assert len(take.frames) == len(chained) == 9
    for a, b in zip(take.frames, chained):
        np.testing.assert_array_equal(a, b)
    assert [n.keyframe for n in take.nodes] == [True, False, False, False] * 2 + [True]


def test_frames_per_pair_and_per_transition_depth():
    board = Storyboard.build(4, depth="3, 1, 2")
    assert [s.depth for s in board.transitions] == [3, 1, 2]
    assert board.num_frames == 8 + 2 + 4 + 1
    assert Storyboard.build(3, frames_per_pair=4).num_frames == 5 + 5 + 1
    with pytest.raises(VFIError, match="one line per transition"):
        Storyboard.build(3, prompts=["only one"])


def test_parents_follow_the_recursion():
    parents = node_parents(InterpolationSettings(depth=2), MidpointRecorder())
    half, quarter, three = Fraction(1, 2), Fraction(1, 4), Fraction(3, 4)
    assert parents == {half: (0, 1), quarter: (0, half), three: (half, 1)}
    assert set(node_parents(InterpolationSettings(depth=2), CrossfadeBackend()).values()) == {(0, 1)}


def test_reroll_redoes_exactly_the_node_and_its_descendants(three_keyframes):
    keyframes, _ = load_storyboard(three_keyframes)
    board = Storyboard.build(3, depth=2)
    backend = MidpointRecorder()
    take = make_storyboard(keyframes, backend, board)
    # transition 0: frames 1 (t=1/4), 2 (1/2), 3 (3/4); re-rolling 1/2 redoes 1/4 and 3/4 too
    assert redo_indices(take, board, backend, 2) == [1, 2, 3]
    assert redo_indices(take, board, backend, 7) == [7]  # a leaf: itself only
    assert redo_indices(take, board, backend, 2, locked=[1]) == [2, 3]

    backend.calls.clear()
    new = reroll(take, keyframes, backend, board, 2, seed=99, locked=[1])
    made = [(r.seed, r.t) for call in backend.calls for r in call]
    assert [seed for seed, _ in made][0] == 99 and len(made) == 2  # 1/2, then 3/4 from it; 1/4 locked
    for i in (0, 1, 4, 5, 6, 7, 8):
        assert new.frames[i] is take.frames[i]  # kept bit for bit (the same arrays)
    assert new.nodes[2].seed == 99 and new.nodes[3].seed == take.nodes[3].seed
    for bad, message in ((0, "keyframe"), (1, "locked"), (9, "no frame 9")):
        with pytest.raises(VFIError, match=message):
            reroll(take, keyframes, backend, board, bad, seed=1, locked=[1])


# Random weights make garbage frames: the fallback (tests/test_qwen_edit.py) would replace them all by the flow frame.
TINY_OPTIONS = {"resolution": 64, "steps": 2, "guidance": 1.0}


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A tiny random Qwen-Image-Edit pipeline (side-by-side), written with the real classes."""
    from vfi.testing.tiny_model import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "pipeline", "side-by-side")


@pytest.mark.slow
def test_reroll_on_the_generative_backend(tiny_base, three_keyframes):
    """The tiny random Qwen-Image-Edit pipeline is seed-sensitive: re-rolled frames change, the rest do not."""
    from vfi.backends.qwen_edit import QwenEditBackend

    backend = QwenEditBackend(str(tiny_base), **TINY_OPTIONS, device="cpu", fallback=False, register=False)
    keyframes, _ = load_storyboard(three_keyframes)
    board = Storyboard.build(3, depth="2,1", prompts=["", "a different prompt"])
    take = make_storyboard(keyframes, backend, board)
    assert len(take.frames) == 4 + 2 + 1

    new = reroll(take, keyframes, backend, board, 2, seed=12345)
    # The re-rolled midpoint changes (frames 1 and 3 are made again from it, see the test above; the random
    # tiny model barely looks at its inputs, so they may come out the same).
    assert np.abs(new.frames[2].astype(int) - take.frames[2]).mean() > 1
    for i in (0, 4, 5, 6):
        assert new.frames[i] is take.frames[i]

    locked = reroll(take, keyframes, backend, board, 2, seed=12345, locked=[1])
    np.testing.assert_array_equal(locked.frames[1], take.frames[1])
    np.testing.assert_array_equal(locked.frames[2], new.frames[2])  # same seed, same frame
    back = reroll(new, keyframes, backend, board, 2, seed=take.nodes[2].seed)
    for a, b in zip(back.frames, take.frames):  # the old seed brings the old frames back
        np.testing.assert_allclose(a.astype(int), b.astype(int), atol=1)


@pytest.mark.slow
def test_cli_frame_seeds_remake_a_reroll(tmp_path, tiny_base, three_keyframes):
    """``--frame-seed`` with the seed a re-roll chose gives the re-rolled take, frame for frame."""
    from vfi.backends.qwen_edit import QwenEditBackend

    backend = QwenEditBackend(str(tiny_base), **TINY_OPTIONS, device="cpu", fallback=False)
    keyframes, _ = load_storyboard(three_keyframes)
    board = Storyboard.build(3, depth="2,1", seed=5)
    rerolled = reroll(make_storyboard(keyframes, backend, board), keyframes, backend, board, 2, seed=4242)
    frames_dir = tmp_path / "frames"
    options = [f"--{k}={v}" for k, v in TINY_OPTIONS.items()]
    result = run_cli(
        "sequence",
        *map(str, three_keyframes),
        "-o",
        str(tmp_path / "o.mp4"),
        "--depth",
        "2,1",
        "--seed",
        "5",
        "--frame-seed",
        "2=4242",
        "--frames-dir",
        str(frames_dir),
        "--backend",
        "qwen-edit",
        "--base-model",
        str(tiny_base),
        *options,
        "--fallback",
        "off",
    )
    assert result.returncode == 0, result.stderr
    made = [np.asarray(Image.open(p)) for p in sorted(frames_dir.glob("*.png"))]
    assert len(made) == len(rerolled.frames) == 7
    for a, b in zip(made, rerolled.frames):
        np.testing.assert_array_equal(a, b)
    second_keyframe = ["--depth", "2,1", "--frame-seed", "4=1"]
    assert_user_error(run_cli("sequence", *map(str, three_keyframes), "-o", str(tmp_path / "x.mp4"), *second_keyframe))


@pytest.mark.parametrize("bad", ["1=²", "²=1", "1=٣", "1=-2", "1=2=3"])
def test_cli_frame_seeds_are_ascii_digits_or_one_sentence(tmp_path, three_keyframes, bad):
    result = run_cli("sequence", *map(str, three_keyframes), "-o", str(tmp_path / "o.mp4"), "--frame-seed", bad)
    assert_user_error(result)
    assert "--frame-seed must be FRAME=SEED in digits 0-9" in result.stderr


def test_depths_and_frame_lists_take_ascii_digits_only():
    from vfi.app.storyboard import parse_indices
    from vfi.modes.storyboard import parse_depths

    assert parse_depths(" 3, 2 ") == (3, 2) and parse_indices("2, 1", "order") == [2, 1]
    for text in ("٣", "2,³"):
        with pytest.raises(VFIError, match="depth must be whole numbers"):
            parse_depths(text)
        with pytest.raises(VFIError, match="order must be frame numbers"):
            parse_indices(text, "order")


def _made_storyboard():
    """The app's storyboard action on two examples (flow, depth 1: frames 0, 1, 2) and its job."""
    from vfi.app import actions
    from vfi.app import storyboard as storyboard_actions
    from vfi.app.config import Advanced, AppConfig

    call = actions.Call(AppConfig(backend="flow"), lambda job: job.run(lambda *_: None, lambda: False), None, "k")
    examples = Path(__file__).resolve().parent.parent / "examples"
    files = [str(examples / name) for name in ("astronaut_first.png", "astronaut_last.png")]
    *_, job = storyboard_actions.storyboard(call, files, "", "1", 0, 10, "", "flow", Advanced(), 0)
    return call, job


def test_lock_needs_a_storyboard_and_one_of_its_frames():
    from vfi.app.storyboard import toggle_lock

    with pytest.raises(VFIError, match="Make a storyboard first, then pick a frame to lock."):
        toggle_lock(None, "", 99999)
    _, job = _made_storyboard()
    assert toggle_lock(job, "", 1) == "1" and toggle_lock(job, "1", 1) == ""
    for index in (3, 99999, 2**40, -1, 1.5, float("nan"), float("inf")):
        with pytest.raises(VFIError, match=r"^There is no frame .*; the frames are numbered 0 to 2\.$"):
            toggle_lock(job, "", index)


def test_a_storyboard_fps_is_checked_before_any_work():
    from vfi.app import storyboard as storyboard_actions
    from vfi.app.config import Advanced

    call, _ = _made_storyboard()
    files = [str(Path(__file__).resolve().parent.parent / "examples" / "astronaut_first.png")] * 2
    with pytest.raises(VFIError, match="fps must be a number from 0.1 to 240"):
        storyboard_actions.storyboard(call, files, "", "1", 0, 0.0001, "", "flow", Advanced(), 0)


def test_cli_sequence_refuses_keyframes_more_than_twice_apart_in_shape_unless_asked(tmp_path, three_keyframes):
    tall = tmp_path / "tall.png"
    Image.fromarray(np.full((900, 100, 3), 128, np.uint8)).save(tall)
    out = tmp_path / "o.mp4"
    result = run_cli("sequence", str(three_keyframes[0]), str(tall), "-o", str(out), "--depth", "1")
    assert_user_error(result)
    assert "Keyframe 2 (100×900)" in result.stderr and "more than 2× apart" in result.stderr
    asked = run_cli("sequence", str(three_keyframes[0]), str(tall), "-o", str(out), "--depth", "1", "--mismatch", "pad")
    assert asked.returncode == 0 and "padded with black" in asked.stderr, asked.stderr
