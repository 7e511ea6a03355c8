"""The Clip tab: a clip at a higher frame rate, its clip info and quality report (``/clip``, ``/clip_info``)."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ui.common import (
    EXAMPLES,
    PROGRESS,
    NewCall,
    api_schema,
    documented,
    queue_options,
    run_action,
    run_stop_buttons,
    user_errors,
    wire_stop,
)
from vfi.app import actions
from vfi.app.config import Advanced, AppConfig
from vfi.modes.scenes import SCENE_THRESHOLD

#: The quality report's plot: the time of each rebuilt frame in the clip and its PSNR.
PSNR_AXES = ("time (s)", "PSNR (dB)")


def clip_tab(
    config: AppConfig, new_call: NewCall, backend: gr.Dropdown, advanced_inputs: list, defaults: Advanced
) -> None:
    @documented("""Say what a clip is (size, frame rate, length, audio) and what the clip tool will make of it, or why it cannot. {files}

Args:
    video: the clip (a video file, up to 60 s).
    factor: 2, 4 or 8.
    slowmo: keep the frame rate and play factor× slower instead.
    fps: or a target frame rate (60, 59.94, 60000/1001; empty: use the factor).
    scene_threshold: scene-cut threshold (0.05-1); no frames are made across a cut.
    start: start of the part to interpolate, in seconds.
    end: its end in seconds (0: the clip's end).

Returns:
    A short description of the clip and of the clip the clip tool would make.
""")
    def clip_info(video, factor, slowmo, fps="", scene_threshold=SCENE_THRESHOLD, start=0, end=0) -> str:
        return actions.describe_clip(video, factor, slowmo, fps, scene_threshold, start, end)

    @documented("""Make a clip smoother: factor× the frame rate (or factor× slower), audio kept. {files}

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
    The interpolated MP4, a summary, the run's manifest and quality report as JSON files, and the report's PSNR over time.
""")
    @user_errors
    async def clip(
        video,
        factor,
        slowmo,
        backend,
        adapter,
        strength,
        fast,
        resolution,
        steps,
        guidance,
        prompt,
        fps="",
        scene_threshold=SCENE_THRESHOLD,
        start=0,
        end=0,
        report=False,
        request: gr.Request = None,
        progress=PROGRESS,
    ):
        advanced = Advanced.from_ui(adapter, strength, fast, resolution, steps, guidance, prompt)
        call = new_call(request, progress, "clip")
        path, summary, files, points = await run_action(
            call, actions.clip, video, factor, slowmo, backend, advanced, fps, scene_threshold, start, end, report
        )
        return path, summary, files, pd.DataFrame(points, columns=list(PSNR_AXES))

    with gr.Tab("Clip"):
        with gr.Row():
            clip_in = gr.Video(label="Input clip", sources=["upload"], elem_id="clip-in")
            clip_out = gr.Video(label="Interpolated clip", autoplay=True, elem_id="video-clip")
        with gr.Row():
            factor = gr.Radio([("×2", 2), ("×4", 4), ("×8", 8)], value=2, label="Frame-rate factor")
            api_schema(factor, {"type": "integer", "enum": [2, 4, 8]})  # Gradio's says string
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
        run, stop = run_stop_buttons("clip", "Interpolate clip")
        result = gr.Markdown(label="Summary", elem_id="info-clip")
        with gr.Row():
            downloads = gr.File(label="Manifest and report (JSON)", file_count="multiple", elem_id="files-clip")
            plot = gr.LinePlot(
                x=PSNR_AXES[0], y=PSNR_AXES[1], title="Rebuilt frames: PSNR over time", height=240, elem_id="plot-clip"
            )
        gr.on(
            [clip_in.change, factor.change, slowmo.change, *(c.change for c in timing)],
            clip_info,
            [clip_in, factor, slowmo, *timing],
            details,
            api_name="clip_info",
        )
        event = run.click(
            clip,
            [clip_in, factor, slowmo, backend, *advanced_inputs, *timing, report],
            [clip_out, result, downloads, plot],
            api_name="clip",
            **queue_options(config),
        )
        wire_stop(stop, "clip", event, result)

        async def clip_example(path, request: gr.Request, progress=PROGRESS):
            return await clip(path, 2, False, config.backend, *defaults.values(), request=request, progress=progress)

        gr.Examples(
            [[str(EXAMPLES / "clip.mp4")]],
            [clip_in],
            [clip_out, result, downloads, plot],
            fn=clip_example,
            cache_examples=True,
            cache_mode="lazy",
            label="Example clip (2 s, 12 fps, with a tone)",
        )
