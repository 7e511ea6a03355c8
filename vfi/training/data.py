"""Training triplets for interpolation adapters: from triplet folders and from videos.

A *sample* is (first, middle, last) image files and the time ``t`` of the middle one. Sources:

- triplet folders (Vimeo90K ``im1/im2/im3.png``, Middlebury ``frame10/frame10i11/frame11.png``, found by
  :func:`vfi.io.triplets.find_triplets`): t = 0.5;
- videos, or folders holding videos: frames (i, i+g, i+2g) with the gap g chosen per start frame so the
  keyframes are about ``target_motion`` apart (optical flow on small grey frames); optionally (i, i+a, i+2g)
  with t = a / 2g. Their frames are written as PNG triplet folders under ``work_dir``.

Static triplets (less than ``min_motion``), too fast ones (more than ``max_motion``) and triplets across a
scene cut are skipped; so are videos too short for one triplet, and unreadable videos and triplets (with a
warning naming the file). The held-out validation triplets are drawn at random (seeded); training triplets
then come from the rest, away from them, as a diverse subset (farthest-point sampling on small thumbnails
and motion). Fewer training triplets than asked for come with a warning that says where the others went.
Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from vfi.errors import VFIError
from vfi.io.video import VIDEO_SUFFIXES
from vfi.modes.scenes import SCENE_THRESHOLD, FrameSummary, is_scene_cut

MANIFEST = "dataset.json"
#: Largest dataset list read (a few thousand samples take well under 16 MiB).
MAX_LIST_BYTES = 64 << 20
_FEATURE_SIDE = 8


@dataclass(frozen=True)
class Sample:
    """One training triplet: image files, the middle frame's time ``t`` and what was measured on it.

    ``motion`` is the mean optical-flow magnitude from ``first`` to ``last`` as a fraction of the width.
    """

    name: str
    first: Path
    middle: Path
    last: Path
    t: float = 0.5
    motion: float = 0.0
    width: int = 0
    height: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise VFIError("name must not be empty.")
        if not 0.0 < self.t < 1.0:
            raise VFIError(f"t must be strictly between 0 and 1, got {self.t}.")
        if self.motion < 0 or self.width < 0 or self.height < 0:
            raise VFIError("motion, width and height must not be negative.")

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Sample:
        return cls(**{k: Path(v) if k in ("first", "middle", "last") else v for k, v in data.items()})

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first, middle, last) as uint8 RGB arrays (the middle fitted to the first's size)."""
        from vfi.io.images import fit_to, load_image

        first, middle, last = (load_image(p) for p in (self.first, self.middle, self.last))
        height, width = first.shape[:2]
        return first, fit_to(middle, width, height), fit_to(last, width, height)


@dataclass(frozen=True)
class DataSettings:
    """How to pick triplets.

    Args:
        size: training triplets wanted (fewer if the sources do not have that many).
        num_validation: held-out triplets (0 for none).
        gap: fixed frame gap g for videos; None chooses it per start frame.
        max_gap: largest automatic gap.
        target_motion: flow from frame i to i+g (fraction of the width) the automatic gap aims for.
        min_motion, max_motion: accepted flow from first to last (fraction of the width).
        scene_threshold: change score (0–1, see :mod:`vfi.modes.scenes`) above which frames are a cut.
        other_times: fraction of video triplets whose middle frame is not halfway (t ≠ 0.5).
        stride: start-frame step in videos.
        max_frames: most frames read from one video.
        seed: seed for the validation draw, the diversity order and the times.
    """

    size: int = 128
    num_validation: int = 4
    gap: int | None = None
    max_gap: int = 8
    target_motion: float = 0.015
    min_motion: float = 0.003
    max_motion: float = 0.2
    scene_threshold: float = SCENE_THRESHOLD
    other_times: float = 0.0
    stride: int = 2
    max_frames: int = 3000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("size", "max_gap", "stride", "max_frames"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise VFIError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if not (isinstance(self.num_validation, int) and self.num_validation >= 0):
            raise VFIError(f"num_validation must be a non-negative integer, got {self.num_validation!r}.")
        if self.gap is not None and not (isinstance(self.gap, int) and self.gap >= 1):
            raise VFIError(f"gap must be a positive integer or None, got {self.gap!r}.")
        if not 0 <= self.min_motion < self.max_motion:
            raise VFIError(f"min_motion must be ≥ 0 and below max_motion, got {self.min_motion} and {self.max_motion}.")
        if not self.target_motion > 0:
            raise VFIError(f"target_motion must be positive, got {self.target_motion}.")
        if not 0 < self.scene_threshold <= 1:
            raise VFIError(f"scene_threshold must be in (0, 1], got {self.scene_threshold}.")
        if not 0 <= self.other_times <= 1:
            raise VFIError(f"other_times must be in [0, 1], got {self.other_times}.")


@dataclass(frozen=True)
class Dataset:
    """The chosen training and validation samples, and what was skipped (by reason) among the candidates."""

    train: tuple[Sample, ...]
    validation: tuple[Sample, ...]
    candidates: int
    sources: int
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines for the log: counts, resolutions, motion statistics, times."""
        samples = self.train + self.validation
        sizes = Counter(f"{s.width}×{s.height}" for s in samples)
        motion = sorted(100 * s.motion for s in self.train)
        times = Counter(f"{s.t:.3g}" for s in self.train)
        skipped = _describe_skipped(self.skipped)
        lines = [
            f"dataset: {len(self.train)} training + {len(self.validation)} validation triplets from "
            f"{self.sources} source(s); {self.candidates} candidates, skipped: {skipped}",
            "resolutions: " + ", ".join(f"{size} ×{n}" for size, n in sizes.most_common()),
        ]
        if motion:
            lines.append(
                f"motion first→last (% of width): min {motion[0]:.2f}, median {statistics.median(motion):.2f}, "
                f"max {motion[-1]:.2f}"
            )
        lines.append("times: " + ", ".join(f"t={t} ×{n}" for t, n in sorted(times.items())))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "train": [s.to_dict() for s in self.train],
            "validation": [s.to_dict() for s in self.validation],
            "candidates": self.candidates,
            "sources": self.sources,
            "skipped": self.skipped,
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``folder/dataset.json`` (atomically)."""
        from vfi.io.files import atomic_path

        path = Path(folder) / MANIFEST
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Dataset:
        """Read ``folder/dataset.json`` (at most :data:`MAX_LIST_BYTES`)."""
        from vfi.io.files import read_json_limited

        data = read_json_limited(Path(folder) / MANIFEST, MAX_LIST_BYTES, "dataset list")
        return cls(
            tuple(map(Sample.from_dict, data["train"])),
            tuple(map(Sample.from_dict, data["validation"])),
            data["candidates"],
            data["sources"],
            data["skipped"],
        )


# --- measuring frames ---------------------------------------------------------------------------------


def _grey(summary) -> np.ndarray:
    import cv2

    return cv2.cvtColor(summary.detail.astype(np.uint8), cv2.COLOR_RGB2GRAY)


def _motion(a: np.ndarray, b: np.ndarray) -> float:
    """Mean optical-flow magnitude between two grey thumbnails, as a fraction of their width."""
    import cv2

    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST).calc(a, b, None)
    return float(np.linalg.norm(flow, axis=2).mean() / a.shape[1])


def _feature(grey: np.ndarray, motion: float) -> np.ndarray:
    import cv2

    thumb = cv2.resize(grey, (_FEATURE_SIDE, _FEATURE_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    return np.append(thumb.ravel(), 10 * motion)


@dataclass
class _Candidate:
    sample: Sample
    feature: np.ndarray
    clip: str | None = None
    frames: tuple[int, int, int] | None = None  # frame indices in a video


# --- sources ------------------------------------------------------------------------------------------


def _expand(sources: Sequence[str | os.PathLike]) -> tuple[list, list[Path]]:
    """Triplets and video files under ``sources`` (each a triplet folder tree, a video or a folder of videos)."""
    from vfi.io.triplets import find_triplets

    triplets, videos = [], []
    for source in map(Path, sources):
        if source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
            videos.append(source)
        elif source.is_dir():
            found = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
            videos += found
            try:
                triplets += find_triplets(source)
            except VFIError:
                if not found:
                    raise VFIError(f"{source} holds neither triplet folders nor videos.") from None
        elif source.exists():
            raise VFIError(f"{source} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder.")
        else:
            raise VFIError(
                f"Training data not found: {source} (expected a triplet folder, a video or a folder of videos)."
            )
    return triplets, videos


def _describe_skipped(skipped: dict[str, int]) -> str:
    """``skipped`` (reason → count) in words, e.g. ``"3 across a scene cut, 2 static"``, or ``"none"``."""
    return ", ".join(f"{n} {why}" for why, n in sorted(skipped.items()) if n) or "none"


def _skip_unreadable(what: str, error: VFIError, skipped: Counter) -> None:
    """Warn that ``what`` is skipped because of ``error`` (whose message names the file, not its folder)."""
    skipped["unreadable"] += 1
    warnings.warn(f"Skipping {what}: {error}", stacklevel=3)


def _triplet_candidates(triplets: Iterable, settings: DataSettings, skipped: Counter) -> list[_Candidate]:
    from vfi.io.images import load_image

    out = []
    for triplet in triplets:
        try:
            images = [load_image(p) for p in (triplet.first, triplet.middle, triplet.last)]
        except VFIError as error:
            _skip_unreadable(f"the triplet {triplet.name}", error, skipped)
            continue
        first, middle, last = (FrameSummary.of(image, keep_image=False) for image in images)
        if first.change(middle) > settings.scene_threshold or middle.change(last) > settings.scene_threshold:
            skipped["across a scene cut"] += 1
            continue
        motion = _motion(_grey(first), _grey(last))
        if not _accept(motion, settings, skipped):
            continue
        height, width = images[0].shape[:2]
        sample = Sample(
            triplet.name, triplet.first, triplet.middle, triplet.last, 0.5, motion, width, height, triplet.name
        )
        out.append(_Candidate(sample, _feature(_grey(middle), motion)))
    return out


def _accept(motion: float, settings: DataSettings, skipped: Counter) -> bool:
    if motion < settings.min_motion:
        skipped["static"] += 1
        return False
    if motion > settings.max_motion:
        skipped["too fast"] += 1
        return False
    return True


def _scan_video(path: Path, settings: DataSettings) -> tuple[list[np.ndarray], list[float], list[float], int, int]:
    """Pass 1 over a video: grey thumbnails, consecutive motion and change scores, frame size."""
    from vfi.io.video import probe_clip, read_frames

    info = probe_clip(path)
    greys, motion, change = [], [], []
    previous = None
    with closing(read_frames(path, info=info)) as frames:
        for index, image in enumerate(frames):
            if index >= settings.max_frames:
                break
            summary = FrameSummary.of(image, keep_image=False)
            greys.append(_grey(summary))
            if previous is not None:
                change.append(previous.change(summary))
                motion.append(_motion(greys[-2], greys[-1]))
            previous = summary
    return greys, motion, change, info.width, info.height


def _video_candidates(
    path: Path, settings: DataSettings, rng: np.random.Generator, skipped: Counter
) -> list[_Candidate]:
    greys, step_motion, change, width, height = _scan_video(path, settings)
    cuts = {
        k for k in range(len(change)) if is_scene_cut(change[k], change[k - 1] if k else 0.0, settings.scene_threshold)
    }
    cumulative = np.concatenate([[0.0], np.cumsum(step_motion)])
    out = []
    if len(greys) < 1 + 2 * (settings.gap or 1):
        skipped["too short"] += 1  # a video, not a triplet: not one start frame fits
    for i in range(0, len(greys), settings.stride):
        gap = settings.gap or next(
            (
                g
                for g in range(1, settings.max_gap + 1)
                if cumulative[min(i + g, len(greys) - 1)] - cumulative[i] >= settings.target_motion
            ),
            settings.max_gap,
        )
        end = i + 2 * gap
        if end >= len(greys):
            break
        if cuts.intersection(range(i, end)):
            skipped["across a scene cut"] += 1
            continue
        motion = _motion(greys[i], greys[end])
        if not _accept(motion, settings, skipped):
            continue
        middle = gap
        if gap >= 2 and rng.random() < settings.other_times:
            middle = int(rng.choice([a for a in range(1, 2 * gap) if a != gap]))
        frames = (i, i + middle, end)
        name = f"{path.stem}-{_path_tag(path)}/{i:05d}-{i + middle:05d}-{end:05d}"
        sample = Sample(name, Path(), Path(), Path(), middle / (2 * gap), motion, width, height, path.name)
        out.append(_Candidate(sample, _feature(greys[i + middle], motion), str(path), frames))
    return out


def _path_tag(path: Path) -> str:
    """A short tag that tells apart videos of the same name in different folders."""
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:6]


def _write_video_triplets(chosen: list[_Candidate], work_dir: Path) -> dict[int, Sample]:
    """Pass 2: write the chosen video triplets' frames as PNG triplet folders; the samples pointing at them."""
    from PIL import Image

    from vfi.io.files import atomic_path
    from vfi.io.video import read_frames

    out: dict[int, Sample] = {}
    destinations: dict[str, dict[int, list[Path]]] = {}  # clip → frame index → PNG paths wanting it
    for index, candidate in enumerate(chosen):
        if candidate.clip is None:
            continue
        folder = work_dir / candidate.sample.name
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"im{j}.png" for j in (1, 2, 3)]
        for path, frame in zip(paths, candidate.frames):
            destinations.setdefault(candidate.clip, {}).setdefault(frame, []).append(path)
        out[index] = replace(candidate.sample, first=paths[0], middle=paths[1], last=paths[2])
    for clip, wanted in destinations.items():
        last_wanted = max(wanted)
        with closing(read_frames(clip)) as frames:
            for k, image in enumerate(frames):  # each frame is written as it is decoded
                for path in wanted.get(k, ()):
                    with atomic_path(path) as tmp:
                        Image.fromarray(image).save(tmp, format="PNG")
                if k >= last_wanted:
                    break
    return out


# --- choosing -----------------------------------------------------------------------------------------


def farthest_points(features: np.ndarray, count: int, rng: np.random.Generator) -> list[int]:
    """Indices of ``count`` rows of ``features`` picked greedily, each farthest from those already picked."""
    if count >= len(features):
        return list(range(len(features)))
    picked = [int(rng.integers(len(features)))]
    distance = np.linalg.norm(features - features[picked[0]], axis=1)
    while len(picked) < count:
        nxt = int(np.argmax(distance))
        picked.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(features - features[nxt], axis=1))
    return picked


def _overlaps(a: _Candidate, b: _Candidate) -> bool:
    return a.clip is not None and a.clip == b.clip and a.frames[0] <= b.frames[2] and b.frames[0] <= a.frames[2]


def build_dataset(
    sources: Sequence[str | os.PathLike],
    work_dir: str | os.PathLike,
    settings: DataSettings = DataSettings(),
    *,
    kind: str = "training",
) -> Dataset:
    """Find, filter and choose the training and validation triplets; write video frames under ``work_dir``.
    ``kind`` names the chosen triplets in the shortfall warning."""
    work_dir = Path(work_dir)
    rng = np.random.default_rng(settings.seed)
    triplets, videos = _expand(sources)
    skipped: Counter = Counter()
    candidates = _triplet_candidates(triplets, settings, skipped)
    for video in videos:
        try:
            candidates += _video_candidates(video, settings, rng, skipped)
        except VFIError as error:
            _skip_unreadable("a video", error, skipped)
    needed = 1 + settings.num_validation
    if len(candidates) < needed:
        raise VFIError(
            f"Only {len(candidates)} usable triplets found (skipped: {_describe_skipped(skipped)}); "
            f"at least {needed} are needed: add data or lower --min_motion."
        )
    held = (
        [int(i) for i in rng.choice(len(candidates), settings.num_validation, replace=False)]
        if settings.num_validation
        else []
    )
    validation = [candidates[i] for i in sorted(held)]
    rest = [c for i, c in enumerate(candidates) if i not in held]
    pool = [c for c in rest if not any(_overlaps(c, v) for v in validation)]
    skipped["overlapping validation"] += len(rest) - len(pool)
    if not pool:
        raise VFIError(
            "No training triplets are left once the validation triplets are held out; add data or lower --num_validation."
        )
    train = [pool[i] for i in sorted(farthest_points(np.stack([c.feature for c in pool]), settings.size, rng))]
    if len(train) < settings.size:
        held_out = f", {len(validation)} held out for validation" if validation else ""
        warnings.warn(
            f"Only {len(train)} of the {settings.size} {kind} triplets asked for: {len(candidates)} candidates "
            f"from {len(triplets) + len(videos)} source(s){held_out}, skipped: "
            f"{_describe_skipped(skipped)}; add data, or lower --min_motion or --num_validation.",
            stacklevel=2,
        )
    chosen = train + validation
    written = _write_video_triplets(chosen, work_dir) if any(c.clip for c in chosen) else {}
    samples = [written.get(i, c.sample) for i, c in enumerate(chosen)]
    return Dataset(
        tuple(samples[: len(train)]),
        tuple(samples[len(train) :]),
        len(candidates),
        len(triplets) + len(videos),
        {why: n for why, n in skipped.items() if n},
    )


def build_validation_set(
    sources: Sequence[str | os.PathLike], work_dir: str | os.PathLike, settings: DataSettings
) -> tuple[Sample, ...]:
    """``settings.num_validation`` triplets from their own ``sources`` (``--validation_data``), filtered and cut
    as training triplets are (gap, motion, cuts) but always halfway (t = 0.5)."""
    chosen = replace(settings, size=settings.num_validation, num_validation=0, other_times=0.0)
    return build_dataset(sources, work_dir, chosen, kind="validation").train


__all__ = [
    "MANIFEST",
    "DataSettings",
    "Dataset",
    "Sample",
    "build_dataset",
    "build_validation_set",
    "farthest_points",
]
