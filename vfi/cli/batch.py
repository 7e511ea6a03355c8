"""Batch mode: every video of a folder (or of a list file) through clip mode, one output each, resumably.

Outputs keep the inputs' layout under the output folder (``IN/a/b.mov`` → ``OUT/a/b.mp4``), each with its
manifest beside it (``b.mp4.manifest.json``), written last: an output whose manifest exists, records the same
settings and an unchanged input is complete and skipped on a re-run; anything else (a ``.partial`` left by a
killed run included) is made again. A file that fails is reported and the batch goes on.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vfi.errors import VFIError
from vfi.io.video import VIDEO_SUFFIXES

#: Settings that do not change an output (not compared when deciding whether it is complete).
VOLATILE_SETTINGS = ("threads",)


@dataclass(frozen=True)
class BatchItem:
    """One input video, its output MP4 and the manifest that marks the output complete."""

    input: Path
    output: Path

    @property
    def manifest(self) -> Path:
        return self.output.with_name(self.output.name + ".manifest.json")


@dataclass
class BatchSummary:
    """What a batch did: outputs made, complete outputs skipped, and each failure with its reason."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{len(self.done)} done, {len(self.skipped)} skipped, {len(self.failed)} failed"]
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failed.items()]
        return "\n".join(lines)


def plan_batch(source: str | os.PathLike, out_dir: str | os.PathLike) -> list[BatchItem]:
    """The videos of folder ``source`` (searched recursively; nothing under ``out_dir``), or those a list file
    names one per line (relative to its folder), each with its output under ``out_dir``."""
    source, out_dir = Path(source), Path(out_dir)
    if source.is_dir():
        root, skip = source, out_dir.resolve()
        videos = (p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        found = sorted(p for p in videos if skip not in p.resolve().parents)
    elif source.is_file():
        root = source.parent
        try:
            lines = source.read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            raise VFIError(f"{source} is not a readable list of videos (one path a line).") from None
        found = [root / line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    else:
        raise VFIError(f"{source} is neither a folder of videos nor a list file.")
    if not found:
        raise VFIError(f"{source} holds no videos ({', '.join(sorted(VIDEO_SUFFIXES))}).")
    items = [BatchItem(path, out_dir / _relative(path, root).with_suffix(".mp4")) for path in found]
    outputs = [item.output for item in items]
    if len(set(outputs)) < len(outputs):
        twice = next(path for path in outputs if outputs.count(path) > 1)
        raise VFIError(f"Two inputs would both be written to {twice}; rename one.")
    return items


def _relative(path: Path, root: Path) -> Path:
    """``path`` relative to ``root``, or its name when it lies elsewhere."""
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return Path(path.name)


def _jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as a manifest records them (paths and fractions as text), volatile ones left out."""
    kept = {name: value for name, value in settings.items() if name not in VOLATILE_SETTINGS}
    return json.loads(json.dumps(kept, default=str))


def is_complete(item: BatchItem, settings: dict[str, Any]) -> bool:
    """Whether ``item``'s output exists and its manifest records ``settings`` and the input as it is now."""
    from vfi.manifest import load_manifest

    if not (item.output.is_file() and item.manifest.is_file()):
        return False
    try:
        manifest = load_manifest(item.manifest)
    except VFIError:  # not a manifest, or the input changed since
        return False
    return _jsonable(manifest.get("settings", {})) == _jsonable(settings)


def remove_partials(item: BatchItem) -> None:
    """Remove temporary files a killed run left beside ``item``'s output (:func:`vfi.io.files.atomic_path`)."""
    for name in (item.output, item.manifest):
        for partial in name.parent.glob(f".{name.stem}.*.partial{name.suffix}"):
            partial.unlink(missing_ok=True)


def run_batch(
    items: list[BatchItem],
    complete: list[bool],
    make: Callable[[BatchItem], None],
    *,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> BatchSummary:
    """``make`` every item not ``complete``, one progress line each; a failing item is recorded, not raised."""
    summary = BatchSummary()
    for number, (item, done) in enumerate(zip(items, complete), start=1):
        head = f"[{number}/{len(items)}] {item.input}"
        if done:
            summary.skipped.append(item.output)
            log(f"{head}: skipped (complete)")
            continue
        try:
            make(item)
        except Exception as error:  # one bad file does not stop the batch; its reason is reported
            reason = str(error) if isinstance(error, VFIError) else f"{type(error).__name__}: {error}"
            summary.failed[item.input] = reason
            log(f"{head}: failed: {reason}")
            continue
        summary.done.append(item.output)
        log(f"{head}: done → {item.output}")
    return summary
