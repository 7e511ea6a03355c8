"""One definition of every generative option: the CLI, the app's manifests and replay derive from QwenEditConfig."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import numpy as np

from vfi.app import actions
from vfi.app.config import Advanced, AppConfig
from vfi.backends.qwen_config import QwenEditConfig, config_argv, config_options
from vfi.cli import _settings, build_parser
from vfi.cli.commands import qwen_config
from vfi.run_spec import BackendSpec, ClipSpec, PairSpec

#: Fields set in code only (not options a user types).
NOT_OPTIONS = {"negative_prompt", "device", "dtype"}
SET = QwenEditConfig(
    base_model="org/base",
    adapters=("org/lora@0.5", "org/two"),
    lightning="org/fast@0.8",
    resolution=256,
    steps=12,
    guidance=2.5,
    prompt="the middle",
    batch=2,
    memory="model",
    fuse=True,
    compile=True,
    register=False,
    fallback=False,
)


def _json(settings: dict) -> dict:
    return json.loads(json.dumps(settings, default=str))


def _parse(argv: list[str]):
    return build_parser().parse_args(argv)


def test_every_config_field_is_a_cli_option_and_round_trips_through_a_manifest() -> None:
    names = {f.name for f in dataclasses.fields(QwenEditConfig)} - NOT_OPTIONS
    assert {f.name for f in dataclasses.fields(SET)} - NOT_OPTIONS == names  # SET sets every option
    assert all(getattr(SET, name) != getattr(QwenEditConfig(), name) for name in names)
    args = _parse(["pair", "a.png", "b.png", "-o", "o.mp4", "--backend", "qwen-edit", *config_argv(SET)])
    assert qwen_config(args) == SET  # every field has a flag, and the argv a manifest records makes it again
    assert QwenEditConfig.from_options(config_options(SET)) == SET  # the settings a manifest records, too
    assert qwen_config(_parse(["pair", "a.png", "b.png", "-o", "o.mp4", "--backend", "qwen-edit"])) == QwenEditConfig()


def test_the_apps_manifest_settings_are_what_the_cli_parses_from_its_argv(tmp_path) -> None:
    first, last, video = (str(tmp_path / name) for name in ("a.png", "b.png", "c.mp4"))
    hybrid = BackendSpec("qwen-edit", SET, "flow", 1)
    specs = [
        PairSpec(first, last, frames=3, fps=12.0, seed=7, mismatch="pad", backend=hybrid),
        PairSpec(first, last, depth=2),
        ClipSpec(video, factor=4, fps=Fraction(60000, 1001), start=0.5, end=2.0, backend=BackendSpec("qwen-edit", SET)),
        ClipSpec(video, slowmo=True, scene_threshold=0.3),
    ]
    for spec in specs:  # as the manifest records them (JSON)
        assert _json(spec.settings()) == _json(_settings(_parse(spec.argv())))


def test_hybrid_with_a_backend_that_cannot_is_said_not_dropped(tmp_path) -> None:
    from PIL import Image
    from test_jobs import _call

    paths = [str(tmp_path / name) for name in ("a.png", "b.png")]
    for path, value in zip(paths, (0, 200)):
        Image.fromarray(np.full((64, 64, 3), value, np.uint8)).save(path)
    call = _call(AppConfig("flow"))
    *_, (*_, summary) = actions.keyframes(call, *paths, 1, 0, 8, "once", "crossfade", Advanced(), 0, False, hybrid=True)
    assert "Hybrid mode is for the qwen-edit backend: crossfade made every frame." in summary
