"""What each ``python -m vfi`` command does, from parsed options to the files it writes.

:mod:`vfi.cli` owns the parser, ``--manifest``/``replay`` and ``main``; each function here takes the
parsed ``argparse.Namespace`` and returns the seeds a manifest records (``compare`` and ``tiny-model``
write no manifest). Every output is checked before any work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from vfi.backends import GENERATIVE, Backend, create_backend
from vfi.backends.base import fallback_list
from vfi.backends.qwen_config import QwenEditConfig
from vfi.distributed import is_main
from vfi.errors import VFIError
from vfi.io.files import write_json
from vfi.io.video import check_fps
from vfi.manifest import clip_seeds, frame_seeds


def qwen_config(args: argparse.Namespace) -> QwenEditConfig | None:
    """The generative backend's ``QwenEditConfig`` from the options (unset ones: the adapter's or the defaults);
    None when the backend is not ``qwen-edit``."""
    return QwenEditConfig.from_options(vars(args)) if args.backend == GENERATIVE else None


def make_backends(args: argparse.Namespace) -> tuple[Backend, Backend | None]:
    """The main backend and the optional refine backend (hybrid mode) the options ask for."""
    if args.generative_depth is not None and args.refine is None:
        raise VFIError("--generative-depth needs --refine (hybrid mode).")
    config = qwen_config(args)
    _print_notes([config.steps_note() if config is not None else None])
    refine = create_backend(args.refine) if args.refine else None
    return create_backend(args.backend, config), refine


def tiny_model(args: argparse.Namespace) -> dict:
    from vfi.testing.tiny_model import build_tiny_adapter, build_tiny_pipeline

    path = build_tiny_pipeline(args.out_dir, args.layout)
    print(f"wrote a tiny {args.layout} pipeline to {path}", file=sys.stderr)
    if args.adapter_out:
        adapter = build_tiny_adapter(path, args.adapter_out)
        print(f"wrote a tiny adapter to {adapter}", file=sys.stderr)
    return {}


class _ProgressBar:
    """A tqdm bar on stderr, fed by ``(done, total)`` progress callbacks; created on the first call. It shows frames
    done of the total and the time left, not a rate (frames come a level at a time: "45875 frame/s")."""

    FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames [{elapsed} elapsed, {remaining} left]"

    def __init__(self, desc: str) -> None:
        self._desc = desc
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=self._desc,
                bar_format=self.FORMAT,
                file=sys.stderr,
                dynamic_ncols=True,
                disable=not is_main(),
            )
        self._bar.total = total
        self._bar.update(done - self._bar.n)

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()


def _check_outputs(*files: Path | None, inputs: Iterable[Path | None], frames_dir: Path | None = None) -> None:
    """Fail before any work when an output cannot be written (see :mod:`vfi.io.files`), when two outputs
    are the same file, or when an output is one of the ``inputs``."""
    from vfi.io.files import check_apart, check_output
    from vfi.io.video import check_frames_dir

    check_apart([*files, frames_dir], inputs)
    targets = [check_output(path).resolve() for path in files if path is not None]
    if len(set(targets)) < len(targets):
        raise VFIError("Two outputs name the same file; give each its own.")
    if frames_dir is not None:
        check_frames_dir(frames_dir)


def pair(args: argparse.Namespace) -> dict:
    from vfi.interpolate import InterpolationSettings, interpolate_frames
    from vfi.io.images import match_keyframes
    from vfi.io.video import write_gif, write_mp4, write_png_frames

    settings = InterpolationSettings(
        depth=None if args.frames else args.depth,
        frames=args.frames,
        seed=args.seed,
        generative_depth=args.generative_depth,
    )
    check_fps(args.fps)
    _check_outputs(args.output, args.gif, args.manifest, inputs=(args.first, args.last), frames_dir=args.frames_dir)
    pair = match_keyframes(args.first, args.last, mismatch=args.mismatch)
    first, last = pair.first, pair.last
    _print_notes([pair.note])
    backend, refine = make_backends(args)
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
    return {"run_seed": settings.seed, "frames": frame_seeds(settings.seed, 1, settings.times), **fallbacks(backend)}


def fallbacks(backend: Backend) -> dict:
    """Print which generated frames fell back to the flow frame and why (one ``note:`` each); for the manifest,
    ``{"fallbacks": [{"seed", "t", "reason"}, ...]}`` (empty when none did)."""
    records = list(fallback_list(backend) or ())
    from vfi.backends.fallback import fallback_note

    _print_notes(map(fallback_note, records))
    return {"fallbacks": records} if records else {}


def _print_notes(notes: Iterable[str | None]) -> None:
    """What was changed on the way (a keyframe fitted, audio dropped), one ``note:`` line each on stderr."""
    for note in filter(None, notes):
        print(f"note: {note}", file=sys.stderr)


def _frame_seed(text: str) -> tuple[int, int]:
    """``"3=1234"`` → ``(3, 1234)`` (ASCII digits only)."""
    from vfi.io.numbers import parse_whole

    frame, _, seed = text.partition("=")
    try:
        return parse_whole(frame), parse_whole(seed)
    except ValueError:
        raise VFIError(f"--frame-seed must be FRAME=SEED in digits 0-9 (e.g. 3=1234), got {text!r}.") from None


def sequence(args: argparse.Namespace) -> dict:
    from vfi.backends import Capabilities
    from vfi.interpolate import check_seed
    from vfi.io.video import write_gif, write_mp4, write_png_frames
    from vfi.modes.storyboard import Storyboard, load_storyboard, make_storyboard, read_prompts

    prompts = read_prompts(args.prompts) if args.prompts else ()
    storyboard = Storyboard.build(len(args.keyframes), args.depth, args.frames_per_pair, args.seed, prompts)
    storyboard.frames_to_make(Capabilities(args.backend), args.refine and Capabilities(args.refine))
    chosen_seeds = dict(map(_frame_seed, args.frame_seed))
    for index, seed in chosen_seeds.items():
        storyboard.in_between(index), check_seed(seed)
    check_fps(args.fps)
    inputs = (*args.keyframes, args.prompts)
    _check_outputs(args.output, args.gif, args.manifest, inputs=inputs, frames_dir=args.frames_dir)
    keyframes, notes = load_storyboard(args.keyframes, mismatch=args.mismatch)
    _print_notes(notes)
    backend, refine = make_backends(args)
    with _ProgressBar("interpolating") as bar:
        take = make_storyboard(keyframes, backend, storyboard, refine=refine, frame_seeds=chosen_seeds, on_progress=bar)
    seeds = {"run_seed": args.seed, "frames": [node.seed for node in take.nodes]}
    if not is_main():  # launched on several processes: the main one writes
        return seeds
    write_mp4(take.frames, args.output, fps=args.fps)
    if args.gif:
        write_gif(take.frames, args.gif, fps=args.fps)
    if args.frames_dir:
        write_png_frames(take.frames, args.frames_dir)
    print(f"wrote {len(take.frames)} frames ({len(keyframes)} keyframes) to {args.output}", file=sys.stderr)
    return {**seeds, **fallbacks(backend)}


def compare(args: argparse.Namespace) -> None:
    from vfi.interpolate import InterpolationSettings, interpolate_frames
    from vfi.io.images import match_keyframes, side_by_side
    from vfi.io.video import write_mp4
    from vfi.quality.metrics import describe_agreement

    settings = InterpolationSettings(depth=args.depth, seed=args.seed, generative_depth=args.generative_depth)
    check_fps(args.fps)
    _check_outputs(args.output, inputs=(args.first, args.last))
    pair = match_keyframes(args.first, args.last, mismatch=args.mismatch)
    _print_notes([pair.note])
    keyframes = (pair.first, pair.last)
    runs = []
    names = (args.backend, args.against)
    for name in names:
        backend, refine = make_backends(argparse.Namespace(**{**vars(args), "backend": name}))
        with _ProgressBar(name) as bar:
            frames = interpolate_frames(keyframes, backend, settings, refine=refine, num_frames=2, on_progress=bar)
            runs.append(list(frames))
        fallbacks(backend)  # says which of its frames fell back
    write_mp4(side_by_side(runs, names), args.output, fps=args.fps)
    print(f"{args.backend} vs {args.against}: {describe_agreement(*runs)}")
    print(f"wrote the side-by-side video to {args.output}", file=sys.stderr)


def clip(args: argparse.Namespace) -> dict:
    from vfi.modes.clip import ClipSettings, interpolate_clip, plan_clip

    _check_outputs(args.output, args.report, args.manifest, inputs=(args.input,))
    settings = ClipSettings(
        factor=args.factor,
        slowmo=args.slowmo,
        seed=args.seed,
        generative_depth=args.generative_depth,
        fps=args.fps,
        scene_threshold=args.scene_threshold,
        start=args.start,
        end=args.end,
    )
    plan = plan_clip(args.input, settings)
    backend, refine = make_backends(args)
    with _ProgressBar("interpolating") as bar:
        result = interpolate_clip(plan, args.output, backend, refine=refine, on_progress=bar)
    main, fell_back = is_main(), {}  # launched on several processes, each makes its share; the main one writes
    if main:
        _print_notes(result.notes)
        fell_back = fallbacks(backend)
        print(f"wrote {result.num_frames} frames at {result.fps:g} fps to {args.output}", file=sys.stderr)
    if args.report:
        from vfi.modes.report import report_clip

        with _ProgressBar("scoring") as bar:
            report = report_clip(plan, backend, refine=refine, on_progress=bar)
        if main:
            write_json(report.to_dict(), args.report)
            print(report.summary(), file=sys.stderr)
    return {**clip_seeds(settings.seed), **fell_back}


def evaluate(args: argparse.Namespace) -> dict:
    from vfi.quality.evaluate import evaluate, format_table

    _check_outputs(args.json, args.manifest, inputs=(args.data_dir,))
    backend, refine = make_backends(args)
    with _ProgressBar("evaluating") as bar:
        report = evaluate(args.data_dir, backend, refine=refine, on_progress=bar)
    if not is_main():  # launched on several processes: the main one writes
        return {"run_seed": 0}
    print(format_table(report))
    if args.json:
        write_json(report.to_dict(), args.json)
    return {"run_seed": 0}
