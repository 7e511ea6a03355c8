"""Adapter references, metadata and fetching (local folders and files): pure Python, no model."""

from __future__ import annotations

import json

import pytest

from vfi.adapters import ADAPTER_INFO_FILE, AdapterInfo, AdapterSpec
from vfi.errors import VFIError


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
