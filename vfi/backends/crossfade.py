"""The trivial baseline: a linear blend of the two keyframes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vfi.backends.base import FrameRequest


class CrossfadeBackend:
    """``(1 - t) * first + t * last`` — what any real method must beat."""

    name = "crossfade"
    supports_any_t = True
    max_batch = 64

    def interpolate(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        out = []
        for r in requests:
            blend = (1.0 - r.t) * r.first.astype(np.float32) + r.t * r.last.astype(np.float32)
            out.append(np.clip(blend + 0.5, 0, 255).astype(np.uint8))
        return out
