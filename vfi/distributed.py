"""Running one command on several processes (``accelerate launch`` or ``torchrun``): each makes its share.

Under a launcher (``WORLD_SIZE`` > 1) :func:`map_ordered` splits every round of work items between the
processes with accelerate's ``PartialState.split_between_processes`` and gathers the results on every
process in order (``accelerate.utils.gather_object``); only the main process writes outputs
(:func:`is_main`). One process alone runs the same code without importing accelerate or torch. A work
item that fails makes every process raise its error, so the run fails whole and nothing is written.
Seeds never depend on the process: they derive from the item (pair, transition, triplet).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from itertools import islice, repeat
from typing import Any, TypeVar

from vfi.errors import VFIError
from vfi.interpolate import Progress

T = TypeVar("T")
R = TypeVar("R")

#: Pairs each process makes per round in the clip modes (factor, target fps, report) when launched on several.
PAIRS_PER_ROUND = 4
#: Variables that cap the threads of OpenMP, BLAS and OpenCV (read when those libraries start).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")


def world_size() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Whether this is the process that writes outputs and prints (always, without a launcher)."""
    return os.environ.get("RANK", "0") == "0"


def tell(line: str) -> None:
    """Print ``line`` on stderr from the main process; the others log it at debug level (launched on several, they
    all fail with the same error: the user reads it once)."""
    if is_main():
        print(line, file=sys.stderr)
    else:
        logging.getLogger(__name__).debug("process %s: %s", os.environ.get("RANK"), line)


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
    items: Iterable[T],
    make: Callable[[T, Progress], R],
    progress: Progress,
    *,
    per_process: int = 1,
    notes: list | None = None,
) -> Iterator[R]:
    """``make(item, progress)`` for every item, results in item order (see :func:`zip_ordered`)."""
    return (result for _, result in zip_ordered(items, make, progress, per_process=per_process, notes=notes))


def zip_ordered(
    items: Iterable[T],
    make: Callable[[T, Progress], R],
    progress: Progress,
    *,
    per_process: int = 1,
    to_main: bool = False,
    notes: list | None = None,
) -> Iterator[tuple[T, R | None]]:
    """Each item with ``make(item, progress)``, in item order: only the results travel between processes, so a
    caller keeps what it already has (the input frames) out of them.

    Alone, ``make`` reports to ``progress`` itself. Launched on several processes, items go in rounds of
    ``per_process`` × processes; each process makes its share of a round with a progress of its own, and every
    process gets the round's results in order while ``progress`` advances by the frames all of them made. A
    round's results are gathered in the background while the next round is made, so a process that is a little
    slower in one round does not hold the others up. ``to_main``: the results travel to the main process only
    (where only it uses them, e.g. the frames it writes); the others get None for each item. ``notes``: a list
    that ``make`` appends to (the generative backend's ``fallbacks``); what each item appended travels with it,
    so that on every process the list ends as one process alone would have left it.
    """
    if world_size() <= 1:
        for item in items:
            yield item, make(item, progress)
        return
    from accelerate.utils import gather_object

    state, source = _state(), iter(items)
    gather = partial(_gather_to_main, state) if to_main else gather_object
    mine = total = 0
    with ThreadPoolExecutor(max_workers=1) as sender:  # one thread: the gathers keep their order on every process
        previous: tuple[list[T], Future, BaseException | None] | None = None
        while True:
            batch = list(islice(source, per_process * state.num_processes))
            share, failure = _make_share(state, batch, make, [] if notes is None else notes)
            ready = _results(state, *previous) if previous else []
            previous = (batch, sender.submit(gather, share), failure) if batch else None
            mine, total = mine + len(share), total + len(batch)
            for item, (result, made, noted) in ready:
                progress.advance(made)
                if notes is not None:
                    notes.extend(noted)
                yield item, result
            if previous is None:
                break
    print(f"vfi: process {state.process_index} of {state.num_processes} made {mine} of {total} items", file=sys.stderr)


def _make_share(
    state: Any, batch: list[T], make: Callable[[T, Progress], R], notes: list
) -> tuple[list[tuple[int, bool, Any]], BaseException | None]:
    """This process's share of ``batch``: (index, True, (result, frames made, what it appended to ``notes``)) each
    (taken out of ``notes``: they go back in item order), or after a failure (index, False, (process, is a user
    error, message)) and the failure."""
    mine: list[tuple[int, bool, Any]] = []
    if not batch:
        return mine, None
    with state.split_between_processes(list(range(len(batch)))) as indices:
        for index in indices:
            local, start = Progress(0), len(notes)
            try:
                result = make(batch[index], local)
                noted = notes[start:]
                del notes[start:]
                mine.append((index, True, (result, local.done, noted)))
            except Exception as error:  # shared by the gather, so every process fails with it
                mine.append((index, False, (state.process_index, isinstance(error, VFIError), str(error))))
                return mine, error
    return mine, None


def _gather_to_main(state: Any, share: list[tuple[int, bool, Any]]) -> list[tuple[int, bool, Any]]:
    """Every process's ``share`` as :func:`_make_share` made it, with the results on the main process only (None on
    the others): every process learns which items were made (with how many frames) or failed, and only then do
    the results go to the main one."""
    import torch.distributed as dist

    shares: list[Any] = [None] * state.num_processes
    dist.all_gather_object(shares, [(index, ok, value[1:] if ok else value) for index, ok, value in share])
    entries = [entry for process_share in shares for entry in process_share]
    if not all(ok for _, ok, _ in entries):
        return entries  # raised by _results on every process
    results: list[Any] | None = [None] * state.num_processes if state.is_main_process else None
    dist.gather_object([value[0] for _, _, value in share], results, dst=0)
    made = (result for process_results in results for result in process_results) if results else repeat(None)
    return [(index, True, (next(made), *sent)) for index, _, sent in entries]


def _results(state: Any, batch: list[T], gathering: Future, failure: BaseException | None) -> list[tuple[T, Any]]:
    """Every process's share of ``batch`` (as :func:`_make_share` made it) once gathered, in order, each item with
    its (result, frames made, notes); a failure is raised on every process."""
    gathered = sorted(gathering.result(), key=lambda entry: entry[0])
    failed = [value for _, ok, value in gathered if not ok]
    if failed:
        process, user_error, message = failed[0]
        if failure is not None and process == state.process_index:
            raise failure
        raise (VFIError(message) if user_error else RuntimeError(f"process {process} failed: {message}"))
    return [(batch[index], value) for index, _, value in gathered]


def finish_processes() -> None:
    """After a run that succeeded on every process: wait for all of them, then close the process group, so that no
    process exits while another still talks to it (gloo aborts the process then: "terminate called…")."""
    if world_size() <= 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def main_value(compute: Callable[[], R]) -> R:
    """``compute()`` on the main process, its result sent to every process (e.g. which outputs exist there)."""
    if world_size() <= 1:
        return compute()
    from accelerate.utils import broadcast_object_list

    _state()
    box = [compute() if is_main() else None]
    broadcast_object_list(box)
    return box[0]
