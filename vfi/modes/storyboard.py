"""Storyboards: N keyframes → one video, and re-rolling or locking single in-betweens of it.

The N − 1 transitions are chained FILM-style (each keyframe appears once, unchanged, at its place), each
with its own depth (or frame count) and, for the generative backend, its own prompt. A :class:`Take`
records every output frame's node (transition, t) and seed, so :func:`reroll` can make one in-between
again with a new seed: exactly that frame and the frames made from it in the recursion are redone, the
others are kept as they were. A locked frame is never redone; it stays as a keyframe for its own
descendants.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vfi.backends.base import Backend, fallback_list
from vfi.distributed import map_ordered
from vfi.errors import VFIError
from vfi.interpolate import (
    InterpolationSettings,
    Progress,
    ProgressCallback,
    check_seed,
    count_generated,
    interpolate_pair,
    node_parents,
    node_seed,
)
from vfi.io.numbers import parse_whole

#: Most keyframes in one storyboard.
MAX_KEYFRAMES = 64


#: Largest prompts file read (one line per transition: 63 lines at most).
MAX_PROMPTS_BYTES = 1 << 20


def parse_depths(text: str | int | Sequence[int]) -> tuple[int, ...]:
    """``"3,2,3"`` (or 3, or [3, 2, 3]) → ``(3, 2, 3)``: one depth for all transitions or one per transition."""
    if isinstance(text, int):
        return (text,)
    if not isinstance(text, str):
        return tuple(int(d) for d in text)
    if not text.strip():  # the app's field and the CLI's --depth alike: no hidden default behind an empty value
        raise VFIError(
            "depth is empty; give one depth for all transitions (e.g. 3) or one per transition (e.g. 3,2,3)."
        )
    try:
        depths = tuple(parse_whole(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise VFIError(f"depth must be whole numbers separated by commas (e.g. 3 or 3,2,3), got {text!r}.") from None
    return depths


def parse_prompts(text: str | None) -> tuple[str, ...]:
    """One prompt per line, one line per transition (an empty line keeps the adapter's prompt); blank text → ()."""
    if not (text or "").strip():
        return ()
    return tuple(line.strip() for line in text.rstrip("\n").split("\n"))


def read_prompts(path: str | Path) -> tuple[str, ...]:
    """A prompts file (see :func:`parse_prompts`) of at most :data:`MAX_PROMPTS_BYTES`."""
    from vfi.io.files import read_text_limited

    return parse_prompts(read_text_limited(path, MAX_PROMPTS_BYTES, "prompts file"))


@dataclass(frozen=True)
class Storyboard:
    """How each of the transitions between consecutive keyframes is filled.

    Args:
        transitions: the ``InterpolationSettings`` of each transition (depth or frame count, seed).
        prompts: empty, or one prompt per transition for the generative backend ("" = the adapter's own).
    """

    transitions: tuple[InterpolationSettings, ...]
    prompts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.transitions) < MAX_KEYFRAMES:
            raise VFIError(f"A storyboard needs 2 to {MAX_KEYFRAMES} keyframes, got {len(self.transitions) + 1}.")
        if self.prompts and len(self.prompts) != len(self.transitions):
            raise VFIError(
                f"prompts has {len(self.prompts)} line(s) but the storyboard has {len(self.transitions)} "
                "transition(s); give one line per transition."
            )

    @classmethod
    def build(
        cls,
        keyframes: int,
        depth: str | int | Sequence[int] | None = 3,
        frames_per_pair: int | None = None,
        seed: int = 0,
        prompts: Sequence[str] = (),
    ) -> Storyboard:
        """A storyboard of ``keyframes`` keyframes: ``depth`` (one value or one per transition, e.g. "3,2,3")
        or ``frames_per_pair`` in-betweens in every transition."""
        count = max(keyframes - 1, 0)
        if frames_per_pair:
            return cls(
                tuple(InterpolationSettings(depth=None, frames=frames_per_pair, seed=seed) for _ in range(count)),
                tuple(prompts),
            )
        depths = parse_depths(3 if depth is None else depth)
        if len(depths) == 1:
            depths *= count
        elif len(depths) != count:
            raise VFIError(
                f"depth lists {len(depths)} values but {keyframes} keyframes make {count} transition(s); "
                "give one value or one per transition."
            )
        return cls(tuple(InterpolationSettings(depth=d, seed=seed) for d in depths), tuple(prompts))

    @property
    def num_frames(self) -> int:
        """Frames in the output: every transition's first frame and in-betweens, plus the last keyframe."""
        return sum(s.frames_per_pair for s in self.transitions) + 1

    def in_between(self, index: int) -> tuple[int, Fraction]:
        """Output frame ``index`` as (transition, t); raises VFIError for a keyframe or a frame that is not there."""
        start = 0
        for transition, settings in enumerate(self.transitions):
            offset = index - start
            if 0 < offset < settings.frames_per_pair:
                return transition, settings.times[offset - 1]
            if offset == 0:
                break
            start += settings.frames_per_pair
        if not 0 <= index < self.num_frames:
            raise VFIError(f"There is no frame {index}; the frames are numbered 0 to {self.num_frames - 1}.")
        raise VFIError(f"Frame {index} is a keyframe; only in-between frames have a seed to re-roll.")

    def frames_to_make(self, backend: Backend, refine: Backend | None = None) -> int:
        """How many frames the backends make (raises VFIError if a transition asks the impossible).

        ``backend`` may be a ``vfi.backends.Capabilities``: this is checked before any model loads.
        """
        if any(self.prompts) and backend.name != "qwen-edit":
            raise VFIError(f"Prompts per transition need the qwen-edit backend; {backend.name} takes no prompt.")
        return sum(count_generated(s, backend, refine) for s in self.transitions)


@dataclass(frozen=True)
class Node:
    """One output frame: keyframe ``transition`` (``seed`` None, t = 0), or the in-between at ``t`` of that
    transition made with ``seed``."""

    transition: int
    t: Fraction
    seed: int | None

    @property
    def keyframe(self) -> bool:
        return self.seed is None


@dataclass(frozen=True)
class Take:
    """A storyboard's frames in order and, for each, its node and seed: what :func:`reroll` starts from."""

    frames: tuple[np.ndarray, ...]
    nodes: tuple[Node, ...]

    def label(self, index: int) -> str:
        node = self.nodes[index]
        if node.keyframe:
            return f"{index}: keyframe {node.transition + 1}"
        return f"{index}: t={node.transition + float(node.t):.3g} seed {node.seed}"


def load_storyboard(paths: Sequence[str | Path], mismatch: str = "auto") -> tuple[list[np.ndarray], list[str]]:
    """The keyframes, each one of another size fitted to the first, and a note for each one that was (see
    :func:`vfi.io.images.match_keyframes` for ``mismatch``)."""
    from vfi.io.images import load_image, match_keyframes

    if not 2 <= len(paths) <= MAX_KEYFRAMES:
        raise VFIError(f"A storyboard needs 2 to {MAX_KEYFRAMES} keyframes, got {len(paths)}.")
    first = load_image(paths[0])
    pairs = [
        match_keyframes(first, path, mismatch=mismatch, name=f"Keyframe {i}")
        for i, path in enumerate(paths[1:], start=2)
    ]
    return [first, *(pair.last for pair in pairs)], [pair.note for pair in pairs if pair.note]


def _backend_for(backend: Backend, prompt: str) -> Backend:
    """``backend`` with a transition's own prompt (the generative backend's ``with_prompt``)."""
    return backend.with_prompt(prompt) if prompt else backend  # type: ignore[attr-defined]


def _render(
    keyframes: Sequence[np.ndarray],
    backend: Backend,
    storyboard: Storyboard,
    seeds: dict[int, dict[Fraction, int]],
    keep: dict[int, dict[Fraction, np.ndarray]],
    progress: Progress,
    refine: Backend | None,
) -> Take:
    if len(keyframes) != len(storyboard.transitions) + 1:
        raise VFIError(
            f"The storyboard has {len(storyboard.transitions)} transitions but {len(keyframes)} keyframes were given."
        )
    prompts = storyboard.prompts or ("",) * len(storyboard.transitions)

    def transition(index: int, progress: Progress) -> tuple[list[np.ndarray], list[Node]]:
        settings = storyboard.transitions[index]
        pair_seeds = {t: seeds.get(index, {}).get(t, node_seed(settings.seed, index, t)) for t in settings.times}
        made = interpolate_pair(
            keyframes[index],
            keyframes[index + 1],
            _backend_for(backend, prompts[index]),
            settings,
            refine=refine,
            pair_index=index,
            progress=progress,
            seeds=pair_seeds,
            keep=keep.get(index, {}),
        )
        return list(made), [Node(index, Fraction(0), None), *(Node(index, t, pair_seeds[t]) for t in settings.times)]

    frames: list[np.ndarray] = []
    nodes: list[Node] = []
    transitions = range(len(storyboard.transitions))
    for made, made_nodes in map_ordered(transitions, transition, progress, notes=fallback_list(backend)):
        frames.extend(made)
        nodes.extend(made_nodes)
    frames.append(keyframes[-1])
    nodes.append(Node(len(storyboard.transitions), Fraction(0), None))
    return Take(tuple(frames), tuple(nodes))


def make_storyboard(
    keyframes: Sequence[np.ndarray],
    backend: Backend,
    storyboard: Storyboard,
    *,
    refine: Backend | None = None,
    frame_seeds: Mapping[int, int] | None = None,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Take:
    """Every transition of ``storyboard`` through ``backend``: the frames in order and their seeds.

    ``frame_seeds`` (output frame → seed) sets the seeds of some in-betweens, e.g. those a re-roll chose (the
    gallery labels show them): the result is that of the re-rolls, made in one go.
    """
    seeds: dict[int, dict[Fraction, int]] = {}
    for index, seed in (frame_seeds or {}).items():
        transition, t = storyboard.in_between(index)
        seeds.setdefault(transition, {})[t] = check_seed(seed)
    progress = Progress(storyboard.frames_to_make(backend, refine), on_progress, should_cancel)
    return _render(keyframes, backend, storyboard, seeds, {}, progress, refine)


def _descendants(
    parents: dict[Fraction, tuple[Fraction, Fraction]], start: Fraction, locked: Collection[Fraction]
) -> set[Fraction]:
    """``start`` and every time made from it (directly or not), not passing through locked times."""
    redo, frontier = {start}, [start]
    while frontier:
        made_from = frontier.pop()
        for t, pair in parents.items():
            if made_from in pair and t not in redo and t not in locked:
                redo.add(t)
                frontier.append(t)
    return redo


def redo_indices(
    take: Take,
    storyboard: Storyboard,
    backend: Backend,
    index: int,
    locked: Iterable[int] = (),
    refine: Backend | None = None,
) -> list[int]:
    """The output frames a re-roll of frame ``index`` makes again: it and the frames made from it (not locked)."""
    storyboard.in_between(index)
    node, locked = take.nodes[index], set(locked)
    if index in locked:
        raise VFIError(f"Frame {index} is locked; unlock it to re-roll it.")
    where = {(n.transition, n.t): i for i, n in enumerate(take.nodes)}
    locked_times = {
        take.nodes[i].t for i in locked if 0 <= i < len(take.nodes) and take.nodes[i].transition == node.transition
    }
    parents = node_parents(storyboard.transitions[node.transition], backend, refine)
    return sorted(where[(node.transition, t)] for t in _descendants(parents, node.t, locked_times))


def reroll(
    take: Take,
    keyframes: Sequence[np.ndarray],
    backend: Backend,
    storyboard: Storyboard,
    index: int,
    seed: int,
    *,
    locked: Iterable[int] = (),
    refine: Backend | None = None,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Take:
    """``take`` with frame ``index`` made again with ``seed``, and the frames made from it; the rest (and every
    ``locked`` frame) kept bit for bit."""
    check_seed(seed)
    redo = set(redo_indices(take, storyboard, backend, index, locked, refine))
    seeds: dict[int, dict[Fraction, int]] = {}
    keep: dict[int, dict[Fraction, np.ndarray]] = {}
    for i, (node, frame) in enumerate(zip(take.nodes, take.frames)):
        if node.keyframe:
            continue
        seeds.setdefault(node.transition, {})[node.t] = seed if i == index else node.seed
        if i not in redo:
            keep.setdefault(node.transition, {})[node.t] = frame
    progress = Progress(len(redo), on_progress, should_cancel)
    return _render(keyframes, backend, storyboard, seeds, keep, progress, refine)
