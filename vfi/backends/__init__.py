"""Backends by name. Each is imported only when asked for, so ``import vfi`` stays light."""

from __future__ import annotations

from typing import Any

from vfi.backends.base import Backend, FrameRequest
from vfi.errors import VFIError

#: Names accepted by :func:`create_backend` (and the CLI's ``--backend``).
BACKEND_NAMES = ("flow", "crossfade", "qwen-edit")
#: The backends that make a frame at any t (the others make midpoints only); known without building them.
ANY_T_BACKENDS = ("flow", "crossfade")


def create_backend(name: str, **options: Any) -> Backend:
    """Build the backend called ``name`` with backend-specific ``options``."""
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


__all__ = ["ANY_T_BACKENDS", "BACKEND_NAMES", "Backend", "FrameRequest", "create_backend"]
