"""How the app serves: its configuration (flags, environment, GPU probe) and the mapping of what a user
set in the UI to backend configs. No gradio here; ``app.py`` wires these into the page.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vfi.backends import ANY_T_BACKENDS, BACKEND_NAMES, GENERATIVE
from vfi.backends.qwen_config import DEFAULT_GUIDANCE, LIGHTNING_GUIDANCE, LIGHTNING_STEPS, QwenEditConfig
from vfi.errors import VFIError
from vfi.io.numbers import parse_whole
from vfi.qwen.adapters import AdapterSpec

#: The app's Advanced section starts with these (a lighter run than the backend's own defaults).
ADVANCED_RESOLUTION, ADVANCED_STEPS, ADVANCED_GUIDANCE = 512, 20, DEFAULT_GUIDANCE
#: Steps and guidance the Advanced section switches to in fast mode: the backend's with Lightning.
FAST_STEPS, FAST_GUIDANCE = LIGHTNING_STEPS, LIGHTNING_GUIDANCE
NO_ADAPTER = "none"
#: What is proven, said on the page (the README's "Status" says how).
STATUS = (
    "**Status:** no interpolation adapter is published yet, and the generative path has not yet run on the real "
    "weights: it is verified against the stock pipelines and on a tiny model; GPU timings are estimates. "
    "The flow backend is measured."
)
#: Memory the app's requests may hold at once (MiB); more wait (see ``vfi.app.concurrency.MemoryBudget``).
MEMORY_BUDGET_MB = 8192
#: Largest upload the app accepts (MiB).
MAX_UPLOAD_MB = 200


def parse_adapters(text: str | None) -> tuple[AdapterSpec, ...]:
    """``"a@0.8, b"`` → ``(AdapterSpec("a", 0.8), AdapterSpec("b"))``."""
    return tuple(AdapterSpec.parse(item.strip()) for item in (text or "").split(",") if item.strip())


@dataclass(frozen=True)
class Advanced:
    """What the user set in the app's Advanced section (generative backend); None = the adapter's value."""

    adapter: str = NO_ADAPTER
    strength: float = 1.0
    fast: bool = False
    resolution: int | None = ADVANCED_RESOLUTION
    steps: int | None = ADVANCED_STEPS
    guidance: float | None = ADVANCED_GUIDANCE
    prompt: str = ""

    @classmethod
    def from_ui(cls, adapter: str, strength: float, fast: bool, resolution: float | None, steps: float | None,
                guidance: float | None, prompt: str | None) -> Advanced:  # fmt: skip
        """From the widgets' raw values (numbers may arrive as floats)."""
        return cls(
            str(adapter), float(strength), bool(fast),
            None if resolution is None else int(resolution), None if steps is None else int(steps),
            None if guidance is None else float(guidance), prompt or "",
        )  # fmt: skip

    def values(self) -> list[Any]:
        """The widget values, in the order of :meth:`from_ui`."""
        return [self.adapter, self.strength, self.fast, self.resolution, self.steps, self.guidance, self.prompt]


@dataclass(frozen=True)
class AppConfig:
    """What the app serves with; built by :func:`parse_args` from flags and environment variables."""

    backend: str
    base_model: str | None = None
    adapters: tuple[AdapterSpec, ...] = ()
    lightning: str | None = None
    preload: bool = False
    max_gpu_seconds: int = 300
    max_upload_mb: int = MAX_UPLOAD_MB
    memory_budget_mb: int = MEMORY_BUDGET_MB
    fallback: bool = True  # QwenEditConfig.fallback
    host: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_NAMES:
            raise VFIError(f"backend must be one of {', '.join(BACKEND_NAMES)}, got {self.backend!r}.")
        if self.max_gpu_seconds < 1:
            raise VFIError(f"max_gpu_seconds must be positive, got {self.max_gpu_seconds}.")
        if self.max_upload_mb < 1:
            raise VFIError(f"max_upload_mb must be at least 1, got {self.max_upload_mb}.")
        if self.memory_budget_mb < 1:
            raise VFIError(f"memory_budget_mb must be at least 1, got {self.memory_budget_mb}.")

    @property
    def generative(self) -> bool:
        """Whether the generative backend is offered."""
        return self.backend == GENERATIVE or self.base_model is not None or bool(self.adapters)

    @property
    def backends(self) -> list[str]:
        return [*ANY_T_BACKENDS, *([GENERATIVE] if self.generative else [])]

    def describe(self) -> str:
        """One line for the page: what is configured, and how to add an interpolation adapter."""
        if self.adapters:
            names = ", ".join(spec.source for spec in self.adapters)
            return f"**Configured:** default backend {self.backend}; interpolation adapter {names}."
        generative = " (the base model alone, a baseline that fails at interpolation)" if self.generative else ""
        return (
            f"**Configured:** default backend {self.backend}{generative}; no interpolation adapter. "
            "Add one with `--adapter ORG/NAME` or the `VFI_ADAPTER` variable (Space settings)."
        )

    def advanced(self) -> Advanced:
        """The Advanced section's initial values: the first adapter at its configured strength."""
        if not self.adapters:
            return Advanced()
        return Advanced(self.adapters[0].reference, self.adapters[0].scale)

    def backend_config(self, backend: str, advanced: Advanced) -> QwenEditConfig | None:
        """The ``QwenEditConfig`` for the generative backend (None for the others)."""
        if backend != GENERATIVE:
            return None
        chosen = tuple(
            replace(spec, scale=advanced.strength) for spec in self.adapters if spec.reference == advanced.adapter
        )
        return QwenEditConfig(
            **({"base_model": self.base_model} if self.base_model else {}),
            adapters=chosen, lightning=self.lightning if advanced.fast else None,
            resolution=advanced.resolution, steps=advanced.steps, guidance=advanced.guidance,
            prompt=advanced.prompt.strip() or None, fallback=self.fallback,
        )  # fmt: skip

    def compare_presets(self) -> dict[str, tuple[str, bool]]:
        """Compare tab: preset label → (backend, with adapter)."""
        presets = {"flow (optical flow)": ("flow", False), "crossfade (blend)": ("crossfade", False)}
        if self.generative:
            presets = {
                "Qwen-Image-Edit + adapter": (GENERATIVE, True),
                "Qwen-Image-Edit, no adapter": (GENERATIVE, False),
                **presets,
            }
        return presets


def cuda_available() -> bool:
    """A CUDA GPU is usable; imports torch only where an NVIDIA driver is present (or on ZeroGPU)."""
    if os.environ.get("SPACES_ZERO_GPU"):
        return True
    if not (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()):
        return False
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def parse_args(argv: Sequence[str] | None = None) -> AppConfig:
    """The app's configuration from ``argv`` (flags) over environment variables."""
    env = os.environ.get
    parser = argparse.ArgumentParser(description="The vfi frame-interpolation app.")
    parser.add_argument("--backend", default=env("VFI_BACKEND"), help="default backend (flow, crossfade, qwen-edit)")
    parser.add_argument("--base-model", default=env("VFI_BASE_MODEL"), help="Qwen-Image-Edit Hub id or folder")
    parser.add_argument("--adapter", default=env("VFI_ADAPTER"), help="LoRA adapters id[@scale], comma-separated")
    parser.add_argument("--lightning", default=env("VFI_LIGHTNING"), help="few-step LoRA for fast mode")
    parser.add_argument("--preload", action="store_true", default=None, help="load the pipeline at start-up")
    parser.add_argument("--max-gpu-seconds", type=parse_whole, default=env("VFI_MAX_GPU_SECONDS", "300"))
    parser.add_argument("--max-upload-mb", type=parse_whole, default=env("VFI_MAX_UPLOAD_MB", str(MAX_UPLOAD_MB)),
                        help="largest upload accepted, in MiB")  # fmt: skip
    parser.add_argument("--memory-budget-mb", type=parse_whole,
                        default=env("VFI_MEMORY_BUDGET_MB", str(MEMORY_BUDGET_MB)),
                        help="memory the requests may hold at once, in MiB (more wait their turn)")  # fmt: skip
    parser.add_argument("--fallback", choices=("on", "off"), default=env("VFI_FALLBACK", "on"),
                        help="replace implausible generated frames by the flow frame (default on)")  # fmt: skip
    parser.add_argument("--host", help="server address (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=parse_whole, help="server port (default: GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    adapters = parse_adapters(args.adapter)
    # The generative backend by default only with an interpolation adapter: the base model alone fails at it.
    backend = args.backend or (GENERATIVE if adapters and cuda_available() else "flow")
    preload = args.preload if args.preload is not None else env("VFI_PRELOAD", "1" if env("SPACE_ID") else "0") == "1"
    return AppConfig(
        backend=backend, base_model=args.base_model, adapters=adapters,
        lightning=args.lightning, preload=preload, max_gpu_seconds=args.max_gpu_seconds,
        max_upload_mb=args.max_upload_mb, memory_budget_mb=args.memory_budget_mb,
        host=args.host, port=args.port, fallback=args.fallback == "on",
    )  # fmt: skip
