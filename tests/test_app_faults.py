"""The app under faults, through the real gradio_client against a real server: cancelled and abandoned jobs
stop and free their processes, Stop says how far a run got, SIGTERM and dead processes leave no files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_server import EXAMPLES, PeakSampler, ffmpeg_children, running_app, server_process, wait_until_idle

pytestmark = pytest.mark.slow

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from gradio_client.utils import Status  # noqa: E402
from PIL import Image  # noqa: E402

from vfi.io.video import ffmpeg_exe  # noqa: E402

#: The app's concurrency limit per endpoint, and the ffmpeg processes one clip job runs (decoder, encoder).
CONCURRENCY, FFMPEG_PER_JOB = 4, 2
MAX_UPLOAD_MB = 5


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(url, server process, the server's temp folder)."""
    root = tmp_path_factory.mktemp("faults")
    (root / "tmp").mkdir()
    args = ("--backend", "flow", "--max-upload-mb", str(MAX_UPLOAD_MB))
    with running_app(root / "app.log", *args, env={"TMPDIR": str(root / "tmp")}) as url:
        yield url, server_process(url), root / "tmp"


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """A 20 s, 10 fps clip: at factor 8 the flow backend works on it far longer than the tests wait."""
    path = tmp_path_factory.mktemp("clips") / "long.mp4"
    source = "testsrc2=size=320x240:rate=10:duration=20"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", source, "-pix_fmt", "yuv420p", str(path)], check=True
    )
    return path


def _submit_clip(client: Client, clip: Path):
    return client.submit(handle_file(str(clip)), 8, False, "flow", api_name="/clip")


def _wait_until_working(job, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while job.status().code != Status.PROGRESS:
        assert not job.done(), "the job ended before it was cancelled"
        assert time.monotonic() < deadline, f"the job did not start making frames in {timeout} s"
        time.sleep(0.1)


def _wait_until_idle(server, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while ffmpeg_children(server):
        assert time.monotonic() < deadline, f"ffmpeg still runs {timeout} s after the cancel"
        time.sleep(0.2)


def _outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("vfi-app-*/requests/*/*"))


def test_cancelled_clip_jobs_stop_and_free_the_server(served, long_clip):
    url, server, tmp = served
    client = Client(url, verbose=False)
    with PeakSampler(lambda: (len(ffmpeg_children(server)),)) as watch:
        for _ in range(CONCURRENCY + 2):
            job = _submit_clip(client, long_clip)
            _wait_until_working(job)
            job.cancel()
        _wait_until_idle(server)
    assert watch.peak[0] <= CONCURRENCY * FFMPEG_PER_JOB
    assert _outputs(tmp) == []  # nothing written, nothing half-written


def test_a_client_that_goes_away_stops_its_job(served, long_clip):
    url, server, tmp = served
    script = (
        "import sys, time\n"
        "from gradio_client import Client, handle_file\n"
        "client = Client(sys.argv[1], verbose=False)\n"
        "job = client.submit(handle_file(sys.argv[2]), 8, False, 'flow', api_name='/clip')\n"
        "while job.status().code.name != 'PROGRESS': time.sleep(0.1)\n"
        "print('working', flush=True)\n"
        "time.sleep(600)\n"
    )
    client = subprocess.Popen([sys.executable, "-c", script, url, str(long_clip)], stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "working"
        assert ffmpeg_children(server)
    finally:
        client.kill()
        client.wait()
    _wait_until_idle(server)
    assert _outputs(tmp) == []


def test_stop_says_how_far_the_run_got(served, long_clip):
    url, server, _ = served
    client = Client(url, verbose=False)
    job = _submit_clip(client, long_clip)
    _wait_until_working(job)
    message = client.predict(api_name="/stop_clip")
    assert message.startswith("Stopped after ") and message.endswith(" of 1393 frames.")
    _wait_until_idle(server, timeout=5)


def _big_pair(folder: Path) -> list:
    """The coffee keyframes at 1200×900: the flow backend takes seconds over their in-betweens."""
    pair = []
    for end in ("first", "last"):
        path = folder / f"big_{end}.png"
        Image.open(EXAMPLES / f"coffee_{end}.png").convert("RGB").resize((1200, 900)).save(path)
        pair.append(handle_file(str(path)))
    return pair


def test_a_streamed_keyframes_run_stops_on_stop_and_on_cancel_before_its_files(served, tmp_path):
    url, server, tmp = served
    client = Client(url, verbose=False, httpx_kwargs={"timeout": 60})  # Stop waits for the level being made
    pair = _big_pair(tmp_path)
    for how in ("stop", "cancel"):
        before = set(tmp.glob("vfi-app-*/requests/*"))
        job = client.submit(*pair, count=24, backend="flow", api_name="/keyframes")
        deadline = time.monotonic() + 60
        while not job.outputs():  # the keyframes come first, before any frame is made
            assert time.monotonic() < deadline and not job.done(), "no streamed update arrived"
            time.sleep(0.05)
        if how == "stop":  # waits for the run to end, then says how far it got
            message = client.predict(api_name="/stop_keyframes")
            assert message.startswith("Stopped after ") and "of 24 frames" in message, message
        else:
            job.cancel()
            wait_until_idle(server)  # the level being made when the cancel came is done, and nothing follows
        (folder,) = set(tmp.glob("vfi-app-*/requests/*")) - before
        assert not (folder / "interpolated.mp4").exists(), how


def _mcp_keyframes(url: str, first: Path, last: Path) -> str:
    """Call the app's MCP tool ``keyframes`` with the keyframes as ``data:`` URLs (as an agent sends files);
    return the text of its answer."""
    import asyncio
    import base64

    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    def data_url(path: Path) -> str:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()

    async def call() -> str:
        arguments = {"first": data_url(first), "last": data_url(last), "depth": 1, "backend": "flow"}
        async with (
            streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _),
            ClientSession(read, write) as mcp,
        ):
            await mcp.initialize()
            result = await mcp.call_tool("keyframes", arguments)
        assert not result.isError, result.content
        return " ".join(getattr(part, "text", "") for part in result.content)

    return asyncio.run(call())


def test_sigterm_cleans_up_and_start_up_sweeps_folders_of_dead_processes(tmp_path):
    tmp = tmp_path / "tmp"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale, live = tmp / f"vfi-app-{gone.pid}-x1", tmp / f"vfi-app-{os.getpid()}-x2"
    for folder in (stale, live):
        (folder / "request").mkdir(parents=True)
        (folder / "request" / "interpolated.mp4").write_bytes(b"old")
    with running_app(tmp_path / "app.log", "--backend", "flow", env={"TMPDIR": str(tmp)}) as url:
        server = server_process(url)
        assert not stale.exists() and live.exists()  # only the folder of a process that is gone is swept
        first, last = (handle_file(str(EXAMPLES / f"coffee_{end}.png")) for end in ("first", "last"))
        Client(url, verbose=False, download_files=str(tmp_path / "downloads")).predict(
            first, last, depth=1, backend="flow", api_name="/keyframes"
        )
        assert "frames" in _mcp_keyframes(url, EXAMPLES / "rocket_first.png", EXAMPLES / "rocket_last.png")
        (root,) = tmp.glob(f"vfi-app-{server.pid}-*")
        assert list(root.glob("requests/*/interpolated.mp4")) and list(root.glob("*/coffee_first.png"))
        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
        # The client is still open: its heartbeat stream ends with the app, not after Gradio's 5-s wait for it.
        assert time.monotonic() - stopping < 4
    assert list(tmp.glob("vfi-app-*")) == [live]  # outputs and uploads gone with the process
    assert [p for p in tmp.rglob("*") if p.is_file() and live not in p.parents] == []  # (Gradio makes empty folders)


def test_uploads_are_bounded_and_errors_name_files_by_their_upload_name(served, tmp_path):
    url, _, tmp = served
    client = Client(url, verbose=False)
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom((MAX_UPLOAD_MB + 1) * 2**20))
    with pytest.raises(Exception, match="(?i)file.*(too large|exceeds|size)"):
        client.predict(handle_file(str(big)), 2, False, "flow", api_name="/clip")
    assert not list(tmp.rglob("big.png"))
    tiny = tmp_path / "1x1.png"
    Image.new("RGB", (1, 1)).save(tiny)
    with pytest.raises(AppError) as error:
        client.predict(handle_file(str(tiny)), handle_file(str(tiny)), backend="flow", api_name="/keyframes")
    assert str(error.value).startswith("Image file 1x1.png is too small: 1×1;") and "/" not in str(error.value)


def test_clip_info_waits_in_the_queue():
    import app

    demo = app.build_app(app.AppConfig("flow"))
    (info,) = [fn for fn in demo.fns.values() if fn.api_name == "clip_info"]
    assert info.queue is not False


def test_a_clip_fps_below_the_lowest_is_refused_before_work_naming_no_server_path(served):
    url, _, _ = served
    client = Client(url, verbose=False)
    clip = Path(__file__).resolve().parents[1] / "examples" / "clip.mp4"
    with pytest.raises(AppError) as error:
        client.predict(handle_file(str(clip)), 2, False, "flow", fps="0.0001", api_name="/clip")
    assert str(error.value) == "fps must be a number from 0.1 to 240, got 0.0001."


class _NoWork:
    """A call whose every use fails the test: an action given it must refuse before any work."""

    def __getattr__(self, name: str):
        raise AssertionError(f"work started: call.{name}")


def _keyframe_files(folder: Path, *sizes: tuple[int, int]) -> list[str]:
    paths = [str(folder / f"{i}.png") for i in range(len(sizes))]
    for path, (width, height) in zip(paths, sizes):
        Image.new("RGB", (width, height), (90, 120, 150)).save(path)
    return paths


def test_a_keyframes_fps_out_of_range_is_refused_before_work(tmp_path):
    from vfi.app.actions import keyframes
    from vfi.app.config import Advanced
    from vfi.errors import VFIError

    pair = _keyframe_files(tmp_path, (64, 48), (64, 48))
    for fps in (0.0001, 1000.0):
        with pytest.raises(VFIError, match="fps must be a number from 0.1 to 240"):
            next(keyframes(_NoWork(), *pair, 1, None, fps, "once", "flow", Advanced(), 0, False))


def test_the_apps_keyframes_default_to_auto_like_the_ui_and_the_cli(tmp_path):
    """auto refuses keyframes whose aspect ratios are more than 2x apart (320x240 and 100x900: 1100%)."""
    from vfi.app.actions import keyframes, uploaded_keyframes
    from vfi.app.config import Advanced
    from vfi.cli import build_parser
    from vfi.errors import VFIError
    from vfi.run_spec import PairSpec

    pair = _keyframe_files(tmp_path, (320, 240), (100, 900))
    with pytest.raises(VFIError, match="more than 2× apart"):
        uploaded_keyframes(*pair)
    with pytest.raises(VFIError, match="more than 2× apart"):
        next(keyframes(_NoWork(), *pair, 1, None, 12, "once", "flow", Advanced(), 0, False))
    assert PairSpec(*pair).mismatch == build_parser().parse_args(["pair", *pair, "-o", "o.mp4"]).mismatch == "auto"


def test_no_app_error_names_a_server_path():
    from ui.common import without_paths

    message = "ffmpeg could not write /tmp/a/vfi-app-1-x/requests/b/.o.partial.video.mp4: Invalid argument."
    assert without_paths(message) == "ffmpeg could not write .o.partial.video.mp4: Invalid argument."
    for kept in ("fps 60000/1001 is fine.", "Image file 1x1.png is too small.", "Pick 2 / 3."):
        assert without_paths(kept) == kept
