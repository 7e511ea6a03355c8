"""The recursion: order, counts, batching per level, seeds, hybrid mode, progress and cancel."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vfi.backends.base import FrameRequest
from vfi.backends.crossfade import CrossfadeBackend
from vfi.errors import Cancelled, VFIError
from vfi.interpolate import (
    InterpolationSettings,
    Progress,
    count_generated,
    interpolate_frames,
    interpolate_levels,
    interpolate_pair,
    node_seed,
    stages,
)


class MidpointRecorder:
    """A midpoint-only backend that blends exactly and records every call (batch sizes, seeds, ts)."""

    name = "midpoint"
    supports_any_t = False

    def __init__(self, max_batch: int = 64) -> None:
        self.max_batch = max_batch
        self.calls: list[list[FrameRequest]] = []

    def interpolate(self, requests):
        self.calls.append(list(requests))
        assert all(r.t == 0.5 for r in requests)
        return [((r.first.astype(np.float64) + r.last) / 2).astype(np.uint8) for r in requests]


class AnyTRecorder(CrossfadeBackend):
    name = "any-t"

    def __init__(self) -> None:
        self.calls: list[list[FrameRequest]] = []

    def interpolate(self, requests):
        self.calls.append(list(requests))
        return super().interpolate(requests)


def constant(value: int) -> np.ndarray:
    return np.full((4, 6, 3), value, np.uint8)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_recursion_order_and_count(depth):
    backend = MidpointRecorder()
    frames = list(interpolate_pair(constant(0), constant(240), backend, InterpolationSettings(depth=depth)))
    # First frame plus 2^k - 1 in-betweens, never the last frame, in temporal order.
    assert len(frames) == 2**depth
    values = [int(f[0, 0, 0]) for f in frames]
    assert values == [240 * i // 2**depth for i in range(2**depth)]


def test_one_batch_per_level():
    backend = MidpointRecorder()
    list(interpolate_pair(constant(0), constant(240), backend, InterpolationSettings(depth=3)))
    assert [len(call) for call in backend.calls] == [1, 2, 4]


def test_batches_are_chunked_to_max_batch():
    backend = MidpointRecorder(max_batch=3)
    list(interpolate_pair(constant(0), constant(240), backend, InterpolationSettings(depth=3)))
    assert [len(call) for call in backend.calls] == [1, 2, 3, 1]


def test_any_t_backend_gets_all_times_from_the_keyframes_in_one_batch():
    backend = AnyTRecorder()
    first, last = constant(0), constant(240)
    list(interpolate_pair(first, last, backend, InterpolationSettings(depth=3)))
    (call,) = backend.calls
    assert [r.t for r in call] == [i / 8 for i in range(1, 8)]
    assert all(r.first is first and r.last is last for r in call)


def test_evenly_spaced_frames():
    frames = list(
        interpolate_pair(constant(0), constant(200), CrossfadeBackend(), InterpolationSettings(depth=None, frames=4))
    )
    assert [int(f[0, 0, 0]) for f in frames] == [0, 40, 80, 120, 160]


def test_frame_count_needs_any_t():
    with pytest.raises(VFIError, match="midpoints only"):
        list(
            interpolate_pair(constant(0), constant(8), MidpointRecorder(), InterpolationSettings(depth=None, frames=3))
        )


def test_sequence_chains_without_duplicates():
    frames = [constant(v) for v in (0, 80, 160, 240)]
    out = list(interpolate_frames(frames, CrossfadeBackend(), InterpolationSettings(depth=2), num_frames=4))
    assert len(out) == (4 - 1) * 2**2 + 1
    assert [int(f[0, 0, 0]) for f in out] == list(range(0, 241, 20))


def test_sequence_of_nothing_is_an_error():
    with pytest.raises(VFIError):
        list(interpolate_frames([], CrossfadeBackend(), InterpolationSettings()))


def test_seeds_are_per_node_and_stable():
    backend = MidpointRecorder()
    list(interpolate_pair(constant(0), constant(240), backend, InterpolationSettings(depth=2, seed=7), pair_index=3))
    seeds = [r.seed for call in backend.calls for r in call]
    assert seeds == [node_seed(7, 3, Fraction(1, 2)), node_seed(7, 3, Fraction(1, 4)), node_seed(7, 3, Fraction(3, 4))]
    assert len(set(seeds)) == 3
    # The midpoint keeps its seed whatever the depth, and another pair or run seed changes it.
    assert node_seed(7, 3, Fraction(2, 4)) == node_seed(7, 3, Fraction(1, 2))
    assert node_seed(7, 4, Fraction(1, 2)) != seeds[0] != node_seed(8, 3, Fraction(1, 2))


def test_hybrid_generates_coarse_levels_and_refines_the_rest():
    main, refine = MidpointRecorder(), AnyTRecorder()
    settings = InterpolationSettings(depth=3, generative_depth=1)
    frames = list(interpolate_pair(constant(0), constant(240), main, settings, refine=refine))
    assert [int(f[0, 0, 0]) for f in frames] == [0, 30, 60, 90, 120, 150, 180, 210]
    assert sum(len(c) for c in main.calls) == 1
    assert sum(len(c) for c in refine.calls) == 6
    # The refine backend interpolates between the generated midpoint and the keyframes, at local times.
    assert sorted(r.t for r in refine.calls[0]) == [0.25, 0.25, 0.5, 0.5, 0.75, 0.75]
    assert count_generated(settings, main, refine) == 7


def test_hybrid_with_a_frame_count():
    main, refine = MidpointRecorder(), AnyTRecorder()
    settings = InterpolationSettings(depth=None, frames=5, generative_depth=2)
    frames = list(interpolate_pair(constant(0), constant(240), main, settings, refine=refine))
    assert [int(f[0, 0, 0]) for f in frames] == [0, 40, 80, 120, 160, 200]
    assert [len(c) for c in main.calls] == [1, 2]  # anchors at 1/4, 1/2, 3/4
    assert sum(len(c) for c in refine.calls) == 4  # 1/6, 2/6, 4/6, 5/6 (1/2 is an anchor)


def test_progress_and_cancel():
    seen = []
    backend = MidpointRecorder(max_batch=1)
    progress = Progress(7, lambda done, total: seen.append((done, total)))
    list(interpolate_pair(constant(0), constant(240), backend, InterpolationSettings(depth=3), progress=progress))
    assert seen == [(i, 7) for i in range(1, 8)]

    backend = MidpointRecorder(max_batch=1)
    progress = Progress(7, should_cancel=lambda: len(backend.calls) >= 2)
    with pytest.raises(Cancelled):
        list(interpolate_pair(constant(0), constant(240), backend, InterpolationSettings(depth=3), progress=progress))
    assert len(backend.calls) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"depth": 0}, "depth"),
        ({"depth": None, "frames": 0}, "frames"),
        ({"seed": -1}, "seed"),
        ({"depth": 2, "frames": 3}, "depth"),
    ],
)
def test_settings_validation_names_the_field(kwargs, field):
    with pytest.raises(VFIError, match=field):
        InterpolationSettings(**kwargs)


def test_pair_size_mismatch():
    with pytest.raises(VFIError, match="differ in size"):
        list(interpolate_pair(constant(0), np.zeros((5, 6, 3), np.uint8), CrossfadeBackend(), InterpolationSettings()))


def test_any_t_backends_list_matches_the_backends():
    from vfi.backends import ANY_T_BACKENDS, BACKEND_NAMES
    from vfi.backends.crossfade import CrossfadeBackend
    from vfi.backends.flow import FlowBackend
    from vfi.backends.qwen_edit import QwenEditBackend

    classes = {cls.name: cls for cls in (CrossfadeBackend, FlowBackend, QwenEditBackend)}
    assert set(classes) == set(BACKEND_NAMES)
    assert {name for name, cls in classes.items() if cls.supports_any_t} == set(ANY_T_BACKENDS)


def _levels_sequence(keyframes, backend, settings, refine=None) -> tuple[list[dict[int, np.ndarray]], list[np.ndarray]]:
    """Run :func:`interpolate_levels` with the backends called directly; the updates and the whole sequence."""

    def make(stage, requests):  # in chunks of two, as GPU calls would be
        for start in range(0, len(requests), 2):
            yield (refine if stage.refine else backend).interpolate(requests[start : start + 2])

    updates = list(interpolate_levels(keyframes, backend, settings, make, refine=refine))
    merged = {index: frame for update in updates for index, frame in update.items()}
    assert sorted(merged) == list(range(len(merged)))  # every index exactly once, none missing
    return updates, [merged[i] for i in range(len(merged))]


@pytest.mark.parametrize(
    ("settings", "hybrid"),
    [
        (InterpolationSettings(depth=3, seed=5), False),
        (InterpolationSettings(depth=3, seed=5, generative_depth=1), True),
        (InterpolationSettings(depth=None, frames=5, seed=5, generative_depth=2), True),
    ],
)
def test_levels_stream_the_same_frames_as_the_recursion(settings, hybrid):
    rng = np.random.default_rng(0)
    keyframes = [rng.integers(0, 256, (8, 10, 3), dtype=np.uint8) for _ in range(3)]  # two pairs (a loop)
    refine = AnyTRecorder() if hybrid else None
    expected = list(interpolate_frames(keyframes, MidpointRecorder(), settings, refine=refine))
    main = MidpointRecorder()
    updates, frames = _levels_sequence(keyframes, main, settings, refine=AnyTRecorder() if hybrid else None)
    assert len(frames) == len(expected)
    for got, want in zip(frames, expected):
        np.testing.assert_array_equal(got, want)
    assert sorted(updates[0]) == [0, settings.frames_per_pair, 2 * settings.frames_per_pair]  # the keyframes first
    chunks = sum((len(stage.times) * 2 + 1) // 2 for stage in stages(settings, main, refine))
    assert len(updates) == 1 + chunks  # the keyframes, then one update per chunk
    seeds = sorted(r.seed for r in main.calls[0])  # level 1: the midpoints of both pairs
    assert seeds == sorted(node_seed(5, p, Fraction(1, 2)) for p in range(2))
