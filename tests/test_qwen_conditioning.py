"""Conditioning, adapter metadata and adapter specs: pure Python, no model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vfi.conditioning import (
    ADAPTER_INFO_FILE,
    AdapterInfo,
    build_conditioning,
    default_prompt,
    to_frame,
    working_size,
)
from vfi.errors import VFIError
from vfi.pipeline import AdapterSpec


@pytest.mark.parametrize(
    ("size", "resolution", "expected"),
    [
        ((1920, 1080), 512, (512, 288)),
        ((1080, 1920), 1024, (576, 1024)),
        ((128, 96), 64, (64, 64)),
        ((640, 480), 768, (768, 576)),
    ],
)
def test_working_size_keeps_aspect_on_the_grid(size, resolution, expected):
    assert working_size(*size, resolution) == expected


@pytest.mark.parametrize("resolution", [0, 100, 4096])
def test_working_size_rejects_bad_resolution(resolution):
    with pytest.raises(VFIError, match="resolution"):
        working_size(64, 64, resolution)


def test_default_prompt_names_task_and_time():
    assert "interpolation" in default_prompt() and "t=0.500" in default_prompt()
    assert "t=0.250" in default_prompt(0.25)


def test_custom_prompt_gets_the_time_filled_in(triplet):
    first, _, last = triplet
    cond = build_conditioning(first, last, t=0.25, layout="multi", resolution=64, prompt="frame at {t}, {{kept}}")
    assert cond.prompt == "frame at 0.250, {{kept}}"  # only {t} is a placeholder
    assert build_conditioning(first, last, layout="multi", resolution=64, prompt="no time").prompt == "no time"


@pytest.mark.parametrize(("layout", "sizes"), [("side-by-side", [(128, 64)]), ("multi", [(64, 64), (64, 64)])])
def test_build_conditioning_layouts(triplet, layout, sizes):
    first, _, last = triplet
    cond = build_conditioning(first, last, layout=layout, resolution=64)
    assert (cond.width, cond.height) == (64, 64)
    assert [im.size for im in cond.images] == sizes
    assert cond.prompt == default_prompt(0.5)
    if layout == "side-by-side":  # [first | last]
        joined = np.asarray(cond.images[0])
        assert np.array_equal(joined[:, :64], np.asarray(cond.keyframes[0]))
        assert np.array_equal(joined[:, 64:], np.asarray(cond.keyframes[1]))
    assert build_conditioning(first, last, layout=layout, resolution=64, prompt="p").prompt == "p"


def test_build_conditioning_rejects_bad_input(triplet):
    first, _, last = triplet
    with pytest.raises(VFIError, match="layout"):
        build_conditioning(first, last, layout="stacked", resolution=64)
    with pytest.raises(VFIError, match="differ in size"):
        build_conditioning(first, last[:64], layout="multi", resolution=64)
    with pytest.raises(VFIError, match="t must"):
        build_conditioning(first, last, t=1.0, layout="multi", resolution=64)


def test_to_frame_resizes_back(triplet):
    first, _, last = triplet
    cond = build_conditioning(first, last, layout="multi", resolution=64)
    frame = to_frame(cond.keyframes[0], (128, 96))
    assert frame.shape == (96, 128, 3) and frame.dtype == np.uint8


def test_adapter_info_round_trip_and_checks(tmp_path):
    info = AdapterInfo("Qwen/Qwen-Image-Edit", "side-by-side", prompt="p", resolution=512, training={"steps": 10})
    info.save(tmp_path)
    assert AdapterInfo.load(tmp_path) == info
    info.check("qwen/qwen-image-edit", "side-by-side")
    with pytest.raises(VFIError, match="multi layout"):
        AdapterInfo("Qwen/Qwen-Image-Edit-2509", "multi").check("Qwen/Qwen-Image-Edit", "side-by-side")
    with pytest.raises(VFIError, match="trained on Qwen/Qwen-Image-Edit-2509"):
        AdapterInfo("Qwen/Qwen-Image-Edit-2509", "multi").check("Qwen/Qwen-Image-Edit-2511", "multi")
    local = tmp_path / "Qwen-Image-Edit"
    local.mkdir()
    info.check(str(local), "side-by-side")  # a local copy of the Hub model


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"layout": "multi"}, "base_model"),
        ({"base_model": "a/b", "layout": "x"}, "layout"),
        ({"base_model": "a/b", "layout": "multi", "resolution": 100}, "resolution"),
        ({"base_model": "a/b", "layout": "multi", "extra": 1}, "unknown fields"),
    ],
)
def test_adapter_info_validation(tmp_path, data, match):
    (tmp_path / ADAPTER_INFO_FILE).write_text(json.dumps(data))
    with pytest.raises(VFIError, match=match):
        AdapterInfo.load(tmp_path)


def test_adapter_spec_parse():
    assert AdapterSpec.parse("owner/name") == AdapterSpec("owner/name", 1.0)
    assert AdapterSpec.parse("some/dir@0.5") == AdapterSpec("some/dir", 0.5)
    assert AdapterSpec.parse("a/b@0.5").name == AdapterSpec("a/b").name != AdapterSpec("a/c").name
    with pytest.raises(VFIError, match="not a number"):
        AdapterSpec.parse("a/b@strong")
    with pytest.raises(VFIError, match="safetensors"):
        AdapterSpec("a/b", weight_name="adapter.bin")
