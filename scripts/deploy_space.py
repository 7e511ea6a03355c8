"""Deploy the app as your own Hugging Face Space in one command.

    python scripts/deploy_space.py OWNER/NAME [--adapter ID[@SCALE]] [--lightning ID] [--hardware zero-a10g] [--private]

Checks every argument first (adapters with the app's own parser; they must be Hub ids, as a Space cannot read
local files), then creates the Space (Gradio SDK), uploads the app from an allow-list (never .venv, tests, caches or
outputs), sets the ``VFI_*`` variables the app reads, requests the hardware and prints the Space's URL. The Space's
``requirements.txt`` is this repository's without comments, torch/torchvision at a version ZeroGPU supports, plus
``spaces``. Uses ``huggingface_hub`` (log in first with ``hf auth login`` or set ``HF_TOKEN``).
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
sys.path.insert(0, str(ROOT))  # the app's own parsers (vfi imports neither torch nor gradio)

from vfi.app.config import parse_adapters  # noqa: E402
from vfi.errors import VFIError  # noqa: E402
from vfi.qwen.adapters import AdapterSpec, is_hub_id  # noqa: E402

#: What the Space needs, relative to the repository root (folders with everything in them).
ALLOW = ("app.py", "README.md", "ui", "vfi", "examples", "docs")  # docs/: the README's links
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
    try:
        check_args(args)
    except VFIError as error:
        parser.error(str(error))
    return args


def check_args(args: argparse.Namespace) -> None:
    """Refuse, in one sentence, any argument the Hub or the Space's app would refuse later."""
    from huggingface_hub import SpaceHardware

    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.space):
        raise VFIError(f"The Space must be OWNER/NAME, got {args.space!r}.")
    for flag in ("adapter", "lightning", "base_model"):
        if getattr(args, flag) is not None and not getattr(args, flag).strip():
            raise VFIError(f"--{flag.replace('_', '-')} is empty; leave it out or name a Hub repo.")
    specs = [*parse_adapters(args.adapter), *([AdapterSpec.parse(args.lightning)] if args.lightning else [])]
    sources = [spec.source for spec in specs] + ([args.base_model] if args.base_model else [])
    for source in sources:
        if not is_hub_id(source):
            raise VFIError(f"{source} is not a Hub repo id (OWNER/NAME); a Space cannot read local files.")
    hardware = [h.value for h in SpaceHardware]
    if args.hardware not in hardware:
        raise VFIError(f"--hardware {args.hardware!r} is not a Space hardware ({', '.join(hardware)}).")


def space_variables(args: argparse.Namespace) -> dict[str, str]:
    """The ``VFI_*`` variables the app reads (see README, "Configuration")."""
    values = {"VFI_ADAPTER": args.adapter, "VFI_LIGHTNING": args.lightning, "VFI_BASE_MODEL": args.base_model}
    return {key: value for key, value in values.items() if value}


def space_requirements(text: str) -> str:
    """``requirements.txt`` for the Space: the requirements without comments (ours speak of this machine's disk),
    torch/torchvision at ZeroGPU's versions, plus ``spaces``."""
    lines = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0].lower()
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
            repo_id=args.space,
            repo_type="space",
            folder_path=stage(Path(tmp), args),
            commit_message="Deploy vfi",
            delete_patterns=["*.py", "vfi/**", "examples/**", "docs/**"],
        )
    for key, value in space_variables(args).items():
        api.add_space_variable(args.space, key, value)
    api.request_space_hardware(args.space, args.hardware)
    return f"https://huggingface.co/spaces/{args.space}"


def main(argv: Sequence[str] | None = None) -> int:
    import httpx2  # huggingface_hub's HTTP library: its errors are the network's and the Hub's

    args = parse_args(argv)
    try:
        url = deploy(args)
    except httpx2.TransportError as error:
        reason = type(error).__name__
        print(
            f"error: could not reach the Hugging Face Hub ({reason}); check the network and try again.", file=sys.stderr
        )
        return 2
    except Exception as error:  # the Hub's answers (auth, quota, hardware) as one line
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"error: the Hub refused the deployment: {reason}", file=sys.stderr)
        return 2
    print(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
