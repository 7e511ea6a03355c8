"""The generative backend's settings, :class:`QwenEditConfig`: the one definition of its options.

Each field that users may set carries its command-line option in its metadata (flag, help, argparse
arguments); the CLI's options, a manifest's settings and command line, and the cost model all derive from
the fields, so a new option is added here once. Light to import: no torch, no backend.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vfi.errors import VFIError
from vfi.io.numbers import parse_decimal, parse_whole
from vfi.qwen.adapters import AdapterSpec
from vfi.qwen.conditioning import check_resolution
from vfi.qwen.pipeline import DEFAULT_BASE_MODEL, FUSE_SEQUENTIAL, MEMORY_MODES

#: Denoising steps and CFG scale when neither the user nor the adapter sets them (with Lightning: its own).
DEFAULT_STEPS, DEFAULT_GUIDANCE = 30, 4.0
#: With a Lightning LoRA whose file name does not say its steps (``…-Lightning-4steps-V1.0-bf16.safetensors`` does).
LIGHTNING_STEPS, LIGHTNING_GUIDANCE = 8, 1.0
_STEPS_IN_NAME = re.compile(r"-(\d+)steps-")


def on_off(text: str) -> bool:
    """``on``/``off`` as a command-line option spells a switch that is on by default."""
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"give on or off, got {text!r}")
    return text == "on"


def _option(flag: str, help: str, **argparse_options: Any) -> dict[str, Any]:
    """A field's metadata: its command-line ``flag`` and the rest of its ``add_argument`` arguments."""
    return {"cli": {"flag": flag, "help": help, **argparse_options}}


@dataclass(frozen=True)
class QwenEditConfig:
    """Settings of :class:`~vfi.backends.qwen_edit.QwenEditBackend`, built alike by the CLI and the app.

    None for ``resolution``, ``steps``, ``guidance`` or ``prompt`` means the adapter's value, else the
    defaults above (:meth:`steps_or_default`, :meth:`guidance_or_default`; the resolution is known once the
    adapters are loaded). ``device``, ``dtype``, ``memory``: see :func:`vfi.qwen.pipeline.load_pipeline`.
    """

    base_model: str = field(
        default=DEFAULT_BASE_MODEL,
        metadata=_option(
            "--base-model",
            f"base Qwen-Image-Edit(-Plus) pipeline: Hub id[:revision] or folder (default: {DEFAULT_BASE_MODEL})",
            metavar="ID[:REVISION]_OR_DIR",
        ),
    )
    adapters: tuple[AdapterSpec, ...] = field(
        default=(),
        metadata=_option(
            "--adapter",
            "interpolation LoRA adapter (repeatable); none runs the base model alone",
            action="append",
            metavar="ID_OR_DIR[@SCALE]",
        ),
    )
    lightning: AdapterSpec | None = field(
        default=None,
        metadata=_option("--lightning", "few-step LoRA stacked for a fast mode", metavar="ID_OR_DIR[@SCALE]"),
    )
    resolution: int | None = field(
        default=None,
        metadata=_option(
            "--resolution",
            "working resolution: longest side, multiple of 32 (default: the adapter's, else 512)",
            type=parse_whole,
        ),
    )
    steps: int | None = field(
        default=None,
        metadata=_option(
            "--steps",
            f"denoising steps (default {DEFAULT_STEPS}; Lightning: its name's -Nsteps-, else {LIGHTNING_STEPS})",
            type=parse_whole,
        ),
    )
    guidance: float | None = field(
        default=None,
        metadata=_option(
            "--guidance",
            f"true CFG scale; 1 turns CFG off (default {DEFAULT_GUIDANCE:g}, {LIGHTNING_GUIDANCE:g} with --lightning)",
            type=parse_decimal,
        ),
    )
    prompt: str | None = field(default=None, metadata=_option("--prompt", "override the adapter's prompt"))
    negative_prompt: str = " "
    batch: int = field(default=4, metadata=_option("--batch", "frames per pipeline call (default 4)", type=parse_whole))
    device: str | None = None
    dtype: str | None = None
    memory: str = field(
        default="auto",
        metadata=_option(
            "--memory",
            "GPU memory mode: CPU offload of whole models or of every layer (default: from free memory)",
            choices=MEMORY_MODES,
        ),
    )
    fuse: bool = field(
        default=False,
        metadata=_option("--fuse", "fuse the adapters into the weights (faster, fixed adapters)", action="store_true"),
    )
    compile: bool = field(
        default=False, metadata=_option("--compile", "torch.compile the transformer", action="store_true")
    )
    register: bool = field(
        default=True,
        metadata=_option(
            "--no-register",
            "keep generated frames as the model made them (default: undo its global shift/zoom jitter)",
            action="store_false",
        ),
    )

    fallback: bool = field(
        default=True,
        metadata=_option(
            "--fallback",
            "replace an implausible generated frame (blank, saturated, NaN, far from a confident flow prediction) "
            "by the flow frame (default on)",
            type=on_off,
            choices=(True, False),
            metavar="{on,off}",
        ),
    )

    def __post_init__(self) -> None:
        # Specs may come as "ID_OR_DIR[@scale]" strings (CLI, environment): parsed once, here.
        parse = AdapterSpec.parse
        object.__setattr__(
            self, "adapters", tuple(a if isinstance(a, AdapterSpec) else parse(a) for a in self.adapters)
        )
        if isinstance(self.lightning, str):
            object.__setattr__(self, "lightning", parse(self.lightning))
        if not self.base_model:
            raise VFIError("base_model must name a Hub repo id or a folder.")
        if self.resolution is not None:
            check_resolution(self.resolution)
        if self.steps is not None and not 2 <= self.steps <= 200:
            raise VFIError(f"steps must be between 2 and 200, got {self.steps}.")
        if self.guidance is not None and not 0.0 <= self.guidance <= 30.0:
            raise VFIError(f"guidance must be between 0 and 30, got {self.guidance}.")
        if not 1 <= self.batch <= 64:
            raise VFIError(f"batch must be between 1 and 64, got {self.batch}.")
        if self.fuse and self.memory == "sequential":
            raise VFIError(FUSE_SEQUENTIAL)

    @property
    def fast(self) -> bool:
        """Whether a few-step (Lightning) LoRA is stacked."""
        return self.lightning is not None

    def lightning_steps(self) -> int | None:
        """The step count the Lightning file is distilled for, from its name (``-4steps-``); None if unnamed."""
        if self.lightning is None:
            return None
        match = _STEPS_IN_NAME.search(Path(self.lightning.weight_name or self.lightning.source).name)
        return min(max(int(match.group(1)), 2), 200) if match else None

    def steps_or_default(self) -> int:
        return self.steps or ((self.lightning_steps() or LIGHTNING_STEPS) if self.fast else DEFAULT_STEPS)

    def steps_note(self) -> str | None:
        """What the summary says when the step count comes from the Lightning file's name."""
        steps = None if self.steps else self.lightning_steps()
        return f"{steps} denoising steps, as the Lightning file's name says (--steps overrides)." if steps else None

    def guidance_or_default(self) -> float:
        return self.guidance if self.guidance is not None else (LIGHTNING_GUIDANCE if self.fast else DEFAULT_GUIDANCE)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> QwenEditConfig:
        """The config of parsed command-line ``options`` (``vars(args)``)."""
        return cls(**{f.name: options[dest] for f, dest in option_fields()})


def option_fields() -> Iterator[tuple[dataclasses.Field, str]]:
    """Each field of :class:`QwenEditConfig` that is a command-line option, with its ``argparse`` dest."""
    for f in dataclasses.fields(QwenEditConfig):
        if "cli" in f.metadata:
            yield f, f.metadata["cli"]["flag"].removeprefix("--no-").removeprefix("--").replace("-", "_")


def add_options(group: argparse._ActionsContainer) -> None:
    """Add every option of :class:`QwenEditConfig` to a parser (or an argument group)."""
    for f, dest in option_fields():
        spec = {key: value for key, value in f.metadata["cli"].items() if key != "flag"}
        default = list(f.default) if spec.get("action") == "append" else f.default
        group.add_argument(f.metadata["cli"]["flag"], dest=dest, default=default, **spec)


def _spelt(value: Any) -> Any:
    """A config value as the command line spells it (adapters as ``ID_OR_DIR@SCALE``)."""
    if isinstance(value, AdapterSpec):
        return f"{value.reference}@{value.scale:g}"
    if isinstance(value, tuple):
        return [_spelt(item) for item in value]
    return value


def _word(value: Any) -> str:
    """A value as one command-line word (a switch as ``on``/``off``)."""
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def config_options(config: QwenEditConfig) -> dict[str, Any]:
    """``config`` as parsed command-line options (dest → value): what a manifest records."""
    return {dest: _spelt(getattr(config, f.name)) for f, dest in option_fields()}


def config_argv(config: QwenEditConfig | None) -> list[str]:
    """The command-line options that make ``config`` (those off their default; none for other backends)."""
    if config is None:
        return []
    argv = []
    for f, _ in option_fields():
        value, option = _spelt(getattr(config, f.name)), f.metadata["cli"]
        flag, action = option["flag"], option.get("action")
        if value == _spelt(f.default):
            continue
        if action in ("store_true", "store_false"):
            argv.append(flag)
        elif action == "append":
            argv += [token for item in value for token in (flag, item)]
        else:
            argv += [flag, _word(value)]
    return argv
