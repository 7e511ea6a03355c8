"""The Storyboard tab: several keyframes → one video, then re-roll or lock single frames."""

from __future__ import annotations

import gradio as gr

from ui.common import (
    GALLERY_CLASS,
    PROGRESS,
    NewCall,
    documented,
    queue_options,
    run_action,
    run_stop_buttons,
    user_errors,
    wire_stop,
)
from vfi.app import storyboard as storyboard_actions
from vfi.app.config import Advanced, AppConfig


def storyboard_tab(config: AppConfig, new_call: NewCall, backend: gr.Dropdown, advanced_inputs: list) -> None:
    @documented("""Make one video from several keyframes: each keyframe appears once, unchanged, with frames in between. Over MCP this tool does not work yet, because Gradio 6.31's MCP server does not turn a list of data URLs (data:image/png;base64,...) into files; an agent can call the keyframes tool for each transition instead, and gradio_client calls work.

Args:
    files: the keyframes (two or more image files).
    order: the order of play as image numbers, e.g. 2,1,3 (empty: the order given).
    depth: recursion depth 1-4, one for all transitions or one per transition (e.g. 3,2,3).
    frames_per_pair: or exactly this many frames per transition (flow, crossfade; 0 = use depth).
    fps: frame rate of the output video.
    prompts: one prompt per transition, one per line (generative backend; empty: the adapter's).
{backend_and_advanced}
    seed: run seed (the same seed gives the same video).

Returns:
    The MP4, the frames (gallery), a zip of PNG frames with the run's manifest, and a summary.
""")
    @user_errors
    async def storyboard(files, order, depth, frames_per_pair, fps, prompts, backend, adapter, strength, fast, resolution,
                   steps, guidance, prompt, seed, request: gr.Request, progress=PROGRESS):  # fmt: skip
        advanced = Advanced.from_ui(adapter, strength, fast, resolution, steps, guidance, prompt)
        call = new_call(request, progress, "storyboard")
        return await run_action(call, storyboard_actions.storyboard, files, order, depth, frames_per_pair, fps, prompts,
                          backend, advanced, seed)  # fmt: skip

    @user_errors
    async def reroll(previous, index, locked, fps, request: gr.Request, progress=PROGRESS):
        """Re-roll one in-between of the last storyboard (new seed); the frames made from it are redone too."""
        call = new_call(request, progress, "storyboard")
        return await run_action(call, storyboard_actions.reroll_frame, previous, index, locked, fps)

    @user_errors
    async def lock(previous, locked, index):
        """Lock the picked frame (a re-roll never changes it), or unlock it (no run: nothing to stop)."""
        return storyboard_actions.toggle_lock(previous, locked, index)

    def pick(event: gr.SelectData) -> int:
        return event.index

    with gr.Tab("Storyboard"):
        gr.Markdown("Several keyframes → one video. Each keyframe appears once, unchanged; the order below sets "
                    "how they play. Then pick a frame to re-roll it (new seed) or lock it.")  # fmt: skip
        with gr.Row():
            files = gr.File(label="Keyframes (several images)", file_count="multiple", file_types=["image"],
                            type="filepath", elem_id="sb-files")  # fmt: skip
            keys = gr.Gallery(label="Order of play", columns=4, height=200, elem_id="sb-order-preview",
                              elem_classes=GALLERY_CLASS)  # fmt: skip
        with gr.Row():
            order = gr.Textbox("", label="Order (image numbers, e.g. 2,1,3; empty = upload order)", elem_id="sb-order")
            depth = gr.Textbox("2", label="Depth: one for all, or one per transition (e.g. 3,2,3)", elem_id="sb-depth")
            frames_per_pair = gr.Number(0, precision=0, minimum=0, maximum=120, label="Or N in-betweens per transition (flow/crossfade)")  # fmt: skip
            fps = gr.Slider(1, 60, value=12, step=1, label="Output fps")
            seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")
        prompts = gr.Textbox("", lines=2, label="Prompts (generative backend): one line per transition, empty = the adapter's")  # fmt: skip
        run, stop = run_stop_buttons("storyboard", "Make storyboard")
        with gr.Row():
            video = gr.Video(label="Video", autoplay=True, loop=True, elem_id="video-storyboard")
            gallery = gr.Gallery(label="Frames (click one to pick it)", columns=4, height=320, elem_id="gallery-storyboard",
                                 elem_classes=GALLERY_CLASS)  # fmt: skip
        with gr.Row():
            picked = gr.Number(1, precision=0, minimum=0, label="Picked frame", elem_id="sb-picked")  # an in-between
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
            api_name="storyboard", show_progress_on=info, **queue_options(config),
        )  # fmt: skip
        gallery.select(pick, None, picked, queue=False, api_visibility="private")
        # Re-roll and lock work on this session's storyboard (gr.State, which an MCP call has not): off the MCP tools.
        rerolled = reroll_button.click(reroll, [state, picked, locked, fps], outputs, api_name="reroll",
                                       show_progress_on=info, api_visibility="undocumented",
                                       **queue_options(config))  # fmt: skip
        wire_stop(stop, "storyboard", [event, rerolled], info)
        lock_button.click(
            lock, [state, locked, picked], locked, api_name="lock", queue=False, api_visibility="undocumented"
        )
