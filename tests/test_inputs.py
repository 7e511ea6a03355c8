"""Inputs are read with a size limit and must be regular files; outputs that would overwrite an input of the
same run are refused before any work. Hostile inputs (a device, a pipe) run in a ``python -m vfi`` subprocess
with a timeout, so a regression fails the test instead of hanging the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scenes import panned_triplet, write_triplet
from test_cli import assert_user_error

from vfi.errors import VFIError

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "examples" / "clip.mp4"


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m vfi ARGS`` under a 3 GB address-space limit: an unbounded read fails fast instead of swapping."""
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
        "from vfi.cli import main; sys.exit(main())"
    )
    argv = [sys.executable, "-c", code, *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ("sequence {first} {last} -o {dir}/o.mp4 --prompts /dev/zero", "prompts file /dev/zero is not a regular file"),
        ("sequence {first} {last} -o {dir}/o.mp4 --prompts {fifo}", "is not a regular file (a device, pipe or socket)"),
        ("sequence {first} {last} -o {dir}/o.mp4 --prompts {dir}", "is not a file (it is a folder)"),
        ("sequence {first} {last} -o {dir}/o.mp4 --prompts {dir}/big.txt", "larger than the 1 MiB limit"),
        ("replay /dev/zero -o {dir}/o.mp4", "The manifest /dev/zero is not a regular file"),
        ("replay {fifo} -o {dir}/o.mp4", "is not a regular file"),
        ("replay {dir}/big.txt -o {dir}/o.mp4", "larger than the 16 MiB limit for a manifest"),
        ("pair /dev/zero {last} -o {dir}/o.mp4 --manifest {dir}/m.json", "/dev/zero is not a regular file"),
        ("pair {fifo} {last} -o {dir}/o.mp4", "Image file fifo is not a regular file"),
        ("clip /dev/stdout -o {dir}/o.mp4", "The video stdout is not a regular file"),
        ("clip {fifo} -o {dir}/o.mp4", "The video fifo is not a regular file"),
    ],
    ids=[
        "prompts-dev-zero",
        "prompts-fifo",
        "prompts-folder",
        "prompts-too-big",
        "manifest-dev-zero",
        "manifest-fifo",
        "manifest-too-big",
        "hashed-dev-zero",
        "image-fifo",
        "video-dev-stdout",
        "video-fifo",
    ],
)
def test_devices_pipes_folders_and_huge_text_inputs_are_refused_unread(tmp_path, keyframe_files, fifo, args, words):
    with open(tmp_path / "big.txt", "wb") as big:
        big.truncate(17 << 20)  # sparse: 17 MiB of zeros
    first, last = keyframe_files
    command = args.format(first=first, last=last, dir=tmp_path, fifo=fifo).split()
    result = run_cli(*command)
    assert_user_error(result)
    assert words in result.stderr
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "m.json").exists()


def test_the_bounded_reader_reads_text_and_json_and_says_what_is_wrong(tmp_path):
    from vfi.io.files import read_json_limited, read_text_limited

    (tmp_path / "ok.json").write_text('{"a": [1, 2]}')
    assert read_json_limited(tmp_path / "ok.json", 100, "list") == {"a": [1, 2]}
    assert read_text_limited("/proc/version", 1 << 16, "text")  # a size-0 /proc file is read (bounded) all the same
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "nan.json").write_text("[NaN]")
    for name, limit, message in [
        ("ok.json", 5, "is larger than the 5 bytes limit for a list"),
        ("latin.txt", 100, "is not UTF-8 text"),
        ("missing.json", 100, "does not exist"),
        ("deep.json", 1 << 20, "is not valid JSON"),
        ("nan.json", 100, "is not valid JSON"),
    ]:
        with pytest.raises(VFIError, match=message):
            read_json_limited(tmp_path / name, limit, "list")


def _hard_link(first: Path, tmp_path: Path) -> Path:
    os.link(first, tmp_path / "hard.png")
    return tmp_path / "hard.png"


def _symlink(first: Path, tmp_path: Path) -> Path:
    (tmp_path / "link.png").symlink_to(first)
    return tmp_path / "link.png"


@pytest.mark.parametrize(
    "output",
    [
        lambda first, tmp: ["-o", str(first)],
        lambda first, tmp: ["-o", str(tmp / "o.mp4"), "--gif", str(first)],
        lambda first, tmp: ["-o", str(tmp / "o.mp4"), "--manifest", str(first)],
        lambda first, tmp: ["-o", str(tmp / "sub" / ".." / first.name)],
        lambda first, tmp: ["-o", str(_symlink(first, tmp))],
        lambda first, tmp: ["-o", str(_hard_link(first, tmp))],
        lambda first, tmp: ["-o", str(tmp / "o.mp4"), "--frames-dir", str(first.parent)],
    ],
    ids=["output", "gif", "manifest", "dotdot", "symlink", "hard-link", "frames-dir-holding-it"],
)
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path, keyframe_files, output):
    first, last = keyframe_files
    (tmp_path / "sub").mkdir()
    before = first.read_bytes()
    result = run_cli("pair", str(first), str(last), *output(first, tmp_path))
    assert_user_error(result)
    assert "would overwrite the input" in result.stderr and str(first) in result.stderr
    assert first.read_bytes() == before and not (tmp_path / "o.mp4").exists()


def test_clip_evaluate_sequence_and_replay_refuse_to_overwrite_their_inputs(tmp_path, keyframe_files):
    first, last = keyframe_files
    clip = tmp_path / "x.mp4"
    clip.write_bytes(CLIP.read_bytes())
    write_triplet(tmp_path / "data" / "t1", panned_triplet())
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n")  # one empty line: the adapter's prompt
    made = run_cli("pair", str(first), str(last), "-o", str(tmp_path / "a.mp4"), "--manifest", str(tmp_path / "m.json"))
    assert made.returncode == 0, made.stderr
    for args in (
        ["clip", str(clip), "-o", str(clip)],
        ["clip", str(CLIP), "-o", str(tmp_path / "o.mp4"), "--report", str(CLIP)],
        ["evaluate", str(tmp_path / "data"), "--json", str(tmp_path / "data" / "t1" / "im1.png")],
        ["sequence", str(first), str(last), "-o", str(prompts), "--prompts", str(prompts)],
        ["replay", str(tmp_path / "m.json"), "-o", str(tmp_path / "m.json")],
        ["replay", str(tmp_path / "m.json"), "-o", str(last)],
    ):
        result = run_cli(*args)
        assert_user_error(result)
        assert "would overwrite the input" in result.stderr, args
    assert clip.read_bytes() == CLIP.read_bytes() and prompts.read_text() == "\n"
