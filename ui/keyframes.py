"""The Keyframes tab: frames between two keyframes, streamed level by level (the ``/keyframes`` endpoint)."""

from __future__ import annotations

import gradio as gr

from ui.common import (
    GALLERY_CLASS,
    PROGRESS,
    NewCall,
    documented,
    example_pairs,
    keyframe_image,
    queue_options,
    run_stop_buttons,
    stream_action,
    user_errors,
    wire_stop,
)
from vfi.app import actions, jobs
from vfi.app.config import Advanced, AppConfig


def keyframes_tab(
    config: AppConfig,
    new_call: NewCall,
    backend: gr.Dropdown,
    advanced_inputs: list,
    hybrid: gr.Checkbox,
    defaults: Advanced,
) -> None:
    @documented("""Make the frames between two keyframes and return them as a video.

Streams: the frame gallery fills in as each recursion level finishes; the MP4 comes first of the files. {files}

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
    mismatch: keyframes of different shapes: auto (fit unless the aspect ratios are more than 2× apart, then
        refuse), fit (center-crop the last to the first), pad, or refuse.
    hybrid: the model makes the middle frame, the flow backend the rest.

Returns:
    The MP4, the frames (gallery), a zip of PNG frames with the run's manifest, a GIF, the seed used and a summary that says how mismatched keyframes were fitted.
""")
    @user_errors
    async def keyframes(
        first,
        last,
        depth,
        count,
        fps,
        playback,
        backend,
        adapter,
        strength,
        fast,
        resolution,
        steps,
        guidance,
        prompt,
        seed,
        randomize,
        mismatch="auto",
        hybrid=False,
        request: gr.Request = None,
        progress=PROGRESS,
    ):
        advanced = Advanced.from_ui(adapter, strength, fast, resolution, steps, guidance, prompt)
        call = new_call(request, progress, "keyframes")
        async for update in stream_action(
            call,
            actions.keyframes,
            first,
            last,
            depth,
            count,
            fps,
            playback,
            backend,
            advanced,
            seed,
            randomize,
            mismatch,
            hybrid,
        ):
            yield update

    with gr.Tab("Keyframes"):
        with gr.Row():
            first = keyframe_image(label="First keyframe", sources=["upload", "clipboard"], elem_id="first")
            last = keyframe_image(label="Last keyframe", sources=["upload", "clipboard"], elem_id="last")
        with gr.Row():
            depth = gr.Slider(1, 4, value=3, step=1, label="Depth (2^depth − 1 in-betweens)")
            count = gr.Number(
                0,
                precision=0,
                minimum=0,
                maximum=120,
                label="Or exactly N in-betweens (flow/crossfade/hybrid; 0 = use depth)",
            )
            fps = gr.Slider(1, 60, value=12, step=1, label="Output fps")
            playback = gr.Radio(list(jobs.PLAYBACKS), value="once", label="Playback")
        with gr.Row():
            seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")
            randomize = gr.Checkbox(value=False, label="Randomize seed")
            mismatch = gr.Dropdown(
                [
                    ("Fit unless more than 2× apart in shape", "auto"),
                    ("Fit: crop the last to the first", "fit"),
                    ("Pad the last to the first", "pad"),
                    ("Refuse", "refuse"),
                ],
                value="auto",
                label="Keyframes of different shapes",
            )
        run, stop = run_stop_buttons("keyframes", "Interpolate")
        with gr.Row():
            video = gr.Video(label="Video", autoplay=True, loop=True, elem_id="video-keyframes")
            gallery = gr.Gallery(
                label="Frames", columns=4, height=320, elem_id="gallery-keyframes", elem_classes=GALLERY_CLASS
            )
        with gr.Row():
            zip_file = gr.File(label="All frames (PNG, zip)")
            gif = gr.File(label="GIF")
            seed_used = gr.Number(label="Seed used", precision=0, interactive=False)
        info = gr.Markdown(label="Summary", elem_id="info-keyframes")
        outputs = [video, gallery, zip_file, gif, seed_used, info]
        event = run.click(
            keyframes,
            [first, last, depth, count, fps, playback, backend, *advanced_inputs, seed, randomize, mismatch, hybrid],
            outputs,
            api_name="keyframes",
            **queue_options(config),
        )
        wire_stop(stop, "keyframes", event, info)

        async def keyframes_example(first_path, last_path, request: gr.Request = None, progress=PROGRESS):
            async for update in keyframes(
                first_path,
                last_path,
                3,
                0,
                12,
                "once",
                config.backend,
                *defaults.values(),
                0,
                False,
                "fit",
                False,
                request,
                progress,
            ):
                yield update

        gr.Examples(
            example_pairs(),
            [first, last],
            outputs,
            fn=keyframes_example,
            cache_examples=True,
            cache_mode="lazy",
            label="Examples (click one: its video is made once, then cached)",
            elem_id="examples-keyframes",
        )
