"""The typed settings of a replayable run: what a manifest records as its ``settings`` and ``argv``.

The CLI builds a spec from its parsed options and the app from what a user set (neither re-parses the
other's command line), so a manifest reads the same whichever made it: every option of the command,
defaults included, spelt as the CLI spells it (``python -m vfi replay`` reads it back).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

from vfi.backends.qwen_config import QwenEditConfig, config_argv, config_options
from vfi.modes.scenes import SCENE_THRESHOLD


@dataclass(frozen=True)
class BackendSpec:
    """The backend options of a run: ``--backend``, the generative backend's config and hybrid mode."""

    backend: str = "flow"
    config: QwenEditConfig | None = None
    refine: str | None = None
    generative_depth: int | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any], config: QwenEditConfig | None) -> BackendSpec:
        return cls(options["backend"], config, options["refine"], options["generative_depth"])

    def settings(self) -> dict[str, Any]:
        """The options as the CLI parses them (an unset generative config: its defaults)."""
        options = config_options(self.config or QwenEditConfig())
        return {"backend": self.backend, **options, "refine": self.refine, "generative_depth": self.generative_depth}

    def argv(self) -> list[str]:
        hybrid = ["--refine", self.refine] if self.refine else []
        depth = ["--generative-depth", str(self.generative_depth)] if self.generative_depth is not None else []
        return ["--backend", self.backend, *hybrid, *depth, *config_argv(self.config)]


@dataclass(frozen=True)
class RunSpec:
    """What the commands' specs share: the inputs (made absolute), outputs and backend."""

    command: ClassVar[str]
    #: The fields that name input files, in the command's order.
    inputs: ClassVar[tuple[str, ...]]

    def settings(self) -> dict[str, Any]:
        """Every option of the command as the CLI parses it (input paths absolute)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "backend"}
        for name in self.inputs:
            values[name] = str(Path(values[name]).resolve())
        return {"command": self.command, **values, **self.backend.settings()}  # type: ignore[attr-defined]

    @classmethod
    def from_options(cls, options: dict[str, Any], config: QwenEditConfig | None) -> RunSpec:
        """The spec of parsed CLI ``options`` (``vars(args)``) with their generative ``config``."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "backend"]
        return cls(**{name: options[name] for name in names}, backend=BackendSpec.from_options(options, config))


@dataclass(frozen=True)
class PairSpec(RunSpec):
    """``python -m vfi pair``."""

    command: ClassVar[str] = "pair"
    inputs: ClassVar[tuple[str, ...]] = ("first", "last")

    first: str | Path
    last: str | Path
    output: str | Path = "interpolated.mp4"
    depth: int = 3
    frames: int | None = None
    fps: float = 24.0
    seed: int = 0
    frames_dir: str | Path | None = None
    gif: str | Path | None = None
    mismatch: str = "auto"
    manifest: str | Path | None = None
    backend: BackendSpec = BackendSpec()

    def argv(self) -> list[str]:
        """The equivalent command line (outputs other than ``-o`` left out)."""
        count = ["--frames", str(self.frames)] if self.frames else ["--depth", str(self.depth)]
        return [
            self.command,
            str(self.first),
            str(self.last),
            "-o",
            str(self.output),
            *count,
            "--fps",
            str(self.fps),
            "--seed",
            str(self.seed),
            "--mismatch",
            self.mismatch,
            *self.backend.argv(),
        ]


@dataclass(frozen=True)
class ClipSpec(RunSpec):
    """``python -m vfi clip``."""

    command: ClassVar[str] = "clip"
    inputs: ClassVar[tuple[str, ...]] = ("input",)

    input: str | Path
    output: str | Path = "interpolated.mp4"
    factor: int = 2
    slowmo: bool = False
    seed: int = 0
    fps: Fraction | None = None
    scene_threshold: float = SCENE_THRESHOLD
    start: float = 0.0
    end: float | None = None
    report: str | Path | None = None
    manifest: str | Path | None = None
    backend: BackendSpec = BackendSpec()

    def argv(self) -> list[str]:
        """The equivalent command line (outputs other than ``-o`` left out)."""
        return [
            self.command,
            str(self.input),
            "-o",
            str(self.output),
            "--factor",
            str(self.factor),
            *(["--fps", str(self.fps)] if self.fps is not None else []),
            *(["--slowmo"] if self.slowmo else []),
            "--scene-threshold",
            str(self.scene_threshold),
            "--start",
            str(self.start),
            *(["--end", str(self.end)] if self.end is not None else []),
            "--seed",
            str(self.seed),
            *self.backend.argv(),
        ]


#: The commands that have a typed spec.
SPECS: dict[str, type[RunSpec]] = {spec.command: spec for spec in (PairSpec, ClipSpec)}
