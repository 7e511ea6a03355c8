"""The method in miniature: does the whole chain learn to interpolate? (CPU, minutes)

    .venv/bin/python benchmarks/miniature.py [--quick] [--json OUT] [--work DIR] [--curve] [--sizes 16 64 256]
        [--grid PX] [--editor FIELD=VALUE ...]

1. builds (or reuses, cached by config) the miniature editor of :mod:`benchmarks.miniature_editor`: the real pipeline
   classes with a VAE trained to reconstruct and a transformer pre-trained on timeless edits;
2. writes synthetic triplets with exact ground truth (:mod:`benchmarks.synthetic`): a training pool, a disjoint
   held-out set, and a *control* pool: the training pool with both keyframes replaced by their middle frame's
   pixels shuffled (same colours, no spatial information), so the keyframe condition is destroyed;
3. trains an interpolation LoRA on the pool and one on the control pool with ``train_lora.py`` itself
   (``parse_args`` + ``main``: the same data, caching, loss, saving and model card code as a real run);
4. scores the held-out triplets with vfi's own evaluation (:func:`vfi.quality.evaluate.evaluate`, the ``qwen-edit``
   backend with registration, as the app runs it): the editor without adapter (base), with the adapter,
   with the control adapter, and the crossfade and flow backends;
5. measures what the VAE alone costs: the true middle frame and the flow backend's frame after an
   encode/decode round trip (``VAE(middle)`` bounds every generated frame; ``VAE(flow)`` is a
   motion-compensated interpolation passed through the same decoder).

``--curve`` adds PSNR against training steps (train_lora's own validation on the held-out set, without
registration); ``--sizes`` trains once per pool size (the data-efficiency question). Prints a table; ``--json``
writes ``n``, ``base_psnr``, ``adapter_psnr``, ``crossfade_psnr``, ``flow_psnr``, ``control_psnr``,
``vae_middle_psnr``, ``vae_flow_psnr``, ``minutes`` and the rest. ``--editor`` builds another editor than the
default (fields of :class:`benchmarks.miniature_editor.EditorConfig`, e.g. ``--editor layers=4 shift_examples=96``).
``--grid 8`` makes the training and held-out triplets move on an 8-px grid (whole tokens of the default editor,
see :func:`benchmarks.synthetic.render_scene`); the editor's own data is unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.miniature_editor import EditorConfig  # noqa: E402
from vfi.errors import VFIError  # noqa: E402

BACKEND_ROWS = ("base", "adapter", "control", "crossfade", "flow")


@dataclass(frozen=True)
class Settings:
    """One miniature run: data sizes, LoRA training and inference settings, and the editor."""

    train: int = 128
    held_out: int = 32
    steps: int = 600
    rank: int = 16
    learning_rate: float = 2e-3
    batch: int = 4
    inference_steps: int = 4
    prompt: str = "t={t}"  # short: the tiny text encoder is random, every text token is transformer input
    seed: int = 0
    grid: int = 0  # > 0: the triplets' motion in whole steps of this many px (benchmarks.synthetic.render_scene)
    editor: EditorConfig = field(default_factory=EditorConfig)

    def __post_init__(self) -> None:
        for name in ("train", "held_out", "steps", "rank", "batch"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise VFIError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if not (isinstance(self.grid, int) and 0 <= self.grid <= self.editor.size // 4):
            raise VFIError(f"grid must be an integer from 0 to a quarter of the size, got {self.grid!r}.")
        if not (isinstance(self.inference_steps, int) and self.inference_steps >= 2):
            raise VFIError(f"inference_steps must be an integer of at least 2, got {self.inference_steps!r}.")


QUICK = Settings(train=64, held_out=16, steps=600)
FULL = Settings(train=256, held_out=32, steps=2000)


def editor_config(pairs: list[str]) -> EditorConfig:
    """The default :class:`EditorConfig` with ``FIELD=VALUE`` pairs applied (each value typed as its default)."""
    defaults = asdict(EditorConfig())
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in defaults or not value:
            raise VFIError(f"--editor takes FIELD=VALUE with FIELD one of {', '.join(defaults)}; got {pair!r}.")
        try:
            changes[name] = type(defaults[name])(value)
        except ValueError:
            raise VFIError(f"--editor {name}={value} is not a valid {type(defaults[name]).__name__}.") from None
    return EditorConfig(**changes)


def destroy_keyframes(pool: Path, out: Path, seed: int) -> Path:
    """A copy of the triplet folders in ``pool`` whose keyframes are the middle frame's pixels shuffled."""
    from PIL import Image

    rng = np.random.default_rng([seed, 2])
    for scene in sorted(p for p in pool.iterdir() if p.is_dir()):
        middle = np.asarray(Image.open(scene / "im2.png").convert("RGB"))
        target = out / scene.name
        target.mkdir(parents=True)
        Image.fromarray(middle).save(target / "im2.png")
        pixels = middle.reshape(-1, 3)
        for name in ("im1.png", "im3.png"):
            Image.fromarray(pixels[rng.permutation(len(pixels))].reshape(middle.shape)).save(target / name)
    return out


def make_data(work: Path, settings: Settings) -> dict[str, Path]:
    """The training pool, its control copy and the held-out set (disjoint seeds) under ``work``."""
    from benchmarks.synthetic import write_triplets

    size = settings.editor.size
    folders = {"train": work / "train", "held_out": work / "held_out", "control": work / "control"}
    write_triplets(folders["train"], settings.train, size=size, seed=settings.seed * 2 + 1, grid=settings.grid)
    write_triplets(folders["held_out"], settings.held_out, size=size, seed=settings.seed * 2 + 2, grid=settings.grid)
    destroy_keyframes(folders["train"], folders["control"], settings.seed)
    return folders


def train_adapter(editor: Path, data: Path, out: Path, settings: Settings, validation: Path | None = None) -> dict:
    """Train a LoRA on ``data`` with ``train_lora.py`` (in this process); return its summary."""
    import train_lora

    every = max(1, settings.steps // 6)
    argv = [
        "--base_model",
        str(editor),
        "--data",
        str(data),
        "--output_dir",
        str(out),
        "--resolution",
        str(settings.editor.size),
        "--num_samples",
        str(settings.train),
        "--min_motion",
        "0",
        "--max_motion",
        "0.99",
        "--rank",
        str(settings.rank),
        "--learning_rate",
        str(settings.learning_rate),
        "--train_batch_size",
        str(settings.batch),
        "--max_train_steps",
        str(settings.steps),
        "--checkpointing_steps",
        str(settings.steps),
        "--checkpoints_total_limit",
        "1",
        "--seed",
        str(settings.seed),
        "--prompt",
        settings.prompt,
        "--validation_inference_steps",
        str(settings.inference_steps),
        "--validation_guidance",
        "1",
    ]
    if validation is None:
        argv += ["--num_validation", "0"]
    else:
        argv += ["--validation_data", str(validation), "--num_validation", "16", "--validation_steps", str(every)]
    return train_lora.main(train_lora.parse_args(argv))


def score(editor: Path, held_out: Path, adapters: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """Evaluate every row of :data:`BACKEND_ROWS` on ``held_out`` with :func:`vfi.quality.evaluate.evaluate`."""
    from vfi.backends import create_backend
    from vfi.quality.evaluate import evaluate

    reports = {}
    for row in BACKEND_ROWS:
        if row in ("crossfade", "flow"):
            backend = create_backend(row)
        else:
            chosen = [str(adapters[row])] if row in adapters else []
            backend = create_backend(
                "qwen-edit",
                base_model=str(editor),
                adapters=chosen,
                resolution=settings.editor.size,
                steps=settings.inference_steps,
                guidance=1.0,
                prompt=settings.prompt,
                device="cpu",
            )
        reports[row] = evaluate(held_out, backend)
    return reports


def vae_round_trips(editor: Path, held_out: Path) -> dict[str, float]:
    """What the editor's VAE alone costs (every generated frame goes through its decoder): PSNR against the true
    middle of the true middle and of the flow backend's frame after an encode/decode round trip."""
    from diffusers import AutoencoderKLQwenImage

    from benchmarks.miniature_editor import reconstruction_psnr
    from vfi.backends import FrameRequest, create_backend
    from vfi.io.images import load_image
    from vfi.io.triplets import find_triplets

    vae = AutoencoderKLQwenImage.from_pretrained(editor / "vae").eval()
    triplets = [tuple(load_image(p) for p in (t.first, t.middle, t.last)) for t in find_triplets(held_out)]
    middles = np.stack([middle for _, middle, _ in triplets])
    flow = np.stack(create_backend("flow").interpolate([FrameRequest(a, c, 0.5) for a, _, c in triplets]))
    return {
        "vae_middle_psnr": round(reconstruction_psnr(vae, middles), 3),
        "vae_flow_psnr": round(reconstruction_psnr(vae, flow, middles), 3),
    }


def run(settings: Settings, work: Path, *, cache_dir: Path | None = None, curve: bool = False) -> dict[str, Any]:
    """The whole miniature: editor, data, two trainings, scores. Returns the JSON-ready results."""
    from benchmarks.miniature_editor import cached_editor, editor_facts, loss_ends

    started = time.perf_counter()
    editor = cached_editor(settings.editor, cache_dir)
    data = make_data(work, settings)
    adapter = train_adapter(editor, data["train"], work / "adapter", settings, data["held_out"] if curve else None)
    control = train_adapter(editor, data["control"], work / "control-adapter", settings)
    reports = score(
        editor, data["held_out"], {"adapter": work / "adapter", "control": work / "control-adapter"}, settings
    )
    results: dict[str, Any] = {"n": reports["base"].n}
    for row, report in reports.items():
        results[f"{row}_psnr"] = round(report.psnr, 3)
        results[f"{row}_ssim"] = round(report.ssim, 4)
    results.update(vae_round_trips(editor, data["held_out"]))
    results["obedience"] = edit_obedience(editor, settings.editor)
    results.update(
        minutes=round((time.perf_counter() - started) / 60, 2),
        train_minutes={"adapter": round(adapter["seconds"] / 60, 2), "control": round(control["seconds"] / 60, 2)},
        loss={"adapter": loss_ends(adapter["losses"]), "control": loss_ends(control["losses"])},
        editor=editor_facts(editor),
        settings=asdict(settings),
    )
    if curve:
        results["curve_steps"] = [{"step": r["step"], "psnr": r["psnr"]} for r in adapter["history"]]
    return results


def size_curve(settings: Settings, sizes: list[int], work: Path, cache_dir: Path | None) -> list[dict[str, float]]:
    """Adapter PSNR on the held-out set for each training pool size (same steps)."""
    from benchmarks.miniature_editor import cached_editor

    editor = cached_editor(settings.editor, cache_dir)
    rows = []
    for size in sizes:
        sized = replace(settings, train=size)
        data = make_data(work / f"pool-{size}", sized)
        train_adapter(editor, data["train"], work / f"pool-{size}" / "adapter", sized)
        reports = score(editor, data["held_out"], {"adapter": work / f"pool-{size}" / "adapter"}, sized)
        rows.append({"train": size, "adapter_psnr": round(reports["adapter"].psnr, 3)})
    return rows


#: The offsets the obedience check asks for when the shift edits take any offset (``shift_step`` 1).
ASKED_SHIFTS = ((3, -2), (-4, 1), (0, 5), (-2, -3))


def edit_obedience(editor: Path, config: EditorConfig, pairs: int = 6) -> dict[str, dict[str, float]]:
    """Does the editor obey the edits it was pre-trained on? Per edit, on ``pairs`` unseen picture pairs (4 steps),
    mean PSNR of its answer to the asked target (``asked``) and to the answer of not obeying (``wrong``: the other
    picture for a copy, the picture unmoved for a shift or colour edit), and of that wrong answer to the target."""
    import torch

    from benchmarks.miniature_editor import COLOUR_PROMPT, SHIFT_PROMPT, grey, shift_image
    from benchmarks.synthetic import render_scene
    from vfi.quality.metrics import psnr
    from vfi.qwen.conditioning import build_conditioning, to_frame
    from vfi.qwen.pipeline import generate, load_pipeline

    loaded = load_pipeline(str(editor), device="cpu", dtype="float32", memory="none")
    step, size = config.shift_step, config.size
    offsets = ASKED_SHIFTS if step == 1 else ((step, -step), (-step, 0), (0, step), (step, step))
    scores: dict[str, list[tuple[float, float, float]]] = {}
    for i in range(pairs):
        left, right = (render_scene(np.random.default_rng([11, 2 * i + j]), size)[0] for j in (0, 1))
        asks = [("copy 1", "copy 1", right, left, right), ("copy 2", "copy 2", right, right, left)]
        for which, (dx, dy) in zip((1, 2, 1, 2), offsets if config.shift_examples else ()):
            picture = (left, right)[which - 1]
            prompt = SHIFT_PROMPT.format(which=which, dx=dx, dy=dy)
            asks.append((f"shift {which}", prompt, right, shift_image(picture, dx, dy), picture))
        if config.colour_examples:
            moved = shift_image(left, 3, -2)
            asks.append(("colour", COLOUR_PROMPT, grey(moved), moved, left))
        for row, prompt, second, target, wrong in asks:
            cond = build_conditioning(left, second, layout=loaded.layout, resolution=size, prompt=prompt)
            made = to_frame(generate(loaded, [cond], [torch.Generator().manual_seed(0)], steps=4)[0], (size, size))
            scores.setdefault(row, []).append((psnr(made, target), psnr(made, wrong), psnr(wrong, target)))
    names = ("asked", "wrong", "wrong_vs_asked")
    return {row: dict(zip(names, np.round(np.mean(v, axis=0), 2).tolist())) for row, v in scores.items()}


def format_table(results: dict[str, Any]) -> str:
    lines = [
        f"miniature: {results['n']} held-out triplets, {results['minutes']:.1f} min "
        f"(editor VAE {results['editor']['vae_psnr']:.2f} dB)",
        f"{'':<10} {'PSNR dB':>8} {'SSIM':>7} {'vs crossfade':>13}",
    ]
    for row in BACKEND_ROWS:
        gap = results[f"{row}_psnr"] - results["crossfade_psnr"]
        lines.append(f"{row:<10} {results[f'{row}_psnr']:>8.2f} {results[f'{row}_ssim']:>7.4f} {gap:>+13.2f}")
    for row, label in (("middle", "VAE(mid)"), ("flow", "VAE(flow)")):
        gap = results[f"vae_{row}_psnr"] - results["crossfade_psnr"]
        lines.append(f"{label:<10} {results[f'vae_{row}_psnr']:>8.2f} {'':>7} {gap:>+13.2f}")
    for row, psnrs in results.get("obedience", {}).items():
        lines.append(
            f"editor asked '{row}': {psnrs['asked']:.2f} dB to the target, {psnrs['wrong']:.2f} to not obeying"
        )
    for point in results.get("curve_steps", []):
        lines.append(f"step {point['step']:>5}: {point['psnr']:.2f} dB (validation, no registration)")
    for point in results.get("curve_sizes", []):
        lines.append(f"{point['train']:>4} training triplets: {point['adapter_psnr']:.2f} dB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"a shorter run ({QUICK.train} triplets, {QUICK.steps} steps)"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--work", type=Path, help="keep data and adapters here (default: a temporary folder)")
    parser.add_argument("--cache_dir", type=Path, help="where built editors are kept (default ~/.cache/vfi/miniature)")
    parser.add_argument("--curve", action="store_true", help="PSNR against training steps")
    parser.add_argument("--sizes", type=int, nargs="*", default=[], help="also train on pools of these sizes")
    parser.add_argument(
        "--grid", type=int, default=0, metavar="PX", help="triplets whose motion is whole steps of PX px (e.g. 8)"
    )
    parser.add_argument(
        "--editor", nargs="*", default=[], metavar="FIELD=VALUE", help="editor config fields other than the default"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)"
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    settings = replace(QUICK if args.quick else FULL, grid=args.grid, editor=editor_config(args.editor))
    with tempfile.TemporaryDirectory(prefix="vfi-miniature-run-") as tmp:
        work = args.work or Path(tmp)
        results = run(settings, work / "main", cache_dir=args.cache_dir, curve=args.curve)
        if args.sizes:
            results["curve_sizes"] = size_curve(settings, args.sizes, work / "sizes", args.cache_dir)
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
