"""Run ``app.py`` in a subprocess on a free localhost port, for the client and browser tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_process(url: str):
    """The ``app.py`` process (a child of this one) that serves ``url``, as a ``psutil.Process``."""
    import psutil

    port = url.rstrip("/").rsplit(":", 1)[1]
    for child in psutil.Process().children():
        if "app.py" in " ".join(child.cmdline()) and port in child.cmdline():
            return child
    raise RuntimeError(f"no app.py child serves {url}")


def ffmpeg_children(server) -> list:
    """The ffmpeg processes the app server runs now."""
    return [p for p in server.children(recursive=True) if "ffmpeg" in p.name()]


def wait_until_idle(process, timeout: float = 60, window: float = 0.5) -> None:
    """Return once ``process`` (a ``psutil.Process``) and its children have used almost no CPU for two windows in a
    row: the work it was doing has ended (e.g. a cancelled run)."""
    import psutil

    def cpu_seconds() -> float:
        total = 0.0
        for p in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a child that ended meanwhile
                total += sum(p.cpu_times()[:2])
        return total

    deadline, quiet, last = time.monotonic() + timeout, 0, cpu_seconds()
    while quiet < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {process.pid} was still busy after {timeout} s")
        time.sleep(window)
        now = cpu_seconds()
        quiet, last = (quiet + 1 if now - last < 0.1 * window else 0), now


class PeakSampler:
    """Calls ``measure()`` (a tuple of numbers) every ``interval`` seconds in the background while in the block;
    ``peak`` holds the largest value of each."""

    def __init__(self, measure: Callable[[], tuple[float, ...]], interval: float = 0.05) -> None:
        self.measure, self.interval, self.peak = measure, interval, ()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._done.is_set():
            try:
                values = self.measure()
            except psutil.Error:  # a process ended while being measured
                continue
            self.peak = tuple(map(max, self.peak, values)) if self.peak else values
            time.sleep(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


@contextmanager
def running_app(
    log_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 90, app: Path = ROOT / "app.py"
) -> Iterator[str]:
    """Start ``python app.py --host 127.0.0.1 --port N *args``; yield its URL once it answers; stop it after."""
    port = free_port()
    full_env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_TEMP_DIR": "",  # the app's default: gradio's files in the app's own folder, gone with it
        **(env or {}),
    }
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(app), "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=log_path.parent,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(url, timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"app.py did not answer in {timeout} s:\n{log_path.read_text()[-3000:]}"
                        ) from None
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
