"""The README as a new user reads it: short, no dead link, and its first command line works as printed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (lower case, punctuation dropped, spaces to hyphens)."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_the_readme_is_a_guide_not_a_notebook():
    assert len(README.read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.name)
def test_every_relative_link_and_anchor_resolves(page: Path):
    text = page.read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links or page != README
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name} links to a missing {path}"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target.read_text()), f"{page.name} links to a missing #{anchor} in {target.name}"


def test_the_first_command_line_works_as_printed_after_the_quick_start(tmp_path):
    """The quick start installs the ``vfi`` script into ``.venv/bin``; the Command line section's first line runs it
    on files of the repository (the output goes to a temporary folder instead of the checkout)."""
    section = README.read_text().split("\n## Command line\n", 1)[1]
    line = re.search(r"```bash\n(.+)\n", section).group(1)
    words = shlex.split(line)
    assert words[0] == ".venv/bin/vfi", line
    script = Path(sys.executable).parent / "vfi"
    assert script.is_file(), "the vfi console script is not installed beside this Python (pip install -e .)"
    output = words.index("-o") + 1
    words[output] = str(tmp_path / words[output])
    made = subprocess.run([str(script), *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert Path(words[output]).stat().st_size > 0


def test_nothing_in_the_repository_points_at_the_shared_folder():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    pattern = re.compile(r"(\.\.|/work)/" + "shared")  # spelt in two pieces so this file does not match
    for name in tracked:
        path = ROOT / name
        if path.suffix in (".py", ".md", ".txt", ".toml", ".sh", ".cfg", ".yaml", ".yml") and path.is_file():
            assert not pattern.search(path.read_text(errors="replace")), f"{name} points at the shared folder"
