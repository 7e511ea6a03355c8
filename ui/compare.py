"""The Compare tab: two settings side by side on the same keyframes."""

from __future__ import annotations

import gradio as gr

from ui.common import (
    PROGRESS,
    NewCall,
    documented,
    example_pairs,
    keyframe_image,
    queue_options,
    run_action,
    run_stop_buttons,
    user_errors,
    wire_stop,
)
from vfi.app import actions
from vfi.app.config import Advanced, AppConfig


def compare_tab(config: AppConfig, new_call: NewCall, advanced_inputs: list) -> None:
    @documented("""Interpolate the same two keyframes with two settings and show them side by side, so they play in sync. {files}

Args:
    first: the first keyframe (an image file).
    last: the last keyframe (an image file of the same aspect ratio).
    preset_a: the left setting.
    preset_b: the right setting.
    depth: recursion depth 1-4: 2^depth - 1 frames in between.
    fps: frame rate of the output video.
{advanced}
    seed: run seed (the same seed gives the same video).

Returns:
    The side-by-side MP4, both middle frames (gallery), the two middle frames for a wipe slider, and PSNR/SSIM between the two.
""")
    @user_errors
    async def compare(
        first,
        last,
        preset_a,
        preset_b,
        depth,
        fps,
        adapter,
        strength,
        fast,
        resolution,
        steps,
        guidance,
        prompt,
        seed,
        request: gr.Request,
        progress=PROGRESS,
    ):
        advanced = Advanced.from_ui(adapter, strength, fast, resolution, steps, guidance, prompt)
        call = new_call(request, progress, "compare")
        return await run_action(call, actions.compare, first, last, preset_a, preset_b, depth, fps, advanced, seed)

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
        run, stop = run_stop_buttons("compare", "Compare")
        with gr.Row():
            # no label over the video: it would cover the left setting's name drawn on the frames
            video = gr.Video(
                label="Left vs right (in sync)", show_label=False, autoplay=True, loop=True, elem_id="video-compare"
            )
            slider = gr.ImageSlider(
                label="Middle frame: drag to wipe left ↔ right", type="numpy", elem_id="slider-compare"
            )
        metrics = gr.Markdown(elem_id="info-compare")
        gallery = gr.Gallery(label="Middle frames", columns=2, height=320, elem_id="gallery-compare")
        event = run.click(
            compare,
            [first, last, preset_a, preset_b, depth, fps, *advanced_inputs, seed],
            [video, gallery, slider, metrics],
            api_name="compare",
            **queue_options(config),
        )
        wire_stop(stop, "compare", event, metrics)
        gr.Examples(example_pairs(), [first, last], label="Examples")
