"""The app's Storyboard tab: several keyframes in an order the user sets → one video, then re-roll or lock
single in-betweens. No gradio here; the take (frames and seeds) lives in the page's session state. Agents (MCP)
send the keyframes as base64 data URLs (:func:`storyboard_from_data_urls`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from vfi.app import jobs
from vfi.app.actions import Call, fallback_lines, note_lines
from vfi.app.config import Advanced
from vfi.app.jobs import Job
from vfi.backends import Capabilities
from vfi.errors import VFIError
from vfi.io.files import decode_image_data_url
from vfi.io.numbers import parse_whole
from vfi.io.outputs import keyframe_outputs
from vfi.io.video import check_fps
from vfi.modes.storyboard import (
    Storyboard,
    Take,
    load_storyboard,
    make_storyboard,
    parse_prompts,
    redo_indices,
    reroll,
)


@dataclass(frozen=True)
class StoryboardJob(Job):
    """A storyboard run (``take`` None), or a re-roll of frame ``reroll[0]`` of ``take`` with seed ``reroll[1]``."""

    take: Take | None = None
    keyframes: tuple[np.ndarray, ...] = ()
    storyboard: Storyboard | None = None
    reroll: tuple[int, int] | None = None
    locked: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()  # how keyframes of another size were fitted to the first

    @property
    def rerolling(self) -> bool:
        """A re-roll of one frame of the last take (not a whole storyboard)."""
        return self.take is not None and self.reroll is not None

    def frames_to_make(self) -> int:
        if not self.rerolling:
            return self.storyboard.frames_to_make(Capabilities(self.backend))
        return len(redo_indices(self.take, self.storyboard, Capabilities(self.backend), self.reroll[0], self.locked))

    def memory_bytes(self) -> int:
        """Estimated peak memory (see :meth:`Job.memory_bytes`): a storyboard keeps its keyframes and every frame
        it makes; a re-roll holds the last take (in the session) and the frames it makes again."""
        held = len(self.take.frames) if self.rerolling else len(self.keyframes)
        return jobs.frames_memory(self.keyframes[0].shape, held + self.frames_to_make())  # the others fit the first

    def run(
        self, on_progress: Callable[[int, int], None], should_cancel: Callable[[], bool]
    ) -> tuple[Take, tuple[dict[str, Any], ...]]:
        """The take, and the frames made in this run that fell back to the flow frame."""
        backend, progress = self.create_backend(), {"on_progress": on_progress, "should_cancel": should_cancel}
        if not self.rerolling:
            take = make_storyboard(self.keyframes, backend, self.storyboard, **progress)
        else:
            index, seed = self.reroll
            take = reroll(
                self.take, self.keyframes, backend, self.storyboard, index, seed, locked=self.locked, **progress
            )
        return take, jobs.fallback_records(backend)


def parse_indices(text: str | None, name: str) -> list[int]:
    """``"3, 1, 2"`` → ``[3, 1, 2]``; empty → ``[]``."""
    try:
        return [parse_whole(part) for part in (text or "").replace(" ", "").split(",") if part]
    except ValueError:
        raise VFIError(f"{name} must be frame numbers separated by commas (e.g. 2,1,3), got {text!r}.") from None


def ordered(files: Sequence[str | bytes] | None, order: str | None) -> list[str | bytes]:
    """The uploaded images (paths, or their bytes) in the order the user typed (1-based numbers, each once;
    empty: upload order)."""
    files = list(files or [])
    if len(files) < 2:
        raise VFIError("Upload at least two keyframe images for a storyboard.")
    numbers = parse_indices(order, "order") or list(range(1, len(files) + 1))
    if sorted(numbers) != list(range(1, len(files) + 1)):
        raise VFIError(f"order must list each image number from 1 to {len(files)} once (e.g. 2,1,3), got {order!r}.")
    return [files[n - 1] for n in numbers]


def preview(files: Sequence[str] | None, order: str | None) -> list[tuple[str, str]]:
    """The keyframes as they will play: gallery items labelled with their upload number. Run on each keystroke:
    what is not an image number (yet) is left out, and the run says what is wrong with the order."""
    if not files:
        return []
    parts = (order or "").replace(" ", "").split(",")
    numbers = [int(part) for part in parts if part.isascii() and part.isdigit()] or range(1, len(files) + 1)
    return [(files[n - 1], f"image {n}") for n in numbers if 1 <= n <= len(files)]


def picked_frame(previous: StoryboardJob | None, index: float | None, action: str) -> int:
    """The gallery frame ``index`` of the last storyboard, refused in one sentence before one is made, when none
    is picked, or when it is not one of its frames (``action``: "re-roll" or "lock", for the sentence)."""
    if previous is None or previous.take is None:
        raise VFIError(f"Make a storyboard first, then pick a frame to {action}.")
    if index is None:
        raise VFIError("Pick a frame in the gallery first.")
    count = len(previous.take.frames)
    if not (isinstance(index, int | float) and math.isfinite(index) and index == int(index) and 0 <= index < count):
        raise VFIError(f"There is no frame {index}; the frames are numbered 0 to {count - 1}.")
    return int(index)


def toggle_lock(previous: StoryboardJob | None, locked: str | None, index: float | None) -> str:
    """The locked frame list with frame ``index`` of the last storyboard added, or removed if it was there."""
    frames = set(parse_indices(locked, "locked frames")) ^ {picked_frame(previous, index, "lock")}
    return ", ".join(map(str, sorted(frames)))


def _deterministic(backend: str) -> str:
    return f"The {backend} backend is deterministic; re-roll has no effect."


def _show(
    call: Call,
    job: StoryboardJob,
    made: tuple[Take, tuple[dict[str, Any], ...]],
    fps: float,
    locked: Sequence[int],
    seconds: float,
) -> tuple[str, list[tuple[str, str]], str, str, StoryboardJob]:
    take, fallbacks = made
    outputs = keyframe_outputs(take.frames, jobs.request_folder(call.session), fps, call.report)
    out = next(out for out in outputs if out.archive is not None)  # the MP4, PNGs and zip (no GIF here)
    marks = set(locked)
    gallery = [(str(p), take.label(i) + (" (locked)" if i in marks else "")) for i, p in enumerate(out.frames)]
    info = (
        (
            f"{len(take.frames)} frames from {len(job.keyframes)} keyframes, {len(take.frames) / fps:.2f} s at "
            f"{fps:g} fps — made in {seconds:.1f} s with {job.backend}. "
            + ("Pick a frame to re-roll or lock it." if job.generative else _deterministic(job.backend))
        )
        + note_lines(job.notes)
        + fallback_lines(fallbacks)
    )
    if job.rerolling:
        redone = redo_indices(job.take, job.storyboard, Capabilities(job.backend), job.reroll[0], locked)
        info = f"Re-rolled frame {job.reroll[0]} (seed {job.reroll[1]}): made again {redone}, the rest kept. " + info
    return str(out.video), gallery, str(out.archive), info, replace(job, take=take, reroll=None)


def storyboard(
    call: Call,
    files: Sequence[str | bytes] | None,
    order: str | None,
    depth: str,
    frames_per_pair: float | None,
    fps: float,
    prompts: str | None,
    backend: str,
    advanced: Advanced,
    seed: float,
) -> tuple[str, list[tuple[str, str]], str, str, StoryboardJob]:
    """Keyframes (paths, or the bytes of image files) in order → MP4, gallery (path, label), PNG zip, a summary and
    the job to re-roll from."""
    paths = ordered(files, order)
    check_fps(float(fps))
    lines = parse_prompts(prompts)
    board = Storyboard.build(len(paths), depth, int(frames_per_pair or 0) or None, int(seed), lines)
    keyframes, notes = load_storyboard(paths)
    job = StoryboardJob(
        **call.job_fields(backend, advanced), keyframes=tuple(keyframes), storyboard=board, notes=tuple(notes)
    )
    with call.admit(job.memory_bytes()):
        start = time.monotonic()
        made = call.run(job)
        return _show(call, job, made, float(fps), (), time.monotonic() - start)


def storyboard_from_data_urls(
    call: Call,
    images: Sequence[str],
    limit: int,
    depth: str,
    frames_per_pair: float | None,
    fps: float,
    prompts: str | None,
    backend: str,
    advanced: Advanced,
    seed: float,
) -> tuple[str, list[tuple[str, str]], str, str, StoryboardJob]:
    """:func:`storyboard` of keyframes sent as base64 image data URLs, in the order they play, each at most
    ``limit`` bytes (an agent's: nothing is fetched)."""
    keyframes = [decode_image_data_url(url, f"Image {i}", limit) for i, url in enumerate(images, start=1)]
    return storyboard(call, keyframes, "", depth, frames_per_pair, fps, prompts, backend, advanced, seed)


def reroll_frame(
    call: Call, previous: StoryboardJob | None, index: float | None, locked: str | None, fps: float
) -> tuple[str, list[tuple[str, str]], str, str, StoryboardJob]:
    """Frame ``index`` of the last storyboard made again with a new seed (and the frames made from it)."""
    index = picked_frame(previous, index, "re-roll")
    frames = tuple(parse_indices(locked, "locked frames"))
    job = replace(previous, reroll=(index, random.randrange(2**32)), locked=frames, cancel_key=call.cancel_key)
    job.check()  # a keyframe or a locked frame is refused first
    if not job.generative:  # a new seed would make the same pixels
        raise VFIError(_deterministic(job.backend))
    with call.admit(job.memory_bytes()):
        start = time.monotonic()
        made = call.run(job)
        return _show(call, job, made, float(fps), frames, time.monotonic() - start)
