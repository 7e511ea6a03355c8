"""Training checkpoints and LoRA files of ``train_lora.py``: what is written, where, and how a run resumes.

API:

- ``save_lora(pipeline_class, transformer, folder)``: the LoRA weights as ``pytorch_lora_weights.safetensors``
  with their config (rank, alpha, targets) as metadata; ``load_lora(transformer, folder)`` puts them back.
- ``register_lora_hooks(accelerator, pipeline_class, transformer)``: accelerate's save/load state hooks
  that write and read only the LoRA weights (fp32 trainable parameters after loading).
- ``write_checkpoint(accelerator, output_dir, step, state, keep) -> Path``: ``checkpoint-STEP`` (accelerate
  state + ``trainer_state.json``), written atomically, then the oldest pruned to ``keep``.
- ``find_checkpoint(output_dir, which) -> Path | None`` (``which``: a folder, a name in ``output_dir`` or
  ``"latest"``); ``read_state(folder) -> dict``.
- ``list_checkpoints(output_dir)``, ``prune_checkpoints(output_dir, keep)``.
- ``remove_partials(output_dir)``: what a run killed while writing a checkpoint (or its final outputs) left.
- ``restart_log(path, step)``: a resumed run's ``metrics.jsonl`` cut back to ``step``, so no step repeats.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from vfi.errors import VFIError
from vfi.io.files import atomic_dir, atomic_path, read_json_limited
from vfi.qwen.adapters import WEIGHT_NAME

STATE_FILE = "trainer_state.json"
#: Prefix of the temporary folder ``train_lora.py`` writes the final weights into before renaming it.
FINAL_PREFIX = ".final-"
#: Our temporary folders in an output folder: :func:`vfi.io.files.atomic_dir`'s for ``checkpoint-N`` and
#: ``train_lora.py``'s for the final files (``tempfile``'s random part: 8 letters, digits or ``_``).
PARTIAL = re.compile(rf"\.checkpoint-\d+\.\w{{8}}\.partial|{re.escape(FINAL_PREFIX)}\w{{8}}")


def save_lora(pipeline_class: Any, transformer: Any, folder: Path) -> None:
    """The LoRA weights with their config (rank, alpha, targets) as safetensors metadata, as diffusers' own
    Qwen-Image LoRA trainer writes them: without it ``load_lora_weights`` takes alpha = rank."""
    from diffusers.training_utils import _collate_lora_metadata
    from peft.utils import get_peft_model_state_dict

    layers = get_peft_model_state_dict(transformer)
    metadata = _collate_lora_metadata({"transformer": transformer})
    pipeline_class.save_lora_weights(folder, transformer_lora_layers=layers, safe_serialization=True, **metadata)


def load_lora(transformer: Any, folder: Path) -> None:
    """Load the LoRA weights of a checkpoint ``folder`` into ``transformer``'s adapter."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = {k.removeprefix("transformer."): v for k, v in load_file(str(folder / WEIGHT_NAME)).items()}
    result = set_peft_model_state_dict(transformer, state, adapter_name="default")
    if getattr(result, "unexpected_keys", None):
        raise VFIError(f"The checkpoint {folder} has LoRA weights this model does not have.")


def register_lora_hooks(accelerator: Any, pipeline_class: Any, transformer: Any) -> None:
    """Make ``accelerator.save_state``/``load_state`` write and read only the LoRA weights of ``transformer``."""
    import torch
    from diffusers.training_utils import cast_training_params

    def save_hook(models: list, weights: list, output_dir: str) -> None:
        if accelerator.is_main_process:
            for model in models:
                save_lora(pipeline_class, accelerator.unwrap_model(model), Path(output_dir))
        weights.clear()

    def load_hook(models: list, input_dir: str) -> None:
        while models:
            load_lora(accelerator.unwrap_model(models.pop()), Path(input_dir))
        cast_training_params(transformer, dtype=torch.float32)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """The complete ``checkpoint-N`` folders in ``output_dir``, oldest first."""
    folder = Path(output_dir)
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def prune_checkpoints(output_dir: str | os.PathLike, keep: int | None) -> None:
    """Delete the oldest checkpoints so at most ``keep`` remain (None keeps all)."""
    if keep is None:
        return
    found = list_checkpoints(output_dir)
    for old in found[: max(0, len(found) - keep)]:
        shutil.rmtree(old)


def remove_partials(output_dir: str | os.PathLike) -> list[str]:
    """Delete the temporary folders of checkpoints (and final outputs) that a killed run left; their names."""
    folder = Path(output_dir)
    stale = [p for p in folder.glob(".*") if p.is_dir() and PARTIAL.fullmatch(p.name)] if folder.is_dir() else []
    for path in stale:
        shutil.rmtree(path)
    return sorted(p.name for p in stale)


def restart_log(path: Path, step: int | None) -> None:
    """Keep the records of the JSON-lines log ``path`` up to ``step`` (None: none), for a run resumed there.

    A run killed after its last checkpoint logged steps it will log again; a torn last line is dropped too.
    """
    if step is None or not path.is_file():
        path.unlink(missing_ok=True)
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("step", 0) <= step:
            kept.append(line + "\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(kept))


def write_checkpoint(accelerator: Any, output_dir: Path, step: int, state: dict, keep: int | None) -> Path:
    """Write ``checkpoint-STEP`` (accelerate's state and ``state`` as JSON) atomically; prune to ``keep``."""
    folder = output_dir / f"checkpoint-{step}"
    with atomic_dir(folder) as tmp:
        accelerator.save_state(str(tmp))
        (tmp / STATE_FILE).write_text(json.dumps(state))
    prune_checkpoints(output_dir, keep)
    return folder


def find_checkpoint(output_dir: Path, which: str | None) -> Path | None:
    """The checkpoint to resume from: ``which`` is a folder, a name in ``output_dir`` or ``"latest"``."""
    if not which:
        return None
    if which == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            print(f"no checkpoint in {output_dir}: starting a new run")
        return found[-1] if found else None
    folder = Path(which)
    folder = folder if folder.is_dir() else output_dir / folder
    if not (folder / STATE_FILE).is_file():
        raise VFIError(f"{which} is not a complete checkpoint folder.")
    return folder


def read_state(folder: Path) -> dict:
    """The trainer state saved with a checkpoint (step, validation history, flow baseline)."""
    return read_json_limited(folder / STATE_FILE, 64 << 20, "trainer state")
