"""The tabs' values as typed requests: the one place where what a widget sends (floats for whole numbers, empty
text, None) becomes library values, checked when built (``InterpolationSettings``, ``ClipSettings``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vfi.app.config import Advanced
from vfi.backends import GENERATIVE
from vfi.errors import VFIError
from vfi.run_spec import BackendSpec, ClipSpec, PairSpec

if TYPE_CHECKING:
    from vfi.backends.qwen_config import QwenEditConfig
    from vfi.interpolate import InterpolationSettings
    from vfi.modes.clip import ClipSettings

#: Hybrid mode: the generative backend makes the first recursion level, this backend the rest.
HYBRID_REFINE = "flow"


@dataclass(frozen=True)
class KeyframesRequest:
    """The Keyframes tab: the frames between two keyframe files, played once, as a loop or ping-pong.

    ``depth`` is the depth slider's value (recorded also when ``count`` made the frames); ``unused_hybrid``: hybrid
    mode was asked of a backend that has none (said in the summary, not silently dropped).
    """

    first: str | None
    last: str | None
    settings: InterpolationSettings
    depth: int
    fps: float
    playback: str
    backend: str
    advanced: Advanced
    mismatch: str = "auto"
    unused_hybrid: bool = False

    @classmethod
    def from_ui(
        cls,
        first: str | None,
        last: str | None,
        depth: float,
        count: float | None,
        fps: float,
        playback: str,
        backend: str,
        advanced: Advanced,
        seed: float,
        randomize: bool,
        mismatch: str = "auto",
        hybrid: bool = False,
    ) -> KeyframesRequest:
        """From the widgets' values (``count`` 0: use ``depth``; ``randomize``: a new random seed)."""
        from vfi.interpolate import InterpolationSettings
        from vfi.io.video import check_fps

        check_fps(float(fps))
        count = int(count or 0)
        seed = random.randrange(2**32) if randomize else int(seed)
        unused_hybrid = bool(hybrid) and backend != GENERATIVE
        hybrid = bool(hybrid) and not unused_hybrid
        settings = InterpolationSettings(
            depth=None if count else int(depth), frames=count or None, seed=seed, generative_depth=1 if hybrid else None
        )
        return cls(first, last, settings, int(depth), float(fps), playback, backend, advanced, mismatch, unused_hybrid)

    @property
    def refine(self) -> str | None:
        """The backend that fills in after the generative level in hybrid mode."""
        return HYBRID_REFINE if self.settings.generative_depth else None

    def seeds(self, pairs: int) -> dict[str, Any]:
        """The manifest's seeds record of a run over ``pairs`` pairs (two for a loop)."""
        from vfi.manifest import frame_seeds

        seed = self.settings.seed
        return {"run_seed": seed, "playback": self.playback, "frames": frame_seeds(seed, pairs, self.settings.times)}

    def spec(self, config: QwenEditConfig | None) -> PairSpec:
        """The run as the manifest records it (``python -m vfi pair``)."""
        settings = self.settings
        choice = BackendSpec(self.backend, config, self.refine, settings.generative_depth)
        return PairSpec(
            self.first,
            self.last,
            depth=self.depth,
            frames=settings.frames,
            fps=self.fps,
            seed=settings.seed,
            mismatch=self.mismatch,
            backend=choice,
        )


def clip_settings(
    factor: float,
    slowmo: bool,
    fps: str | None = "",
    scene_threshold: float | None = None,
    start: float | None = 0,
    end: float | None = None,
) -> ClipSettings:
    """The Clip tab's values as ``ClipSettings`` (an empty target fps: use the factor; an end of 0: the clip's end)."""
    from vfi.modes.clip import ClipSettings
    from vfi.modes.retime import parse_rate
    from vfi.modes.scenes import SCENE_THRESHOLD

    return ClipSettings(
        factor=int(factor),
        slowmo=bool(slowmo),
        fps=parse_rate(fps) if fps and str(fps).strip() else None,
        scene_threshold=SCENE_THRESHOLD if scene_threshold is None else float(scene_threshold),
        start=float(start or 0),
        end=float(end) if end else None,
    )


@dataclass(frozen=True)
class ClipRequest:
    """The Clip tab: an uploaded clip at a higher frame rate, with its quality report if asked for."""

    video: str
    settings: ClipSettings
    backend: str
    advanced: Advanced
    report: bool = False

    @classmethod
    def from_ui(
        cls,
        video: str | None,
        factor: float,
        slowmo: bool,
        backend: str,
        advanced: Advanced,
        *timing: Any,
        report: bool = False,
    ) -> ClipRequest:
        """From the widgets' values (``timing``: target fps, scene threshold, start, end, as :func:`clip_settings`
        takes them)."""
        if not video:
            raise VFIError("Upload a clip first.")
        return cls(video, clip_settings(factor, slowmo, *timing), backend, advanced, bool(report))

    def spec(self, config: QwenEditConfig | None) -> ClipSpec:
        """The run as the manifest records it (``python -m vfi clip``)."""
        s = self.settings
        return ClipSpec(
            self.video,
            factor=s.factor,
            slowmo=s.slowmo,
            seed=s.seed,
            fps=s.fps,
            scene_threshold=s.scene_threshold,
            start=s.start,
            end=s.end,
            backend=BackendSpec(self.backend, config),
        )


@dataclass(frozen=True)
class CompareRequest:
    """The Compare tab: two presets (labels of ``AppConfig.compare_presets``) on the same two keyframes."""

    first: str | None
    last: str | None
    presets: tuple[str, str]
    settings: InterpolationSettings
    fps: float
    advanced: Advanced

    @classmethod
    def from_ui(
        cls,
        first: str | None,
        last: str | None,
        preset_a: str,
        preset_b: str,
        depth: float,
        fps: float,
        advanced: Advanced,
        seed: float,
    ) -> CompareRequest:
        from vfi.interpolate import InterpolationSettings

        settings = InterpolationSettings(depth=int(depth), seed=int(seed))
        return cls(first, last, (preset_a, preset_b), settings, float(fps), advanced)
