"""The vfi Gradio app (local and as a Hugging Face Space): keyframes, clips and comparisons.

UI and wiring only; the work is done by ``vfi``. Start it with ``python app.py [--host H] [--port P]``.
Configuration (a flag overrides its environment variable):

==========================  =====================  ==============================================
flag                        environment            meaning
==========================  =====================  ==============================================
``--backend``               ``VFI_BACKEND``        default backend (qwen-edit with CUDA, else flow)
``--base-model``            ``VFI_BASE_MODEL``     Qwen-Image-Edit Hub id or local folder
``--adapter``               ``VFI_ADAPTER``        adapters ``id[@scale]``, comma-separated
``--lightning``             ``VFI_LIGHTNING``      few-step LoRA for the "fast mode"
``--preload``               ``VFI_PRELOAD=1``      load the pipeline at start-up (default on a Space)
``--max-gpu-seconds``       ``VFI_MAX_GPU_SECONDS`` refuse requests estimated to need more
``--host`` / ``--port``     ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``
==========================  =====================  ==============================================

The generative backend is offered only where it is configured (a base model or adapter given, or a
GPU present); torch and diffusers are imported only when it is used.
"""

from __future__ import annotations

try:  # ZeroGPU wants ``spaces`` imported before anything that could touch CUDA.
    import spaces
except ImportError:
    spaces = None

import argparse
import contextlib
import functools
import logging
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline start, nothing phoned home

import gradio as gr  # noqa: E402
import numpy as np

from vfi.adapters import AdapterSpec
from vfi.backends import ANY_T_BACKENDS
from vfi.errors import Cancelled, VFIError
from vfi.interpolate import InterpolationSettings

log = logging.getLogger("vfi.app")

EXAMPLES = Path(__file__).resolve().parent / "examples"
GENERATIVE = "qwen-edit"
#: Outputs older than this are deleted (ours and Gradio's cached copies).
OUTPUT_TTL_S = 3600
#: Wall-clock cost model for one denoising step at 1024² on the GPU (see DESIGN.md), plus load time.
STEP_SECONDS_1024 = 0.6
LOAD_SECONDS = 30
#: Marks the progress parameter of an event function (Gradio gives each call its own tracker).
PROGRESS = gr.Progress()

# --------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class AppConfig:
    """What the app serves with; built by :func:`parse_args` from flags and environment variables."""

    backend: str
    base_model: str | None = None
    adapters: tuple[AdapterSpec, ...] = ()
    lightning: str | None = None
    preload: bool = False
    max_gpu_seconds: int = 300
    host: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        from vfi.backends import BACKEND_NAMES

        if self.backend not in BACKEND_NAMES:
            raise VFIError(f"backend must be one of {', '.join(BACKEND_NAMES)}, got {self.backend!r}.")
        if self.max_gpu_seconds < 1:
            raise VFIError(f"max_gpu_seconds must be positive, got {self.max_gpu_seconds}.")

    @property
    def generative(self) -> bool:
        """Whether the generative backend is offered."""
        return self.backend == GENERATIVE or self.base_model is not None or bool(self.adapters)

    @property
    def backends(self) -> list[str]:
        return [*ANY_T_BACKENDS, *([GENERATIVE] if self.generative else [])]


def parse_adapters(text: str | None) -> tuple[AdapterSpec, ...]:
    """``"a@0.8, b"`` → ``(AdapterSpec("a", 0.8), AdapterSpec("b"))``."""
    return tuple(AdapterSpec.parse(item.strip()) for item in (text or "").split(",") if item.strip())


def _cuda_available() -> bool:
    """A CUDA GPU is usable; imports torch only where an NVIDIA driver is present (or on ZeroGPU)."""
    if os.environ.get("SPACES_ZERO_GPU"):
        return True
    if not (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()):
        return False
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def parse_args(argv: Sequence[str] | None = None) -> AppConfig:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="The vfi frame-interpolation app.")
    parser.add_argument("--backend", default=env("VFI_BACKEND"), help="default backend (flow, crossfade, qwen-edit)")
    parser.add_argument("--base-model", default=env("VFI_BASE_MODEL"), help="Qwen-Image-Edit Hub id or folder")
    parser.add_argument("--adapter", default=env("VFI_ADAPTER"), help="LoRA adapters id[@scale], comma-separated")
    parser.add_argument("--lightning", default=env("VFI_LIGHTNING"), help="few-step LoRA for fast mode")
    parser.add_argument("--preload", action="store_true", default=None, help="load the pipeline at start-up")
    parser.add_argument("--max-gpu-seconds", type=int, default=int(env("VFI_MAX_GPU_SECONDS", "300")))
    parser.add_argument("--host", help="server address (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="server port (default: GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    backend = args.backend or (GENERATIVE if _cuda_available() else "flow")
    preload = args.preload if args.preload is not None else env("VFI_PRELOAD", "1" if env("SPACE_ID") else "0") == "1"
    return AppConfig(
        backend=backend, base_model=args.base_model, adapters=parse_adapters(args.adapter),
        lightning=args.lightning, preload=preload, max_gpu_seconds=args.max_gpu_seconds,
        host=args.host, port=args.port,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------- model runs


@dataclass(frozen=True)
class Work:
    """One run of a backend, picklable (ZeroGPU runs it in another process).

    Either ``keyframes`` (frames to chain: a pair, or first-last-first for a loop) or ``clip`` =
    (the input's ``vfi.video.ClipInfo``, probed once, and the output path).
    """

    backend: str
    options: tuple[tuple[str, Any], ...]
    settings: Any  # InterpolationSettings for keyframes, vfi.clip.ClipSettings for a clip
    keyframes: tuple[np.ndarray, ...] = ()
    clip: tuple[Any, str] | None = None
    cancel_key: str = ""

    @property
    def generative(self) -> bool:
        return self.backend == GENERATIVE

    def create_backend(self):
        from vfi.backends import create_backend

        return create_backend(self.backend, **dict(self.options))

    def frames_to_make(self) -> int:
        """How many frames the backend makes in this run (raises VFIError for an impossible request)."""
        if self.clip is not None:
            from vfi.clip import check_clip

            return (self.settings.factor - 1) * (check_clip(self.clip[0], self.settings).num_frames - 1)  # no probe
        from vfi.interpolate import count_generated

        return count_generated(self.settings, _Capabilities(self.backend)) * (len(self.keyframes) - 1)

    def gpu_seconds(self) -> int:
        """Estimated GPU time: frames × steps × (resolution / 1024)² × CFG, plus loading."""
        opts = dict(self.options)
        steps = opts.get("steps") or 8
        resolution = opts.get("resolution") or 1024
        cfg = 2 if (opts.get("guidance") or 1.0) > 1.0 else 1
        per_frame = steps * STEP_SECONDS_1024 * (resolution / 1024) ** 2 * cfg
        return int(LOAD_SECONDS + 1.5 * per_frame * self.frames_to_make())

    def run(self, on_progress: Callable[[int, int], None], should_cancel: Callable[[], bool]):
        backend = self.create_backend()
        if self.clip is not None:
            from vfi.clip import interpolate_clip

            return interpolate_clip(
                *self.clip, backend, self.settings, on_progress=on_progress, should_cancel=should_cancel
            )
        from vfi.interpolate import interpolate_frames

        return list(
            interpolate_frames(
                self.keyframes, backend, self.settings, num_frames=len(self.keyframes),
                on_progress=on_progress, should_cancel=should_cancel,
            )
        )  # fmt: skip


@dataclass(frozen=True)
class _Capabilities:
    """What :func:`vfi.interpolate.count_generated` needs of a backend, without building it."""

    name: str

    @property
    def supports_any_t(self) -> bool:
        return self.name in ANY_T_BACKENDS


_CANCELLED: set[str] = set()
_GPU_SLOT = contextlib.nullcontext() if os.environ.get("SPACES_ZERO_GPU") else threading.Lock()


class _ProgressReport:
    """Feeds ``gr.Progress`` per generated frame, with an ETA."""

    def __init__(self, progress: gr.Progress | None) -> None:
        self.progress = progress
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None or not total:
            return
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (total - done) if done else 0.0
        self.progress((done, total), desc=f"frame {done}/{total}, about {eta:.0f} s left", unit="frames")


def run_model(work: Work, progress: gr.Progress | None = None):
    """Run ``work`` (the one function that touches the model; on a ZeroGPU Space it gets a GPU)."""
    return work.run(_ProgressReport(progress), lambda: work.cancel_key in _CANCELLED)


def _gpu_duration(work: Work, progress: gr.Progress | None = None) -> int:
    return work.gpu_seconds()


run_on_gpu = spaces.GPU(duration=_gpu_duration)(run_model) if spaces is not None else run_model


def execute(work: Work, config: AppConfig, progress: gr.Progress | None):
    """Validate, then run ``work``: generative runs one at a time on the GPU, the others right away."""
    work.frames_to_make()  # validates the request (clip limits, frame count vs backend) before any model loads
    if not work.generative:
        return run_model(work, progress)
    seconds = work.gpu_seconds()
    if seconds > config.max_gpu_seconds:
        raise VFIError(
            f"This request needs about {seconds} s of GPU time, more than the limit of {config.max_gpu_seconds} s; "
            "make fewer frames, use fewer steps or a lower working resolution."
        )
    if progress is not None:
        progress(0, desc="waiting for the GPU")
    with _GPU_SLOT:
        return run_on_gpu(work, progress)


# ------------------------------------------------------------------------------------------- helpers


@functools.cache
def _work_root() -> Path:
    """This process's folder for request outputs, made on first use (removed when the app stops)."""
    return Path(tempfile.mkdtemp(prefix="vfi-app-"))


def _request_dir(request: gr.Request | None) -> Path:
    """A fresh folder for one request's outputs (never shared); old ones are swept away."""
    now = time.time()
    for old in _work_root().iterdir():
        with contextlib.suppress(OSError):  # another request may be sweeping the same folder
            if now - old.stat().st_mtime > OUTPUT_TTL_S:
                shutil.rmtree(old)
    session = (getattr(request, "session_hash", None) or "anon")[:12]
    return Path(tempfile.mkdtemp(prefix=f"{session}-", dir=_work_root()))


def _cancel_key(request: gr.Request | None, tab: str) -> str:
    return f"{getattr(request, 'session_hash', None) or uuid.uuid4().hex}:{tab}"


def _start_action(request: gr.Request | None, tab: str) -> str:
    """The cancel key of a new user action; a Stop pressed before it began does not count."""
    key = _cancel_key(request, tab)
    _CANCELLED.discard(key)
    return key


def _user_errors(fn: Callable) -> Callable:
    """Show user errors as ``gr.Error`` (one sentence); log anything else and show a short message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Cancelled:
            raise gr.Error("Stopped.", print_exception=False) from None
        except VFIError as error:
            raise gr.Error(str(error), print_exception=False) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("Something went wrong on the server; the details are in its log.") from None

    return wrapper


def _backend_options(config: AppConfig, backend: str, adapter: str, strength: float, fast: bool, resolution: int,
                     steps: int, guidance: float, prompt: str) -> tuple[tuple[str, Any], ...]:  # fmt: skip
    """The backend's constructor options: from the Advanced section for the generative one, none otherwise."""
    if backend != GENERATIVE:
        return ()
    options: dict[str, Any] = {
        "adapters": tuple(
            replace(spec, scale=float(strength)) for spec in config.adapters if spec.reference == adapter
        ),
        "lightning": config.lightning if fast else None,
        "resolution": int(resolution),
        "steps": int(steps),
        "guidance": float(guidance),
        "prompt": prompt.strip() or None,
    }
    if config.base_model:
        options["base_model"] = config.base_model
    return tuple(options.items())


def _keyframes(first: str | None, last: str | None) -> tuple[np.ndarray, np.ndarray]:
    if not first or not last:
        raise VFIError("Upload both keyframes: the first and the last image.")
    from vfi.frames import load_keyframes

    return load_keyframes(first, last)


def _seed(seed: float, randomize: bool) -> int:
    return random.randrange(2**32) if randomize else int(seed)


# ------------------------------------------------------------------------------------------- actions


def make_keyframes_action(config: AppConfig) -> Callable:
    @_user_errors
    def keyframes(first, last, depth, count, fps, playback, backend, adapter, strength, fast, resolution, steps,
                  guidance, prompt, seed, randomize, request: gr.Request, progress=PROGRESS):  # fmt: skip
        """Frames between two keyframes → MP4, frame gallery, PNG zip, GIF and the seed used."""
        from vfi.video import write_gif, write_mp4, write_png_frames

        first_rgb, last_rgb = _keyframes(first, last)
        seed = _seed(seed, randomize)
        count = int(count or 0)
        settings = InterpolationSettings(depth=None if count else int(depth), frames=count or None, seed=seed)
        options = _backend_options(config, backend, adapter, strength, fast, resolution, steps, guidance, prompt)
        chain = (first_rgb, last_rgb, first_rgb) if playback == "loop" else (first_rgb, last_rgb)
        work = Work(backend, options, settings, keyframes=chain, cancel_key=_start_action(request, "keyframes"))
        start = time.monotonic()
        frames = execute(work, config, progress)
        seconds = time.monotonic() - start
        if playback == "loop":
            frames = frames[:-1]  # the first frame again: the video loops seamlessly
        elif playback == "ping-pong":
            frames = frames + frames[-2:0:-1]
        out = _request_dir(request)
        video = write_mp4(frames, out / "interpolated.mp4", fps=float(fps))
        gif = write_gif(frames, out / "interpolated.gif", fps=float(fps))
        frame_dir = write_png_frames(frames, out / "frames")
        archive = shutil.make_archive(str(out / "frames"), "zip", frame_dir)
        gallery = [(str(p), p.stem) for p in sorted(frame_dir.glob("*.png"))]
        info = f"{len(frames)} frames, {len(frames) / float(fps):.2f} s at {float(fps):g} fps — made in {seconds:.1f} s with {backend}."
        return str(video), gallery, archive, str(gif), seed, info

    return keyframes


def make_clip_actions(config: AppConfig) -> tuple[Callable, Callable]:
    def _settings(factor, slowmo):
        from vfi.clip import ClipSettings

        return ClipSettings(factor=int(factor), slowmo=bool(slowmo))

    def clip_info(video, factor, slowmo) -> str:
        """What the uploaded clip is, what clip mode will make of it, or why it cannot."""
        if not video:
            return "Upload a clip to see its frame rate, frame count and duration."
        from vfi.clip import check_clip, output_fps
        from vfi.video import probe_clip

        try:
            info = probe_clip(video)
            text = (
                f"**Input:** {info.width}×{info.height}, {info.fps:g} fps, {info.num_frames} frames, "
                f"{info.duration:.2f} s, {'with' if info.has_audio else 'no'} audio."
            )
            settings = _settings(factor, slowmo)
            check_clip(info, settings)
        except VFIError as error:
            return f"⚠️ {error}"
        frames = (info.num_frames - 1) * settings.factor + 1
        return f"{text}  \n**Output:** {output_fps(info, settings):g} fps, {frames} frames."

    @_user_errors
    def clip(video, factor, slowmo, backend, adapter, strength, fast, resolution, steps, guidance, prompt,
             request: gr.Request, progress=PROGRESS):  # fmt: skip
        """A clip at factor× the frame rate (or factor× slower), audio kept."""
        if not video:
            raise VFIError("Upload a clip first.")
        from vfi.clip import check_clip

        settings = _settings(factor, slowmo)
        info = check_clip(video, settings)  # probed once: the run reuses what it found
        options = _backend_options(config, backend, adapter, strength, fast, resolution, steps, guidance, prompt)
        output = _request_dir(request) / "interpolated.mp4"
        work = Work(backend, options, settings, clip=(info, str(output)), cancel_key=_start_action(request, "clip"))
        result = execute(work, config, progress)
        audio = "audio kept" if result.has_audio else "no audio"
        notes = "".join(f"  \n{note}" for note in result.notes)
        return str(
            result.path
        ), f"{result.num_frames} frames at {result.fps:g} fps, {result.duration:.2f} s, {audio}.{notes}"

    return clip_info, clip


def compare_presets(config: AppConfig) -> dict[str, tuple[str, bool]]:
    """Preset label → (backend, with adapter)."""
    presets = {"flow (optical flow)": ("flow", False), "crossfade (blend)": ("crossfade", False)}
    if config.generative:
        presets = {
            "Qwen-Image-Edit + adapter": (GENERATIVE, True),
            "Qwen-Image-Edit, no adapter": (GENERATIVE, False),
            **presets,
        }
    return presets


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = frame.copy()
    scale = max(0.4, frame.shape[1] / 640)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (w + 12, h + base + 12), (0, 0, 0), -1)
    cv2.putText(out, text, (6, h + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def make_compare_action(config: AppConfig) -> Callable:
    presets = compare_presets(config)

    @_user_errors
    def compare(first, last, preset_a, preset_b, depth, fps, adapter, strength, fast, resolution, steps, guidance,
                prompt, seed, request: gr.Request, progress=PROGRESS):  # fmt: skip
        """Both settings side by side in one video (so they play in sync), plus their middle frames."""
        from vfi.video import write_mp4

        first_rgb, last_rgb = _keyframes(first, last)
        settings = InterpolationSettings(depth=int(depth), seed=int(seed))
        runs, cancel_key = [], _start_action(request, "compare")
        for preset in (preset_a, preset_b):
            if preset not in presets:
                raise VFIError(f"Unknown setting {preset!r}; choose one of {', '.join(presets)}.")
            backend, with_adapter = presets[preset]
            options = _backend_options(
                config,
                backend,
                adapter if with_adapter else "none",
                strength,
                fast,
                resolution,
                steps,
                guidance,
                prompt,
            )
            work = Work(backend, options, settings, keyframes=(first_rgb, last_rgb), cancel_key=cancel_key)
            runs.append(execute(work, config, progress))
        sides = [[_label(f, name) for f in frames] for name, frames in zip((preset_a, preset_b), runs)]
        out = _request_dir(request)
        video = write_mp4([np.concatenate(pair, axis=1) for pair in zip(*sides)], out / "compare.mp4", fps=float(fps))
        middle = len(runs[0]) // 2
        gallery = [(frames[middle], f"{name}: middle frame") for name, frames in zip((preset_a, preset_b), runs)]
        return str(video), gallery

    return compare


def stop_action(tab: str) -> Callable:
    def stop(request: gr.Request) -> None:
        _CANCELLED.add(_cancel_key(request, tab))

    return stop


# ------------------------------------------------------------------------------------------------ UI


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


def build_app(config: AppConfig) -> gr.Blocks:
    generative = config.backend == GENERATIVE
    adapters = [spec.reference for spec in config.adapters]
    with gr.Blocks(title="vfi — frame interpolation", delete_cache=(600, OUTPUT_TTL_S)) as demo:
        gr.Markdown(
            "# vfi — video frame interpolation\n"
            "Frames between two keyframes, or a clip at a higher frame rate. The generative backend is "
            "Qwen-Image-Edit with an interpolation LoRA; *flow* is a fast optical-flow backend that runs on any CPU."
        )
        with gr.Row():
            backend = gr.Dropdown(config.backends, value=config.backend, label="Backend", scale=1)
            gr.Markdown(f"Backends here: {', '.join(config.backends)}. Compare picks its own two settings.")
        with gr.Accordion("Advanced (generative backend)", open=False, visible=generative) as advanced:
            with gr.Row():
                adapter = gr.Dropdown(["none", *adapters], value=adapters[0] if adapters else "none", label="Adapter")
                strength = gr.Slider(
                    0.0, 2.0, value=config.adapters[0].scale if adapters else 1.0, step=0.05, label="Adapter strength"
                )
                fast = gr.Checkbox(value=False, label="Fast mode (Lightning)", interactive=config.lightning is not None)
            with gr.Row():
                resolution = gr.Slider(64, 1024, value=512, step=32, label="Working resolution (longest side, px)")
                steps = gr.Slider(1, 50, value=20, step=1, label="Steps")
                guidance = gr.Slider(1.0, 8.0, value=4.0, step=0.5, label="Guidance (true CFG; 1 = off)")
            prompt = gr.Textbox("", label="Prompt (empty: the adapter's own)", lines=1)
        advanced_inputs = [adapter, strength, fast, resolution, steps, guidance, prompt]
        backend.change(
            lambda name: gr.Accordion(visible=name == GENERATIVE), backend, advanced, api_visibility="private"
        )
        fast.change(lambda on: (gr.Slider(value=8 if on else 20), gr.Slider(value=1.0 if on else 4.0)), fast, [steps, guidance], api_visibility="private")  # fmt: skip

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
                    label="Or exactly N in-betweens (flow/crossfade; 0 = use depth)",
                )
                fps = gr.Slider(1, 60, value=12, step=1, label="Output fps")
                playback = gr.Radio(["once", "loop", "ping-pong"], value="once", label="Playback")
            with gr.Row():
                seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")
                randomize = gr.Checkbox(value=False, label="Randomize seed")
            with gr.Row():
                run = gr.Button("Interpolate", variant="primary", elem_id="run-keyframes")
                stop = gr.Button("Stop", variant="stop")
            with gr.Row():
                video = gr.Video(label="Video", autoplay=True, loop=True, elem_id="video-keyframes")
                gallery = gr.Gallery(label="Frames", columns=6, height=320, elem_id="gallery-keyframes")
            with gr.Row():
                zip_file = gr.File(label="All frames (PNG, zip)")
                gif = gr.File(label="GIF")
                seed_used = gr.Number(label="Seed used", precision=0, interactive=False)
            info = gr.Markdown(elem_id="info-keyframes")
            keyframes_fn = make_keyframes_action(config)
            outputs = [video, gallery, zip_file, gif, seed_used, info]
            event = run.click(
                keyframes_fn, [first, last, depth, count, fps, playback, backend, *advanced_inputs, seed, randomize],
                outputs, api_name="keyframes", concurrency_limit=4,
            )  # fmt: skip
            stop.click(stop_action("keyframes"), None, None, cancels=[event], queue=False, api_name="stop_keyframes")

            def keyframes_example(first_path, last_path, request: gr.Request, progress=PROGRESS):
                return keyframes_fn(first_path, last_path, 3, 0, 12, "once", config.backend, *_advanced_defaults(config),
                                    0, False, request, progress)  # fmt: skip

            gr.Examples(_example_pairs(), [first, last], outputs, fn=keyframes_example, cache_examples=True,
                        cache_mode="lazy", label="Examples (click one: its video is made once, then cached)",
                        elem_id="examples-keyframes")  # fmt: skip

        with gr.Tab("Clip"):
            clip_info_fn, clip_fn = make_clip_actions(config)
            with gr.Row():
                clip_in = gr.Video(label="Input clip", sources=["upload"], elem_id="clip-in")
                clip_out = gr.Video(label="Interpolated clip", autoplay=True, elem_id="video-clip")
            with gr.Row():
                factor = gr.Radio([("×2", 2), ("×4", 4), ("×8", 8)], value=2, label="Frame-rate factor")
                slowmo = gr.Checkbox(value=False, label="Slow motion (keep the fps: plays factor× slower)")
            clip_details = gr.Markdown(clip_info_fn(None, 2, False), elem_id="info-clip-in")
            with gr.Row():
                run_clip = gr.Button("Interpolate clip", variant="primary", elem_id="run-clip")
                stop_clip = gr.Button("Stop", variant="stop")
            clip_result = gr.Markdown(elem_id="info-clip")
            gr.on([clip_in.change, factor.change, slowmo.change], clip_info_fn, [clip_in, factor, slowmo], clip_details,
                  api_name="clip_info", queue=False)  # fmt: skip
            clip_event = run_clip.click(
                clip_fn, [clip_in, factor, slowmo, backend, *advanced_inputs], [clip_out, clip_result],
                api_name="clip", concurrency_limit=4,
            )  # fmt: skip
            stop_clip.click(stop_action("clip"), None, None, cancels=[clip_event], queue=False, api_name="stop_clip")

            def clip_example(path, request: gr.Request, progress=PROGRESS):
                return clip_fn(path, 2, False, config.backend, *_advanced_defaults(config), request, progress)

            gr.Examples([[str(EXAMPLES / "clip.mp4")]], [clip_in], [clip_out, clip_result], fn=clip_example,
                        cache_examples=True, cache_mode="lazy", label="Example clip (2 s, 12 fps, with a tone)")  # fmt: skip

        with gr.Tab("Compare"):
            presets = list(compare_presets(config))
            with gr.Row():
                cmp_first = keyframe_image(label="First keyframe", elem_id="cmp-first")
                cmp_last = keyframe_image(label="Last keyframe", elem_id="cmp-last")
            with gr.Row():
                preset_a = gr.Dropdown(presets, value=presets[0], label="Left")
                preset_b = gr.Dropdown(presets, value=presets[1], label="Right")
                cmp_depth = gr.Slider(1, 4, value=3, step=1, label="Depth")
                cmp_fps = gr.Slider(1, 60, value=12, step=1, label="Output fps")
                cmp_seed = gr.Number(0, precision=0, minimum=0, maximum=2**32 - 1, label="Seed")
            with gr.Row():
                run_cmp = gr.Button("Compare", variant="primary", elem_id="run-compare")
                stop_cmp = gr.Button("Stop", variant="stop")
            cmp_video = gr.Video(label="Left vs right (in sync)", autoplay=True, loop=True, elem_id="video-compare")
            cmp_gallery = gr.Gallery(label="Middle frames", columns=2, height=320, elem_id="gallery-compare")
            cmp_event = run_cmp.click(
                make_compare_action(config),
                [cmp_first, cmp_last, preset_a, preset_b, cmp_depth, cmp_fps, *advanced_inputs, cmp_seed],
                [cmp_video, cmp_gallery], api_name="compare", concurrency_limit=4,
            )  # fmt: skip
            stop_cmp.click(
                stop_action("compare"), None, None, cancels=[cmp_event], queue=False, api_name="stop_compare"
            )
            gr.Examples(_example_pairs(), [cmp_first, cmp_last], label="Examples")
    return demo


def _advanced_defaults(config: AppConfig) -> list[Any]:
    """The Advanced section's initial values (used by the cached examples)."""
    adapter, strength = (config.adapters[0].reference, config.adapters[0].scale) if config.adapters else ("none", 1.0)
    return [adapter, strength, False, 512, 20, 4.0, ""]


def _preload(config: AppConfig) -> None:
    """Load the generative pipeline now (on a Space: before the first visitor waits for it)."""
    options = _backend_options(config, GENERATIVE, *_advanced_defaults(config))
    Work(GENERATIVE, options, InterpolationSettings()).create_backend()


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = parse_args(argv)
    except VFIError as error:
        raise SystemExit(f"error: {error}") from None
    if config.preload and config.generative:
        _preload(config)
    demo = build_app(config)
    demo.queue(default_concurrency_limit=4)
    try:
        demo.launch(server_name=config.host, server_port=config.port, show_error=True)
    finally:
        if _work_root.cache_info().currsize:
            shutil.rmtree(_work_root(), ignore_errors=True)


if __name__ == "__main__":
    main()
