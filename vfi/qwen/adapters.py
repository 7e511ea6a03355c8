"""What a LoRA adapter is, how it is named, fetched, described and checked. No torch here.

API (stable):

- ``AdapterSpec(source, scale=1.0, revision=None, weight_name=None)`` and ``AdapterSpec.parse(text)``.
  The reference grammar (``--adapter``, ``--lightning``, ``VFI_ADAPTER``, ``VFI_LIGHTNING``, the app)::

      OWNER/NAME[/PATH/IN/REPO.safetensors][:REVISION][@SCALE]    a Hub repo, or one file inside it
      DIR[@SCALE]  |  FILE.safetensors[@SCALE]                      a local folder or file

  Without a path a Hub repo gives :data:`WEIGHT_NAME`; ``REVISION`` is a branch, tag or commit hash;
  ``SCALE`` is the adapter's strength (default 1). A local folder must hold :data:`WEIGHT_NAME` or
  exactly one ``.safetensors`` file. ``spec.reference`` writes a spec back in this grammar.
- ``fetch_adapter(spec) -> (folder, weight file name, AdapterInfo | None)``: resolves a spec to a
  local file (``hf_hub_download`` for the Hub, so the Hugging Face cache and ``HF_HUB_OFFLINE`` apply).
  Safetensors only: pickle files are never loaded.
- ``AdapterInfo`` (:data:`ADAPTER_INFO_FILE` beside the weights): ``base_model``, ``layout``, ``prompt``,
  ``resolution``, ``training`` (free-form facts: steps, rank, data…). ``AdapterInfo.load(folder)``,
  ``info.save(folder)``, ``info.check(base_model, layout)`` (raises :class:`VFIError` on a mismatch).
- ``is_hub_id(text)``: whether a reference reads as a Hub repo id ``OWNER/NAME`` rather than a local path.
- ``hub_errors()``: the exceptions that mean "the Hub or the cache could not give us this file".
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vfi.errors import VFIError
from vfi.io.numbers import parse_decimal
from vfi.qwen.conditioning import check_layout, check_resolution

#: The weight file of our adapters (diffusers' default name for LoRA weights).
WEIGHT_NAME = "pytorch_lora_weights.safetensors"
#: The transformer layers an interpolation LoRA adapts (attention projections of the image and text streams).
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
#: What an adapter was trained for, written beside its weights.
ADAPTER_INFO_FILE = "vfi_adapter.json"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
GRAMMAR = "OWNER/NAME[/PATH.safetensors][:REVISION][@SCALE] or a local folder or .safetensors file"


@dataclass(frozen=True)
class AdapterSpec:
    """A LoRA adapter to use: Hub repo id or local folder/file, strength, optional revision and weight file."""

    source: str
    scale: float = 1.0
    revision: str | None = None
    weight_name: str | None = None

    def __post_init__(self) -> None:
        if not self.source:
            raise VFIError("source must name a Hub repo id, a folder or a .safetensors file.")
        if not -4.0 <= self.scale <= 4.0:
            raise VFIError(f"scale must be between -4 and 4, got {self.scale}.")
        if self.weight_name is not None and not self.weight_name.endswith(".safetensors"):
            raise VFIError(f"weight_name must be a .safetensors file, got {self.weight_name}.")
        if self.revision is not None and (not self.revision or any(c.isspace() for c in self.revision)):
            raise VFIError(f"revision must be a branch, tag or commit hash, got {self.revision!r}.")

    @classmethod
    def parse(cls, text: str) -> AdapterSpec:
        """A spec from the reference grammar (see the module docstring)."""
        body, at, scale_text = text.strip().rpartition("@")
        if not at:
            body = text.strip()
        try:
            scale = parse_decimal(scale_text) if at else 1.0
        except ValueError:
            raise VFIError(f"The adapter scale in {text!r} is not a number.") from None
        if body.lower().endswith(_PICKLE_SUFFIXES):
            raise VFIError(f"The adapter {body} is a pickle file; only .safetensors adapters are loaded.")
        if os.path.exists(body) or body.startswith((".", "/", "~")):
            return cls(body, scale)
        repo, colon, revision = body.partition(":")
        if colon and not revision:
            raise VFIError(f"The adapter {text!r} has an empty revision after ':'.")
        owner_name, path = repo.split("/")[:2], "/".join(repo.split("/")[2:])
        if len(owner_name) != 2 or not all(owner_name) or (path and not path.endswith(".safetensors")):
            raise VFIError(f"The adapter {text!r} is not a local folder or file, nor a Hub reference {GRAMMAR}.")
        return cls("/".join(owner_name), scale, revision or None, path or None)

    @property
    def reference(self) -> str:
        """This adapter in the reference grammar, without the scale."""
        path = f"/{self.weight_name}" if self.weight_name else ""
        return f"{self.source}{path}{f':{self.revision}' if self.revision else ''}"

    @property
    def name(self) -> str:
        """A stable adapter name: for a local adapter the content of its weights and info file (so ``./x`` and
        ``/abs/x`` are one adapter, and a file retrained in place is another), for a Hub one source/revision/file."""
        if _is_local(self.source):
            folder, weight, _ = _fetch_local(self)
            files = [folder / weight, *([folder / ADAPTER_INFO_FILE] if (folder / ADAPTER_INFO_FILE).is_file() else [])]
            key = "|".join(_content_digest(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
        else:
            key = f"{self.source}|{self.revision}|{self.weight_name}"
        return f"vfi_{hashlib.sha1(key.encode()).hexdigest()[:10]}"


@functools.lru_cache(maxsize=64)
def _content_digest(path: str, size: int, mtime_ns: int) -> str:
    """The sha256 of a file, hashed again only when its size or modification time changes."""
    from vfi.io.files import sha256

    return sha256(path)


def hub_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning the Hub (or the offline cache) could not provide a file."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    return (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, OSError, ValueError)


def _local_weight(folder: Path) -> str:
    """The one weight file of a local adapter folder: :data:`WEIGHT_NAME`, or its only ``.safetensors``."""
    names = sorted(p.name for p in folder.glob("*.safetensors"))
    if WEIGHT_NAME in names or len(names) == 1:
        return WEIGHT_NAME if WEIGHT_NAME in names else names[0]
    if names:
        raise VFIError(
            f"The adapter folder {folder} holds several .safetensors files ({', '.join(names)}): "
            f"name one, e.g. {folder / names[0]}."
        )
    pickles = sorted(p.name for p in folder.iterdir() if p.name.lower().endswith(_PICKLE_SUFFIXES))
    why = f" (only {', '.join(pickles)}: pickle files are never loaded)" if pickles else ""
    raise VFIError(f"The adapter folder {folder} has no .safetensors weights{why}.")


def is_hub_id(text: str) -> bool:
    """Whether ``text`` reads as a Hub repo id ``OWNER/NAME`` rather than a local path."""
    return text.count("/") == 1 and not _is_local(text)


def _is_local(text: str) -> bool:
    """Whether ``text`` names a local path: one that exists, or one written as a path (``.``, ``/``, ``~``)."""
    return os.path.exists(os.path.expanduser(text)) or text.startswith((".", "/", "~"))


def _fetch_local(spec: AdapterSpec) -> tuple[Path, str, AdapterInfo | None]:
    path = Path(spec.source).expanduser()
    if path.is_dir():
        folder, weight = path, spec.weight_name or _local_weight(path)
    elif path.is_file() and path.suffix == ".safetensors":
        folder, weight = path.parent, path.name
    else:
        raise VFIError(f"The adapter {spec.source} is neither a folder nor a .safetensors file.")
    if not (folder / weight).is_file():
        raise VFIError(f"The adapter file {folder / weight} does not exist.")
    info = AdapterInfo.load(folder) if (folder / ADAPTER_INFO_FILE).is_file() else None
    return folder, weight, info


def fetch_adapter(spec: AdapterSpec) -> tuple[Path, str, AdapterInfo | None]:
    """Resolve an adapter to (folder, safetensors file name, info or None), downloading from the Hub if needed.

    The info is the :data:`ADAPTER_INFO_FILE` beside the weight file (None if there is none). A Hub adapter
    resolves once per process and Hugging Face cache: a long-running app keeps the snapshot it loaded even if
    the branch moves on the Hub, so what it records (the manifest's revision and hashes) is what it used.
    """
    if _is_local(spec.source):
        return _fetch_local(spec)
    if not is_hub_id(spec.source):
        raise VFIError(f"The adapter {spec.source} is neither a folder nor a Hub repo id (owner/name).")
    from huggingface_hub import constants

    return _fetch_hub(replace(spec, scale=1.0), constants.HF_HUB_CACHE)


@functools.cache
def _fetch_hub(spec: AdapterSpec, cache: str) -> tuple[Path, str, AdapterInfo | None]:
    """:func:`fetch_adapter` for a Hub repo (``cache`` keys the memo: another cache may hold another snapshot)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RemoteEntryNotFoundError

    weight = spec.weight_name or WEIGHT_NAME
    try:
        path = Path(hf_hub_download(spec.source, weight, revision=spec.revision))
    except RemoteEntryNotFoundError:
        at = f" at revision {spec.revision}" if spec.revision else ""
        raise VFIError(
            f"The Hub repo {spec.source} has no file {weight}{at}: name its weights as OWNER/NAME/PATH.safetensors."
        ) from None
    except hub_errors() as error:
        raise VFIError(
            f"Could not fetch the adapter {spec.reference} from the Hugging Face Hub ({type(error).__name__}): "
            "check the repo id, the revision and the connection."
        ) from None
    try:
        info_file = posixpath.join(posixpath.dirname(weight), ADAPTER_INFO_FILE)
        info = AdapterInfo.load(Path(hf_hub_download(spec.source, info_file, revision=spec.revision)).parent)
    except EntryNotFoundError:  # also "not in the offline cache": the weights are usable, the check is skipped
        info = None
    except hub_errors() as error:
        raise VFIError(
            f"Could not fetch {ADAPTER_INFO_FILE} of the adapter {spec.reference} ({type(error).__name__})."
        ) from None
    return path.parent, path.name, info


def hub_snapshot(path: str | os.PathLike) -> tuple[str, str] | None:
    """(``OWNER/NAME``, commit) of a path in a Hugging Face cache snapshot
    (``…/models--OWNER--NAME/snapshots/<commit>[/…]``, what ``snapshot_download`` returns), None elsewhere."""
    parts = Path(path).parts
    for i in range(1, len(parts) - 1):
        if parts[i] == "snapshots" and parts[i - 1].startswith("models--"):
            owner_name = parts[i - 1].removeprefix("models--").split("--", 1)
            if len(owner_name) == 2 and all(owner_name):
                return "/".join(owner_name), parts[i + 1]
    return None


def _hub_repo(reference: str) -> str | None:
    """The Hub repo a base-model reference names: ``OWNER/NAME[:REVISION]`` or a cache snapshot folder."""
    if os.path.isdir(reference):
        snapshot = hub_snapshot(reference) or hub_snapshot(Path(reference).resolve())
        return snapshot[0].lower() if snapshot else None
    return reference.strip("/").partition(":")[0].lower()


def _same_base(a: str, b: str) -> bool:
    """Whether two base-model references (Hub ids, cache snapshots or local folders) name the same model, as
    far as we can tell."""
    repo_a, repo_b = _hub_repo(a), _hub_repo(b)
    if repo_a and repo_b:
        return repo_a == repo_b
    if repo_a is None and repo_b is None:
        return Path(a).resolve() == Path(b).resolve()
    # a local copy of a Hub model: compare the folder name with the repo name
    folder, repo = (a, repo_b) if repo_a is None else (b, repo_a)
    return Path(folder).resolve().name.lower() == repo.split("/")[-1]


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter was trained for (``vfi_adapter.json``)."""

    base_model: str
    layout: str
    prompt: str | None = None
    resolution: int | None = None
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.base_model, str) or not self.base_model:
            raise VFIError("base_model must be a non-empty Hub id or folder.")
        check_layout(self.layout)
        if self.prompt is not None and not isinstance(self.prompt, str):
            raise VFIError(f"prompt must be a string, got {type(self.prompt).__name__}.")
        if self.resolution is not None:
            check_resolution(self.resolution)
        if not isinstance(self.training, dict):
            raise VFIError(f"training must be a JSON object, got {type(self.training).__name__}.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterInfo:
        known = {"base_model", "layout", "prompt", "resolution", "training"}
        if not isinstance(data, dict) or "base_model" not in data or "layout" not in data:
            raise VFIError(f"{ADAPTER_INFO_FILE} must be an object with base_model and layout.")
        unknown = set(data) - known
        if unknown:
            raise VFIError(f"{ADAPTER_INFO_FILE} has unknown fields: {', '.join(sorted(unknown))}.")
        return cls(**data)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> AdapterInfo:
        """Read ``folder/vfi_adapter.json``."""
        from vfi.io.files import read_json_limited

        path = Path(folder) / ADAPTER_INFO_FILE
        if not path.exists():
            raise VFIError(f"{path} is missing: the adapter does not say what it was trained for.")
        return cls.from_dict(read_json_limited(path, 1 << 20, "adapter info file"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``folder/vfi_adapter.json`` (atomically) and return its path."""
        from vfi.io.files import atomic_path

        path = Path(folder) / ADAPTER_INFO_FILE
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def check(self, base_model: str, layout: str, *, name: str = "adapter") -> None:
        """Raise :class:`VFIError` if this adapter was made for another layout or base model."""
        if self.layout != layout:
            raise VFIError(f"The {name} was trained for the {self.layout} layout, but the base model uses {layout}.")
        if not _same_base(self.base_model, base_model):
            raise VFIError(f"The {name} was trained on {self.base_model}, not on {base_model}.")
