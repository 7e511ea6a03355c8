"""The app's logic without gradio: jobs, their cost, the generative backend's config, each value checked once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vfi.backends
import vfi.modes.clip
from vfi.app import actions, jobs
from vfi.app.concurrency import MemoryBudget
from vfi.app.config import Advanced, AppConfig
from vfi.app.jobs import KeyframesJob
from vfi.app.plan import LOAD_SECONDS, STEP_SECONDS_1024
from vfi.backends.qwen_edit import QwenEditConfig
from vfi.cli import build_parser
from vfi.cli.commands import qwen_config
from vfi.errors import Cancelled, VFIError
from vfi.interpolate import InterpolationSettings
from vfi.io import outputs
from vfi.io.video import probe_clip
from vfi.qwen.adapters import AdapterSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _call(config: AppConfig) -> actions.Call:
    def run(job: jobs.Job):
        return job.run(lambda done, total: None, lambda: False)

    return actions.Call(config, lambda job: jobs.execute(job, config.max_gpu_seconds, run, run), "user", "user:tab")


def test_a_clip_request_is_probed_and_checked_once(monkeypatch) -> None:
    probes, checks = [], []
    probe, plan = vfi.modes.clip.probe_clip, vfi.modes.clip.plan_clip
    monkeypatch.setattr(
        vfi.modes.clip, "probe_clip", lambda path, **limits: probes.append(path) or probe(path, **limits)
    )
    monkeypatch.setattr(vfi.modes.clip, "plan_clip", lambda *args: checks.append(args) or plan(*args))
    path, *_ = actions.clip(
        _call(AppConfig("crossfade")), str(EXAMPLES / "clip.mp4"), 2, False, "crossfade", Advanced()
    )
    assert (len(probes), len(checks)) == (1, 1)
    source, out = probe(EXAMPLES / "clip.mp4"), probe_clip(path)
    assert (out.num_frames, out.fps) == (2 * source.num_frames - 1, 2 * source.fps)


def test_clip_plan_owns_the_output_rate_and_counts(tmp_path) -> None:
    info = probe_clip(EXAMPLES / "clip.mp4")
    fast, slow = (
        vfi.modes.clip.plan_clip(info, vfi.modes.clip.ClipSettings(factor=4, slowmo=s)) for s in (False, True)
    )
    assert (fast.fps, slow.fps) == (4 * info.fps, info.fps)
    assert fast.num_frames == 4 * (info.num_frames - 1) + 1
    assert fast.frames_to_make == 3 * (info.num_frames - 1)
    crossfade = vfi.backends.create_backend("crossfade")
    with pytest.raises(VFIError, match="other settings"):
        vfi.modes.clip.interpolate_clip(fast, tmp_path / "x.mp4", crossfade, vfi.modes.clip.ClipSettings(factor=2))


def test_qwen_edit_config_parses_specs_and_names_the_field() -> None:
    config = QwenEditConfig(adapters=("org/lora@0.5",), lightning="org/fast")
    assert config.adapters == (AdapterSpec("org/lora", 0.5),) and config.lightning == AdapterSpec("org/fast")
    assert (config.steps_or_default(), config.guidance_or_default(), config.resolution) == (8, 1.0, None)
    assert (QwenEditConfig().steps_or_default(), QwenEditConfig().guidance_or_default()) == (30, 4.0)
    for field, value in (("resolution", 100), ("steps", 1), ("guidance", -1.0), ("batch", 0), ("base_model", "")):
        with pytest.raises(VFIError, match=field):
            QwenEditConfig(**{field: value})


def test_cli_and_app_build_the_same_config() -> None:
    args = build_parser().parse_args(
        ["pair", "a.png", "b.png", "-o", "o.mp4", "--backend", "qwen-edit", "--adapter", "org/lora@0.8"]
    )
    app = AppConfig("qwen-edit", adapters=(AdapterSpec("org/lora", 0.8),))
    unset = Advanced("org/lora", 0.8, False, None, None, None, "")  # None: the adapter's value, as the CLI's unset
    assert qwen_config(args) == app.backend_config("qwen-edit", unset)
    assert app.backend_config("flow", unset) is None
    chosen = app.backend_config("qwen-edit", Advanced("none", 1.0, True, 256, 12, 2.0, " p "))
    assert (chosen.adapters, chosen.lightning, chosen.resolution, chosen.prompt) == ((), None, 256, "p")


def test_gpu_cost_follows_the_config_defaults() -> None:
    pair = (np.zeros((32, 32, 3), np.uint8),) * 2
    fast = KeyframesJob(
        "qwen-edit", QwenEditConfig(lightning="org/fast", resolution=1024), InterpolationSettings(), pair
    )
    full = KeyframesJob("qwen-edit", QwenEditConfig(resolution=512), InterpolationSettings(depth=2), pair)
    assert fast.gpu_seconds() == int(LOAD_SECONDS + 1.5 * 8 * STEP_SECONDS_1024)  # 1 frame, 8 steps, no CFG
    assert full.gpu_seconds() == int(LOAD_SECONDS + 1.5 * 30 * STEP_SECONDS_1024 / 4 * 2 * 3)


def test_playback() -> None:
    a, b = np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.uint8)
    assert len(jobs.playback_chain(a, b, "loop")) == 3 and len(jobs.playback_chain(a, b, "ping-pong")) == 2
    frames = [a, b, a + 2, a + 3]
    assert jobs.apply_playback(frames, "loop") == frames[:-1]
    assert [f[0, 0, 0] for f in jobs.apply_playback(frames, "ping-pong")] == [0, 1, 2, 3, 2, 1]
    with pytest.raises(VFIError, match="playback must be one of"):
        jobs.playback_chain(a, b, "backwards")


def test_deep_generative_runs_are_split_into_gpu_calls_that_fit_the_limit() -> None:
    first, last = (np.full((64, 96, 3), v, np.uint8) for v in (0, 200))
    heavy = QwenEditConfig(steps=50, resolution=1024, guidance=4.0, batch=4)  # 90 s per frame with the margin
    job = KeyframesJob("qwen-edit", heavy, InterpolationSettings(depth=4), keyframes=(first, last))
    assert job.gpu_seconds() > 1000 and job.gpu_seconds(3) == 300
    sizes = [len(batch) for batch in job.check(300).gpu_batches(list(range(8)))]
    assert sizes == [3, 3, 2]  # level 4's eight frames in three calls, each under 300 s
    light = QwenEditConfig(steps=8, resolution=512, guidance=1.0, batch=4)
    light_job = KeyframesJob("qwen-edit", light, InterpolationSettings(depth=4), keyframes=(first, last))
    assert [len(b) for b in light_job.check(300).gpu_batches(list(range(8)))] == [4, 4]  # one backend batch a call
    with pytest.raises(VFIError, match="needs about 120 s of GPU time in one call"):
        job.check(100).gpu_batches(list(range(8)))
    hybrid = KeyframesJob(
        "qwen-edit", heavy, InterpolationSettings(depth=4, generative_depth=1), keyframes=(first, last), refine="flow"
    )
    assert hybrid.frames_to_make() == 1  # the model makes the middle frame only; flow makes the other 14
    with pytest.raises(VFIError, match="refine must be one of"):
        KeyframesJob("qwen-edit", heavy, InterpolationSettings(depth=4), keyframes=(first, last), refine="qwen-edit")


def test_a_stream_yields_the_keyframes_then_each_level_and_stops_between_calls() -> None:
    first, last = (np.full((64, 96, 3), v, np.uint8) for v in (0, 200))
    job = KeyframesJob("crossfade", None, InterpolationSettings(depth=None, frames=3), keyframes=(first, last, first))
    updates = list(jobs.FrameStream(job, 300, KeyframesJob.make))
    assert [sorted(u) for u in updates] == [[0, 4, 8], [1, 2, 3, 5, 6, 7]]
    stream = jobs.FrameStream(job, 300, KeyframesJob.make, should_cancel=lambda: True)
    assert sorted(next(stream)) == [0, 4, 8]  # the keyframes are shown before any work
    with pytest.raises(Cancelled):
        next(stream)


def test_outputs_come_mp4_first(tmp_path) -> None:
    frames = [np.full((32, 48, 3), v, np.uint8) for v in range(0, 250, 25)]
    reports = []
    steps = list(
        outputs.keyframe_outputs(frames, tmp_path, 10.0, lambda done, **kw: reports.append((done, kw["desc"])))
    )
    assert [(s.video.exists(), len(s.frames), s.archive is not None, s.gif is not None) for s in steps] == [
        (True, 0, False, False),
        (True, 10, True, False),
        (True, 10, True, True),
    ]
    assert probe_clip(steps[0].video).num_frames == 10
    assert ((9, 10), "encoding the MP4") in reports  # progress while encoding


def test_the_memory_budget_queues_requests_that_do_not_fit_together() -> None:
    import threading
    import time

    budget = MemoryBudget(10)
    held, peak, lock = [0], [0], threading.Lock()

    def request(nbytes: int) -> None:
        with budget.reserve(nbytes):
            with lock:
                held[0] += min(nbytes, 10)
                peak[0] = max(peak[0], held[0])
            time.sleep(0.05)
            with lock:
                held[0] -= min(nbytes, 10)

    threads = [threading.Thread(target=request, args=(n,)) for n in (6, 6, 4, 30, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] <= 10 and budget.used == 0  # 30 is larger than the budget: it ran alone
    waited = []
    stop = {"should_cancel": lambda: bool(waited), "on_wait": lambda: waited.append(1)}
    with budget.reserve(8), pytest.raises(Cancelled, match="waiting for memory"), budget.reserve(4, **stop):
        pass
    assert budget.used == 0


def test_memory_estimate_of_the_largest_keyframes() -> None:
    first = np.zeros((4000, 6000, 3), np.uint8)  # pages never touched
    job = KeyframesJob("flow", None, InterpolationSettings(depth=3), keyframes=(first, first))
    pixels = 6000 * 4000
    assert job.memory_bytes() == pixels * (jobs.KEPT_BYTES_PER_PIXEL * 9 + jobs.WORK_BYTES_PER_PIXEL)


def test_memory_estimate_of_a_storyboard_and_a_reroll() -> None:
    from dataclasses import replace

    from vfi.app.storyboard import StoryboardJob
    from vfi.modes.storyboard import Storyboard

    frame = np.zeros((40, 60, 3), np.uint8)
    board = Storyboard.build(3, 2)  # depth 2 in both transitions: 3 + 3 in-betweens
    job = StoryboardJob("flow", None, None, keyframes=(frame, frame, frame), storyboard=board)
    assert job.frames_to_make() == 6
    per_frame = 40 * 60 * jobs.KEPT_BYTES_PER_PIXEL
    assert job.memory_bytes() == per_frame * (6 + 3) + 40 * 60 * jobs.WORK_BYTES_PER_PIXEL
    take, _ = job.run(lambda done, total: None, lambda: False)
    again = replace(job, take=take, reroll=(2, 7))
    assert (
        again.memory_bytes()
        == per_frame * (len(take.frames) + again.frames_to_make()) + 40 * 60 * jobs.WORK_BYTES_PER_PIXEL
    )


def test_storyboard_actions_hold_their_memory_while_they_run(tmp_path: Path, monkeypatch) -> None:
    from vfi.app import storyboard as storyboard_actions

    monkeypatch.setattr(jobs, "request_folder", lambda session: tmp_path)
    admitted, running = [], []

    class Admit:
        def __init__(self, nbytes: int) -> None:
            admitted.append(nbytes)

        def __enter__(self) -> None:
            running.append(True)

        def __exit__(self, *exc) -> None:
            running.append(False)

    def run(job):
        assert running[-1], "the job ran outside its admission"
        return job.run(lambda done, total: None, lambda: False)

    call = actions.Call(AppConfig(backend="flow"), run, None, "key", Admit)
    examples = Path(__file__).resolve().parent.parent / "examples"
    files = [str(examples / name) for name in ("astronaut_first.png", "astronaut_last.png")]
    *_, previous = storyboard_actions.storyboard(call, files, "", "1", 0, 10, "", "flow", Advanced(), 0)
    with pytest.raises(VFIError, match="deterministic"):  # refused before it is admitted
        storyboard_actions.reroll_frame(call, previous, 1, "", 10)
    assert len(admitted) == 1
    # A re-roll a generative backend would make (flow stands in for its pixels) is admitted like the storyboard.
    monkeypatch.setattr(storyboard_actions.StoryboardJob, "generative", property(lambda job: True))
    storyboard_actions.reroll_frame(call, previous, 1, "", 10)
    assert len(admitted) == 2 and all(nbytes > 0 for nbytes in admitted) and running == [True, False] * 2


def _forked(function):
    """ZeroGPU's GPU call, emulated: ``function`` runs in a fork of this process, whose changes die with it.

    The fork computes on one CPU thread: a fork inherits torch's CPU thread pool, once the parent has used it
    (another test module's generation), in a state that hangs (a real ZeroGPU call computes on the GPU)."""
    import multiprocessing

    def in_fork(*args):
        import torch

        torch.set_num_threads(1)
        return function(*args)

    def call(*args):
        context = multiprocessing.get_context("fork")
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=lambda: writer.send(in_fork(*args)))
        process.start()
        result = reader.recv()
        process.join()
        return result

    return call


@pytest.mark.slow
def test_zerogpu_calls_switch_adapters_loaded_in_the_main_process(tiny_models, tmp_path) -> None:
    """Fast mode on and off and another adapter, each streamed through emulated ZeroGPU calls: no call loads an
    adapter from disk (they were loaded in the main process) and each call's frames follow its own switch."""
    from vfi.qwen.pipeline import load_pipeline
    from vfi.testing.tiny_model import build_tiny_adapter

    base = tiny_models["side-by-side"]["base"]
    adapter, other = tiny_models["side-by-side"]["adapter"], build_tiny_adapter(base, tmp_path / "other", seed=7)
    lightning = build_tiny_adapter(base, tmp_path / "Qwen-Image-Lightning-2steps-", seed=8)
    first, last = (np.full((64, 64, 3), v, np.uint8) for v in (30, 220))
    loaded_in_calls: list[set] = []

    def gpu(job, requests):  # runs in the forked "GPU process"
        before = set(load_pipeline(str(base), device="cpu").adapters)
        frames = job.make(requests)
        return frames, set(load_pipeline(str(base), device="cpu").adapters) - before

    def on_gpu(job, requests):
        frames, loaded = _forked(gpu)(job, requests)
        loaded_in_calls.append(loaded)
        return frames

    def middle(spec, fast: bool) -> np.ndarray:
        config = QwenEditConfig(
            str(base),
            (AdapterSpec(str(spec)),),
            lightning=str(lightning) if fast else None,
            resolution=64,
            steps=2,
            guidance=1.0,
            device="cpu",
            register=False,
        )
        job = KeyframesJob("qwen-edit", config, InterpolationSettings(depth=1), keyframes=(first, last))
        return list(jobs.FrameStream(job, 300, on_gpu))[-1][1]

    runs = [middle(adapter, False), middle(adapter, True), middle(other, False), middle(adapter, False)]
    assert loaded_in_calls == [set()] * 4
    assert np.array_equal(runs[0], runs[3])
    assert all(np.abs(runs[0].astype(int) - run).max() > 0 for run in runs[1:3])
