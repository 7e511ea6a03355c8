"""Input and output paths: checked before any work; text inputs read with a size limit; outputs written
atomically (a temporary name beside the target, renamed into place on success).

An image sent inline (an MCP agent's) is a base64 data URL, decoded only when it is within its size limit.

An input is an existing regular file (or a folder where the command takes one); devices, pipes and sockets
are refused with that reason, and a text or JSON input above its size limit is refused unread. An output
that is one of the run's inputs (through a symlink, a hard link or ``..``) is refused before any work.

An output is a new path or an existing regular file; folders, devices, pipes and sockets are refused. A
symlink is followed: the file it points to is replaced and the link stays. Any failure to write becomes a
:class:`~vfi.errors.VFIError` naming the output, and never leaves a temporary file behind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from vfi.errors import VFIError


def check_input(path: str | os.PathLike, label: str, *, folder: bool = False) -> Path:
    """Refuse, before any work, an input that is missing, a folder (unless ``folder``), a device, a pipe or a
    socket; ``label`` names it in the sentence (e.g. "The prompts file p.txt")."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise VFIError(f"{label} does not exist.") from None
    except OSError as error:
        raise VFIError(f"{label} cannot be read: {_reason(error)}.") from None
    if stat.S_ISDIR(mode) and not folder:
        raise VFIError(f"{label} is not a file (it is a folder).")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise VFIError(f"{label} is not a regular file (a device, pipe or socket); give a file.")
    return path


def read_text_limited(path: str | os.PathLike, limit: int, what: str) -> str:
    """The UTF-8 text of the input file ``path`` (``what`` names it, e.g. "prompts file"), refused in one sentence
    when it is not a regular file (:func:`check_input`), larger than ``limit`` bytes, or not UTF-8; never reads
    more than ``limit`` + 1 bytes (a file that grows, or a /proc file of size 0, is bounded too)."""
    label = f"The {what} {path}"
    check_input(path, label)
    try:  # O_NONBLOCK: a file swapped for a pipe after the check cannot block the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise VFIError(f"{label} cannot be read: {_reason(error)}.") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise VFIError(f"{label} is not a regular file (a device, pipe or socket); give a file.")
        try:
            data = file.read(limit + 1)
        except OSError as error:
            raise VFIError(f"{label} cannot be read: {_reason(error)}.") from None
    if len(data) > limit:
        raise VFIError(f"{label} is larger than the {_size(limit)} limit for a {what}.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise VFIError(f"{label} is not UTF-8 text.") from None


def read_json_limited(path: str | os.PathLike, limit: int, what: str) -> Any:
    """The parsed JSON of the input file ``path`` (read as :func:`read_text_limited` does); refused in one sentence
    when it is not JSON (NaN and Infinity included) or nests past Python's recursion limit."""
    import json

    text = read_text_limited(path, limit, what)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # RecursionError: thousands of nested brackets
        raise VFIError(f"The {what} {path} is not valid JSON.") from None


#: ``data:image/<type>[;name=value…];base64,`` (the head of an image data URL).
_IMAGE_DATA_URL = re.compile(r"data:image/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


def decode_image_data_url(url: object, label: str, limit: int) -> bytes:
    """The bytes of a base64 image data URL (``data:image/png;base64,…``), refused in one sentence when it is
    anything else (an http(s) URL is not fetched) or would decode to more than ``limit`` bytes (from its length,
    before decoding)."""
    head = _IMAGE_DATA_URL.match(url) if isinstance(url, str) else None
    if head is None:
        fetch = "; http(s) URLs are not fetched" if isinstance(url, str) and url.startswith(("http:", "https:")) else ""
        raise VFIError(f"{label} is not a base64 image data URL (data:image/png;base64,...){fetch}.")
    payload = url[head.end() :]
    if len(payload) // 4 * 3 - payload[-2:].count("=") > limit:
        raise VFIError(f"{label} is larger than the {_size(limit)} limit for an image.")
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise VFIError(f"The base64 data of {label.lower()} is not valid.") from None
    if not data:
        raise VFIError(f"{label} is empty.")
    return data


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count >= 1 << 20 else f"{count >> 10} KiB" if count >= 1 << 10 else f"{count} bytes"


def check_apart(outputs: Iterable[str | os.PathLike | None], inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse, before any work, an output that is one of the run's inputs (the same file through a symlink, a hard
    link or ``..``), a file already inside an input folder, or a folder holding an input."""
    sources = [(Path(p), Path(p).resolve()) for p in inputs if p is not None]
    for output in (Path(p) for p in outputs if p is not None):
        target = output.resolve()
        for given, source in sources:
            inside = target.is_relative_to(source) and (target == source or target.exists())
            if _same_file(target, source) or inside or source.is_relative_to(target):
                raise VFIError(f"The output {output} would overwrite the input {given}; give another output path.")


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (same device and inode: hard links too); False if either is missing."""
    try:
        return os.path.samestat(a.stat(), b.stat())
    except OSError:
        return False


def check_parent(path: str | os.PathLike) -> None:
    """Refuse an output path whose folder does not exist (call before doing the work)."""
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise VFIError(f"The output folder {path.parent} is not a folder.")
    if not path.parent.is_dir():
        raise VFIError(f"The output folder {path.parent} does not exist.")


def check_output(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Refuse, before any work, an output that could not be written; return where it will be written.

    Refused: for a file, an existing folder or non-regular file (a device, pipe or socket); for a
    ``folder``, an existing non-folder; and for both, a missing parent folder or one where nothing can be
    created. A symlink is followed: the returned path is what it points to.
    """
    path = Path(path)
    target = _followed(path)
    if folder and target.exists() and not target.is_dir():
        raise VFIError(f"The output {path} exists and is not a folder.")
    if not folder and target.is_dir():
        raise VFIError(f"The output {path} is a folder; give a file name.")
    if not folder and target.exists() and not target.is_file():
        raise VFIError(f"The output {path} is not a regular file (a device, pipe or socket); give a file name.")
    check_parent(target)
    _check_writable(target.parent, path)
    return target


def _followed(path: Path) -> Path:
    """``path``, or for a symlink the path it points to (which need not exist)."""
    if not path.is_symlink():
        return path
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        raise VFIError(f"The output {path} is a symlink that cannot be followed (a loop).") from None


def _check_writable(folder: Path, output: Path) -> None:
    """Create and remove a file in ``folder``; refuse ``output`` if that fails."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".vfi-write-check.", dir=folder)
    except OSError as error:
        raise VFIError(f"Cannot write {output}: {_reason(error)}.") from None
    os.close(fd)
    os.unlink(probe)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path (same folder and suffix as ``path``, not yet created); rename it onto ``path`` on success.

    ``path`` is checked first (:func:`check_output`). On any error the temporary file is removed and
    ``path`` is left as it was; an ``OSError`` (a full disk, a failed rename) becomes a :class:`VFIError`.
    """
    path = Path(path)
    target = check_output(path)
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:8]}.partial{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as error:
        raise VFIError(f"Could not write {path}: {_reason(error)}.") from error
    finally:
        with suppress(OSError):  # a failed cleanup must not hide the error that led to it
            tmp.unlink(missing_ok=True)


def write_json(data: dict, path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON (NaN refused) to ``path`` atomically (:func:`atomic_path`)."""
    import json

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False))


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``path`` (an existing directory there is replaced).

    Missing parent folders are created. An ``OSError`` becomes a :class:`VFIError` naming ``path``; the
    temporary directory never stays behind.
    """
    path = Path(path)
    target = _followed(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    except OSError as error:
        raise VFIError(f"Could not write {path}: {_reason(error)}.") from error
    try:
        yield tmp
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            raise VFIError(f"{path} exists and is not a folder.")
        os.replace(tmp, target)
    except OSError as error:
        raise VFIError(f"Could not write {path}: {_reason(error)}.") from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _reason(error: OSError) -> str:
    """The operating system's words for ``error``, lower-cased to continue a sentence."""
    reason = error.strerror or str(error)
    return reason[:1].lower() + reason[1:]


def sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
