"""The Storyboard tab: several keyframes → one video, then re-roll or lock single frames.

(No ``from __future__ import annotations``: ``gr.api`` makes its outputs from the return annotation as written,
which must then be a type, not a string.)
"""

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
    @documented("""Make one video from several keyframes: each keyframe appears once, unchanged, with frames in between. Agents (MCP) call storyboard_from_data_urls instead, which takes the keyframes as base64 data URLs.

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

    @documented(f"""Make one video from keyframes sent in the order they play: each keyframe appears once, unchanged, with frames in between. Send each keyframe as a base64 data URL (data:image/png;base64,..., also JPEG or WebP), which is how a local file is sent, of at most {config.max_upload_mb} MB; http(s) URLs and paths are refused.

Args:
    images: the keyframes in the order they play (two or more), each a base64 image data URL.
    depth: recursion depth 1-4 for all transitions (e.g. 2), or one per transition as text (e.g. "3,2,3").
    frames_per_pair: or exactly this many frames per transition (flow, crossfade; 0 = use depth).
    fps: frame rate of the output video.
    prompts: one prompt per transition, one per line (generative backend; empty: the adapter's).
    backend: one of {", ".join(config.backends)}.
    seed: run seed (the same seed gives the same video).

Returns:
    The MP4, a zip of PNG frames with the run's manifest, and a summary.
""")
    @user_errors
    async def storyboard_from_data_urls(images: list[str], depth: int | str = 2, frames_per_pair: int = 0,
                                        fps: float = 12, prompts: str = "", backend: str = config.backend,
                                        seed: int = 0, request: gr.Request = None,
                                        ) -> tuple[gr.FileData, gr.FileData, str]:  # fmt: skip
        advanced = Advanced.from_ui(*(widget.value for widget in advanced_inputs))  # the page's initial values
        call = new_call(request, None, "storyboard")
        video, _, archive, info, _ = await run_action(
            call, storyboard_actions.storyboard_from_data_urls, images, config.max_upload_mb * 2**20, depth,
            frames_per_pair, fps, prompts, backend, advanced, seed,
        )  # fmt: skip
        return gr.FileData(path=video), gr.FileData(path=archive), info

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
        # The tab's storyboard takes uploaded files, which Gradio 6.31's MCP server cannot make from data URLs in a
        # list: agents get storyboard_from_data_urls. Off the MCP tools as gr.mcp's decorators mark a function that
        # is no tool (Gradio has no public flag for it), still on the API page for gradio_client.
        storyboard._mcp_type = "none"
        gr.api(storyboard_from_data_urls, api_name="storyboard_from_data_urls", **queue_options(config))
        gallery.select(pick, None, picked, queue=False, api_visibility="private")
        # Re-roll and lock work on this session's storyboard (gr.State, which an MCP call has not): off the MCP tools.
        rerolled = reroll_button.click(reroll, [state, picked, locked, fps], outputs, api_name="reroll",
                                       show_progress_on=info, api_visibility="undocumented",
                                       **queue_options(config))  # fmt: skip
        wire_stop(stop, "storyboard", [event, rerolled], info)
        lock_button.click(
            lock, [state, locked, picked], locked, api_name="lock", queue=False, api_visibility="undocumented"
        )
