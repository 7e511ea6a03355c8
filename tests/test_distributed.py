"""Commands launched on two real processes (torchrun, CPU) make exactly what one process makes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scenes import panned_triplet, textured_image, write_triplet

from vfi.distributed import map_ordered
from vfi.interpolate import Progress
from vfi.io.video import read_frames, write_mp4

ROOT = Path(__file__).resolve().parents[1]


def _vfi(*args: str, processes: int = 1) -> subprocess.CompletedProcess:
    """``python -m vfi ARGS`` alone, or under torchrun on ``processes`` CPU processes."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACCELERATE_USE_CPU": "1"}
    command = [sys.executable, *launcher, "-m", "vfi", *args, "--threads", "1"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _shares(result: subprocess.CompletedProcess) -> dict[int, tuple[int, int]]:
    """Process → (items it made, items in all), from each process's last line."""
    lines = re.findall(r"process (\d) of 2 made (\d+) of (\d+) items", result.stderr)
    return {int(p): (int(made), int(total)) for p, made, total in lines}


def _share_lines(result: subprocess.CompletedProcess) -> dict[int, list[tuple[int, int]]]:
    """Process → (items it made, items in all) of each shared step, in order."""
    lines: dict[int, list[tuple[int, int]]] = {}
    for p, made, total in re.findall(r"process (\d) of 2 made (\d+) of (\d+) items", result.stderr):
        lines.setdefault(int(p), []).append((int(made), int(total)))
    return lines


def _errors(result: subprocess.CompletedProcess) -> list[str]:
    """The ``error: …`` and ``error (process R): …`` lines (a progress bar may come first on the line)."""
    return re.findall(r"\berror(?: \(process \d\))?: .*", result.stderr)


def _png(path: Path, frame: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(frame).save(path)
    return path


def _same_frames(a: Path, b: Path) -> bool:
    first, second = list(read_frames(a)), list(read_frames(b))
    return len(first) == len(second) and all(np.array_equal(x, y) for x, y in zip(first, second))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A pan, a held frame (a duplicate, bridged), a scene cut and another pan: 17 frames."""
    a, b = textured_image(96, 128, seed=1), textured_image(96, 128, seed=7)
    frames = [np.roll(a, 3 * i, axis=1) for i in range(7)] + [np.roll(a, 18, axis=1)] * 2
    frames += [np.roll(b, 2 * i, axis=1) for i in range(8)]
    return write_mp4(frames, tmp_path_factory.mktemp("clip") / "in.mp4", fps=10, crf=0)


def test_map_ordered_alone_keeps_order_and_progress() -> None:
    seen = []
    progress = Progress(3, lambda done, total: seen.append((done, total)))

    def make(item: int, progress: Progress) -> int:
        progress.advance()
        return item * 10

    assert list(map_ordered([1, 2, 3], make, progress)) == [10, 20, 30]
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_threads_caps_this_process_without_importing_torch(tmp_path: Path, clip: Path) -> None:
    code = (
        "import sys, cv2; from vfi.cli import main; "
        f"status = main(['clip', {str(clip)!r}, '-o', {str(tmp_path / 'o.mp4')!r}, '--threads', '1']); "
        "print(status, cv2.getNumThreads(), 'torch' in sys.modules, 'accelerate' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "1", "False", "False"]


def test_threads_must_be_positive(tmp_path: Path, clip: Path, capsys) -> None:
    from vfi.cli import main

    assert main(["clip", str(clip), "-o", str(tmp_path / "o.mp4"), "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_two_processes_make_the_clip_of_one(tmp_path: Path, clip: Path) -> None:
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    assert _vfi("clip", str(clip), "-o", str(one), "--backend", "flow", "--factor", "2").returncode == 0
    result = _vfi("clip", str(clip), "-o", str(two), "--backend", "flow", "--factor", "2", processes=2)
    assert result.returncode == 0, result.stderr
    assert _same_frames(one, two)
    shares = _shares(result)  # the segments were shared: each process made part of them, not all
    assert set(shares) == {0, 1} and all(0 < made < total for made, total in shares.values())
    assert sum(made for made, _ in shares.values()) == shares[0][1]
    assert "wrote 33 frames" in result.stderr and result.stderr.count("wrote ") == 1  # the main process wrote it


@pytest.mark.parametrize("rank", ["0", "1"])
def test_an_error_is_printed_by_the_main_process_only(tmp_path: Path, monkeypatch, capsys, rank: str) -> None:
    from vfi.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)  # every process fails alike (a missing input): the user reads it once
    assert main(["clip", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("error") == (1 if rank == "0" else 0), err
    if rank == "0":
        assert err.startswith("error: ") and "missing.mp4" in err


@pytest.mark.slow
def test_two_processes_share_a_retimed_clip_and_its_report(tmp_path: Path, clip: Path) -> None:
    outputs = {}
    for processes in (1, 2):
        video, report = tmp_path / f"retimed{processes}.mp4", tmp_path / f"report{processes}.json"
        result = _vfi("clip", str(clip), "-o", str(video), "--fps", "25", "--report", str(report), processes=processes)
        assert result.returncode == 0, result.stderr
        outputs[processes] = (video, json.loads(report.read_text()), result)
    (video_one, report_one, _), (video_two, report_two, result) = outputs[1], outputs[2]
    assert _same_frames(video_one, video_two) and len(list(read_frames(video_two))) == 42
    assert report_one == report_two and report_one["n"] > 0
    shares = _share_lines(result)  # the retimed intervals, then the report's windows: each process made part
    assert set(shares) == {0, 1} and all(len(steps) == 2 for steps in shares.values()), result.stderr
    for step in range(2):
        made = [shares[p][step][0] for p in (0, 1)]
        assert all(m > 0 for m in made) and sum(made) == shares[0][step][1]
    assert result.stderr.count("wrote ") == 1 and result.stderr.count("rebuilt ") == 1


@pytest.mark.slow
def test_two_processes_evaluate_and_make_the_storyboard_of_one(tmp_path: Path) -> None:
    for i, step in enumerate((2, 3, 4, 5, 6)):
        write_triplet(tmp_path / "data" / f"t{i}", panned_triplet(shift=step))
    keyframes = [_png(tmp_path / f"k{i}.png", textured_image(96, 128, seed=i)) for i in range(4)]
    runs = {}
    for processes in (1, 2):
        json_out, video = tmp_path / f"scores{processes}.json", tmp_path / f"story{processes}.mp4"
        evaluated = _vfi("evaluate", str(tmp_path / "data"), "--json", str(json_out), processes=processes)
        story = _vfi("sequence", *map(str, keyframes), "-o", str(video), "--depth", "2", processes=processes)
        assert evaluated.returncode == story.returncode == 0, evaluated.stderr + story.stderr
        runs[processes] = (json.loads(json_out.read_text()), video, evaluated, story)
    (one, video_one, *_), (two, video_two, evaluated, story) = runs[1], runs[2]
    for scores in (one, two):
        scores.pop("ms_per_frame")
        for row in scores["per_triplet"]:
            row.pop("ms")
    assert one == two and one["n"] == 5
    assert _same_frames(video_one, video_two)
    assert {p: made for p, (made, _) in _shares(evaluated).items()} == {0: 3, 1: 2}
    assert {p: made for p, (made, _) in _shares(story).items()} == {0: 2, 1: 1}


@pytest.mark.slow
def test_a_failing_process_fails_the_run_and_writes_nothing(tmp_path: Path) -> None:
    for i in range(3):
        write_triplet(tmp_path / "data" / f"t{i}", panned_triplet())
    bad = tmp_path / "data" / "t2" / "im2.png"  # t2 is the second process's: only it fails
    bad.write_bytes(b"not a png")
    json_out = tmp_path / "scores.json"
    result = _vfi("evaluate", str(tmp_path / "data"), "--json", str(json_out), processes=2)
    assert result.returncode != 0
    assert re.search(r"^error: .*im2\.png", result.stderr, re.MULTILINE), result.stderr
    assert len(_errors(result)) == 1, result.stderr  # the main process says it; the failing one stays quiet
    assert not json_out.exists() and not list(tmp_path.glob("*.partial*"))


def _generative_run(tmp_path: Path, command: str, inputs: list[Path], options: list[str], processes: int) -> dict:
    """``vfi COMMAND INPUTS OPTIONS`` by the tiny model, on ``processes`` processes, each making a share: the run's
    manifest."""
    manifest = tmp_path / f"{command}{processes}.json"
    output = ["-o", str(manifest.with_suffix(".mp4")), "--manifest", str(manifest)]
    result = _vfi(command, *map(str, inputs), *output, *options, processes=processes)
    assert result.returncode == 0, result.stderr
    if processes > 1:
        assert all(made > 0 for made, _ in _shares(result).values()), result.stderr
    return json.loads(manifest.read_text())


def _tiny_options(base: Path, adapter: Path, *more: str) -> list[str]:
    options = ["--backend", "qwen-edit", "--base-model", str(base), "--adapter", str(adapter), "--resolution", "64"]
    return [*options, "--steps", "2", "--guidance", "1", "--seed", "5", *more]


@pytest.mark.slow
def test_two_processes_make_the_generative_frames_of_one(tmp_path: Path, tiny_models) -> None:
    """The frames are generated (the fallback, which would replace the random model's garbage by the flow frame
    whatever the seed, is off): each frame's seed is the same whichever process makes it."""
    model = tiny_models["side-by-side"]
    keyframes = [_png(tmp_path / f"k{i}.png", textured_image(64, 64, seed=i)) for i in range(3)]
    options = _tiny_options(model["base"], model["adapter"], "--depth", "1", "--fallback", "off")
    made = {}
    for processes in (1, 2):
        frames = tmp_path / f"frames{processes}"
        record = _generative_run(tmp_path, "sequence", keyframes, [*options, "--frames-dir", str(frames)], processes)
        assert not record.get("fallbacks")  # none replaced: all generated
        made[processes] = [path.read_bytes() for path in sorted(frames.glob("*.png"))]
    assert len(made[1]) == 5 and made[1] == made[2]


@pytest.mark.slow
def test_frames_that_fell_back_on_any_process_are_in_the_manifest(tmp_path: Path, tiny_models) -> None:
    """Every generated frame falls back (NaN adapter); the manifest of 2 processes lists each of them, in the order
    one process makes them: for a storyboard (results gathered on every process) and a clip (frames gathered on
    the main one)."""
    from garbage_adapter import build_nan_adapter

    from vfi.interpolate import node_seed

    base = tiny_models["side-by-side"]["base"]
    adapter = build_nan_adapter(base, tmp_path / "nan")

    def expected(seeds: list[int]) -> list[dict]:
        return [{"reason": "non-finite (NaN) values", "seed": seed, "t": 0.5} for seed in seeds]

    keyframes = [_png(tmp_path / f"k{i}.png", textured_image(64, 64, seed=i)) for i in range(3)]
    board = _generative_run(tmp_path, "sequence", keyframes, _tiny_options(base, adapter, "--depth", "1"), 2)
    made = [seed for seed in board["seeds"]["frames"] if seed is not None]  # (keyframes have none)
    assert len(made) == 2 and board["fallbacks"] == expected(made)
    pan = [np.roll(textured_image(64, 64, seed=1), 3 * i, axis=1) for i in range(3)]
    clip = write_mp4(pan, tmp_path / "pan.mp4", fps=10, crf=0)
    clip_run = _generative_run(tmp_path, "clip", [clip], _tiny_options(base, adapter, "--factor", "2"), 2)
    assert clip_run["fallbacks"] == expected([node_seed(5, pair, Fraction(1, 2)) for pair in (0, 1)])
