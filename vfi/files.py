"""Write outputs atomically: to a temporary name beside the target, renamed into place on success."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vfi.errors import VFIError


def check_parent(path: str | os.PathLike) -> None:
    """Refuse an output path whose folder does not exist (call before doing the work)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise VFIError(f"The output folder {path.parent} does not exist.")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path (same folder and suffix as ``path``, not yet created); rename it onto ``path`` on success.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    check_parent(path)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``path`` (an existing directory there is replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            raise VFIError(f"{path} exists and is not a folder.")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
