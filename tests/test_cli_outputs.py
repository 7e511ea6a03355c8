"""CLI outputs: only regular files (or new paths) are written, every output is checked before any work,
symlinks are written through, and SIGTERM leaves nothing behind. Through the real CLI (``vfi.cli.main``,
and a ``python -m vfi`` subprocess for signals)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from scenes import panned_triplet, write_triplet

from vfi.cli import main
from vfi.io.video import probe_clip

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "examples" / "clip.mp4"


def assert_one_line_error(capsys, status: int, *words: str) -> None:
    """Exit status 2 and exactly one line on stderr, ``error: …`` containing ``words`` (no progress bar:
    the error came before any work)."""
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], err


def can_create_in(folder: Path) -> bool:
    try:
        fd, probe = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


@pytest.fixture
def unwritable(tmp_path: Path):
    """A folder where no file can be created. The tests run as root, where a read-only mode stops nothing,
    so then it is /sys or /proc (no regular files can be made there, not even by root)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        for candidate in (folder, Path("/sys"), Path("/proc")):
            if candidate.is_dir() and not can_create_in(candidate):
                yield candidate
                return
        pytest.skip("no folder here refuses new files")
    finally:
        folder.chmod(0o755)


@pytest.fixture
def pair(tmp_path: Path) -> list[str]:
    first, _, last = panned_triplet()
    write_triplet(tmp_path / "keys", (first, first, last))
    return ["pair", str(tmp_path / "keys" / "im1.png"), str(tmp_path / "keys" / "im3.png"), "--depth", "1"]


@pytest.mark.parametrize("output", ["-o", "--gif", "--frames-dir", "clip", "evaluate --json"])
def test_an_unwritable_output_is_refused_before_any_work(tmp_path, pair, unwritable, capsys, output):
    mp4 = tmp_path / "out.mp4"
    if output == "clip":
        args = ["clip", str(CLIP), "-o", str(unwritable / "out.mp4")]
    elif output == "evaluate --json":
        args = ["evaluate", str(tmp_path / "keys"), "--json", str(unwritable / "report.json")]
    elif output == "-o":
        args = [*pair, "-o", str(unwritable / "out.mp4")]
    else:
        args = [*pair, "-o", str(mp4), output, str(unwritable / "out.gif")]
    before = set(tmp_path.rglob("*"))
    assert_one_line_error(capsys, main(args), str(unwritable))
    assert set(tmp_path.rglob("*")) == before  # in particular no MP4 written before a bad --gif
    assert not list(unwritable.glob(".*partial*"))


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_an_output_that_is_not_a_regular_file_is_refused_and_kept(tmp_path, pair, capsys, kind):
    target = tmp_path / "target"
    target.mkdir() if kind == "folder" else os.mkfifo(target)
    assert_one_line_error(capsys, main([*pair, "-o", str(target)]), str(target))
    assert target.is_dir() if kind == "folder" else target.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "target"]


def test_a_symlinked_output_is_written_through_to_its_target(tmp_path, pair):
    real = tmp_path / "videos" / "real.mp4"
    real.parent.mkdir()
    real.write_bytes(b"an older video")
    link = tmp_path / "link.mp4"
    link.symlink_to(real)
    assert main([*pair, "-o", str(link)]) == 0
    assert link.is_symlink() and link.resolve() == real
    assert probe_clip(real).num_frames == 3
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.mp4"]


def test_a_frames_folder_holding_other_files_is_refused_and_kept(tmp_path, pair, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    (folder / "frame_0000.png").write_bytes(b"an older frame")
    status = main([*pair, "-o", str(tmp_path / "out.mp4"), "--frames-dir", str(folder)])
    assert_one_line_error(capsys, status, "holiday.jpg")
    assert sorted(p.name for p in folder.iterdir()) == ["frame_0000.png", "holiday.jpg"]
    assert not (tmp_path / "out.mp4").exists()


def test_a_frames_folder_of_earlier_frames_is_replaced(tmp_path, pair):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(5):
        (folder / f"frame_{index:04d}.png").write_bytes(b"an older frame")
    assert main([*pair, "-o", str(tmp_path / "out.mp4"), "--frames-dir", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]


def test_two_outputs_naming_one_file_are_refused(tmp_path, pair, capsys):
    out = tmp_path / "out.mp4"
    assert_one_line_error(capsys, main([*pair, "-o", str(out), "--gif", str(tmp_path / "." / "out.mp4")]))
    assert not out.exists()


def test_sigterm_cleans_up_and_exits_with_a_message(tmp_path):
    """SIGTERM (docker, systemd, ``timeout``) in the middle of writing: a one-line message, status 143,
    and no hidden ``.partial`` file."""
    out = tmp_path / "out.mp4"
    command = [sys.executable, "-m", "vfi", "clip", str(CLIP), "-o", str(out), "--factor", "8", "--backend", "flow"]
    proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".*partial*")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob(".*partial*")), "the clip was not being written"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].startswith("error: terminated"), err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
