"""Peak memory of the app under concurrent maximal requests: ``app.py`` in a subprocess, N clients at once.

    python benchmarks/app_memory.py [--concurrency 1 4 8] [--size 6000x4000] [--depth 3] [--app PATH] [-- APP_ARGS…]

Each row starts a fresh server (flow backend), sends N ``/keyframes`` requests of the largest keyframes
the app accepts at once through ``gradio_client``, and samples every 50 ms the resident memory of the
server alone and of the server with its children (the ffmpeg encoders). ``--app`` runs another checkout's
``app.py`` (e.g. the commit before a change); arguments after ``--`` go to the app.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from app_server import PeakSampler, running_app, server_process  # noqa: E402

GIB = 2**30


def write_keyframes(folder: Path, width: int, height: int) -> tuple[Path, Path]:
    """A smooth texture and the same texture moved 24 px right and 8 px down (small PNGs, full decode cost)."""
    yy, xx = np.mgrid[0:height, 0 : width + 24].astype(np.float32)
    texture = 127 + 60 * np.sin(xx * 0.011) * np.cos(yy * 0.017) + 40 * np.sin((xx + yy) * 0.003)
    texture = np.repeat(np.clip(texture, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    paths = folder / "first.png", folder / "last.png"
    Image.fromarray(texture[:, 24:]).save(paths[0])
    Image.fromarray(np.roll(texture, 8, axis=0)[:, :width]).save(paths[1])
    return paths


def one_row(app: Path, app_args: list[str], keyframes: tuple[Path, Path], concurrency: int, depth: int) -> str:
    from gradio_client import Client, handle_file

    with (
        tempfile.TemporaryDirectory() as folder,
        running_app(Path(folder) / "app.log", "--backend", "flow", *app_args, app=app, timeout=180) as url,
    ):
        server = server_process(url)
        idle = server.memory_info().rss

        def request(_: int) -> str:
            client = Client(url, verbose=False)
            first, last = (handle_file(str(p)) for p in keyframes)
            try:
                client.predict(first, last, depth=depth, backend="flow", api_name="/keyframes")
                return "ok"
            except Exception as error:  # a refused request is a result too
                return type(error).__name__

        start = time.monotonic()

        def resident() -> tuple[int, int]:
            alone = server.memory_info().rss
            return alone, alone + sum(c.memory_info().rss for c in server.children(recursive=True))

        with PeakSampler(resident) as peak, ThreadPoolExecutor(concurrency) as pool:
            outcomes = list(pool.map(request, range(concurrency)))
        seconds = time.monotonic() - start
    ok = outcomes.count("ok")
    return (
        f"{concurrency:>4} {ok:>4} {idle / GIB:>8.2f} {peak.peak[0] / GIB:>10.2f} {peak.peak[1] / GIB:>12.2f} "
        f"{seconds:>8.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    app_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--size", default="6000x4000", help="keyframe size WxH (default: the largest allowed)")
    parser.add_argument("--depth", type=int, default=3, help="recursion depth (the app's default: 3)")
    parser.add_argument("--app", type=Path, default=ROOT / "app.py", help="the app.py to run")
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as folder:
        keyframes = write_keyframes(Path(folder), width, height)
        print(f"{args.app} {' '.join(app_args)}: {width}×{height} keyframes, depth {args.depth}, flow backend")
        print("   N   ok  idle GiB  peak GiB  +children GiB  wall s")
        for concurrency in args.concurrency:
            print(one_row(args.app, app_args, keyframes, concurrency, args.depth), flush=True)


if __name__ == "__main__":
    main()
