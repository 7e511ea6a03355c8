"""The vfi Gradio app (local and as a Hugging Face Space): ``python app.py [--host H] [--port P]``.

UI wiring only: what each tab does is :mod:`vfi.actions`, jobs (cost, streaming in GPU calls) :mod:`vfi.jobs`, running and stopping them :mod:`vfi.runs`, the
configuration (flags over environment variables, see README) and UI values → backend config :mod:`vfi.service`.
"""

from __future__ import annotations

try:  # ZeroGPU wants ``spaces`` imported before anything that could touch CUDA.
    import spaces
except ImportError:
    spaces = None

import contextlib
import functools
import inspect
import logging
import os
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline start, nothing phoned home

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from vfi import actions, jobs, storyboard_actions  # noqa: E402
from vfi.errors import VFIError  # noqa: E402
from vfi.jobs import GENERATIVE, Job  # noqa: E402
from vfi.scenes import SCENE_THRESHOLD  # noqa: E402
from vfi.service import FAST_GUIDANCE, FAST_STEPS, NO_ADAPTER, STATUS, Advanced, AppConfig, parse_args  # noqa: E402
from vfi.signals import sigterm_as_interrupt  # noqa: E402

log = logging.getLogger("vfi.app")

EXAMPLES = Path(__file__).resolve().parent / "examples"
#: Marks the progress parameter of an event function (Gradio gives each call its own tracker).
PROGRESS = gr.Progress(track_tqdm=True)
#: Requests waiting beyond this many are turned away (a Space's queue must not grow without bound).
QUEUE_SIZE = 32
CANCELS = jobs.CancelRegistry()
#: The quality report's plot: the time of each rebuilt frame in the clip and its PSNR.
PSNR_AXES = ("time (s)", "PSNR (dB)")


def run_model(job: Job, progress: gr.Progress | None = None):
    """Run a whole ``job`` (clip and compare); on a ZeroGPU Space a generative one runs in the GPU process."""
    return job.run(jobs.EtaProgress(progress), lambda: CANCELS.stopped(job.cancel_key))


def make_frames(job: Job, requests: list) -> list:
    """The GPU work of one call of a streamed job: the generative backend's frames for ``requests``."""
    return job.make(requests)


if spaces:  # each call asks ZeroGPU for the time its frames are estimated to need
    run_on_gpu = spaces.GPU(duration=lambda job, progress=None: job.gpu_seconds())(run_model)
    make_on_gpu = spaces.GPU(duration=lambda job, requests: job.gpu_seconds(len(requests)))(make_frames)
else:
    run_on_gpu, make_on_gpu = run_model, make_frames


def execute(job: Job, config: AppConfig, progress: gr.Progress | None):
    """Check, then run ``job`` whole: generative jobs on the GPU, the others right away."""
    return jobs.execute(
        job, config.max_gpu_seconds, lambda j: run_model(j, progress), lambda j: run_on_gpu(j, progress)
    )


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def _call(config: AppConfig, request: gr.Request | None, progress: gr.Progress | None, tab: str) -> actions.Call:
    """A new user action on ``tab``: its runs go through :func:`execute` (whole) or :func:`make_on_gpu`
    (streamed); a Stop pressed before it does not count, one pressed during it is read here, between GPU calls."""
    key = CANCELS.start(_session(request), tab)
    budget = jobs.memory_budget(config.memory_budget_mb * 2**20)
    wait = (lambda: progress(0, desc="waiting for memory")) if progress is not None else (lambda: None)

    def admit(nbytes: int):
        return budget.reserve(nbytes, lambda: CANCELS.stopped(key), wait)

    return actions.Call(
        config, lambda job: execute(job, config, progress), _session(request), key, admit,
        make_on_gpu=make_on_gpu, report=progress, should_cancel=lambda: CANCELS.stopped(key),
    )  # fmt: skip


def _client_alive() -> Callable[[], bool]:
    """Whether the client of the event being processed is still there (Gradio marks the event dead when the
    client's stream closes); call it in the event's task."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)

    def alive() -> bool:
        event = queue.event_ids_to_events.get(event_id) if queue is not None and event_id else None
        return event is None or event.alive

    return alive


async def _run(call: actions.Call, action: Callable, *args):
    """``action(call, *args)`` off the event loop; a cancelled event or a client gone away stops it between frames."""
    return await CANCELS.run(call.cancel_key, functools.partial(action, call, *args), _client_alive())


async def _stream(call: actions.Call, action: Callable, *args) -> AsyncIterator:
    """The updates of the generator ``action(call, *args)``, each made off the event loop; a cancelled event or a
    client gone away stops it at its next check, and the event ends only after the run has."""
    async for update in CANCELS.stream(call.cancel_key, functools.partial(action, call, *args), _client_alive()):
        yield update


@contextlib.contextmanager
def _shown_as_gr_error(name: str) -> Iterator[None]:
    """User errors become ``gr.Error`` (one sentence); anything else is logged and shown as a short message."""
    try:
        yield
    except gr.Error:
        raise
    except VFIError as error:  # Cancelled included: "Stopped after N of M frames."
        raise gr.Error(str(error), print_exception=False) from None
    except Exception:
        log.exception("unexpected error in %s", name)
        raise gr.Error("Something went wrong on the server; the details are in its log.") from None


def _user_errors(fn: Callable) -> Callable:
    """``fn`` (a coroutine function or an async generator function: Gradio streams the latter) with
    :func:`_shown_as_gr_error`."""
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream(*args, **kwargs):
            with _shown_as_gr_error(fn.__name__):
                async for update in fn(*args, **kwargs):
                    yield update

        return stream

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        with _shown_as_gr_error(fn.__name__):
            return await fn(*args, **kwargs)

    return wrapper


#: How long Stop waits for the run to end, to say how far it got.
STOP_WAIT_S = 30


def stop_action(tab: str) -> Callable:
    def stop(request: gr.Request) -> str:
        """Stop this user's run on ``tab``; say how far it got (on the page and as a notice)."""
        message = CANCELS.stop(_session(request), tab, wait_s=STOP_WAIT_S)
        if message:
            gr.Warning(message)
        return message

    return stop


def keyframe_image(**kwargs) -> gr.Image:
    """``gr.Image`` (filepath) whose unreadable uploads become one clear ``gr.Error``, not a preprocessing report.

    (Wrapping the instance's ``preprocess``: a subclass would make Gradio write an ``app.pyi`` stub.)
    """
    image = gr.Image(type="filepath", **kwargs)
    preprocess = image.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Exception:
            name = getattr(payload, "orig_name", None) or "The uploaded file"
            raise gr.Error(
                f"{name} is not an image we can read (PNG, JPEG, WebP, BMP, TIFF…).", print_exception=False
            ) from None

    image.preprocess = checked
    return image


def _example_pairs() -> list[list[str]]:
    return [[str(p), str(p.with_name(p.name.replace("_first", "_last")))] for p in sorted(EXAMPLES.glob("*_first.png"))]


def _run_stop(tab: str, label: str) -> tuple[gr.Button, gr.Button]:
    with gr.Row():
        return gr.Button(label, variant="primary", elem_id=f"run-{tab}"), gr.Button(
            "Stop", variant="stop", elem_id=f"stop-{tab}"
        )


def _wire_stop(button: gr.Button, tab: str, event, message: gr.Markdown) -> None:
    """Stop cancels ``event`` (or each of a list of events): the run stops at its next check and ``message``
    shows how far it got. Kept out of the API page and the MCP tools (``/stop_<tab>`` stays callable)."""
    events = list(event) if isinstance(event, list | tuple) else [event]
    button.click(stop_action(tab), None, message, cancels=events, concurrency_limit=None, api_name=f"stop_{tab}",
                 api_visibility="undocumented")  # fmt: skip


def _queue(config: AppConfig) -> dict:
    """Where the tabs' runs queue: with a generative backend, one at a time on the shared GPU queue."""
    return {"concurrency_id": "gpu", "concurrency_limit": 1} if config.generative else {"concurrency_limit": 4}


#: The arguments both the keyframes and the clip endpoint take after their own (API docs, MCP tool schemas).
BACKEND_AND_ADVANCED_ARGS = """backend: flow (optical flow, CPU), crossfade, or qwen-edit (the generative model, where configured).
adapter: the interpolation adapter (generative backend).
strength: the adapter's strength.
fast: fast mode (the Lightning adapter, few steps).
resolution: working resolution of the model, longest side in pixels.
steps: denoising steps.
guidance: true CFG scale (1 = off).
prompt: prompt (empty: the adapter's own)."""


def _documented(text: str) -> Callable[[Callable], Callable]:
    """Set an endpoint function's docstring (Gradio's API page and MCP tools read its Args)."""

    def document(fn: Callable) -> Callable:
        fn.__doc__ = text.replace("{backend_and_advanced}", textwrap.indent(BACKEND_AND_ADVANCED_ARGS, "    "))
        return fn

    return document


def keyframes_tab(config: AppConfig, backend: gr.Dropdown, advanced_inputs: list, hybrid: gr.Checkbox,
                  defaults: Advanced) -> None:  # fmt: skip
    @_documented("""Make the frames between two keyframes and return them as a video.

Streams: the frame gallery fills in as each recursion level finishes; the MP4 comes first of the files.

Args:
    first: the first keyframe (an image file).
    last: the last keyframe (an image file of the same aspect ratio).
    depth: recursion depth 1-4: 2^depth - 1 frames in between.
    count: or exactly this many frames in between (flow, crossfade, hybrid; 0 = use depth).
    fps: frame rate of the output video.
    playback: once, loop (last back to first) or ping-pong.
{backend_and_advanced}
    seed: run seed (the same seed gives the same video).
    randomize: pick a random seed.
    mismatch: keyframes of different shapes: fit (center-crop the last to the first), pad, or refuse.
    hybrid: the model makes the middle frame, the flow backend the rest.

Returns:
    The MP4, the frames (gallery), a zip of PNG frames (with the run's manifest), a GIF, the seed used and a
    summary (saying how mismatched keyframes were fitted).
""")
    @_user_errors
    async def keyframes(first, last, depth, count, fps, playback, backend, adapter, strength, fast, resolution,
                        steps, guidance, prompt, seed, randomize, mismatch="fit", hybrid=False,
                        request: gr.Request = None, progress=PROGRESS):  # fmt: skip
        advanced = Advanced.from_ui(adapter, strength, fast, resolution, steps, guidance, prompt)
        call = _call(config, request, progress, "keyframes")
        async for update in _stream(call, actions.keyframes, first, last, depth, count, fps, playback, backend,
                                    advanced, seed, randomize, mismatch, hybrid):  # fmt: skip
            yield update

    with gr.Tab("Keyframes"):
        with gr.Row():
            first = keyframe_image(label="First keyframe", sources=["upload", "clipboard"], elem_id="first")
            last = keyframe_image(label="Last keyframe", sources=["upload", "clipboard"], elem_id="last")
        with gr.Row():
            depth = gr.Slider(1, 4, value=3, step=1, label="Depth (2^depth − 1 in-betweens)")
            count = gr.Number(0, precision=0, minimum=0, maximum=120, label="Or exactly N in-betweens (flow/crossfade/hybrid; 0 = use depth)")  # fmt: skip
            fps = gr.Slider(1, 60, value=12, step=1, label="Output fps")
            playback = gr.Radio(list(jobs.PLAYBACKS), value="once", label="Playback")
        with gr.Row():
            seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")
            randomize = gr.Checkbox(value=False, label="Randomize seed")
            mismatch = gr.Dropdown(
                [("Fit: crop the last to the first", "fit"), ("Pad the last to the first", "pad"), ("Refuse", "refuse")],
                value="fit", label="Keyframes of different shapes",
            )  # fmt: skip
        run, stop = _run_stop("keyframes", "Interpolate")
        with gr.Row():
            video = gr.Video(label="Video", autoplay=True, loop=True, elem_id="video-keyframes")
            gallery = gr.Gallery(label="Frames", columns=6, height=320, elem_id="gallery-keyframes")
        with gr.Row():
            zip_file = gr.File(label="All frames (PNG, zip)")
            gif = gr.File(label="GIF")
            seed_used = gr.Number(label="Seed used", precision=0, interactive=False)
        info = gr.Markdown(label="Summary", elem_id="info-keyframes")
        outputs = [video, gallery, zip_file, gif, seed_used, info]
        event = run.click(
            keyframes,
            [first, last, depth, count, fps, playback, backend, *advanced_inputs, seed, randomize, mismatch, hybrid],
            outputs, api_name="keyframes", **_queue(config),
        )  # fmt: skip
        _wire_stop(stop, "keyframes", event, info)

        async def keyframes_example(first_path, last_path, request: gr.Request = None, progress=PROGRESS):
            async for update in keyframes(first_path, last_path, 3, 0, 12, "once", config.backend,
                                          *defaults.values(), 0, False, "fit", False, request, progress):  # fmt: skip
                yield update

        gr.Examples(_example_pairs(), [first, last], outputs, fn=keyframes_example, cache_examples=True,
                    cache_mode="lazy", label="Examples (click one: its video is made once, then cached)",
                    elem_id="examples-keyframes")  # fmt: skip


def clip_tab(config: AppConfig, backend: gr.Dropdown, advanced_inputs: list, defaults: Advanced) -> None:
    def clip_info(video, factor, slowmo, fps="", scene_threshold=SCENE_THRESHOLD, start=0, end=0) -> str:
        """What the uploaded clip is, what clip mode will make of it, or why it cannot."""
        return actions.describe_clip(video, factor, slowmo, fps, scene_threshold, start, end)

    @_documented("""Make a clip smoother: factor× the frame rate (or factor× slower), audio kept.

Args:
    video: the input clip (a video file, up to 60 s).
    factor: 2, 4 or 8.
    slowmo: keep the frame rate and play factor× slower instead.
{backend_and_advanced}
    fps: or a target frame rate (60, 59.94, 60000/1001; empty: use the factor).
    scene_threshold: scene-cut threshold (0.05-1); no frames are made across a cut.
    start: start of the part to interpolate, in seconds.
    end: its end in seconds (0: the clip's end).
    report: also make the quality report (drop frames, rebuild them, score them).

Returns:
    The interpolated MP4, a summary, the run's manifest and the quality report (JSON files) and the
    report's PSNR over time.
""")
    @_user_errors
    async def clip(video, factor, slowmo, backend, adapter, strength, fast, resolution, steps, guidance, prompt, fps="",
             scene_threshold=SCENE_THRESHOLD, start=0, end=0, report=False, request: gr.Request = None,
             progress=PROGRESS):  # fmt: skip
        advanced = Advanced.from_ui(adapter, strength, fast, resolution, steps, guidance, prompt)
        call = _call(config, request, progress, "clip")
        path, summary, files, points = await _run(
            call, actions.clip, video, factor, slowmo, backend, advanced, fps, scene_threshold, start, end, report
        )
        return path, summary, files, pd.DataFrame(points, columns=list(PSNR_AXES))

    with gr.Tab("Clip"):
        with gr.Row():
            clip_in = gr.Video(label="Input clip", sources=["upload"], elem_id="clip-in")
            clip_out = gr.Video(label="Interpolated clip", autoplay=True, elem_id="video-clip")
        with gr.Row():
            factor = gr.Radio([("×2", 2), ("×4", 4), ("×8", 8)], value=2, label="Frame-rate factor")
            slowmo = gr.Checkbox(value=False, label="Slow motion (keep the fps: plays factor× slower)")
            fps = gr.Textbox("", label="Or a target fps (60, 59.94, 60000/1001; empty: use the factor)")
        with gr.Row():
            threshold = gr.Slider(0.05, 1.0, value=SCENE_THRESHOLD, step=0.05, label="Scene-cut threshold")
            start = gr.Number(0, minimum=0, label="Start (s)")
            end = gr.Number(0, minimum=0, label="End (s, 0 = the clip's end)")
            report = gr.Checkbox(
                value=False, label="Quality report (drop frames, rebuild, score)", elem_id="report-clip"
            )
        timing = [fps, threshold, start, end]
        details = gr.Markdown(clip_info(None, 2, False), label="About the clip", elem_id="info-clip-in")
        run, stop = _run_stop("clip", "Interpolate clip")
        result = gr.Markdown(label="Summary", elem_id="info-clip")
        with gr.Row():
            downloads = gr.File(label="Manifest and report (JSON)", file_count="multiple", elem_id="files-clip")
            plot = gr.LinePlot(x=PSNR_AXES[0], y=PSNR_AXES[1], title="Rebuilt frames: PSNR over time", height=240,
                               elem_id="plot-clip")  # fmt: skip
        gr.on([clip_in.change, factor.change, slowmo.change, *(c.change for c in timing)], clip_info,
              [clip_in, factor, slowmo, *timing], details, api_name="clip_info")  # fmt: skip
        event = run.click(clip, [clip_in, factor, slowmo, backend, *advanced_inputs, *timing, report],
                          [clip_out, result, downloads, plot], api_name="clip", **_queue(config))  # fmt: skip
        _wire_stop(stop, "clip", event, result)

        async def clip_example(path, request: gr.Request, progress=PROGRESS):
            return await clip(path, 2, False, config.backend, *defaults.values(), request=request, progress=progress)

        gr.Examples([[str(EXAMPLES / "clip.mp4")]], [clip_in], [clip_out, result, downloads, plot], fn=clip_example,
                    cache_examples=True, cache_mode="lazy", label="Example clip (2 s, 12 fps, with a tone)")  # fmt: skip


def storyboard_tab(config: AppConfig, backend: gr.Dropdown, advanced_inputs: list) -> None:
    @_user_errors
    async def storyboard(files, order, depth, frames_per_pair, fps, prompts, backend, adapter, strength, fast, resolution,
                   steps, guidance, prompt, seed, request: gr.Request, progress=PROGRESS):  # fmt: skip
        """Several keyframes in order → one video (MP4, frame gallery, PNG zip, summary)."""
        advanced = Advanced.from_ui(adapter, strength, fast, resolution, steps, guidance, prompt)
        call = _call(config, request, progress, "storyboard")
        return await _run(call, storyboard_actions.storyboard, files, order, depth, frames_per_pair, fps, prompts,
                          backend, advanced, seed)  # fmt: skip

    @_user_errors
    async def reroll(previous, index, locked, fps, request: gr.Request, progress=PROGRESS):
        """Re-roll one in-between of the last storyboard (new seed); the frames made from it are redone too."""
        call = _call(config, request, progress, "storyboard")
        return await _run(call, storyboard_actions.reroll_frame, previous, index, locked, fps)

    @_user_errors
    async def lock(locked, index):
        """Lock the picked frame (a re-roll never changes it), or unlock it (no run: nothing to stop)."""
        return storyboard_actions.toggle_lock(locked, index)

    def pick(event: gr.SelectData) -> int:
        return event.index

    with gr.Tab("Storyboard"):
        gr.Markdown("Several keyframes → one video. Each keyframe appears once, unchanged; the order below sets "
                    "how they play. Then pick a frame to re-roll it (new seed) or lock it.")  # fmt: skip
        with gr.Row():
            files = gr.File(label="Keyframes (several images)", file_count="multiple", file_types=["image"],
                            type="filepath", elem_id="sb-files")  # fmt: skip
            keys = gr.Gallery(label="Order of play", columns=6, height=200, elem_id="sb-order-preview")
        with gr.Row():
            order = gr.Textbox("", label="Order (image numbers, e.g. 2,1,3; empty = upload order)", elem_id="sb-order")
            depth = gr.Textbox("2", label="Depth: one for all, or one per transition (e.g. 3,2,3)", elem_id="sb-depth")
            frames_per_pair = gr.Number(0, precision=0, minimum=0, maximum=120, label="Or N in-betweens per transition (flow/crossfade)")  # fmt: skip
            fps = gr.Slider(1, 60, value=12, step=1, label="Output fps")
            seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")
        prompts = gr.Textbox("", lines=2, label="Prompts (generative backend): one line per transition, empty = the adapter's")  # fmt: skip
        run, stop = _run_stop("storyboard", "Make storyboard")
        with gr.Row():
            video = gr.Video(label="Video", autoplay=True, loop=True, elem_id="video-storyboard")
            gallery = gr.Gallery(label="Frames (click one to pick it)", columns=6, height=320, elem_id="gallery-storyboard")  # fmt: skip
        with gr.Row():
            picked = gr.Number(None, precision=0, minimum=0, label="Picked frame", elem_id="sb-picked")
            locked = gr.Textbox("", label="Locked frames", elem_id="sb-locked")
            reroll_button = gr.Button("Re-roll picked frame", elem_id="sb-reroll")
            lock_button = gr.Button("Lock / unlock picked frame", elem_id="sb-lock")
        zip_file = gr.File(label="All frames (PNG, zip)")
        info = gr.Markdown(elem_id="info-storyboard")
        state = gr.State(None)
        gr.on([files.change, order.change], storyboard_actions.preview, [files, order], keys, queue=False,
              api_visibility="private")  # fmt: skip
        outputs = [video, gallery, zip_file, info, state]
        event = run.click(
            storyboard, [files, order, depth, frames_per_pair, fps, prompts, backend, *advanced_inputs, seed], outputs,
            api_name="storyboard", **_queue(config),
        )  # fmt: skip
        gallery.select(pick, None, picked, queue=False, api_visibility="private")
        rerolled = reroll_button.click(reroll, [state, picked, locked, fps], outputs, api_name="reroll",
                                       **_queue(config))  # fmt: skip
        _wire_stop(stop, "storyboard", [event, rerolled], info)
        lock_button.click(lock, [locked, picked], locked, api_name="lock", queue=False)


def compare_tab(config: AppConfig, advanced_inputs: list) -> None:
    @_user_errors
    async def compare(first, last, preset_a, preset_b, depth, fps, adapter, strength, fast, resolution, steps,
                      guidance, prompt, seed, request: gr.Request, progress=PROGRESS):  # fmt: skip
        """Both settings side by side in one video (so they play in sync), their middle frames (gallery and slider)
        and PSNR/SSIM between the two."""
        advanced = Advanced.from_ui(adapter, strength, fast, resolution, steps, guidance, prompt)
        call = _call(config, request, progress, "compare")
        return await _run(call, actions.compare, first, last, preset_a, preset_b, depth, fps, advanced, seed)

    with gr.Tab("Compare"):
        labels = list(config.compare_presets())
        with gr.Row():
            first = keyframe_image(label="First keyframe", elem_id="cmp-first")
            last = keyframe_image(label="Last keyframe", elem_id="cmp-last")
        with gr.Row():
            preset_a = gr.Dropdown(labels, value=labels[0], label="Left")
            preset_b = gr.Dropdown(labels, value=labels[1], label="Right")
            depth = gr.Slider(1, 4, value=3, step=1, label="Depth")
            fps = gr.Slider(1, 60, value=12, step=1, label="Output fps")
            seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")
        run, stop = _run_stop("compare", "Compare")
        with gr.Row():
            video = gr.Video(label="Left vs right (in sync)", autoplay=True, loop=True, elem_id="video-compare")
            slider = gr.ImageSlider(label="Middle frame: drag to wipe left ↔ right", type="numpy", elem_id="slider-compare")  # fmt: skip
        metrics = gr.Markdown(elem_id="info-compare")
        gallery = gr.Gallery(label="Middle frames", columns=2, height=320, elem_id="gallery-compare")
        event = run.click(
            compare, [first, last, preset_a, preset_b, depth, fps, *advanced_inputs, seed], [video, gallery, slider, metrics],
            api_name="compare", **_queue(config),
        )  # fmt: skip
        _wire_stop(stop, "compare", event, metrics)
        gr.Examples(_example_pairs(), [first, last], label="Examples")


def build_app(config: AppConfig, defaults: Advanced | None = None) -> gr.Blocks:
    """The page; ``defaults`` are the Advanced section's initial values (default: ``config.advanced()``)."""
    defaults = defaults or config.advanced()
    adapters = [spec.reference for spec in config.adapters]
    with gr.Blocks(title="vfi — frame interpolation", delete_cache=(600, jobs.OUTPUT_TTL_S)) as demo:
        gr.Markdown(
            "# vfi — video frame interpolation\n"
            "Frames between two keyframes, or a clip at a higher frame rate. The generative backend is "
            "Qwen-Image-Edit with an interpolation LoRA; *flow* is a fast optical-flow backend that runs on any CPU."
        )
        gr.Markdown(f"{config.describe()}  \n{STATUS}", elem_id="status")
        with gr.Row():
            backend = gr.Dropdown(config.backends, value=config.backend, label="Backend", scale=1)
            gr.Markdown(f"Backends here: {', '.join(config.backends)}. Compare picks its own two settings.")
        with gr.Accordion("Advanced (generative backend)", open=False, visible=config.backend == GENERATIVE) as acc:
            with gr.Row():
                adapter = gr.Dropdown([NO_ADAPTER, *adapters], value=defaults.adapter, label="Adapter")
                strength = gr.Slider(0.0, 2.0, value=defaults.strength, step=0.05, label="Adapter strength")
                fast = gr.Checkbox(value=False, label="Fast mode (Lightning)", interactive=config.lightning is not None)
            with gr.Row():
                resolution = gr.Slider(64, 1024, value=defaults.resolution, step=32, label="Working resolution (longest side, px)")  # fmt: skip
                steps = gr.Slider(1, 50, value=defaults.steps, step=1, label="Steps")
                guidance = gr.Slider(1.0, 8.0, value=defaults.guidance, step=0.5, label="Guidance (true CFG; 1 = off)")
            with gr.Row():
                prompt = gr.Textbox("", label="Prompt (empty: the adapter's own)", lines=1, scale=3)
                hybrid = gr.Checkbox(value=False, label="Hybrid (Keyframes tab): the model makes the middle frame, flow the rest (saves most GPU time)")  # fmt: skip
        advanced_inputs = [adapter, strength, fast, resolution, steps, guidance, prompt]
        backend.change(lambda name: gr.Accordion(visible=name == GENERATIVE), backend, acc, api_visibility="private")

        fast.change(lambda on: (gr.Slider(value=FAST_STEPS if on else defaults.steps), gr.Slider(value=FAST_GUIDANCE if on else defaults.guidance)), fast, [steps, guidance], api_visibility="private")  # fmt: skip
        keyframes_tab(config, backend, advanced_inputs, hybrid, defaults)
        clip_tab(config, backend, advanced_inputs, defaults)
        storyboard_tab(config, backend, advanced_inputs)
        compare_tab(config, advanced_inputs)
    return demo


def _preload(config: AppConfig) -> Advanced:
    """Load the generative pipeline now (on a Space: before the first visitor waits for it); the Advanced
    section then starts at the adapter's own working resolution."""
    defaults = config.advanced()
    options = config.backend_config(GENERATIVE, replace(defaults, resolution=None))
    return replace(defaults, resolution=Job(GENERATIVE, options).create_backend().resolution)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = parse_args(argv)
    except VFIError as error:
        raise SystemExit(f"error: {error}") from None
    for folder in jobs.sweep_stale_output_roots():
        log.info("removed %s, left by an app process that is gone", folder)
    if not os.environ.get("GRADIO_TEMP_DIR"):  # Gradio's upload cache goes (and is swept) with our outputs
        os.environ["GRADIO_TEMP_DIR"] = str(jobs.upload_cache())
    defaults = _preload(config) if config.preload and config.generative else None
    demo = build_app(config, defaults)
    demo.queue(default_concurrency_limit=4, max_size=QUEUE_SIZE)
    try:  # also an MCP server: /gradio_api/mcp/sse, tools keyframes and clip (README, "Use it from an agent")
        with sigterm_as_interrupt():  # Gradio closes the server (and deletes its cache) as on Ctrl-C
            demo.launch(server_name=config.host, server_port=config.port, show_error=True, mcp_server=True,
                        max_file_size=config.max_upload_mb * 2**20)  # fmt: skip
    finally:
        CANCELS.stop_all(wait_s=STOP_WAIT_S)
        jobs.remove_output_root()


if __name__ == "__main__":
    main()
