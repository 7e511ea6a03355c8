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
import json
import math
import os
import platform
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfi.errors import VFIError
from vfi.io.files import sha256

if TYPE_CHECKING:
    from vfi.backends.qwen_config import QwenEditConfig

MANIFEST_VERSION = 1
#: Packages whose versions a manifest records (those not installed are recorded as None).
PACKAGES = (
    "numpy",
    "opencv-python-headless",
    "opencv-python",
    "pillow",
    "imageio-ffmpeg",
    "torch",
    "diffusers",
    "transformers",
    "peft",
    "huggingface-hub",
    "safetensors",
    "accelerate",
    "gradio",
)


def hash_inputs(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """Absolute path → sha256 of each input file (every file under an input folder); a missing input is a
    :class:`VFIError`."""
    from vfi.io.files import check_input

    hashes = {}
    for path in map(Path, paths):
        check_input(path, f"The input {path}", folder=True)  # never a device or pipe: hashing one never ends
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
            {
                "source": spec.reference,
                "scale": spec.scale,
                "revision": spec.revision,
                "resolved_revision": resolved,
                "files": {file.name: sha256(file) for file in files},
            }
        )
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
    fallbacks: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The manifest of a finished run (``started``: its Unix time, ``seconds``: how long it took); a generative
    run also records ``fallbacks``, the generated frames replaced by the flow frame and why."""
    backend = {
        "name": settings.get("backend"),
        "config": _jsonable(dataclasses.asdict(config)) if config is not None else None,
        "adapters": adapter_sources(config),
        "base_revision": base_revision(config),
    }
    record = {
        "vfi_manifest": MANIFEST_VERSION,
        "command": command,
        "settings": {key: _jsonable(value) for key, value in settings.items()},
        "argv": [_jsonable(token) for token in argv],
        "inputs": inputs,
        "backend": backend,
        "seeds": seeds,
        "packages": package_versions(),
        "timings": {
            "started": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 3),
        },
    }
    if config is not None:
        record["fallbacks"] = list(fallbacks)
    return record


def write_manifest(manifest: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``manifest`` as JSON (atomically)."""
    from vfi.io.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")
    return Path(path)


def load_manifest(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] | None = None) -> dict[str, Any]:
    """Read a manifest and refuse it (one sentence) if it is not one (:func:`check_manifest`), or if an input is
    missing or changed.

    ``inputs`` stand in for the recorded ones, in their order (e.g. a downloaded app manifest replayed on
    the user's own copies); each must have the sha256 recorded for the one it replaces.
    """
    from vfi.io.files import read_json_limited

    manifest = read_json_limited(path, MAX_MANIFEST_BYTES, "manifest")
    check_manifest(manifest, path)
    recorded = manifest["inputs"]
    if inputs is None:
        for name in named_inputs(manifest["command"], manifest["settings"]):
            if not Path(name).exists():
                raise VFIError(f"The input {name} named in the manifest does not exist; give your copy with --inputs.")
        actual = hash_inputs(named_inputs(manifest["command"], manifest["settings"]))
        for name in actual.keys() - recorded.keys():
            raise VFIError(f"The input {name} is not recorded in the manifest (a file added to an input folder?).")
    else:
        actual = hash_inputs(inputs)
        if len(actual) != len(recorded):
            raise VFIError(f"The inputs hold {len(actual)} file(s); the manifest recorded {len(recorded)}.")
    for (name, digest), (old, expected) in zip(actual.items(), recorded.items()):
        if digest != expected:
            was = "" if name == old else f" as {old}"
            raise VFIError(f"The input {name} is not the file the manifest recorded{was} (its sha256 differs).")
    return manifest


def named_inputs(command: str, settings: dict[str, Any]) -> list[str]:
    """The input paths the settings of a ``command`` run name, in :data:`INPUT_SETTINGS` order."""
    values = [settings.get(name) for name in INPUT_SETTINGS[command]]
    return [v for value in values for v in (value if isinstance(value, list) else [value]) if v is not None]


def with_inputs(command: str, settings: dict[str, Any], paths: Sequence[Path]) -> dict[str, Path | list[Path]]:
    """The input settings of ``command`` with the user's copies ``paths`` in place of the named ones, in order."""
    copies, replaced = iter(paths), {}
    for name in INPUT_SETTINGS[command]:
        value = settings.get(name)
        if isinstance(value, list):
            replaced[name] = [next(copies) for _ in value]
        elif value is not None:
            replaced[name] = next(copies)
    return replaced


def check_manifest(manifest: Any, path: str | os.PathLike) -> None:
    """Refuse (one sentence naming the key) anything but a vfi manifest of a replayable command: the schema's
    required keys and types, settings of the right type and range, nesting at most :data:`MAX_NESTING` deep, and
    every input file the settings name recorded in ``inputs`` with its sha256."""
    if _depth(manifest) > MAX_NESTING:
        raise VFIError(f"{path} is nested more than {MAX_NESTING} levels deep; it is not a vfi manifest.")
    version = manifest.get("vfi_manifest") if isinstance(manifest, dict) else None
    if type(version) is not int or version != MANIFEST_VERSION:
        raise VFIError(f"{path} is not a vfi manifest (version {MANIFEST_VERSION}).")
    command = manifest.get("command")
    if command not in INPUT_SETTINGS:
        raise VFIError(
            f"The manifest's command {command!r} cannot be replayed; this version replays {', '.join(INPUT_SETTINGS)}."
        )
    for key, kind, required in _TOP_LEVEL:
        if key not in manifest and not required:
            continue
        if not _is(manifest.get(key), kind):
            raise VFIError(f"The manifest's {key!r} must be {_KIND_WORDS[kind]}, got {_short(manifest.get(key))}.")
    settings = manifest["settings"]
    kinds = {**_SETTINGS, **_COMMAND_SETTINGS.get(command, {})}
    for name in INPUT_SETTINGS[command][:1]:
        if name not in settings:
            raise VFIError(f"The manifest's settings lack {name!r}, the input of a {command} run.")
    for name, value in settings.items():
        kind = kinds.get(name, "scalar")
        if not _is(value, kind):
            raise VFIError(f"The manifest's setting {name!r} must be {_KIND_WORDS[kind]}, got {_short(value)}.")
    if settings.get("command", command) != command:
        raise VFIError(f"The manifest's settings are of a {settings['command']!r} run, not {command!r}.")
    recorded = manifest["inputs"]
    for name in named_inputs(command, settings):
        if name not in recorded and not any(key.startswith(name.rstrip("/") + "/") for key in recorded):
            raise VFIError(f"The manifest's settings name the input {name} but its inputs record no sha256 for it.")


#: Each replayable command's input settings (a manifest hashes them; replay refuses changed ones), the first one
#: required.
INPUT_SETTINGS = {
    "pair": ("first", "last"),
    "sequence": ("keyframes", "prompts"),
    "clip": ("input",),
    "evaluate": ("data_dir",),
}
#: Largest manifest read (a sequence of 64 keyframes at depth 8 records about 16,000 seeds: about 1 MiB).
MAX_MANIFEST_BYTES = 16 << 20
#: Deepest nesting of lists and objects in a manifest (it needs 4).
MAX_NESTING = 16

_KIND_WORDS = {
    "object": "an object",
    "hashes": "an object of file path → sha256 (64 hex digits)",
    "texts": "a list of text",
    "versions": "an object of package → version text or null",
    "text": "text",
    "text?": "text or null",
    "int": "a whole number of at least 0",
    "int?": "a whole number of at least 0, or null",
    "bool": "true or false",
    "number": "a number of at least 0",
    "number?": "a number of at least 0, or null",
    "path": "a file path",
    "rate?": "a frame rate (text like 60000/1001, or a number), or null",
    "paths": "a list of file paths",
    "depths": "a depth (whole number), a list of them, or text like 3,2,3",
    "object?": "an object or null",
    "scalar": "text, a number, true, false, null or a list of them",
}
#: (key, kind, required) of the manifest's top level.
_TOP_LEVEL = (
    ("settings", "object", True),
    ("inputs", "hashes", True),
    ("argv", "texts", False),
    ("backend", "object?", False),
    ("seeds", "object", False),
    ("packages", "versions", False),
    ("timings", "object", False),
)
#: The kind of each setting (as the CLI parses it); commands where one differs in :data:`_COMMAND_SETTINGS`.
_SETTINGS = {
    "command": "text",
    "first": "path",
    "last": "path",
    "keyframes": "paths",
    "input": "path",
    "data_dir": "path",
    "prompts": "text?",
    "output": "text?",
    "gif": "text?",
    "frames_dir": "text?",
    "json": "text?",
    "report": "text?",
    "manifest": "text?",
    "depth": "int",
    "frames": "int?",
    "frames_per_pair": "int?",
    "fps": "number",
    "seed": "int",
    "frame_seed": "texts",
    "mismatch": "text",
    "factor": "int",
    "slowmo": "bool",
    "scene_threshold": "number",
    "start": "number",
    "end": "number?",
    "backend": "text",
    "base_model": "text",
    "adapter": "texts",
    "lightning": "text?",
    "resolution": "int?",
    "steps": "int?",
    "guidance": "number?",
    "prompt": "text?",
    "batch": "int",
    "memory": "text",
    "fuse": "bool",
    "compile": "bool",
    "register": "bool",
    "refine": "text?",
    "generative_depth": "int?",
}
_COMMAND_SETTINGS = {"sequence": {"depth": "depths"}, "clip": {"fps": "rate?"}}


def _is(value: Any, kind: str) -> bool:
    """Whether ``value`` (parsed JSON) is of ``kind`` (see :data:`_KIND_WORDS`)."""
    if kind.endswith("?"):
        return value is None or _is(value, kind[:-1])
    if kind in ("int", "number"):
        number = isinstance(value, int) if kind == "int" else isinstance(value, int | float) and math.isfinite(value)
        return number and not isinstance(value, bool) and value >= 0
    if kind in ("text", "path"):
        return isinstance(value, str) and (kind == "text" or value != "")
    if kind in ("texts", "paths", "ints"):
        return isinstance(value, list) and all(_is(item, kind[:-1]) for item in value)
    if kind == "hashes":
        return isinstance(value, dict) and all(isinstance(v, str) and _SHA256.fullmatch(v) for v in value.values())
    if kind == "versions":
        return isinstance(value, dict) and all(_is(v, "text?") for v in value.values())
    if kind == "rate":
        return _is(value, "text") or _is(value, "number")
    if kind == "depths":
        return _is(value, "text") or _is(value, "int") or _is(value, "ints")
    if kind == "scalar":
        items = value if isinstance(value, list) else [value]
        return all(isinstance(v, str | int | float | bool | None) for v in items)
    return isinstance(value, {"object": dict, "bool": bool}[kind])


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _short(value: Any) -> str:
    """``value`` as JSON, cut to 60 characters (for an error sentence)."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def changed_packages(manifest: dict[str, Any]) -> list[str]:
    """``name recorded → now`` for each package whose version differs from the manifest's."""
    now = package_versions()
    recorded = manifest.get("packages", {})
    return [f"{name} {recorded[name]} → {now.get(name)}" for name in recorded if recorded[name] != now.get(name)]
