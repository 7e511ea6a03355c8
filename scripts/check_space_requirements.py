"""Check that the Space's requirements resolve for the Space's Python, and that what they resolve to is consistent.

    python scripts/check_space_requirements.py [--python-version 3.12]

Writes the ``requirements.txt`` that ``deploy_space.py`` uploads, resolves it with ``pip install --dry-run
--only-binary=:all: --python-version V`` against PyPI (needs the network; this machine's pip configuration, local
indexes and constraints are left out with ``--isolated``), then does what ``pip check`` does on the resolved set:
every requirement of every package (markers evaluated for Linux x86-64 and that Python, extras followed) is met.
Prints one line and exits 0, or the problems and exits 1. Findings are recorded in ``docs/space_python.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_space import ROOT, space_requirements  # noqa: E402


def resolve(requirements: str, python: str) -> list[dict]:
    """The packages pip would install for ``requirements`` on ``python`` (its ``--report`` entries)."""
    with tempfile.TemporaryDirectory(prefix="vfi-space-resolve-") as tmp:
        (Path(tmp) / "requirements.txt").write_text(requirements)
        cert = ["--cert", os.environ["PIP_CERT"]] if os.environ.get("PIP_CERT") else []
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--isolated",
            *cert,
            "--quiet",
            "--dry-run",
            "--ignore-installed",
            "--only-binary=:all:",
            "--python-version",
            python,
            "--target",
            f"{tmp}/t",
            "--report",
            f"{tmp}/report.json",
            "-r",
            f"{tmp}/requirements.txt",
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or [done.stderr.strip()]
            raise SystemExit(f"error: the Space's requirements do not resolve for Python {python}: {errors[-1]}")
        return json.loads((Path(tmp) / "report.json").read_text())["install"]


def broken(installed: list[dict], python: str) -> list[str]:
    """What ``pip check`` would report for ``installed`` on Linux x86-64 with ``python``."""
    versions = {canonicalize_name(i["metadata"]["name"]): Version(i["metadata"]["version"]) for i in installed}
    requires = {canonicalize_name(i["metadata"]["name"]): i["metadata"].get("requires_dist", []) for i in installed}
    extras = {canonicalize_name(i["metadata"]["name"]): set(i.get("requested_extras") or []) for i in installed}
    environment = {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    problems: set[str] = set()
    changed = True
    while changed:  # an extra asked for by one package brings more requirements of another
        changed = False
        for name, lines in requires.items():
            for req in map(Requirement, lines):
                wanted = [""] + sorted(extras[name])
                if req.marker and not any(req.marker.evaluate({**environment, "extra": e}) for e in wanted):
                    continue
                dep = canonicalize_name(req.name)
                if dep not in versions:
                    problems.add(f"{name} requires {req}, which is not installed")
                    continue
                if not req.specifier.contains(versions[dep], prereleases=True):
                    problems.add(f"{name} requires {req}, but {dep} {versions[dep]} is installed")
                if not req.extras <= extras[dep]:
                    extras[dep] |= req.extras
                    changed = True
    return sorted(problems)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check that the Space's requirements resolve for its Python.")
    parser.add_argument("--python-version", default="3.12", help="the Space's python_version (default: 3.12)")
    args = parser.parse_args(argv)
    installed = resolve(space_requirements((ROOT / "requirements.txt").read_text()), args.python_version)
    problems = broken(installed, args.python_version)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        return 1
    versions = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installed}
    shown = ", ".join(f"{name} {versions[name]}" for name in ("gradio", "mcp", "pydantic", "torch") if name in versions)
    print(
        f"The Space's requirements resolve for Python {args.python_version}: {len(installed)} packages, "
        f"pip check clean ({shown})."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
