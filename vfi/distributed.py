"""Running one command on several processes (``accelerate launch`` or ``torchrun``): each makes its share.

Under a launcher (``WORLD_SIZE`` > 1) :func:`map_ordered` splits every round of work items between the
processes with accelerate's ``PartialState.split_between_processes`` and gathers the results on every
process in order (``accelerate.utils.gather_object``); only the main process writes outputs
(:func:`is_main`). One process alone runs the same code without importing accelerate or torch. A work
item that fails makes every process raise its error, so the run fails whole and nothing is written.
Seeds never depend on the process: they derive from the item (pair, transition, triplet).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from vfi.errors import VFIError
from vfi.interpolate import Progress

T = TypeVar("T")
R = TypeVar("R")

#: Variables that cap the threads of OpenMP, BLAS and OpenCV (read when those libraries start).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")


def world_size() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Whether this is the process that writes outputs and prints (always, without a launcher)."""
    return os.environ.get("RANK", "0") == "0"


def _state() -> Any:
    """accelerate's ``PartialState`` (on CPU without a GPU, or with ``ACCELERATE_USE_CPU=1``), checked to span every
    launched process."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available())
    if state.num_processes != world_size():
        raise VFIError(
            f"{world_size()} processes were launched but accelerate joined {state.num_processes}; "
            "check the launcher's settings."
        )
    return state


def limit_threads(threads: int) -> None:
    """Cap the CPU threads this process uses (OpenCV, torch, OpenMP/BLAS) at ``threads``; torch is not imported
    for it (a torch imported later reads ``OMP_NUM_THREADS``)."""
    if threads < 1:
        raise VFIError(f"--threads must be at least 1, got {threads}.")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def map_ordered(
    items: Iterable[T], make: Callable[[T, Progress], R], progress: Progress, *, per_process: int = 1
) -> Iterator[R]:
    """``make(item, progress)`` for every item, results in item order.

    Alone, ``make`` reports to ``progress`` itself. Launched on several processes, items go in rounds of
    ``per_process`` × processes; each process makes its share of a round with a progress of its own, and every
    process gets the round's results in order while ``progress`` advances by the frames all of them made.
    """
    if world_size() <= 1:
        for item in items:
            yield make(item, progress)
        return
    state, source = _state(), iter(items)
    mine = total = 0
    while batch := list(islice(source, per_process * state.num_processes)):
        results, share = _round(state, batch, make)
        mine, total = mine + share, total + len(batch)
        for result, made in results:
            progress.advance(made)
            yield result
    print(f"vfi: process {state.process_index} of {state.num_processes} made {mine} of {total} items", file=sys.stderr)


def _round(state: Any, batch: list[T], make: Callable[[T, Progress], R]) -> tuple[list[tuple[R, int]], int]:
    """This process's share of ``batch`` made, then everyone's results (with the frames each made) gathered, and
    the size of this process's share; a failure is raised on every process."""
    from accelerate.utils import gather_object

    mine: list[tuple[int, bool, Any]] = []
    failure: BaseException | None = None
    with state.split_between_processes(list(range(len(batch)))) as indices:
        for index in indices:
            local = Progress(0)
            try:
                mine.append((index, True, (make(batch[index], local), local.done)))
            except Exception as error:  # shared below, so every process fails with it
                failure = error
                mine.append((index, False, (state.process_index, isinstance(error, VFIError), str(error))))
                break
    gathered = sorted(gather_object(mine), key=lambda entry: entry[0])
    failed = [value for _, ok, value in gathered if not ok]
    if failed:
        process, user_error, message = failed[0]
        if failure is not None and process == state.process_index:
            raise failure
        raise (VFIError(message) if user_error else RuntimeError(f"process {process} failed: {message}"))
    return [value for _, _, value in gathered], len(mine)


def main_value(compute: Callable[[], R]) -> R:
    """``compute()`` on the main process, its result sent to every process (e.g. which outputs exist there)."""
    if world_size() <= 1:
        return compute()
    from accelerate.utils import broadcast_object_list

    _state()
    box = [compute() if is_main() else None]
    broadcast_object_list(box)
    return box[0]
