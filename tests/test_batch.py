"""``python -m vfi batch``: a folder of clips, one output each, resumable, failures reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scenes import textured_image

from vfi.cli import main
from vfi.io.video import probe_clip, write_mp4


def _folder(root: Path) -> Path:
    """IN/a.mp4, IN/sub/b.mov, IN/sub/broken.mp4 (not a video)."""
    frames = [np.roll(textured_image(48, 64, seed=1), 2 * i, axis=1) for i in range(4)]
    (root / "in" / "sub").mkdir(parents=True)
    write_mp4(frames, root / "in" / "a.mp4", fps=10)
    write_mp4(frames[:3], root / "in" / "sub" / "b.mov", fps=10)
    (root / "in" / "sub" / "broken.mp4").write_bytes(b"not a video")
    return root / "in"


def test_batch_makes_skips_and_redoes(tmp_path: Path, capsys) -> None:
    source, out = _folder(tmp_path), tmp_path / "out"
    argv = ["batch", str(source), "-o", str(out), "--threads", "1"]
    assert main(argv) == 2  # one file failed: reported, the batch went on
    err = capsys.readouterr().err
    assert "2 done, 0 skipped, 1 failed" in err and "broken.mp4" in err
    assert probe_clip(out / "a.mp4").num_frames == 7 and probe_clip(out / "sub" / "b.mp4").num_frames == 5
    assert (out / "a.mp4.manifest.json").is_file() and not (out / "sub" / "broken.mp4").exists()

    made = (out / "a.mp4").stat().st_mtime_ns
    (out / "sub" / "b.mp4.manifest.json").unlink()  # as if killed after b's video, before its manifest
    (out / "sub" / ".b.1234abcd.partial.mp4").write_bytes(b"half")  # and a killed write
    assert main(argv) == 2
    assert "1 done, 1 skipped, 1 failed" in capsys.readouterr().err
    assert (out / "a.mp4").stat().st_mtime_ns == made and (out / "sub" / "b.mp4.manifest.json").is_file()
    assert not list(out.rglob("*.partial*"))

    assert main([*argv, "--factor", "4"]) == 2  # other settings: every output made again
    assert "2 done, 0 skipped, 1 failed" in capsys.readouterr().err
    assert probe_clip(out / "a.mp4").num_frames == 13


def test_batch_from_a_list_file(tmp_path: Path, capsys) -> None:
    source = _folder(tmp_path)
    listing = source / "clips.txt"
    listing.write_text("a.mp4\n# a comment\nsub/b.mov\n")
    assert main(["batch", str(listing), "-o", str(tmp_path / "out")]) == 0
    assert "2 done, 0 skipped, 0 failed" in capsys.readouterr().err
    assert (tmp_path / "out" / "sub" / "b.mp4").is_file()


def test_batch_refuses_two_inputs_for_one_output(tmp_path: Path, capsys) -> None:
    source = _folder(tmp_path)
    (source / "a.mov").write_bytes((source / "a.mp4").read_bytes())
    assert main(["batch", str(source), "-o", str(tmp_path / "out")]) == 2
    assert "both be written to" in capsys.readouterr().err


def test_a_batch_killed_mid_file_completes_on_rerun_without_redoing_finished_files(tmp_path: Path) -> None:
    """A real SIGKILL while the second clip is being written; the rerun skips the first and remakes the second."""
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    small = [np.roll(textured_image(48, 64, seed=1), 2 * i, axis=1) for i in range(4)]
    write_mp4(small, source / "a.mp4", fps=10)
    long = [np.roll(textured_image(128, 160, seed=2), 3 * i, axis=1) for i in range(80)]
    write_mp4(long, source / "b.mp4", fps=25)
    command = [sys.executable, "-m", "vfi", "batch", str(source), "-o", str(out), "--factor", "4", "--threads", "1"]
    root = Path(__file__).resolve().parent.parent
    killed = subprocess.Popen(command, cwd=root, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while not ((out / "a.mp4.manifest.json").is_file() and list(out.glob("*.partial*"))):
        assert killed.poll() is None and time.monotonic() < deadline, "the batch ended before it could be killed"
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    made = (out / "a.mp4").stat().st_mtime_ns
    assert not (out / "b.mp4.manifest.json").exists()

    rerun = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 done, 1 skipped, 0 failed" in rerun.stderr
    assert (out / "a.mp4").stat().st_mtime_ns == made
    assert probe_clip(out / "b.mp4").num_frames == 79 * 4 + 1 and (out / "b.mp4.manifest.json").is_file()
    assert not list(out.rglob("*.partial*"))
