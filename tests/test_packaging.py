"""The package as users install it: pins that agree, a working ``vfi`` console script from ``pip install .``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirement_lines(path: Path) -> set[str]:
    """The requirement lines of a requirements file, without comments and ``-r`` includes."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("-r")}


def _own_pins(names: list[str]) -> set[str]:
    """The pins of the named extras (``core`` for the dependencies), without references to other extras."""
    extras = PROJECT["optional-dependencies"]
    pins = [pin for name in names for pin in (PROJECT["dependencies"] if name == "core" else extras[name])]
    return {pin for pin in pins if not pin.startswith("vfi[")}


def test_requirements_files_list_exactly_the_pins_of_pyproject():
    assert _requirement_lines(ROOT / "requirements.txt") == _own_pins(["core", "app", "gen", "train"])
    assert _requirement_lines(ROOT / "requirements-dev.txt") == _own_pins(["dev"])


def test_the_core_needs_no_torch_and_python_matches_the_pins():
    core = " ".join(PROJECT["dependencies"])
    assert not re.search(r"\b(torch|diffusers|transformers|gradio)\b", core)
    assert PROJECT["requires-python"] == ">=3.11"


def test_usage_names_the_program_as_it_was_started():
    usage = subprocess.run([sys.executable, "-m", "vfi", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert usage.stdout.startswith("usage: python -m vfi ")


@pytest.mark.slow
def test_pip_install_gives_a_working_flow_cli_without_torch(tmp_path):
    """A fresh venv, ``pip install .`` (the core alone): the ``vfi`` script makes a video, torch is not there."""
    source = tmp_path / "source"  # a copy to build from, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "vfi", source / "vfi", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)]
    subprocess.run(pip, check=True, timeout=600, cwd=tmp_path)
    first = np.zeros((64, 96, 3), np.uint8)
    first[20:40, 10:30] = 255
    Image.fromarray(first).save(tmp_path / "a.png")
    Image.fromarray(np.roll(first, 8, axis=1)).save(tmp_path / "b.png")
    env = {**os.environ, "PYTHONPATH": ""}
    made = subprocess.run(
        [str(venv / "bin" / "vfi"), "pair", "a.png", "b.png", "-o", "out.mp4", "--depth", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    assert "wrote 5 frames" in made.stderr and (tmp_path / "out.mp4").stat().st_size > 0
    no_torch = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True, text=True)
    assert "No module named 'torch'" in no_torch.stderr
    usage = subprocess.run([str(venv / "bin" / "vfi"), "--help"], env=env, capture_output=True, text=True)
    assert usage.stdout.startswith("usage: vfi ")
