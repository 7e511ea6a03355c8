"""The vfi Gradio app (local and as a Hugging Face Space): ``python app.py [--host H] [--port P]``.

UI wiring only: the page and its GPU functions; each tab is built in :mod:`ui` (``ui/keyframes.py``, …), what
it does is :mod:`vfi.app.actions`, jobs (typed per mode, streaming in GPU calls) :mod:`vfi.app.jobs`, running and stopping them
:mod:`vfi.app.concurrency`, the configuration (flags over environment variables, see README) and UI values → backend
config :mod:`vfi.app.config`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace

try:  # ZeroGPU wants ``spaces`` imported before anything that could touch CUDA.
    import spaces
except ImportError:
    spaces = None
except AssertionError:  # spaces 0.51: SPACES_ZERO_GPU set off a ZeroGPU Space (no SPACES_ZERO_DEVICE_API_URL)
    logging.getLogger("vfi.app").warning("SPACES_ZERO_GPU is set but this is not a ZeroGPU Space; running locally.")
    spaces = None

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline start, nothing phoned home
if __name__ == "__main__" and not os.environ.get("GRADIO_TEMP_DIR"):
    # Before gradio is imported: its modules read the variable once (MCP ``data:`` inputs, uploads, its cache), so
    # all it writes lands in this process's folder and goes with it on shutdown (``jobs.remove_output_root``), and
    # it serves our outputs in place (each written once, no copy).
    from vfi.app.jobs import output_root

    os.environ["GRADIO_TEMP_DIR"] = str(output_root())

import gradio as gr  # noqa: E402

from ui.clip import clip_tab  # noqa: E402
from ui.common import CANCELS, CSS, STOP_WAIT_S, session  # noqa: E402
from ui.compare import compare_tab  # noqa: E402
from ui.keyframes import keyframes_tab  # noqa: E402
from ui.storyboard import storyboard_tab  # noqa: E402
from vfi.app import actions, jobs  # noqa: E402
from vfi.app.concurrency import memory_budget  # noqa: E402
from vfi.app.config import FAST_GUIDANCE, FAST_STEPS, NO_ADAPTER, STATUS, Advanced, AppConfig, parse_args  # noqa: E402
from vfi.app.jobs import Job, KeyframesJob, Made  # noqa: E402
from vfi.backends import GENERATIVE  # noqa: E402
from vfi.errors import VFIError  # noqa: E402
from vfi.signals import sigterm_as_interrupt  # noqa: E402

log = logging.getLogger("vfi.app")

#: Requests waiting beyond this many are turned away (a Space's queue must not grow without bound).
QUEUE_SIZE = 32


def run_model(job: Job, progress: gr.Progress | None = None):
    """Run a whole ``job`` (clip and compare); on a ZeroGPU Space a generative one runs in the GPU process."""
    return job.run(jobs.EtaProgress(progress), lambda: CANCELS.stopped(job.cancel_key))


def make_frames(job: KeyframesJob, requests: list) -> Made:
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


def _call(config: AppConfig, request: gr.Request | None, progress: gr.Progress | None, tab: str) -> actions.Call:
    """A new user action on ``tab``: its runs go through :func:`execute` (whole) or :func:`make_on_gpu`
    (streamed); a Stop pressed before it does not count, one pressed during it is read here, between GPU calls."""
    key = CANCELS.start(session(request), tab)
    budget = memory_budget(config.memory_budget_mb * 2**20)
    wait = (lambda: progress(0, desc="waiting for memory")) if progress is not None else (lambda: None)

    def admit(nbytes: int):
        return budget.reserve(nbytes, lambda: CANCELS.stopped(key), wait)

    return actions.Call(
        config,
        lambda job: execute(job, config, progress),
        session(request),
        key,
        admit,
        make_on_gpu=make_on_gpu,
        report=progress,
        should_cancel=lambda: CANCELS.stopped(key),
    )


def build_app(config: AppConfig, defaults: Advanced | None = None) -> gr.Blocks:
    """The page; ``defaults`` are the Advanced section's initial values (default: ``config.advanced()``)."""
    defaults = defaults or config.advanced()
    new_call = functools.partial(_call, config)
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
                resolution = gr.Slider(
                    64, 1024, value=defaults.resolution, step=32, label="Working resolution (longest side, px)"
                )
                steps = gr.Slider(1, 50, value=defaults.steps, step=1, label="Steps")
                guidance = gr.Slider(1.0, 8.0, value=defaults.guidance, step=0.5, label="Guidance (true CFG; 1 = off)")
            with gr.Row():
                prompt = gr.Textbox("", label="Prompt (empty: the adapter's own)", lines=1, scale=3)
                hybrid = gr.Checkbox(
                    value=False,
                    label="Hybrid (Keyframes tab): the model makes the middle frame, flow the rest (saves most GPU time)",
                )
        advanced_inputs = [adapter, strength, fast, resolution, steps, guidance, prompt]
        backend.change(lambda name: gr.Accordion(visible=name == GENERATIVE), backend, acc, api_visibility="private")

        fast.change(
            lambda on: (
                gr.Slider(value=FAST_STEPS if on else defaults.steps),
                gr.Slider(value=FAST_GUIDANCE if on else defaults.guidance),
            ),
            fast,
            [steps, guidance],
            api_visibility="private",
        )
        keyframes_tab(config, new_call, backend, advanced_inputs, hybrid, defaults)
        clip_tab(config, new_call, backend, advanced_inputs, defaults)
        storyboard_tab(config, new_call, backend, advanced_inputs)
        compare_tab(config, new_call, advanced_inputs)
    return demo


def _preload(config: AppConfig) -> Advanced:
    """Load the generative pipeline now (on a Space: before the first visitor waits for it); the Advanced
    section then starts at the adapter's own working resolution."""
    defaults = config.advanced()
    options = config.backend_config(GENERATIVE, replace(defaults, resolution=None))
    return replace(defaults, resolution=Job(GENERATIVE, options).create_backend().resolution)


def serve_until_interrupted(demo: gr.Blocks) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the app. ``demo.close()`` also ends the browsers' and clients' heartbeat
    streams at once; Gradio's own Ctrl-C path leaves the server waiting 5 s for them."""
    try:
        while demo.is_running:
            time.sleep(0.2)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (vfi.signals.sigterm_as_interrupt)
        log.info("stopping")
    finally:
        demo.close()


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = parse_args(argv)
    except VFIError as error:
        raise SystemExit(f"error: {error}") from None
    for folder in jobs.sweep_stale_output_roots():
        log.info("removed %s, left by an app process that is gone", folder)
    defaults = _preload(config) if config.preload and config.generative else None
    demo = build_app(config, defaults)
    demo.queue(default_concurrency_limit=4, max_size=QUEUE_SIZE)
    try:  # also an MCP server: streamable HTTP at /gradio_api/mcp/ (SSE at /gradio_api/mcp/sse) (README, "From an agent (MCP)")
        with sigterm_as_interrupt():
            demo.launch(
                server_name=config.host,
                server_port=config.port,
                show_error=True,
                mcp_server=True,
                max_file_size=config.max_upload_mb * 2**20,
                css=CSS,
                prevent_thread_lock=True,
            )
            serve_until_interrupted(demo)
    finally:
        CANCELS.stop_all(wait_s=STOP_WAIT_S)
        jobs.remove_output_root()


if __name__ == "__main__":
    main()
