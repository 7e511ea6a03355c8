"""Adapter references, metadata and fetching (local folders and files): pure Python, no model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vfi.errors import VFIError
from vfi.qwen.adapters import ADAPTER_INFO_FILE, AdapterInfo, AdapterSpec


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


def test_a_hub_cache_snapshot_base_is_its_repo(tmp_path):
    """``snapshot_download`` returns ``…/models--OWNER--NAME/snapshots/<sha>``: that is OWNER/NAME."""
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen-Image-Edit-2509" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    info = AdapterInfo("Qwen/Qwen-Image-Edit-2509", "multi")
    info.check(str(snapshot), "multi")
    info.check("Qwen/Qwen-Image-Edit-2509:" + "b" * 40, "multi")  # a pinned revision is the same model
    AdapterInfo(str(snapshot), "multi").check("qwen/qwen-image-edit-2509", "multi")
    other = Path(str(snapshot).replace("2509", "2511"))
    other.mkdir(parents=True)
    with pytest.raises(VFIError, match="trained on Qwen/Qwen-Image-Edit-2509, not on"):
        info.check(str(other), "multi")


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


LIGHTNING_FILE = "Qwen-Image-Edit-2509/Qwen-Image-Edit-2509-Lightning-4steps-V1.0-bf16.safetensors"
COMMIT, PINNED = "a" * 40, "b" * 40


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("owner/name", AdapterSpec("owner/name")),
        ("owner/name@0.5", AdapterSpec("owner/name", 0.5)),
        (f"lightx2v/Qwen-Image-Lightning/{LIGHTNING_FILE}", AdapterSpec("lightx2v/Qwen-Image-Lightning", 1.0, None, LIGHTNING_FILE)),
        ("owner/name/root.safetensors@-0.5", AdapterSpec("owner/name", -0.5, None, "root.safetensors")),
        ("owner/name/a/b.safetensors:v1.0@0.8", AdapterSpec("owner/name", 0.8, "v1.0", "a/b.safetensors")),
        (f"owner/name:{PINNED}", AdapterSpec("owner/name", 1.0, PINNED)),
        ("owner/name:refs/pr/3@2", AdapterSpec("owner/name", 2.0, "refs/pr/3")),
    ],
)  # fmt: skip
def test_adapter_reference_grammar(text, expected):
    spec = AdapterSpec.parse(text)
    assert spec == expected
    assert AdapterSpec.parse(spec.reference) == AdapterSpec(
        expected.source, 1.0, expected.revision, expected.weight_name
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("owner/name/adapter.bin", "pickle file"),
        ("owner/name/sub/folder", "nor a Hub reference"),
        ("justaname", "nor a Hub reference"),
        ("owner/name:@0.5", "empty revision"),
        ("owner/name@strong", "not a number"),
        ("owner/name@٠.5", "not a number"),  # Arabic-Indic digits: float() reads them
        ("owner/name@nan", "not a number"),
        ("owner/name@9", "scale must be between"),
    ],
)
def test_adapter_reference_errors_are_one_sentence(text, match):
    with pytest.raises(VFIError, match=match) as error:
        AdapterSpec.parse(text)
    assert str(error.value).count(". ") == 0 and str(error.value).endswith(".")


def test_local_files_and_folders(tmp_path):
    from vfi.qwen.adapters import WEIGHT_NAME, fetch_adapter

    folder = tmp_path / "several"
    folder.mkdir()
    for name in ("b.safetensors", "a.safetensors"):
        (folder / name).write_bytes(b"x")
    with pytest.raises(VFIError, match=r"several \.safetensors files \(a\.safetensors, b\.safetensors\)"):
        fetch_adapter(AdapterSpec.parse(str(folder)))
    assert fetch_adapter(AdapterSpec.parse(f"{folder / 'b.safetensors'}@0.7")) == (folder, "b.safetensors", None)
    assert AdapterSpec.parse(f"{folder / 'b.safetensors'}@0.7").scale == 0.7
    (folder / WEIGHT_NAME).write_bytes(b"x")  # our own adapters' name is the documented default
    assert fetch_adapter(AdapterSpec.parse(str(folder)))[1] == WEIGHT_NAME
    with pytest.raises(VFIError, match="neither a folder nor a .safetensors file"):
        fetch_adapter(AdapterSpec(str(tmp_path / "missing.safetensors")))


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An offline Hugging Face cache: ``HF_HUB_OFFLINE`` on and the cache folder pointed at ``tmp_path``."""
    import huggingface_hub.constants as constants

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_files_resolve_offline_by_path_and_revision(hub_cache, tmp_path):
    from hub_files import fill_hub_cache

    from vfi.qwen.adapters import WEIGHT_NAME, fetch_adapter

    old, new = tmp_path / "old.safetensors", tmp_path / "new.safetensors"
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    root_file = "Qwen-Image-Edit-Lightning-8steps-V1.0-bf16.safetensors"
    main = fill_hub_cache(hub_cache, "lightx2v/Qwen-Image-Lightning", COMMIT, {root_file: new, LIGHTNING_FILE: new})
    pinned = fill_hub_cache(hub_cache, "lightx2v/Qwen-Image-Lightning", PINNED, {LIGHTNING_FILE: old}, refs=("v1",))

    folder, weight, info = fetch_adapter(AdapterSpec.parse(f"lightx2v/Qwen-Image-Lightning/{LIGHTNING_FILE}@0.5"))
    assert (folder / weight, info) == (main / LIGHTNING_FILE, None)
    folder, weight, _ = fetch_adapter(AdapterSpec.parse(f"lightx2v/Qwen-Image-Lightning/{root_file}"))
    assert folder / weight == main / root_file
    for revision in (PINNED, "v1"):
        folder, weight, _ = fetch_adapter(
            AdapterSpec.parse(f"lightx2v/Qwen-Image-Lightning/{LIGHTNING_FILE}:{revision}")
        )
        assert (folder / weight).read_bytes() == b"old" and folder / weight == pinned / LIGHTNING_FILE

    AdapterInfo("Qwen/Qwen-Image-Edit", "side-by-side", resolution=512).save(tmp_path)
    ours = fill_hub_cache(
        hub_cache, "org/vfi", COMMIT, {WEIGHT_NAME: new, ADAPTER_INFO_FILE: tmp_path / ADAPTER_INFO_FILE}
    )
    assert fetch_adapter(AdapterSpec.parse("org/vfi@0.8")) == (ours, WEIGHT_NAME, AdapterInfo.load(tmp_path))


def test_a_hub_adapter_keeps_the_snapshot_it_resolved_when_the_branch_moves(hub_cache, tmp_path):
    """A long-running app loads an unpinned adapter once; if ``main`` moves on the Hub later, the manifest must
    still name and hash the snapshot that made the frames, not the newer one."""
    from hub_files import fill_hub_cache

    from vfi.backends.qwen_edit import QwenEditConfig
    from vfi.manifest import adapter_sources
    from vfi.qwen.adapters import WEIGHT_NAME, fetch_adapter

    old, new = tmp_path / "old.safetensors", tmp_path / "new.safetensors"
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    loaded = fill_hub_cache(hub_cache, "org/moving", COMMIT, {WEIGHT_NAME: old})
    assert fetch_adapter(AdapterSpec.parse("org/moving@0.5"))[0] == loaded
    fill_hub_cache(hub_cache, "org/moving", PINNED, {WEIGHT_NAME: new})  # main now points at a newer commit

    assert fetch_adapter(AdapterSpec.parse("org/moving"))[0] == loaded
    (record,) = adapter_sources(QwenEditConfig(adapters=(AdapterSpec.parse("org/moving@0.5"),)))
    assert record["resolved_revision"] == COMMIT and record["scale"] == 0.5
    assert fetch_adapter(AdapterSpec.parse(f"org/moving:{PINNED}"))[0].name == PINNED  # a pinned one is its own


@pytest.mark.parametrize(
    "text",
    [
        "lightx2v/Qwen-Image-Lightning/missing.safetensors",
        f"lightx2v/Qwen-Image-Lightning/{LIGHTNING_FILE}:v9",
        "nobody/none",
    ],
)
def test_hub_files_missing_offline_are_one_sentence(hub_cache, tmp_path, text):
    from hub_files import fill_hub_cache

    from vfi.qwen.adapters import fetch_adapter

    (tmp_path / "w.safetensors").write_bytes(b"w")
    fill_hub_cache(hub_cache, "lightx2v/Qwen-Image-Lightning", COMMIT, {LIGHTNING_FILE: tmp_path / "w.safetensors"})
    with pytest.raises(VFIError, match="Could not fetch the adapter .* from the Hugging Face Hub") as error:
        fetch_adapter(AdapterSpec.parse(text))
    assert "\n" not in str(error.value)


def test_lightning_steps_come_from_the_file_name_when_not_given():
    from vfi.app.jobs import Job
    from vfi.backends.qwen_config import LIGHTNING_STEPS, QwenEditConfig

    four = QwenEditConfig(lightning=f"lightx2v/Qwen-Image-Lightning/{LIGHTNING_FILE}")
    assert four.steps_or_default() == 4 and "4 denoising steps" in four.steps_note()
    assert (
        Job("qwen-edit", four).frame_seconds() == Job("qwen-edit", QwenEditConfig(steps=4, guidance=1)).frame_seconds()
    )
    local = QwenEditConfig(lightning="./Qwen-Image-Lightning-8steps-V1.1.safetensors@0.9")
    assert local.steps_or_default() == 8
    given = QwenEditConfig(lightning=f"lightx2v/Qwen-Image-Lightning/{LIGHTNING_FILE}", steps=6)
    assert given.steps_or_default() == 6 and given.steps_note() is None
    unnamed = QwenEditConfig(lightning="lightx2v/Qwen-Image-Lightning")
    assert unnamed.steps_or_default() == LIGHTNING_STEPS and unnamed.steps_note() is None
    assert QwenEditConfig().steps_note() is None


def test_a_local_adapter_is_named_by_its_content(tmp_path, monkeypatch):
    """``./x`` and ``/abs/x`` are one adapter; the same file retrained in place is another."""
    import os

    from vfi.qwen.adapters import WEIGHT_NAME

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / WEIGHT_NAME).write_bytes(b"weights of run 1")
    monkeypatch.chdir(tmp_path)
    relative, absolute = AdapterSpec.parse("./adapter@0.5"), AdapterSpec.parse(str(folder))
    assert relative.name == absolute.name == AdapterSpec(str(folder / WEIGHT_NAME)).name
    before = absolute.name
    (folder / WEIGHT_NAME).write_bytes(b"weights of run 2")
    os.utime(folder / WEIGHT_NAME, ns=(1, 2))  # even if the clock did not move between the two writes
    assert AdapterSpec.parse("./adapter").name != before
