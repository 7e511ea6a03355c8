"""The Space: every tracked binary is marked for LFS/Xet, and the deploy script (Hub mocked at the upload edge)."""

from __future__ import annotations

import subprocess

from app_server import ROOT


def _tracked_binaries() -> list[str]:
    """Tracked files git itself sees as binary (``-`` counts in ``git diff --numstat`` against the empty tree)."""
    empty = subprocess.run(["git", "hash-object", "-t", "tree", "/dev/null"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.strip()  # fmt: skip
    out = subprocess.run(["git", "diff", "--numstat", empty, "HEAD"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return [line.split("\t", 2)[2] for line in out.splitlines() if line.startswith("-\t-\t")]


def test_every_tracked_binary_goes_through_lfs():
    binaries = _tracked_binaries()
    assert any(path.endswith(".png") for path in binaries) and "examples/clip.mp4" in binaries
    out = subprocess.run(["git", "check-attr", "filter", "--", *binaries], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    missing = [line.split(":")[0] for line in out.splitlines() if not line.endswith(": filter: lfs")]
    assert not missing, f"binary files not marked for LFS/Xet in .gitattributes: {missing}"
