"""Command line: ``python -m vfi pair|sequence|compare|clip|evaluate …``.

Every user error prints one line ``error: …`` on stderr and exits with status 2; every output is
checked before any work (:mod:`vfi.io.files`) and no partial output file is left behind (writers use
temporary names and rename on success), also after Ctrl-C (exit 130) or SIGTERM (exit 143).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vfi.backends import ANY_T_BACKENDS, BACKEND_NAMES
from vfi.backends.qwen_config import add_options
from vfi.cli import commands
from vfi.distributed import finish_processes, is_main, limit_threads, tell
from vfi.errors import VFIError
from vfi.io.images import MISMATCH_MODES
from vfi.io.numbers import parse_decimal, parse_whole
from vfi.manifest import INPUT_SETTINGS
from vfi.modes.retime import parse_rate
from vfi.modes.scenes import SCENE_THRESHOLD
from vfi.qwen.conditioning import LAYOUTS
from vfi.run_spec import SPECS
from vfi.signals import Terminated, sigterm_as_interrupt

if TYPE_CHECKING:
    from vfi.cli.batch import BatchItem

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
    add_options(parser.add_argument_group("qwen-edit backend"))
    hybrid = parser.add_argument_group("hybrid mode")
    hybrid.add_argument(
        "--refine",
        choices=ANY_T_BACKENDS,
        help="backend that fills the finer levels between generated frames",
    )
    hybrid.add_argument(
        "--generative-depth",
        type=parse_whole,
        metavar="G",
        help="recursion levels the main backend makes before --refine takes over (default 1)",
    )


def _add_clip_options(parser: argparse.ArgumentParser) -> None:
    """The options of clip mode (``clip`` and ``batch``)."""
    parser.add_argument(
        "--factor", type=parse_whole, default=2, choices=(2, 4, 8), help="frame-rate multiplier (default 2)"
    )
    parser.add_argument("--slowmo", action="store_true", help="keep the input fps: the clip plays factor× slower")
    parser.add_argument("--seed", type=parse_whole, default=0, help="seed (generative backends)")
    parser.add_argument(
        "--fps",
        type=parse_rate,
        metavar="RATE",
        help="target frame rate instead of --factor: any rational (60, 59.94, 60000/1001); duration and audio kept",
    )
    parser.add_argument(
        "--scene-threshold",
        type=parse_decimal,
        default=SCENE_THRESHOLD,
        metavar="S",
        help=f"scene-change score (0–1) above which frames are a cut, never interpolated across (default {SCENE_THRESHOLD})",
    )
    parser.add_argument(
        "--start", type=parse_decimal, default=0.0, metavar="SECONDS", help="trim: start here (default 0)"
    )
    parser.add_argument("--end", type=parse_decimal, metavar="SECONDS", help="trim: end here (default: the clip's end)")


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=parse_whole,
        metavar="N",
        help="CPU threads this process uses (OpenCV, torch, OpenMP); one per core when launched on several",
    )


#: Each command's input options (a manifest hashes them; replay refuses changed ones) and its main output
#: (replay's -o).
INPUTS = INPUT_SETTINGS
MAIN_OUTPUT = {"pair": "output", "sequence": "output", "clip": "output", "evaluate": "json"}
#: Options that name files a run writes (cleared on replay, except the main output).
OUTPUTS = ("output", "gif", "frames_dir", "json", "report", "manifest")


def _add_mismatch_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mismatch",
        default="auto",
        choices=MISMATCH_MODES,
        help="keyframes of different aspect ratios: crop (fit) or pad each to the first, or refuse; default auto: "
        "fit unless the ratios are more than 2x apart, then refuse",
    )


def _add_manifest_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="FILE",
        help="also write a manifest (input hashes, every setting, seeds, adapters, versions, timings) for replay",
    )


def _inputs(args: argparse.Namespace) -> list[Path]:
    values = [getattr(args, name) for name in INPUTS[args.command]]
    return [Path(v) for value in values for v in (value if isinstance(value, list) else [value]) if v is not None]


def _settings(args: argparse.Namespace) -> dict:
    """The parsed options (defaults included), input paths absolute, without the command function: the typed
    spec's (:mod:`vfi.run_spec`) for the commands the app runs too."""
    if args.command in SPECS:
        return SPECS[args.command].from_options(vars(args), commands.qwen_config(args)).settings()
    inputs = INPUTS[args.command]

    def absolute(name: str, value: object) -> object:
        if name not in inputs or value is None:
            return value
        return [str(Path(v).resolve()) for v in value] if isinstance(value, list) else str(Path(value).resolve())

    return {name: absolute(name, value) for name, value in vars(args).items() if name != "run"}


def _run(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Run the command; with ``--manifest``, hash the inputs first and write the manifest after."""
    if not getattr(args, "manifest", None) or not is_main():
        args.run(args)
        return
    import time

    from vfi.manifest import build_manifest, hash_inputs, write_manifest

    inputs = hash_inputs(_inputs(args))
    started, clock = time.time(), time.perf_counter()
    seeds = args.run(args)
    fell_back = (seeds or {}).pop("fallbacks", [])
    config = commands.qwen_config(args)
    seconds = time.perf_counter() - clock
    manifest = build_manifest(
        args.command, _settings(args), list(argv), inputs, config, seeds, started, seconds, fell_back
    )
    write_manifest(manifest, args.manifest)
    print(f"wrote the manifest {args.manifest}", file=sys.stderr)


def _cmd_replay(args: argparse.Namespace) -> dict:
    """Remake the run a manifest describes, writing to ``-o`` (and ``--frames-dir``) instead."""
    from vfi.io.files import check_apart
    from vfi.manifest import changed_packages, load_manifest, with_inputs

    check_apart([args.output, args.frames_dir], [args.manifest_in, *(args.inputs or ())])
    manifest = load_manifest(args.manifest_in, args.inputs)
    command = manifest["command"]
    if args.frames_dir is not None and command not in ("pair", "sequence"):
        raise VFIError("--frames-dir replays pair and sequence runs only.")
    placeholders = [command, *("-" * len(INPUTS[command])), *(["-o", "-"] if MAIN_OUTPUT[command] == "output" else [])]
    values = {**vars(build_parser().parse_args(placeholders)), **manifest["settings"]}  # options added since: defaults
    for name in OUTPUTS:
        values[name] = None
    values[MAIN_OUTPUT[command]], values["frames_dir"] = args.output, args.frames_dir
    for name in INPUTS[command]:
        value = values[name]
        values[name] = [Path(v) for v in value] if isinstance(value, list) else value and Path(value)
    if args.inputs is not None:  # load_manifest checked that they hash as the recorded ones
        values.update(with_inputs(command, manifest["settings"], args.inputs))
    if isinstance(values.get("fps"), str):
        values["fps"] = parse_rate(values["fps"])
    for change in changed_packages(manifest):
        print(f"note: the run used {change}", file=sys.stderr)
    replayed = argparse.Namespace(**{**values, "command": command})
    return _REPLAYABLE[command](replayed)


def _cmd_batch(args: argparse.Namespace) -> dict:
    """Clip mode on every video of ``IN``; outputs complete with the same settings are skipped."""
    from vfi.cli.batch import is_complete, plan_batch, remove_partials, run_batch
    from vfi.distributed import main_value

    items = plan_batch(args.source, args.out_dir)
    options = {name: value for name, value in vars(args).items() if name not in ("source", "out_dir")}

    def clip_args(item: BatchItem) -> argparse.Namespace:
        values = {**options, "command": "clip", "run": commands.clip}
        return argparse.Namespace(**values, input=item.input, output=item.output, report=None, manifest=item.manifest)

    def make(item: BatchItem) -> None:
        if is_main():
            item.output.parent.mkdir(parents=True, exist_ok=True)
            remove_partials(item)
        _run(clip_args(item), ["clip", str(item.input), "-o", str(item.output)])

    def log(line: str) -> None:
        if is_main():
            print(line, file=sys.stderr)

    complete = main_value(lambda: [is_complete(item, _settings(clip_args(item))) for item in items])
    summary = run_batch(items, complete, make, log=log)
    log(f"batch: {summary}")
    if summary.failed:
        raise VFIError(f"{len(summary.failed)} of {len(items)} videos failed (listed above).")
    return {}


_REPLAYABLE = {
    "pair": commands.pair,
    "sequence": commands.sequence,
    "clip": commands.clip,
    "evaluate": commands.evaluate,
}


def program_name() -> str:
    """How the user started us: ``python -m vfi`` or the ``vfi`` console script (for usage lines and errors)."""
    return "python -m vfi" if Path(sys.argv[0]).name == "__main__.py" else Path(sys.argv[0]).name or "vfi"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=program_name(), description="Video frame interpolation (flow, crossfade, Qwen-Image-Edit + LoRA)."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    pair = sub.add_parser("pair", help="make the frames between two keyframes")
    pair.add_argument("first", type=Path, help="first keyframe (image file)")
    pair.add_argument("last", type=Path, help="last keyframe (image file)")
    pair.add_argument("-o", "--output", type=Path, required=True, help="output MP4")
    count = pair.add_mutually_exclusive_group()
    count.add_argument(
        "--depth", type=parse_whole, default=3, help="recursion depth k: 2^k - 1 in-betweens (default 3)"
    )
    count.add_argument("--frames", type=parse_whole, help="N evenly spaced in-betweens (backends that support any t)")
    pair.add_argument("--fps", type=parse_decimal, default=24.0, help="output frame rate (default 24)")
    pair.add_argument("--seed", type=parse_whole, default=0, help="seed (generative backends)")
    pair.add_argument("--frames-dir", type=Path, help="also write every frame as DIR/frame_0000.png …")
    pair.add_argument("--gif", type=Path, help="also write a looping GIF")
    _add_mismatch_option(pair)
    _add_manifest_option(pair)
    _add_backend_options(pair)
    pair.set_defaults(run=commands.pair)

    seq = sub.add_parser("sequence", help="a storyboard: N keyframes → one video through N−1 transitions")
    seq.add_argument("keyframes", type=Path, nargs="+", help="the keyframes in order (image files)")
    seq.add_argument("-o", "--output", type=Path, required=True, help="output MP4")
    per_pair = seq.add_mutually_exclusive_group()
    per_pair.add_argument(
        "--depth", default="3", help="recursion depth for every transition, or one per transition: 3,2,3 (default 3)"
    )
    per_pair.add_argument(
        "--frames-per-pair", type=parse_whole, help="N evenly spaced in-betweens per transition (any-t backends)"
    )
    seq.add_argument("--fps", type=parse_decimal, default=24.0, help="output frame rate (default 24)")
    seq.add_argument("--prompts", type=Path, help="text file: one prompt per transition (generative backend)")
    seq.add_argument("--seed", type=parse_whole, default=0, help="seed (generative backends)")
    seq.add_argument(
        "--frame-seed",
        action="append",
        default=[],
        metavar="FRAME=SEED",
        help="the seed of one in-between (repeatable), e.g. one the app's re-roll chose: its label shows it",
    )
    seq.add_argument("--frames-dir", type=Path, help="also write every frame as DIR/frame_0000.png …")
    seq.add_argument("--gif", type=Path, help="also write a looping GIF")
    _add_mismatch_option(seq)
    _add_manifest_option(seq)
    _add_threads_option(seq)
    _add_backend_options(seq)
    seq.set_defaults(run=commands.sequence)

    cmp = sub.add_parser("compare", help="two backends on the same keyframes: side by side, and PSNR/SSIM between them")
    cmp.add_argument("first", type=Path, help="first keyframe (image file)")
    cmp.add_argument("last", type=Path, help="last keyframe (image file)")
    cmp.add_argument("-o", "--output", type=Path, required=True, help="output MP4: --backend | --against, in sync")
    cmp.add_argument(
        "--against", default="crossfade", choices=BACKEND_NAMES, help="the right side's backend (default crossfade)"
    )
    cmp.add_argument("--depth", type=parse_whole, default=3, help="recursion depth k: 2^k - 1 in-betweens (default 3)")
    cmp.add_argument("--fps", type=parse_decimal, default=12.0, help="output frame rate (default 12)")
    cmp.add_argument("--seed", type=parse_whole, default=0, help="seed (generative backends)")
    _add_mismatch_option(cmp)
    _add_backend_options(cmp)
    cmp.set_defaults(run=commands.compare)

    clip = sub.add_parser("clip", help="interpolate every pair of frames of a video")
    clip.add_argument("input", type=Path, help="input video")
    clip.add_argument("-o", "--output", type=Path, required=True, help="output MP4")
    _add_clip_options(clip)
    clip.add_argument(
        "--report",
        type=Path,
        metavar="R.json",
        help="also drop every other frame (every factor-th kept), rebuild it and write PSNR/SSIM as JSON",
    )
    _add_manifest_option(clip)
    _add_threads_option(clip)
    _add_backend_options(clip)
    clip.set_defaults(run=commands.clip)

    batch = sub.add_parser("batch", help="clip mode on every video of a folder or list file, resumably")
    batch.add_argument("source", type=Path, metavar="IN", help="folder of videos (searched recursively) or list file")
    batch.add_argument("-o", "--out-dir", type=Path, required=True, help="output folder: one MP4 and manifest each")
    _add_clip_options(batch)
    _add_threads_option(batch)
    _add_backend_options(batch)
    batch.set_defaults(run=_cmd_batch)

    ev = sub.add_parser("evaluate", help="PSNR/SSIM/speed on triplet folders")
    ev.add_argument("data_dir", type=Path, help="folder searched recursively for triplets")
    ev.add_argument("--json", type=Path, help="write the results as JSON")
    _add_manifest_option(ev)
    _add_threads_option(ev)
    _add_backend_options(ev)
    ev.set_defaults(run=commands.evaluate)

    replay = sub.add_parser("replay", help="remake a run from its manifest (--manifest)")
    replay.add_argument("manifest_in", type=Path, metavar="MANIFEST", help="a manifest written by --manifest")
    replay.add_argument("-o", "--output", type=Path, required=True, help="output (MP4; JSON for evaluate)")
    replay.add_argument("--frames-dir", type=Path, help="also write every frame as DIR/frame_0000.png … (pair)")
    replay.add_argument(
        "--inputs",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="your copies of the inputs, in the command's order (e.g. FIRST LAST); each must hash as recorded",
    )
    replay.set_defaults(run=_cmd_replay)

    tiny = sub.add_parser("tiny-model", help="write a tiny random Qwen-Image-Edit pipeline (tests, demos)")
    tiny.add_argument("out_dir", type=Path, help="folder to write the pipeline to")
    tiny.add_argument(
        "--layout",
        default="side-by-side",
        choices=LAYOUTS,
        help="side-by-side (QwenImageEditPipeline) or multi (QwenImageEditPlusPipeline)",
    )
    tiny.add_argument("--adapter-out", type=Path, metavar="DIR", help="also write a random LoRA adapter for it")
    tiny.set_defaults(run=commands.tiny_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 Ctrl-C, 143 SIGTERM)."""
    try:
        with sigterm_as_interrupt():
            argv = sys.argv[1:] if argv is None else list(argv)
            args = build_parser().parse_args(argv)
            if getattr(args, "threads", None) is not None:
                limit_threads(args.threads)
            _run(args, argv)
            finish_processes()
    except VFIError as error:
        tell(f"error: {error}")
        return USER_ERROR
    except Terminated:
        tell("error: terminated (SIGTERM); no partial output was left.")
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        tell("error: interrupted.")
        return 130
    return 0
