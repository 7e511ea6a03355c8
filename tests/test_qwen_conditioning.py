"""Conditioning: pure Python, no model."""

from __future__ import annotations

import numpy as np
import pytest

from vfi.errors import VFIError
from vfi.qwen.conditioning import build_conditioning, default_prompt, to_frame, working_size


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


@pytest.mark.parametrize(("layout", "resolution"), [("side-by-side", 1024), ("multi", 512), ("side-by-side", 512)])
def test_vl_images_are_resized_as_the_stock_pipelines_do(layout, resolution):
    """Above the stock area the VL encoder's images equal ``image_processor.resize`` at stock's dimensions."""
    pytest.importorskip("diffusers")
    from diffusers.image_processor import VaeImageProcessor
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import calculate_dimensions
    from scenes import textured_image

    from vfi.qwen.conditioning import VL_AREA

    first, last = textured_image(720, 1280, seed=1), textured_image(720, 1280, seed=2)
    cond = build_conditioning(first, last, layout=layout, resolution=resolution)
    stock = VaeImageProcessor(vae_scale_factor=16)  # what the edit pipelines build
    for image, seen in zip(cond.images, cond.vl_images):
        if image.width * image.height <= VL_AREA[layout]:
            assert seen is image  # smaller images are never scaled up
            continue
        width, height = calculate_dimensions(VL_AREA[layout], image.width / image.height)
        assert np.array_equal(np.asarray(seen), np.asarray(stock.resize(image, height, width)))
