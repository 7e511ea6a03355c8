"""What every tab of the app shares: running an action under its own run key (off the event loop, stopped by
Stop, a cancelled event or a client gone away), user errors as ``gr.Error``, Stop buttons, the endpoints' docs."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import gradio as gr

from vfi.app import actions
from vfi.app.concurrency import CancelRegistry
from vfi.app.config import AppConfig
from vfi.errors import VFIError

log = logging.getLogger("vfi.app")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Marks the progress parameter of an event function (Gradio gives each call its own tracker).
PROGRESS = gr.Progress(track_tqdm=True)
CANCELS = CancelRegistry()
C = TypeVar("C", bound=gr.components.Component)


class NewCall(Protocol):
    """Makes the :class:`~vfi.app.actions.Call` of a new user action on a tab (``app._call``, bound to the config)."""

    def __call__(self, request: gr.Request | None, progress: gr.Progress | None, tab: str) -> actions.Call: ...


def session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


#: Gradio releases whose queue :func:`client_alive` reads. Gradio has no public way to tell an event function that its
#: client has gone (6.31: the queue only marks the event dead; a cancelled event is a public ``CancelledError``).
QUEUE_INTERNALS = (6,)


def client_alive() -> Callable[[], bool]:
    """Whether the client of the event being processed is still there (Gradio marks the event dead when the
    client's stream closes); call it in the event's task. On a Gradio whose queue it was not written for, always
    true: a run then goes on until it ends, is cancelled or is stopped."""
    if int(gr.__version__.split(".")[0]) not in QUEUE_INTERNALS:
        return lambda: True
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)

    def alive() -> bool:
        event = queue.event_ids_to_events.get(event_id) if queue is not None and event_id else None
        return event is None or event.alive

    return alive


async def run_action(call: actions.Call, action: Callable, *args):
    """``action(call, *args)`` off the event loop; a cancelled event or a client gone away stops it between frames."""
    return await CANCELS.run(call.cancel_key, functools.partial(action, call, *args), client_alive())


async def stream_action(call: actions.Call, action: Callable, *args) -> AsyncIterator:
    """The updates of the generator ``action(call, *args)``, each made off the event loop; a cancelled event or a
    client gone away stops it at its next check, and the event ends only after the run has."""
    async for update in CANCELS.stream(call.cancel_key, functools.partial(action, call, *args), client_alive()):
        yield update


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"]+/)+([^\s/'\"]*)")


def without_paths(message: str) -> str:
    """``message`` with each absolute path cut to its file name: an app error never names a server path."""
    return _ABSOLUTE_PATH.sub(r"\1", message)


@contextlib.contextmanager
def shown_as_gr_error(name: str) -> Iterator[None]:
    """User errors become ``gr.Error`` (one sentence); anything else is logged and shown as a short message."""
    try:
        yield
    except gr.Error:
        raise
    except VFIError as error:  # Cancelled included: "Stopped after N of M frames."
        raise gr.Error(without_paths(str(error)), print_exception=False) from None
    except Exception:
        log.exception("unexpected error in %s", name)
        raise gr.Error("Something went wrong on the server; the details are in its log.") from None


def user_errors(fn: Callable) -> Callable:
    """``fn`` (a coroutine function or an async generator function: Gradio streams the latter) with
    :func:`shown_as_gr_error`."""
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream(*args, **kwargs):
            with shown_as_gr_error(fn.__name__):
                async for update in fn(*args, **kwargs):
                    yield update

        return stream

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        with shown_as_gr_error(fn.__name__):
            return await fn(*args, **kwargs)

    return wrapper


#: The class of the frame galleries, and the page's CSS: their captions (frame, t, seed) wrap instead of being cut.
GALLERY_CLASS = "vfi-frames"
CSS = f".{GALLERY_CLASS} .caption-label {{ white-space: normal; overflow-wrap: anywhere; max-width: 100%; }}"

#: How long Stop waits for the run to end, to say how far it got.
STOP_WAIT_S = 30


def stop_action(tab: str) -> Callable:
    def stop(request: gr.Request) -> str:
        """Stop this user's run on ``tab``; say how far it got (on the page and as a notice)."""
        message = CANCELS.stop(session(request), tab, wait_s=STOP_WAIT_S)
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


def example_pairs() -> list[list[str]]:
    return [[str(p), str(p.with_name(p.name.replace("_first", "_last")))] for p in sorted(EXAMPLES.glob("*_first.png"))]


def run_stop_buttons(tab: str, label: str) -> tuple[gr.Button, gr.Button]:
    with gr.Row():
        return gr.Button(label, variant="primary", elem_id=f"run-{tab}"), gr.Button(
            "Stop", variant="stop", elem_id=f"stop-{tab}"
        )


def wire_stop(button: gr.Button, tab: str, event, message: gr.Markdown) -> None:
    """Stop cancels ``event`` (or each of a list of events): the run stops at its next check and ``message``
    shows how far it got. Kept out of the API page and the MCP tools (``/stop_<tab>`` stays callable)."""
    events = list(event) if isinstance(event, list | tuple) else [event]
    button.click(
        stop_action(tab),
        None,
        message,
        cancels=events,
        concurrency_limit=None,
        api_name=f"stop_{tab}",
        api_visibility="undocumented",
    )


def queue_options(config: AppConfig) -> dict:
    """Where the tabs' runs queue: with a generative backend, one at a time on the shared GPU queue."""
    return {"concurrency_id": "gpu", "concurrency_limit": 1} if config.generative else {"concurrency_limit": 4}


#: How an agent gives a file (MCP tools): Gradio's MCP server takes data URLs and public http(s) URLs only.
FILES = (
    "Give each file as a base64 data URL (data:image/png;base64,... or data:video/mp4;base64,...), which is how a "
    "local file is sent, or as an http(s) URL the server can reach (not localhost); plain paths are refused."
)
#: The Advanced section's arguments, which every generating endpoint takes (API docs, MCP tool schemas).
ADVANCED_ARGS = """adapter: the interpolation adapter (generative backend).
strength: the adapter's strength.
fast: fast mode (the Lightning adapter, few steps).
resolution: working resolution of the model, longest side in pixels.
steps: denoising steps.
guidance: true CFG scale (1 = off).
prompt: prompt (empty: the adapter's own)."""
#: The arguments the keyframes, clip and storyboard endpoints take after their own.
BACKEND_AND_ADVANCED_ARGS = (
    "backend: flow (optical flow, CPU), crossfade, or qwen-edit (the generative model, where configured).\n"
    + ADVANCED_ARGS
)


def documented(text: str) -> Callable[[Callable], Callable]:
    """Set an endpoint function's docstring (Gradio's API page and MCP tools read its Args; each line under
    ``Returns:`` is one item of the list Gradio joins with commas, so write the returns as one line)."""

    def document(fn: Callable) -> Callable:
        fn.__doc__ = (
            text.replace("{backend_and_advanced}", textwrap.indent(BACKEND_AND_ADVANCED_ARGS, "    "))
            .replace("{files}", FILES)
            .replace("{advanced}", textwrap.indent(ADVANCED_ARGS, "    "))
        )
        return fn

    return document


def api_schema(component: C, schema: dict) -> C:
    """``component`` with ``schema`` as its API type (API page, MCP tool schema), where Gradio's is wrong."""
    component.api_info = lambda: schema
    return component
