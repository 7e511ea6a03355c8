"""The backend protocol: a batch of (first, last, t, seed) requests in, one frame per request out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, eq=False)
class FrameRequest:
    """One in-between frame to make: the frame at time ``t`` between ``first`` (t=0) and ``last`` (t=1).

    ``first`` and ``last`` are H×W×3 uint8 arrays of the same size. The same array objects are passed for
    requests that share a keyframe, so a backend may cache per-keyframe work keyed by ``id(array)``
    for the duration of one call. ``seed`` is derived from (run seed, pair, node) by
    :func:`vfi.interpolate.node_seed`; deterministic backends ignore it.
    """

    first: np.ndarray
    last: np.ndarray
    t: float
    seed: int = 0


@runtime_checkable
class Backend(Protocol):
    """What :mod:`vfi.interpolate` needs from a backend. Recursion, progress and seeds live there."""

    name: str
    #: True if any t in (0, 1) can be asked for; False if only the midpoint t=0.5 is supported.
    supports_any_t: bool
    #: The largest number of requests worth sending in one call (memory / batching limit).
    max_batch: int

    def interpolate(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        """Return one H×W×3 uint8 frame per request, in request order."""
        ...


def fallback_list(backend: Backend) -> list[dict] | None:
    """The list a generative backend notes its frames that fell back to the flow frame in (``{"seed", "t",
    "reason"}`` each, in the order made; see ``vfi.backends.fallback``), or None for a backend that makes none."""
    return getattr(backend, "fallbacks", None)
