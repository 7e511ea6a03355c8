"""Deploy the app as your own Hugging Face Space in one command.

    python scripts/deploy_space.py OWNER/NAME [--adapter ID[@SCALE]] [--lightning ID] [--hardware zero-a10g] [--private]

Creates the Space (Gradio SDK), uploads the app from an allow-list (never .venv, tests, caches or outputs),
sets the ``VFI_*`` variables the app reads, requests the hardware and prints the Space's URL. The Space's
``requirements.txt`` is this repository's with torch/torchvision at a version ZeroGPU supports, plus ``spaces``.
Uses ``huggingface_hub`` (log in first with ``hf auth login`` or set ``HF_TOKEN``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the Space needs, relative to the repository root (folders with everything in them).
ALLOW = ("app.py", "README.md", "ui", "vfi", "examples")
#: Never uploaded, even inside an allowed folder.
IGNORE = ("__pycache__", ".pyc")
#: ZeroGPU supports torch releases up to 2.8.0 (Hub docs, "Spaces ZeroGPU", supported versions); 0.23.0 is its torchvision.
SPACE_PINS = {"torch": "torch==2.8.0", "torchvision": "torchvision==0.23.0"}
SPACE_EXTRAS = ("spaces==0.51.3",)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Deploy the vfi app as a Hugging Face Space.")
    parser.add_argument("space", help="OWNER/NAME of the Space (created if missing)")
    parser.add_argument("--adapter", help="interpolation adapter(s), ID_OR_DIR[@SCALE], comma-separated (VFI_ADAPTER)")
    parser.add_argument("--lightning", help="few-step LoRA for fast mode (VFI_LIGHTNING)")
    parser.add_argument("--base-model", help="Qwen-Image-Edit model id (VFI_BASE_MODEL)")
    parser.add_argument("--hardware", default="zero-a10g", help="Space hardware (default: zero-a10g, ZeroGPU)")
    parser.add_argument("--private", action="store_true", help="create the Space private")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.space):
        parser.error(f"the Space must be OWNER/NAME, got {args.space!r}")
    return args


def space_variables(args: argparse.Namespace) -> dict[str, str]:
    """The ``VFI_*`` variables the app reads (see README, "Configuration")."""
    values = {"VFI_ADAPTER": args.adapter, "VFI_LIGHTNING": args.lightning, "VFI_BASE_MODEL": args.base_model}
    return {key: value for key, value in values.items() if value}


def space_requirements(text: str) -> str:
    """``requirements.txt`` for the Space: torch/torchvision at ZeroGPU's versions, plus ``spaces``."""
    lines = []
    for line in text.splitlines():
        name = re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0].lower()
        lines.append(SPACE_PINS.get(name, line))
    return "\n".join([*lines, *SPACE_EXTRAS]) + "\n"


def space_readme(text: str, args: argparse.Namespace) -> str:
    """The README with the configured adapters (Hub ids) in the front matter's ``models:``."""
    ids = [spec.split("@")[0].strip() for spec in (args.adapter or "").split(",") if spec.strip()]
    hub_ids = [i for i in ids if re.fullmatch(r"[\w.-]+/[\w.-]+", i) and not Path(i).exists()]
    entries = "".join(f"  - {i}\n" for i in hub_ids)
    return text.replace("models:\n", f"models:\n{entries}", 1) if entries else text


def stage(folder: Path, args: argparse.Namespace) -> Path:
    """Copy what the Space needs into ``folder`` (the allow-list, the Space's README and requirements)."""
    for name in ALLOW:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns(*(f"*{p}" for p in IGNORE)))
        elif source.is_file():
            shutil.copy2(source, folder / name)
    (folder / "README.md").write_text(space_readme((ROOT / "README.md").read_text(), args))
    (folder / "requirements.txt").write_text(space_requirements((ROOT / "requirements.txt").read_text()))
    return folder


def deploy(args: argparse.Namespace) -> str:
    """Create or update the Space; return its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(args.space, repo_type="space", space_sdk="gradio", private=args.private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vfi-space-") as tmp:
        api.upload_folder(
            repo_id=args.space, repo_type="space", folder_path=stage(Path(tmp), args),
            commit_message="Deploy vfi", delete_patterns=["*.py", "vfi/**", "examples/**"],
        )  # fmt: skip
    for key, value in space_variables(args).items():
        api.add_space_variable(args.space, key, value)
    api.request_space_hardware(args.space, args.hardware)
    return f"https://huggingface.co/spaces/{args.space}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        url = deploy(args)
    except Exception as error:  # the Hub's errors (auth, quota, hardware) as one line
        print(f"error: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", file=sys.stderr)
        return 2
    print(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
