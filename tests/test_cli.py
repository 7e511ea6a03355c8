"""The command line: outputs, exit codes and one-line errors, run as a user would (``python -m vfi``)."""

from __future__ import annotations

import argparse
import numbers
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import train_lora
from vfi.app import config
from vfi.cli import build_parser, main
from vfi.io.video import probe_clip

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vfi", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def assert_user_error(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr


def test_pair_writes_mp4_gif_and_frames(tmp_path, keyframe_files):
    first, last = keyframe_files
    out, gif, frames_dir = tmp_path / "out.mp4", tmp_path / "out.gif", tmp_path / "frames"
    result = run_cli(
        "pair",
        str(first),
        str(last),
        "-o",
        str(out),
        "--depth",
        "2",
        "--fps",
        "12",
        "--gif",
        str(gif),
        "--frames-dir",
        str(frames_dir),
    )
    assert result.returncode == 0, result.stderr
    info = probe_clip(out)
    assert (info.num_frames, info.fps, info.width, info.height) == (5, 12, 128, 96)
    assert gif.stat().st_size > 0
    names = sorted(p.name for p in frames_dir.iterdir())
    assert names == [f"frame_{i:04d}.png" for i in range(5)]
    # The first and last PNG frames are the keyframes, unchanged.
    np.testing.assert_array_equal(np.asarray(Image.open(frames_dir / "frame_0000.png")), np.asarray(Image.open(first)))
    np.testing.assert_array_equal(np.asarray(Image.open(frames_dir / "frame_0004.png")), np.asarray(Image.open(last)))
    # Progress: frames done of the total and the time left; no rate (a level's frames come at once: "45875 frame/s").
    assert "3/3 frames [" in result.stderr and " left]" in result.stderr and "/s" not in result.stderr


def test_pair_with_a_frame_count(tmp_path, keyframe_files):
    out = tmp_path / "out.mp4"
    assert main(["pair", *map(str, keyframe_files), "-o", str(out), "--frames", "6", "--backend", "crossfade"]) == 0
    assert probe_clip(out).num_frames == 8


@pytest.mark.parametrize(
    "args",
    [
        "pair {dir}/missing.png {last} -o {dir}/o.mp4",
        "pair {first} {dir}/not_an_image.png -o {dir}/o.mp4",
        "pair {first} {last} -o {dir}/o.mp4 --depth 0",
        "pair {first} {last} -o {dir}/o.mp4 --backend nope",
        "pair {first} {last} -o {dir}/no_such_dir/o.mp4",
        "pair {first} {dir}/wide.png -o {dir}/o.mp4 --mismatch refuse",
        "clip {first} -o {dir}/o.mp4",
        "evaluate {dir}/empty",
        "",
    ],
    ids=[
        "missing",
        "corrupt",
        "bad-depth",
        "bad-backend",
        "no-output-dir",
        "aspect",
        "clip-not-video",
        "no-triplets",
        "no-command",
    ],
)
def test_user_errors_exit_2_with_one_line_and_no_output(tmp_path, keyframe_files, args):
    (tmp_path / "not_an_image.png").write_text("hello")
    Image.fromarray(np.zeros((40, 200, 3), np.uint8)).save(tmp_path / "wide.png")
    (tmp_path / "empty").mkdir()
    before = set(tmp_path.rglob("*"))
    first, last = keyframe_files
    result = run_cli(*args.format(dir=tmp_path, first=first, last=last).split())
    assert_user_error(result)
    assert set(tmp_path.rglob("*")) == before


def test_help_exits_0():
    result = run_cli("pair", "--help")
    assert result.returncode == 0 and "--depth" in result.stdout


def test_importing_vfi_does_not_import_torch_or_cv2():
    code = (
        "import sys, vfi, vfi.cli, vfi.interpolate, vfi.backends; print('torch' in sys.modules, 'cv2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(("mode", "how"), [("fit", "center-cropped"), ("pad", "padded with black")])
def test_pair_fits_or_pads_a_mismatched_last_keyframe_and_says_so(tmp_path, keyframe_files, mode, how):
    first, _ = keyframe_files
    Image.fromarray(np.full((40, 200, 3), 128, np.uint8)).save(tmp_path / "wide.png")
    out = tmp_path / "o.mp4"
    result = run_cli("pair", str(first), str(tmp_path / "wide.png"), "-o", str(out), "--depth", "1", "--mismatch", mode)
    assert result.returncode == 0, result.stderr
    assert "note: The last keyframe (200×40) was scaled" in result.stderr and how in result.stderr
    assert (probe_clip(out).width, probe_clip(out).height) == (128, 96)


def _parser_of(parse_args: Callable[[list[str]], object]) -> argparse.ArgumentParser:
    """The parser a ``parse_args(argv)`` function builds, caught as it starts parsing."""

    class Caught(Exception):
        pass

    def catch(parser: argparse.ArgumentParser, *args: object) -> None:
        raise Caught(parser)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", catch)
        with pytest.raises(Caught) as caught:
            parse_args([])
    return caught.value.args[0]


def _numeric_options() -> list:
    """(program, argv before the option, option) for every option whose type reads "2" as a number."""
    subcommands = build_parser()._subparsers._group_actions[0].choices
    parsers = [(f"vfi {name}", [name], sub) for name, sub in subcommands.items()]
    parsers += [("train_lora.py", [], _parser_of(train_lora.parse_args)), ("app", [], _parser_of(config.parse_args))]
    found = []
    for program, argv, parser in parsers:
        for action in parser._actions:
            try:
                numeric = action.option_strings and isinstance(action.type("2"), numbers.Number)
            except Exception:
                numeric = False
            if numeric:
                found.append(pytest.param(program, argv, action.option_strings[-1], id=f"{program} {action.dest}"))
    return found


@pytest.mark.parametrize(("program", "argv", "option"), _numeric_options())
def test_every_numeric_option_takes_ascii_digits_only(capsys, program, argv, option):
    """int() and float() read "٢" (Arabic-Indic 2), "2_0", "nan", "inf": every option refuses them in one line."""
    run = {"train_lora.py": train_lora.parse_args, "app": config.parse_args}.get(program, main)
    for bad in ("٢", "²", "2_0", "nan", "inf"):
        try:
            code = run([*argv, option, bad])
        except SystemExit as exit_info:  # a plain argparse parser: its usage, then one line
            code = exit_info.code
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and repr(bad) in lines[-1] and "Traceback" not in "".join(lines), (bad, lines)
        assert (len(lines) == 1 and lines[0].startswith("error: ")) if run is main else ": error: " in lines[-1]
        assert option in lines[-1] or "The frame rate" in lines[-1], (bad, lines)  # clip --fps: its own sentence


def test_numeric_settings_of_the_app_environment_take_ascii_digits_only(monkeypatch, capsys):
    monkeypatch.setenv("VFI_MAX_GPU_SECONDS", "٣٠٠")
    with pytest.raises(SystemExit) as exit_info:
        config.parse_args([])
    assert exit_info.value.code == 2 and "'٣٠٠'" in capsys.readouterr().err
