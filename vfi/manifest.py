"""Reproducible runs: a manifest records what a run read, every setting, the seeds, the adapters and the
package versions; ``python -m vfi replay MANIFEST -o OUT`` remakes the run from it.

A manifest is JSON: ``command`` (``pair``, ``clip``, ``evaluate``…) and ``settings`` (every option of that
command, defaults included, as the CLI parsed them: replay does not depend on today's defaults), ``argv``
(the equivalent command line), ``inputs`` (absolute path → sha256; a folder input lists every file in it),
``backend`` with its config, adapters (source, scale, resolved revision, sha256 of each file) and the base
model's resolved revision (``base_revision``: the Hub snapshot's commit),
``seeds`` (the run seed and each made frame's seed), ``packages``, ``timings``. Replay refuses inputs whose
hashes differ. The app writes the same manifest for its runs.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import platform
from collections.abc import Iterable
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfi.errors import VFIError

if TYPE_CHECKING:
    from vfi.backends.qwen_edit import QwenEditConfig

MANIFEST_VERSION = 1
#: Packages whose versions a manifest records (those not installed are recorded as None).
PACKAGES = (
    "numpy", "opencv-python-headless", "opencv-python", "pillow", "imageio-ffmpeg", "torch", "diffusers",
    "transformers", "peft", "huggingface-hub", "safetensors", "accelerate", "gradio",
)  # fmt: skip


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_inputs(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """Absolute path → sha256 of each input file (every file under an input folder); a missing input is a
    :class:`VFIError`."""
    hashes = {}
    for path in map(Path, paths):
        if not path.exists():
            raise VFIError(f"The input {path} does not exist.")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        hashes.update({str(file.resolve()): sha256(file) for file in files})
    return hashes


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path | Fraction):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def adapter_sources(config: QwenEditConfig | None) -> list[dict[str, Any]]:
    """Each adapter of ``config`` (Lightning included) as loaded: source, scale, the revision asked for and
    the one resolved (the Hub snapshot's commit), and the sha256 of its weights and info file."""
    if config is None:
        return []
    from vfi.qwen.adapters import ADAPTER_INFO_FILE, fetch_adapter

    specs = [*config.adapters, *([config.lightning] if config.lightning else [])]
    sources = []
    for spec in specs:
        folder, weight, _ = fetch_adapter(spec)
        resolved = _snapshot_commit(folder)
        files = [folder / weight, *([folder / ADAPTER_INFO_FILE] if (folder / ADAPTER_INFO_FILE).is_file() else [])]
        sources.append(
            {"source": spec.reference, "scale": spec.scale, "revision": spec.revision, "resolved_revision": resolved,
             "files": {file.name: sha256(file) for file in files}}
        )  # fmt: skip
    return sources


def base_revision(config: QwenEditConfig | None) -> str | None:
    """The Hub snapshot commit the base model resolved to (``--base-model OWNER/NAME[:REVISION]`` or a cache
    snapshot folder); None for another folder or backend."""
    if config is None:
        return None
    from vfi.qwen.pipeline import resolve_base

    return resolve_base(config.base_model)[1]


def _snapshot_commit(folder: Path) -> str | None:
    """The commit of a Hub-cache folder (``…/models--OWNER--NAME/snapshots/<commit>/…``), None elsewhere."""
    from vfi.qwen.adapters import hub_snapshot

    snapshot = hub_snapshot(folder)
    return snapshot[1] if snapshot else None


def frame_seeds(seed: int, pairs: int, times: Iterable[Fraction]) -> list[dict[str, Any]]:
    """The seed of each in-between (pair, t) of a keyframe run (see :func:`vfi.interpolate.node_seed`)."""
    from vfi.interpolate import node_seed

    times = list(times)
    return [{"pair": p, "t": str(t), "seed": node_seed(seed, p, t)} for p in range(pairs) for t in times]


def clip_seeds(seed: int) -> dict[str, Any]:
    """The seeds record of a clip run: one run seed, each in-between's seed derived from it."""
    return {"run_seed": seed, "rule": "node_seed(run_seed, input frame index, t)"}


def build_manifest(
    command: str,
    settings: dict[str, Any],
    argv: list[str],
    inputs: dict[str, str],
    config: QwenEditConfig | None,
    seeds: dict[str, Any],
    started: float,
    seconds: float,
) -> dict[str, Any]:
    """The manifest of a finished run (``started``: its Unix time, ``seconds``: how long it took)."""
    backend = {
        "name": settings.get("backend"),
        "config": _jsonable(dataclasses.asdict(config)) if config is not None else None,
        "adapters": adapter_sources(config),
        "base_revision": base_revision(config),
    }
    return {
        "vfi_manifest": MANIFEST_VERSION,
        "command": command,
        "settings": {key: _jsonable(value) for key, value in settings.items()},
        "argv": [_jsonable(token) for token in argv],
        "inputs": inputs,
        "backend": backend,
        "seeds": seeds,
        "packages": package_versions(),
        "timings": {
            "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(seconds, 3),
        },
    }


def write_manifest(manifest: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``manifest`` as JSON (atomically)."""
    from vfi.io.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")
    return Path(path)


def load_manifest(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] | None = None) -> dict[str, Any]:
    """Read a manifest and refuse it (one sentence) if it is not one, or if an input is missing or changed.

    ``inputs`` stand in for the recorded ones, in their order (e.g. a downloaded app manifest replayed on
    the user's own copies); each must have the sha256 recorded for the one it replaces.
    """
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise VFIError(f"The manifest {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise VFIError(f"{path} is not a readable JSON manifest.") from None
    if not isinstance(manifest, dict) or manifest.get("vfi_manifest") != MANIFEST_VERSION:
        raise VFIError(f"{path} is not a vfi manifest (version {MANIFEST_VERSION}).")
    recorded = manifest.get("inputs", {})
    if inputs is None:
        for name in recorded:
            if not Path(name).is_file():
                raise VFIError(f"The input {name} named in the manifest does not exist; give your copy with --inputs.")
        actual = {name: sha256(name) for name in recorded}
    else:
        actual = hash_inputs(inputs)
        if len(actual) != len(recorded):
            raise VFIError(f"The inputs hold {len(actual)} file(s); the manifest recorded {len(recorded)}.")
    for (name, digest), (old, expected) in zip(actual.items(), recorded.items()):
        if digest != expected:
            was = "" if name == old else f" as {old}"
            raise VFIError(f"The input {name} is not the file the manifest recorded{was} (its sha256 differs).")
    return manifest


def changed_packages(manifest: dict[str, Any]) -> list[str]:
    """``name recorded → now`` for each package whose version differs from the manifest's."""
    now = package_versions()
    recorded = manifest.get("packages", {})
    return [f"{name} {recorded[name]} → {now.get(name)}" for name in recorded if recorded[name] != now.get(name)]


def config_argv(config: QwenEditConfig | None) -> list[str]:
    """The CLI options that make the generative backend's ``config`` (none for the other backends)."""
    if config is None:
        return []
    argv = ["--base-model", config.base_model]
    for spec in config.adapters:
        argv += ["--adapter", f"{spec.reference}@{spec.scale:g}"]
    if config.lightning is not None:
        argv += ["--lightning", f"{config.lightning.reference}@{config.lightning.scale:g}"]
    for option, value in (("--resolution", config.resolution), ("--steps", config.steps),
                          ("--guidance", config.guidance), ("--prompt", config.prompt)):  # fmt: skip
        argv += [option, str(value)] if value is not None else []
    return argv
