"""The app's running actions: a registry of stop flags by run (Stop, a cancelled event, a client gone away),
work run in a thread of its own under it (whole, or streamed item by item), and admission by a memory budget.

No gradio here: ``app.py`` passes in what it knows of the event (whether its client is still there).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vfi.errors import Cancelled

T = TypeVar("T")


@dataclass
class _Run:
    """One running action: its stop flag, whether it ended, and what a stopped run said."""

    owner: str
    stop: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    message: str = ""


class CancelRegistry:
    """The app's running actions by key: Stop stops a user's runs on a tab, a cancelled or abandoned
    event stops its own run, and a new action gets a fresh key (a Stop pressed before it does not count)."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    @staticmethod
    def owner(session: str | None, tab: str) -> str:
        return f"{session or os.urandom(16).hex()}:{tab}"

    def start(self, session: str | None, tab: str) -> str:
        """The cancel key of a new action of ``session`` on ``tab``."""
        owner = self.owner(session, tab)
        key = f"{owner}:{os.urandom(8).hex()}"
        with self._lock:
            self._runs[key] = _Run(owner)
        return key

    def stopped(self, key: str) -> bool:
        run = self._runs.get(key)
        return run is not None and run.stop.is_set()

    def stop(self, session: str | None, tab: str, wait_s: float = 0.0) -> str:
        """Stop the runs of ``session`` on ``tab``; wait up to ``wait_s`` for them to end and return what the
        stopped ones said ("Stopped after N of M frames."), or "" if none was running."""
        owner = self.owner(session, tab)
        return self._stop(lambda run: run.owner == owner, wait_s)

    def stop_all(self, wait_s: float = 0.0) -> None:
        """Stop every run (the server is shutting down) and wait up to ``wait_s`` for them to end."""
        self._stop(lambda run: True, wait_s)

    def _stop(self, chosen: Callable[[_Run], bool], wait_s: float) -> str:
        with self._lock:
            runs = [run for run in self._runs.values() if chosen(run)]
        for run in runs:
            run.stop.set()
        deadline = time.monotonic() + wait_s
        for run in runs:
            run.ended.wait(max(0.0, deadline - time.monotonic()))
        return " ".join(run.message for run in runs if run.message)

    async def run(self, key: str, work: Callable[[], T], alive: Callable[[], bool] = lambda: True) -> T:
        """``work()`` under ``key`` in its own thread (see :func:`run_in_thread`); the run ends with it."""
        run = self._runs[key]
        try:
            return await run_in_thread(_recording(run, work), run.stop.set, alive)
        finally:
            self._end(key, run)

    async def stream(
        self, key: str, work: Callable[[], Iterator[T]], alive: Callable[[], bool] = lambda: True
    ) -> AsyncIterator[T]:
        """``work()``'s items under ``key``, each made in its own thread as in :meth:`run`: a cancelled event or a
        client gone away stops the run at its next check, and the stream waits for that before it ends.

        Closed between two items (Gradio cancels a streaming event while it sends an update), the run is stopped
        and stepped once more, so it says how far it got; the run ends with the stream."""
        run = self._runs[key]
        items, end = work(), object()
        step = _recording(run, lambda: next(items, end))
        finished = False
        try:
            while (item := await run_in_thread(step, run.stop.set, alive)) is not end:
                yield item
            finished = True
        finally:
            if not finished and not run.message:
                run.stop.set()
                with contextlib.suppress(Exception):  # Cancelled, or the error that ended the stream
                    await run_in_thread(step, run.stop.set)
            items.close()  # type: ignore[attr-defined]
            self._end(key, run)

    def _end(self, key: str, run: _Run) -> None:
        """Forget the run and tell those waiting in :meth:`stop` that it ended."""
        with self._lock:
            self._runs.pop(key, None)
        run.ended.set()


def _recording(run: _Run, work: Callable[[], T]) -> Callable[[], T]:
    """``work`` that, when stopped, keeps what it said ("Stopped after N of M frames.") on ``run``."""

    def recorded() -> T:
        try:
            return work()
        except Cancelled as error:
            run.message = str(error)
            raise

    return recorded


async def run_in_thread(
    work: Callable[[], T], stop: Callable[[], None], alive: Callable[[], bool] = lambda: True, poll_s: float = 0.2
) -> T:
    """Run ``work`` in a thread of its own (with the caller's context variables) and await its result.

    When the awaiting task is cancelled, or ``alive()`` turns false (the client went away), ``stop()`` is called
    and the task still waits for ``work`` to end (it checks for a stop between frames), so a cancelled request
    keeps its place under the concurrency limit until its memory and processes are freed; then the
    cancellation goes on.
    """
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if error is not None:
            result.set_exception(error)
        else:
            result.set_result(value)

    def target() -> None:
        try:
            value, error = context.run(work), None
        except BaseException as caught:  # handed to the awaiting task
            value, error = None, caught
        loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=target, name="vfi-job", daemon=True).start()
    cancelled = False
    while not result.done():
        try:
            await asyncio.wait({result}, timeout=poll_s)
        except asyncio.CancelledError:
            cancelled = True
        if cancelled or not alive():
            stop()
    if cancelled:
        result.exception()  # retrieved: the work's own error is superseded by the cancellation
        raise asyncio.CancelledError
    return result.result()


class MemoryBudget:
    """Admission by memory: a request waits until its estimated peak fits in the budget beside the running ones,
    so concurrent large requests queue instead of adding up (one larger than the whole budget runs alone)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def reserve(
        self, nbytes: int, should_cancel: Callable[[], bool] = lambda: False, on_wait: Callable[[], None] = lambda: None
    ) -> Iterator[None]:
        """Hold ``nbytes`` of the budget within the block; a stop while waiting raises ``Cancelled``."""
        nbytes = min(nbytes, self.limit)
        with self._changed:
            if self.used + nbytes > self.limit:
                on_wait()
            while self.used + nbytes > self.limit:
                if should_cancel():
                    raise Cancelled("Stopped before it began (it was waiting for memory).")
                self._changed.wait(0.2)
            self.used += nbytes
        try:
            yield
        finally:
            with self._changed:
                self.used -= nbytes
                self._changed.notify_all()


@functools.cache
def memory_budget(limit: int) -> MemoryBudget:
    """This process's budget of ``limit`` bytes (every request of the app shares it)."""
    return MemoryBudget(limit)
