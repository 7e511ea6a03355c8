"""Command line: ``python -m vfi pair|clip|evaluate …``.

Every user error prints one line ``error: …`` on stderr and exits with status 2; every output is
checked before any work (:mod:`vfi.files`) and no partial output file is left behind (writers use
temporary names and rename on success), also after Ctrl-C (exit 130) or SIGTERM (exit 143).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from vfi.backends import ANY_T_BACKENDS, BACKEND_NAMES, Backend, create_backend
from vfi.conditioning import LAYOUTS
from vfi.errors import VFIError
from vfi.pipeline import DEFAULT_BASE_MODEL, MEMORY_MODES
from vfi.signals import Terminated, sigterm_as_interrupt

USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad options the same way as every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise VFIError(message[:1].upper() + message[1:] + ("" if message.endswith(".") else "."))


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose and configure the backend(s)."""
    parser.add_argument(
        "--backend", default="flow", choices=BACKEND_NAMES, help="interpolation backend (default: flow)"
    )
    qwen = parser.add_argument_group("qwen-edit backend")
    qwen.add_argument(
        "--base-model",
        default=DEFAULT_BASE_MODEL,
        metavar="ID_OR_DIR",
        help=f"base Qwen-Image-Edit(-Plus) pipeline: Hub id or folder (default: {DEFAULT_BASE_MODEL})",
    )
    qwen.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="ID_OR_DIR[@SCALE]",
        help="interpolation LoRA adapter (repeatable); none runs the base model alone",
    )
    qwen.add_argument("--lightning", metavar="ID_OR_DIR[@SCALE]", help="few-step LoRA stacked for a fast mode")
    qwen.add_argument(
        "--resolution",
        type=int,
        help="working resolution: longest side, multiple of 32 (default: the adapter's, else 512)",
    )
    qwen.add_argument("--steps", type=int, help="denoising steps (default 30, 8 with --lightning)")
    qwen.add_argument("--guidance", type=float, help="true CFG scale; 1 turns CFG off (default 4, 1 with --lightning)")
    qwen.add_argument("--prompt", help="override the adapter's prompt")
    qwen.add_argument("--batch", type=int, default=4, help="frames per pipeline call (default 4)")
    qwen.add_argument(
        "--memory",
        default="auto",
        choices=MEMORY_MODES,
        help="GPU memory mode: CPU offload of whole models or of every layer (default: from free memory)",
    )
    qwen.add_argument("--fuse", action="store_true", help="fuse the adapters into the weights (faster, fixed adapters)")
    qwen.add_argument("--compile", action="store_true", help="torch.compile the transformer")
    qwen.add_argument(
        "--no-register",
        dest="register",
        action="store_false",
        help="keep generated frames as the model made them (default: undo its global shift/zoom jitter)",
    )
    hybrid = parser.add_argument_group("hybrid mode")
    hybrid.add_argument(
        "--refine",
        choices=ANY_T_BACKENDS,
        help="backend that fills the finer levels between generated frames",
    )
    hybrid.add_argument(
        "--generative-depth",
        type=int,
        metavar="G",
        help="recursion levels the main backend makes before --refine takes over (default 1)",
    )


def _qwen_config(args: argparse.Namespace):
    """The generative backend's ``QwenEditConfig`` from the options (unset ones: the adapter's or the defaults)."""
    from vfi.backends.qwen_edit import QwenEditConfig

    return QwenEditConfig(
        base_model=args.base_model, adapters=tuple(args.adapter), lightning=args.lightning,
        resolution=args.resolution, steps=args.steps, guidance=args.guidance, prompt=args.prompt,
        batch=args.batch, memory=args.memory, fuse=args.fuse, compile=args.compile, register=args.register,
    )  # fmt: skip


def _make_backends(args: argparse.Namespace) -> tuple[Backend, Backend | None]:
    """The main backend and the optional refine backend (hybrid mode) the options ask for."""
    if args.generative_depth is not None and args.refine is None:
        raise VFIError("--generative-depth needs --refine (hybrid mode).")
    options = {"config": _qwen_config(args)} if args.backend == "qwen-edit" else {}
    refine = create_backend(args.refine) if args.refine else None
    return create_backend(args.backend, **options), refine


def _cmd_tiny_model(args: argparse.Namespace) -> None:
    from vfi.tiny_model import build_tiny_adapter, build_tiny_pipeline

    path = build_tiny_pipeline(args.out_dir, args.layout)
    print(f"wrote a tiny {args.layout} pipeline to {path}", file=sys.stderr)
    if args.adapter_out:
        adapter = build_tiny_adapter(path, args.adapter_out)
        print(f"wrote a tiny adapter to {adapter}", file=sys.stderr)


class _ProgressBar:
    """A tqdm bar on stderr, fed by ``(done, total)`` progress callbacks; created on the first call."""

    def __init__(self, desc: str) -> None:
        self._desc = desc
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self._desc, unit="frame", file=sys.stderr, dynamic_ncols=True)
        self._bar.total = total
        self._bar.update(done - self._bar.n)

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _check_outputs(*files: Path | None, frames_dir: Path | None = None) -> None:
    """Fail before any work when an output cannot be written (see :mod:`vfi.files`), or when two outputs
    are the same file."""
    from vfi.files import check_output
    from vfi.video import check_frames_dir

    targets = [check_output(path).resolve() for path in files if path is not None]
    if len(set(targets)) < len(targets):
        raise VFIError("Two outputs name the same file; give each its own.")
    if frames_dir is not None:
        check_frames_dir(frames_dir)


def _cmd_pair(args: argparse.Namespace) -> None:
    from vfi.frames import load_keyframes
    from vfi.interpolate import InterpolationSettings, interpolate_frames
    from vfi.video import write_gif, write_mp4, write_png_frames

    settings = InterpolationSettings(
        depth=None if args.frames else args.depth,
        frames=args.frames,
        seed=args.seed,
        generative_depth=args.generative_depth,
    )
    _check_outputs(args.output, args.gif, frames_dir=args.frames_dir)
    first, last = load_keyframes(args.first, args.last)
    backend, refine = _make_backends(args)
    with _ProgressBar("interpolating") as bar:
        frames = list(
            interpolate_frames((first, last), backend, settings, refine=refine, num_frames=2, on_progress=bar)
        )
    write_mp4(frames, args.output, fps=args.fps)
    if args.gif:
        write_gif(frames, args.gif, fps=args.fps)
    if args.frames_dir:
        write_png_frames(frames, args.frames_dir)
    print(f"wrote {len(frames)} frames to {args.output}", file=sys.stderr)


def _cmd_clip(args: argparse.Namespace) -> None:
    from vfi.clip import ClipSettings, interpolate_clip

    _check_outputs(args.output)
    backend, refine = _make_backends(args)
    settings = ClipSettings(
        factor=args.factor, slowmo=args.slowmo, seed=args.seed, generative_depth=args.generative_depth
    )
    with _ProgressBar("interpolating") as bar:
        result = interpolate_clip(args.input, args.output, backend, settings, refine=refine, on_progress=bar)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {result.num_frames} frames at {result.fps:g} fps to {args.output}", file=sys.stderr)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from vfi.evaluate import evaluate, format_table

    _check_outputs(args.json)
    backend, refine = _make_backends(args)
    with _ProgressBar("evaluating") as bar:
        report = evaluate(args.data_dir, backend, refine=refine, on_progress=bar)
    print(format_table(report))
    if args.json:
        from vfi.files import atomic_path

        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m vfi", description="Video frame interpolation (flow, crossfade, Qwen-Image-Edit + LoRA)."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    pair = sub.add_parser("pair", help="make the frames between two keyframes")
    pair.add_argument("first", type=Path, help="first keyframe (image file)")
    pair.add_argument("last", type=Path, help="last keyframe (image file)")
    pair.add_argument("-o", "--output", type=Path, required=True, help="output MP4")
    count = pair.add_mutually_exclusive_group()
    count.add_argument("--depth", type=int, default=3, help="recursion depth k: 2^k - 1 in-betweens (default 3)")
    count.add_argument("--frames", type=int, help="N evenly spaced in-betweens (backends that support any t)")
    pair.add_argument("--fps", type=float, default=24.0, help="output frame rate (default 24)")
    pair.add_argument("--seed", type=int, default=0, help="seed (generative backends)")
    pair.add_argument("--frames-dir", type=Path, help="also write every frame as DIR/frame_0000.png …")
    pair.add_argument("--gif", type=Path, help="also write a looping GIF")
    _add_backend_options(pair)
    pair.set_defaults(run=_cmd_pair)

    clip = sub.add_parser("clip", help="interpolate every pair of frames of a video")
    clip.add_argument("input", type=Path, help="input video")
    clip.add_argument("-o", "--output", type=Path, required=True, help="output MP4")
    clip.add_argument("--factor", type=int, default=2, choices=(2, 4, 8), help="frame-rate multiplier (default 2)")
    clip.add_argument("--slowmo", action="store_true", help="keep the input fps: the clip plays factor× slower")
    clip.add_argument("--seed", type=int, default=0, help="seed (generative backends)")
    _add_backend_options(clip)
    clip.set_defaults(run=_cmd_clip)

    ev = sub.add_parser("evaluate", help="PSNR/SSIM/speed on triplet folders")
    ev.add_argument("data_dir", type=Path, help="folder searched recursively for triplets")
    ev.add_argument("--json", type=Path, help="write the results as JSON")
    _add_backend_options(ev)
    ev.set_defaults(run=_cmd_evaluate)

    tiny = sub.add_parser("tiny-model", help="write a tiny random Qwen-Image-Edit pipeline (tests, demos)")
    tiny.add_argument("out_dir", type=Path, help="folder to write the pipeline to")
    tiny.add_argument(
        "--layout",
        default="side-by-side",
        choices=LAYOUTS,
        help="side-by-side (QwenImageEditPipeline) or multi (QwenImageEditPlusPipeline)",
    )
    tiny.add_argument("--adapter-out", type=Path, metavar="DIR", help="also write a random LoRA adapter for it")
    tiny.set_defaults(run=_cmd_tiny_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 Ctrl-C, 143 SIGTERM)."""
    try:
        with sigterm_as_interrupt():
            args = build_parser().parse_args(argv)
            args.run(args)
    except VFIError as error:
        print(f"error: {error}", file=sys.stderr)
        return USER_ERROR
    except Terminated:
        print("error: terminated (SIGTERM); no partial output was left.", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    return 0
