"""Folders of ground-truth triplets (first, middle, last) for evaluation and training."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vfi.errors import VFIError

#: Recognised triplet folders: (first, ground-truth middle, last) file names in one folder.
TRIPLET_FILES = (
    ("im1.png", "im2.png", "im3.png"),  # Vimeo90K (also the UCF101 / Middlebury copies in this layout)
    ("frame10.png", "frame10i11.png", "frame11.png"),  # Middlebury "other" set
)


@dataclass(frozen=True)
class Triplet:
    """One evaluation sample: the keyframes ``first`` and ``last`` and the ground-truth ``middle``."""

    name: str
    first: Path
    middle: Path
    last: Path

    def __post_init__(self) -> None:
        if not self.name:
            raise VFIError("Triplet name must not be empty.")
        for field in ("first", "middle", "last"):
            if not isinstance(getattr(self, field), Path):
                raise VFIError(f"Triplet {field} must be a Path, got {type(getattr(self, field)).__name__}.")


def find_triplets(root: str | Path) -> list[Triplet]:
    """Every triplet folder under ``root`` (recursively, ``root`` included), sorted by name.

    A folder is a triplet if it holds one of the :data:`TRIPLET_FILES` (Vimeo90K ``im1/im2/im3.png`` with im2
    the ground truth, or Middlebury ``frame10/frame10i11/frame11.png``). The name is the folder's path
    relative to ``root`` (``root``'s own name if ``root`` itself is a triplet).
    """
    root = Path(root)
    if not root.is_dir():
        raise VFIError(f"Triplet folder not found: {root}." if not root.exists() else f"{root} is not a folder.")
    triplets = []
    for folder, _dirs, files in os.walk(root):
        names = set(files)
        layout = next((layout for layout in TRIPLET_FILES if names.issuperset(layout)), None)
        if layout is not None:
            path = Path(folder)
            name = path.relative_to(root).as_posix() if path != root else root.resolve().name
            triplets.append(Triplet(name, *(path / file for file in layout)))
    if not triplets:
        raise VFIError(
            f"No triplets found in {root}: expected folders with im1.png, im2.png, im3.png (Vimeo90K) "
            "or frame10.png, frame10i11.png, frame11.png (Middlebury)."
        )
    return sorted(triplets, key=lambda triplet: triplet.name)
