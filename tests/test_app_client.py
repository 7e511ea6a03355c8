"""The app over HTTP, as a user's script sees it: ``app.py`` in a subprocess, driven with gradio_client."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from app_server import EXAMPLES, ROOT, running_app

pytestmark = pytest.mark.slow

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from vfi.backends.crossfade import CrossfadeBackend  # noqa: E402
from vfi.backends.flow import FlowBackend  # noqa: E402
from vfi.errors import Cancelled, VFIError  # noqa: E402
from vfi.interpolate import InterpolationSettings, interpolate_frames  # noqa: E402
from vfi.io.images import load_image, match_keyframes  # noqa: E402
from vfi.io.video import probe_clip  # noqa: E402
from vfi.quality.metrics import agreement, ssim  # noqa: E402

PAIRS = ("astronaut", "coffee", "rocket")


def _pair(name: str) -> tuple[Path, Path]:
    return EXAMPLES / f"{name}_first.png", EXAMPLES / f"{name}_last.png"


def _loaded_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The example pair as the app loads it (the last keyframe matched to the first)."""
    pair = match_keyframes(*_pair(name))
    return pair.first, pair.last


def keyframes(client: Client, first: Path, last: Path, **options):
    """Call ``/keyframes`` with the UI's defaults except ``options``."""
    args = dict(depth=2, count=0, fps=10, playback="once", backend="flow", prompt="", seed=0, randomize=False)
    args.update(options)
    return client.predict(handle_file(str(first)), handle_file(str(last)), api_name="/keyframes", **args)


@pytest.fixture(scope="module")
def flow_app(tmp_path_factory) -> str:
    with running_app(tmp_path_factory.mktemp("flow_app") / "app.log", "--backend", "flow") as url:
        yield url


@pytest.fixture
def client(flow_app) -> Client:
    """A new session (its heartbeat stream ends with the app server: closing it would wait 1 s for that)."""
    return Client(flow_app, verbose=False)


def test_importing_the_app_loads_no_torch():
    code = "import sys, app; print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_configuration_from_flags_and_environment(monkeypatch):
    import app
    import vfi.app.config
    from vfi.app.config import Advanced
    from vfi.qwen.adapters import AdapterSpec

    for name in (
        "VFI_BACKEND",
        "VFI_BASE_MODEL",
        "VFI_ADAPTER",
        "VFI_LIGHTNING",
        "VFI_PRELOAD",
        "SPACE_ID",
        "SPACES_ZERO_GPU",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(vfi.app.config, "cuda_available", lambda: False)
    config = app.parse_args([])
    assert (config.backend, config.generative, config.preload) == ("flow", False, False)
    assert "qwen-edit" not in config.backends
    monkeypatch.setenv("VFI_ADAPTER", "user/lora@0.8, ./local, user/loras/sub/v2.safetensors:v2@0.5")
    monkeypatch.setenv("VFI_BASE_MODEL", "/models/base")
    config = app.parse_args(["--backend", "crossfade", "--port", "7999"])
    in_repo = AdapterSpec("user/loras", 0.5, "v2", "sub/v2.safetensors")
    assert config.adapters == (AdapterSpec("user/lora", 0.8), AdapterSpec("./local"), in_repo)
    chosen = config.backend_config("qwen-edit", Advanced(in_repo.reference, 0.7))
    assert chosen.adapters == (AdapterSpec("user/loras", 0.7, "v2", "sub/v2.safetensors"),)
    assert (config.backend, config.base_model, config.port, config.generative) == (
        "crossfade",
        "/models/base",
        7999,
        True,
    )
    monkeypatch.setattr(vfi.app.config, "cuda_available", lambda: True)
    assert app.parse_args([]).backend == "qwen-edit"  # a GPU and an adapter
    monkeypatch.delenv("VFI_ADAPTER")
    config = app.parse_args([])  # a GPU but no adapter: the base model alone fails at interpolation
    assert (config.backend, config.generative) == ("flow", True)
    assert "no interpolation adapter" in config.describe() and "VFI_ADAPTER" in config.describe()
    with pytest.raises(VFIError, match="backend must be one of"):
        app.parse_args(["--backend", "nope"])


def test_stop_and_gpu_budget_are_checked_before_frames_are_made():
    import app
    from vfi.app.jobs import KeyframesJob
    from vfi.backends.qwen_edit import QwenEditConfig

    first, last = _loaded_pair("astronaut")
    user = SimpleNamespace(session_hash="user-1")
    key = app.CANCELS.start(user.session_hash, "keyframes")
    work = KeyframesJob(
        "crossfade", None, InterpolationSettings(depth=None, frames=10), keyframes=(first, last), cancel_key=key
    )
    assert app.CANCELS.stop(user.session_hash, "keyframes") == ""  # the run has not begun: nothing to say yet
    with pytest.raises(Cancelled, match="Stopped after 0 of 10 frames"):
        app.run_model(work)
    with pytest.raises(Cancelled):  # still stopped: one action may run several times (compare)
        app.execute(work, app.AppConfig("flow"), None)
    work = replace(work, cancel_key=app.CANCELS.start(user.session_hash, "keyframes"))  # the user's next action
    assert len(app.execute(work, app.AppConfig("flow"), None).frames) == 12
    heavy = QwenEditConfig(steps=50, resolution=1024, guidance=4.0)
    work = KeyframesJob("qwen-edit", heavy, InterpolationSettings(depth=4), keyframes=(first, last))
    assert work.gpu_seconds() > 1000  # 15 frames × 50 steps × CFG at 1024²
    with pytest.raises(VFIError, match="needs about .* s of GPU time"):
        app.execute(work, app.AppConfig("flow", max_gpu_seconds=300), None)  # run whole: refused before loading


def test_every_action_has_an_endpoint(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/keyframes", "/clip", "/clip_info", "/compare"} <= set(endpoints)
    assert not [name for name in endpoints if "stop" in name]  # Stop is the page's, not the public API's


def test_keyframes_stream_the_gallery_before_the_video(client):
    job = client.submit(
        handle_file(str(_pair("astronaut")[0])),
        handle_file(str(_pair("astronaut")[1])),
        depth=2,
        fps=10,
        backend="flow",
        prompt="",
        api_name="/keyframes",
    )
    updates = [tuple(update) for update in job]  # every update the client saw, in order
    final = job.result()
    before_video = [u for u in updates if u[0] is None]
    assert len(before_video) >= 2  # the keyframes, then the frames made, before any video
    assert [len(u[1]) for u in before_video][:2] == [2, 5]
    assert probe_clip(final[0]).num_frames == 5 and final[3] is not None  # MP4 and, last, the GIF


def test_the_app_is_an_mcp_server_with_keyframes_and_clip_tools(flow_app):
    import json
    import urllib.request

    with urllib.request.urlopen(flow_app + "gradio_api/mcp/schema", timeout=30) as response:
        tools = {tool["name"]: tool for tool in json.load(response)}
    assert {"keyframes", "clip"} <= set(tools) and not [name for name in tools if "stop" in name]
    properties = tools["keyframes"]["inputSchema"]["properties"]
    assert {"first", "last", "depth", "backend"} <= set(properties)
    assert "recursion depth" in properties["depth"]["description"]


def test_keyframes_make_an_mp4_gallery_zip_and_gif(client):
    first, last = _pair("astronaut")
    video, gallery, archive, gif, seed, info = keyframes(client, first, last, depth=2, fps=10)
    clip = probe_clip(video)
    assert (clip.num_frames, clip.fps, clip.width, clip.height) == (5, 10.0, 384, 256)
    assert len(gallery) == 5 and seed == 0 and "5 frames" in info
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == [*(f"frame_{i:04d}.png" for i in range(5)), "manifest.json"]
    assert Path(gif).read_bytes()[:6] == b"GIF89a"
    # The gallery shows the keyframes themselves at both ends (lossless PNG).
    np.testing.assert_array_equal(load_image(gallery[0]["image"]), load_image(first))
    np.testing.assert_array_equal(load_image(gallery[-1]["image"]), load_image(last))


@pytest.mark.parametrize(
    ("options", "frames"),
    [({"count": 6}, 8), ({"depth": 1, "playback": "loop"}, 4), ({"depth": 1, "playback": "ping-pong"}, 4)],
)
def test_frame_count_options(client, options, frames):
    video, gallery, *_ = keyframes(client, *_pair("coffee"), fps=8, **options)
    assert probe_clip(video).num_frames == frames == len(gallery)


def test_clip_keeps_audio_and_duration(client):
    source = probe_clip(EXAMPLES / "clip.mp4")
    info = client.predict(handle_file(str(EXAMPLES / "clip.mp4")), 2, False, api_name="/clip_info")
    assert "12 fps" in info and "24 frames" in info and "24 fps" in info
    video, text, files, _ = client.predict(handle_file(str(EXAMPLES / "clip.mp4")), 2, False, "flow", api_name="/clip")
    assert [Path(f).name for f in files] == ["manifest.json"]  # no report unless asked for
    out = probe_clip(video)
    assert out.has_audio and "audio kept" in text
    assert (out.num_frames, out.fps) == (2 * source.num_frames - 1, 2 * source.fps)
    assert abs(out.duration - source.duration) <= 1 / source.fps


def test_bad_inputs_give_a_clear_error_and_the_app_keeps_serving(client):
    with pytest.raises(AppError, match=r"README\.md is not an image we can read"):
        keyframes(client, ROOT / "README.md", _pair("astronaut")[1])
    with pytest.raises(AppError, match="cannot be matched.*aspect ratios differ"):
        keyframes(client, _pair("rocket")[0], _pair("astronaut")[1], mismatch="refuse")
    with pytest.raises(AppError, match="greater than maximum value 4"):
        keyframes(client, *_pair("astronaut"), depth=9)
    with pytest.raises(AppError) as error:
        client.predict(handle_file(str(ROOT / "README.md")), 2, False, "flow", api_name="/clip")
    assert "Traceback" not in str(error.value) and "README.md" in str(error.value)
    video, *_ = keyframes(client, *_pair("astronaut"), depth=1)
    assert probe_clip(video).num_frames == 3


@pytest.mark.parametrize(("mismatch", "how"), [("fit", "center-cropped"), ("pad", "padded with black")])
def test_mismatched_keyframes_are_fitted_and_the_summary_says_how(client, mismatch, how):
    video, gallery, *_, info = keyframes(client, _pair("rocket")[0], _pair("astronaut")[1], depth=1, mismatch=mismatch)
    assert "The last keyframe (384×256) was scaled" in info and how in info
    first = load_image(_pair("rocket")[0])
    assert load_image(gallery[-1]["image"]).shape == first.shape  # the fitted keyframe is shown as the last frame


def test_the_frames_zip_holds_a_manifest_that_replays_bit_for_bit(client, tmp_path):
    import json

    video, gallery, archive, *_ = keyframes(client, *_pair("coffee"), depth=2, seed=5)
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path / "app")
    record = json.loads((tmp_path / "app" / "manifest.json").read_text())
    assert record["command"] == "pair" and record["settings"]["depth"] == 2 and record["seeds"]["run_seed"] == 5
    assert len(record["inputs"]) == 2 and record["backend"]["name"] == "flow"
    # The user replays the downloaded manifest on their own copies of the keyframes.
    replay = [
        sys.executable,
        "-m",
        "vfi",
        "replay",
        str(tmp_path / "app" / "manifest.json"),
        "-o",
        str(tmp_path / "b.mp4"),
        "--frames-dir",
        str(tmp_path / "b"),
        "--inputs",
        *map(str, _pair("coffee")),
    ]
    subprocess.run(replay, cwd=ROOT, check=True, capture_output=True)
    made = sorted((tmp_path / "app").glob("frame_*.png"))
    again = sorted((tmp_path / "b").glob("frame_*.png"))
    assert len(made) == len(again) == 5
    for a, b in zip(made, again):
        np.testing.assert_array_equal(load_image(a), load_image(b))


def test_clip_quality_report_and_its_plot(client):
    import json

    video, text, files, plot = client.predict(
        handle_file(str(EXAMPLES / "clip.mp4")), 2, False, "flow", report=True, api_name="/clip"
    )
    report = json.loads(Path(next(f for f in files if f.endswith("report.json"))).read_text())
    assert report["n"] == 11 and report["psnr"] > 35 and 0.9 < report["ssim"] <= 1 and len(report["worst"]) == 5
    assert "Quality report:** flow rebuilt 11 dropped frames" in text
    assert plot["columns"] == ["time (s)", "PSNR (dB)"] and len(plot["data"]) == 11
    assert plot["data"][1] == [0.25, pytest.approx(report["frames"][1]["psnr"], abs=1e-3)]


def test_clip_at_a_target_fps_with_a_trim(client):
    source = handle_file(str(EXAMPLES / "clip.mp4"))
    info = client.predict(source, 2, False, "59.94", 0.2, 1.0, 0, api_name="/clip_info")
    assert "59.9401 fps, 60 frames" in info
    video, text, *_ = client.predict(source, 2, False, "flow", fps="59.94", start=1.0, api_name="/clip")
    out = probe_clip(video)
    assert (out.num_frames, out.has_audio) == (60, True) and out.fps == pytest.approx(60000 / 1001)
    with pytest.raises(AppError, match=r"The frame rate 'fast' is not a number"):
        client.predict(source, 2, False, "flow", fps="fast", api_name="/clip")
    with pytest.raises(AppError, match=r"has 0 frame\(s\) from 5 s to the end"):
        client.predict(source, 2, False, "flow", start=5, api_name="/clip")


def test_concurrent_flow_requests_return_their_own_results(flow_app):
    jobs = [(*_pair(name), depth) for name in PAIRS for depth in (1, 2)]

    def run(job):
        first, last, depth = job
        return keyframes(Client(flow_app, verbose=False), first, last, depth=depth, fps=6 + depth)

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(run, jobs))
    assert len({r[0] for r in results}) == len(jobs)  # distinct files
    for (first, last, depth), (video, gallery, *_) in zip(jobs, results):
        clip = probe_clip(video)
        assert (clip.num_frames, clip.fps) == (2**depth + 1, 6.0 + depth)
        pair = match_keyframes(first, last)
        np.testing.assert_array_equal(load_image(gallery[0]["image"]), pair.first)
        np.testing.assert_array_equal(load_image(gallery[-1]["image"]), pair.last)


def test_compare_puts_two_settings_side_by_side(client):
    video, gallery, slider, metrics = client.predict(
        handle_file(str(_pair("astronaut")[0])),
        handle_file(str(_pair("astronaut")[1])),
        "flow (optical flow)",
        "crossfade (blend)",
        2,
        8,
        prompt="",
        api_name="/compare",
    )
    clip = probe_clip(video)
    assert (clip.num_frames, clip.width, clip.height) == (5, 2 * 384, 256)
    left, right = (load_image(item["image"]) for item in gallery)
    assert np.abs(left.astype(int) - right.astype(int)).mean() > 1  # flow is not a blend
    # The image slider holds the same two middle frames; the PSNR/SSIM shown are those of the two runs.
    slid = [load_image(path) for path in slider]
    np.testing.assert_array_equal(slid[0], left)
    np.testing.assert_array_equal(slid[1], right)
    first, last = _loaded_pair("astronaut")
    flow = list(interpolate_frames((first, last), FlowBackend(), InterpolationSettings(depth=2), num_frames=2))
    fade = list(interpolate_frames((first, last), CrossfadeBackend(), InterpolationSettings(depth=2), num_frames=2))
    assert f"PSNR {agreement(flow, fade)[0]:.2f} dB" in metrics and f"SSIM {ssim(flow[2], fade[2]):.4f}" in metrics


# ------------------------------------------------------------------- the tiny generative model on CPU


def _missing_generative() -> str | None:
    for module in ("vfi.testing.tiny_model", "vfi.backends.qwen_edit"):
        if importlib.util.find_spec(module) is None:
            return f"{module} does not exist yet"
    return None


@pytest.fixture(scope="module")
def tiny_app(tmp_path_factory) -> str:
    if reason := _missing_generative():
        pytest.skip(reason)
    from vfi.testing.tiny_model import build_tiny_adapter, build_tiny_pipeline

    root = tmp_path_factory.mktemp("tiny_app")
    pipeline = build_tiny_pipeline(root / "pipeline")
    adapter = build_tiny_adapter(pipeline, root / "adapter")
    (root / "tmp").mkdir()
    env = {
        "VFI_BACKEND": "qwen-edit",
        "VFI_BASE_MODEL": str(pipeline),
        "VFI_ADAPTER": f"{adapter}@1.0",
        "TMPDIR": str(root / "tmp"),  # where the app's request folders go (test_stop_mid_run looks in them)
        "VFI_FALLBACK": "off",  # random weights make garbage frames: the fallback would replace them all
    }
    with running_app(root / "app.log", env=env, timeout=180) as url:
        yield url, str(adapter), root / "tmp"


TINY = dict(backend="qwen-edit", resolution=64, steps=2, guidance=1.0)


def test_tiny_model_keyframes(tiny_app):
    url, adapter, _ = tiny_app
    client = Client(url, verbose=False)
    video, gallery, _, _, seed, _ = keyframes(client, *_pair("astronaut"), depth=1, adapter=adapter, seed=7, **TINY)
    clip = probe_clip(video)
    assert (clip.num_frames, clip.fps, clip.width, clip.height, seed) == (3, 10.0, 384, 256, 7)
    again = keyframes(client, *_pair("astronaut"), depth=1, adapter=adapter, seed=7, **TINY)[1]
    np.testing.assert_array_equal(load_image(gallery[1]["image"]), load_image(again[1]["image"]))  # seeded
    with pytest.raises(AppError, match="midpoints only"):
        keyframes(client, *_pair("astronaut"), count=3, adapter=adapter, **TINY)
    video, gallery, *_, info = keyframes(client, *_pair("astronaut"), count=3, adapter=adapter, hybrid=True, **TINY)
    assert probe_clip(video).num_frames == 5 == len(gallery) and "hybrid" in info  # the model's midpoint, flow's rest


def test_tiny_model_adapter_vs_no_adapter(tiny_app):
    url, adapter, _ = tiny_app
    video, gallery, *_ = Client(url, verbose=False).predict(
        handle_file(str(_pair("coffee")[0])),
        handle_file(str(_pair("coffee")[1])),
        "Qwen-Image-Edit + adapter",
        "Qwen-Image-Edit, no adapter",
        1,
        8,
        adapter,
        1.0,
        False,
        64,
        2,
        1.0,
        "",
        api_name="/compare",
    )
    assert probe_clip(video).num_frames == 3
    with_adapter, without = (load_image(item["image"]) for item in gallery)
    assert not np.array_equal(with_adapter, without)


def test_preload_starts_the_advanced_section_at_the_adapters_resolution(tmp_path):
    if reason := _missing_generative():
        pytest.skip(reason)
    import app
    from vfi.qwen.adapters import AdapterSpec
    from vfi.qwen.pipeline import clear_cache
    from vfi.testing.tiny_model import build_tiny_adapter, build_tiny_pipeline

    pipeline = build_tiny_pipeline(tmp_path / "pipeline")
    adapter = build_tiny_adapter(pipeline, tmp_path / "adapter", resolution=96)
    config = app.AppConfig("qwen-edit", base_model=str(pipeline), adapters=(AdapterSpec(str(adapter)),), preload=True)
    try:
        demo = app.build_app(config, app._preload(config))
    finally:
        clear_cache()
    label = "Working resolution (longest side, px)"
    assert (
        next(b.value for b in demo.blocks.values() if getattr(b, "label", None) == label) == 96
    )  # not the 512 default


def test_stop_mid_run_ends_a_streamed_generative_run(tiny_app):
    url, adapter, tmp = tiny_app
    client = Client(url, verbose=False)
    first, last = (handle_file(str(path)) for path in _pair("coffee"))
    slow = dict(TINY, resolution=64, steps=8)
    job = client.submit(
        first, last, depth=4, count=0, fps=10, adapter=adapter, prompt="", **slow, api_name="/keyframes"
    )
    deadline = time.monotonic() + 120
    while len(job.outputs()) < 2:  # the keyframes, then the first level's frame
        assert time.monotonic() < deadline and not job.done(), "no streamed update arrived"
        time.sleep(0.05)
    job.cancel()
    # The GPU queue takes one run at a time: this one starts only once the stopped run has let go of it.
    video, *_ = keyframes(client, *_pair("astronaut"), depth=1, adapter=adapter, **TINY)
    assert probe_clip(video).num_frames == 3
    time.sleep(3)
    folders = [f for f in tmp.glob("vfi-app-*/requests/*") if f.is_dir()]
    stopped = [f for f in folders if (f / "preview" / "frame_0016.png").exists()]  # the depth-4 run's keyframe
    assert len(stopped) == 1 and not (stopped[0] / "interpolated.mp4").exists()
    assert len(list((stopped[0] / "preview").glob("*.png"))) < 17  # stopped before the last level


def test_the_tests_keep_their_temporary_files_in_their_own_root(client):
    import tempfile

    from conftest import TEMP_ROOT

    video, *_ = keyframes(client, *_pair("coffee"), depth=1)
    assert Path(video).is_relative_to(TEMP_ROOT / "gradio")  # gradio_client's downloads, not /tmp/gradio
    assert Path(tempfile.gettempdir()) == TEMP_ROOT  # its scratch folders, and the app's and CLIs' it starts
