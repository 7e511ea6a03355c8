"""Backends by name. Each is imported only when asked for, so ``import vfi`` stays light."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vfi.backends.base import Backend, FrameRequest
from vfi.errors import VFIError

if TYPE_CHECKING:
    from vfi.backends.qwen_config import QwenEditConfig

#: Names accepted by :func:`create_backend` (and the CLI's ``--backend``).
BACKEND_NAMES = ("flow", "crossfade", "qwen-edit")
#: The backends that make a frame at any t (the others make midpoints only); known without building them.
ANY_T_BACKENDS = ("flow", "crossfade")
#: The generative backend (the one that runs on a GPU and takes a ``QwenEditConfig``).
GENERATIVE = "qwen-edit"


@dataclass(frozen=True)
class Capabilities:
    """What :func:`vfi.interpolate.count_generated` needs of a backend, known without building it."""

    name: str

    @property
    def supports_any_t(self) -> bool:
        return self.name in ANY_T_BACKENDS


def create_backend(name: str, config: QwenEditConfig | None = None, **options: Any) -> Backend:
    """Build the backend called ``name`` with backend-specific ``options``; the generative one takes a ``config``
    (the other backends have none: a config given with them is refused)."""
    if config is not None:
        if name != GENERATIVE:
            raise VFIError(f"The {name} backend takes no generative config.")
        options = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)} | options
    if name == "crossfade":
        from vfi.backends.crossfade import CrossfadeBackend

        return CrossfadeBackend(**options)
    if name == "flow":
        from vfi.backends.flow import FlowBackend

        return FlowBackend(**options)
    if name == "qwen-edit":
        from vfi.backends.qwen_edit import QwenEditBackend

        return QwenEditBackend(**options)
    raise VFIError(f"Unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}.")


__all__ = ["ANY_T_BACKENDS", "BACKEND_NAMES", "GENERATIVE", "Backend", "Capabilities", "FrameRequest", "create_backend"]
