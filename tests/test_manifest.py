"""Reproducible runs: --manifest on every command, ``python -m vfi replay`` remakes the run bit for bit (flow)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scenes import panned_triplet, write_triplet
from test_cli import assert_user_error, run_cli

from vfi.io.files import sha256
from vfi.io.video import read_frames

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "clip.mp4"


def frames_of(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("frame_*.png"))]


def test_pair_manifest_records_the_run_and_replay_remakes_it_bit_for_bit(tmp_path, keyframe_files):
    first, last = keyframe_files
    manifest = tmp_path / "run.json"
    made = run_cli(
        "pair",
        str(first),
        str(last),
        "-o",
        str(tmp_path / "a.mp4"),
        "--depth",
        "3",
        "--seed",
        "7",
        "--frames-dir",
        str(tmp_path / "a"),
        "--manifest",
        str(manifest),
    )
    assert made.returncode == 0, made.stderr
    record = json.loads(manifest.read_text())
    assert record["command"] == "pair" and record["backend"]["name"] == "flow"
    assert record["inputs"] == {str(first.resolve()): sha256(first), str(last.resolve()): sha256(last)}
    assert record["settings"]["depth"] == 3 and record["settings"]["mismatch"] == "auto"
    assert [s["t"] for s in record["seeds"]["frames"]] == [str(Fraction(i, 8)) for i in range(1, 8)]
    assert record["packages"]["numpy"] == np.__version__ and record["timings"]["seconds"] > 0
    replayed = run_cli("replay", str(manifest), "-o", str(tmp_path / "b.mp4"), "--frames-dir", str(tmp_path / "b"))
    assert replayed.returncode == 0, replayed.stderr
    a, b = frames_of(tmp_path / "a"), frames_of(tmp_path / "b")
    assert len(a) == len(b) == 9
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_a_manifest_without_a_newer_option_replays_with_its_default(tmp_path, keyframe_files):
    first, last = keyframe_files
    manifest = tmp_path / "m.json"
    assert (
        run_cli("pair", str(first), str(last), "-o", str(tmp_path / "a.mp4"), "--manifest", str(manifest)).returncode
        == 0
    )
    record = json.loads(manifest.read_text())
    del record["settings"]["mismatch"]
    manifest.write_text(json.dumps(record))
    replayed = run_cli("replay", str(manifest), "-o", str(tmp_path / "b.mp4"))
    assert replayed.returncode == 0, replayed.stderr


def test_clip_replay_makes_the_same_frames(tmp_path):
    manifest = tmp_path / "clip.json"
    made = run_cli(
        "clip",
        str(EXAMPLE),
        "-o",
        str(tmp_path / "a.mp4"),
        "--fps",
        "30",
        "--start",
        "0.5",
        "--manifest",
        str(manifest),
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(manifest.read_text())["settings"]["fps"] == "30"
    replayed = run_cli("replay", str(manifest), "-o", str(tmp_path / "b.mp4"))
    assert replayed.returncode == 0, replayed.stderr
    a, b = list(read_frames(tmp_path / "a.mp4")), list(read_frames(tmp_path / "b.mp4"))
    assert len(a) == len(b) == 45
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_evaluate_replay_gives_the_same_scores(tmp_path):
    data = tmp_path / "data"
    write_triplet(data / "t1", panned_triplet())
    manifest = tmp_path / "m.json"
    made = run_cli("evaluate", str(data), "--json", str(tmp_path / "a.json"), "--manifest", str(manifest))
    assert made.returncode == 0, made.stderr
    assert len(json.loads(manifest.read_text())["inputs"]) == 3  # every file of the data folder
    assert run_cli("replay", str(manifest), "-o", str(tmp_path / "b.json")).returncode == 0
    a, b = (json.loads((tmp_path / name).read_text()) for name in ("a.json", "b.json"))
    assert a["psnr"] == b["psnr"] and a["ssim"] == b["ssim"]


def test_replay_refuses_a_changed_input_naming_it(tmp_path, keyframe_files):
    first, last = keyframe_files
    manifest = tmp_path / "m.json"
    made = run_cli("pair", str(first), str(last), "-o", str(tmp_path / "a.mp4"), "--manifest", str(manifest))
    assert made.returncode == 0, made.stderr
    Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(last)
    result = run_cli("replay", str(manifest), "-o", str(tmp_path / "b.mp4"))
    assert_user_error(result)
    assert f"The input {last.resolve()} is not the file the manifest recorded (its sha256 differs)." in result.stderr
    assert not (tmp_path / "b.mp4").exists()


def test_a_missing_input_with_manifest_is_a_user_error(tmp_path, keyframe_files):
    first, _ = keyframe_files
    missing = tmp_path / "missing.png"
    result = run_cli(
        "pair", str(first), str(missing), "-o", str(tmp_path / "a.mp4"), "--manifest", str(tmp_path / "m.json")
    )
    assert_user_error(result)
    assert f"The input {missing} does not exist." in result.stderr
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "a.mp4").exists()


@pytest.mark.parametrize("content", ["not json", '{"vfi_manifest": 99}', '{"vfi_manifest": 1, "command": "nope"}'])
def test_replay_refuses_what_is_not_a_manifest(tmp_path, content):
    (tmp_path / "m.json").write_text(content)
    assert_user_error(run_cli("replay", str(tmp_path / "m.json"), "-o", str(tmp_path / "b.mp4")))


def test_adapters_are_recorded_with_their_resolved_revision_and_hashes(tmp_path):
    """A Hub adapter resolves through ``hf_hub_download`` from an offline cache (refs/main → snapshot)."""
    import os
    import subprocess
    import sys

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--owner--lora"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "pytorch_lora_weights.safetensors").write_bytes(b"weights")
    local = tmp_path / "local"
    local.mkdir()
    (local / "lora.safetensors").write_bytes(b"local weights")
    code = (
        "import json; from vfi.backends.qwen_edit import QwenEditConfig; from vfi.manifest import adapter_sources; "
        f"print(json.dumps(adapter_sources(QwenEditConfig(adapters=('owner/lora@0.8', {str(local)!r})))))"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    hub, folder = json.loads(out.stdout)
    assert hub == {
        "source": "owner/lora",
        "scale": 0.8,
        "revision": None,
        "resolved_revision": commit,
        "files": {"pytorch_lora_weights.safetensors": sha256(snapshot / "pytorch_lora_weights.safetensors")},
    }
    assert folder["resolved_revision"] is None
    assert folder["files"] == {"lora.safetensors": sha256(local / "lora.safetensors")}


def test_replay_takes_copies_of_the_inputs_that_hash_the_same(tmp_path, keyframe_files):
    first, last = keyframe_files
    manifest = tmp_path / "m.json"
    args = ("--depth", "2", "--manifest", str(manifest), "--frames-dir", str(tmp_path / "a"))
    assert run_cli("pair", str(first), str(last), "-o", str(tmp_path / "a.mp4"), *args).returncode == 0
    copies = tmp_path / "copies"
    copies.mkdir()
    for path in (first, last):
        (copies / f"my_{path.name}").write_bytes(path.read_bytes())
    mine = [str(copies / "my_first.png"), str(copies / "my_last.png")]
    first.unlink()
    assert "give your copy with --inputs" in run_cli("replay", str(manifest), "-o", str(tmp_path / "b.mp4")).stderr
    again = run_cli(
        "replay", str(manifest), "-o", str(tmp_path / "b.mp4"), "--frames-dir", str(tmp_path / "b"), "--inputs", *mine
    )
    assert again.returncode == 0, again.stderr
    assert all(np.array_equal(x, y) for x, y in zip(frames_of(tmp_path / "a"), frames_of(tmp_path / "b")))
    swapped = run_cli("replay", str(manifest), "-o", str(tmp_path / "c.mp4"), "--inputs", *reversed(mine))
    assert_user_error(swapped)
    assert f"The input {copies / 'my_last.png'} is not the file the manifest recorded as {first}" in swapped.stderr
    assert_user_error(run_cli("replay", str(manifest), "-o", str(tmp_path / "c.mp4"), "--inputs", mine[0]))


@pytest.fixture(scope="module")
def pair_manifest(tmp_path_factory) -> dict:
    """A good pair manifest (flow) whose inputs exist."""
    folder = tmp_path_factory.mktemp("good")
    rng = np.random.default_rng(0)
    first, last = folder / "first.png", folder / "last.png"
    for path in (first, last):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(path)
    args = ("-o", str(folder / "a.mp4"), "--depth", "1", "--manifest", str(folder / "m.json"))
    made = run_cli("pair", str(first), str(last), *args)
    assert made.returncode == 0, made.stderr
    return json.loads((folder / "m.json").read_text())


def _set(path: str, value):
    """A change to a manifest: ``value`` at the dotted ``path`` (``...`` deletes it)."""

    def change(record: dict) -> dict:
        *parents, key = path.split(".")
        for parent in parents:
            record = record[parent]
        if value is ...:
            del record[key]
        else:
            record[key] = value

    return change


def _as_sequence(settings: dict):
    """A change to a pair manifest: the same keyframes as a sequence run, with ``settings``."""

    def change(record: dict) -> None:
        pair = record["settings"]
        keyframes = [pair.pop("first"), pair.pop("last")]
        record["command"] = "sequence"
        pair.update(command="sequence", keyframes=keyframes, depth="1", **settings)

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("settings", [1]), "The manifest's 'settings' must be an object, got [1]."),
        (_set("settings", ...), "The manifest's 'settings' must be an object, got null."),
        (_set("settings.depth", "three"), "setting 'depth' must be a whole number of at least 0, got \"three\"."),
        (_set("settings.depth", {"a": 1}), "setting 'depth' must be a whole number"),
        (_set("settings.depth", -1), "setting 'depth' must be a whole number of at least 0"),
        (_set("settings.depth", True), "setting 'depth' must be a whole number"),
        (_set("settings.first", 42), "setting 'first' must be a file path, got 42."),
        (_set("settings.first", ...), "settings lack 'first', the input of a pair run"),
        (_set("settings.keyframes", "a.png"), "setting 'keyframes' must be a list of file paths"),
        (_set("settings.frame_seed", [5]), "setting 'frame_seed' must be a list of text, got [5]."),
        (_set("settings.fps", "fast"), "setting 'fps' must be a number of at least 0"),
        (_set("settings.newer", {"x": [1]}), "setting 'newer' must be text, a number"),
        (_set("packages", "x"), "The manifest's 'packages' must be an object of package"),
        (_set("argv", [1]), "The manifest's 'argv' must be a list of text"),
        (_set("inputs", {"/a": "not a hash"}), "The manifest's 'inputs' must be an object of file path"),
        (_set("inputs", {}), "settings name the input /"),
        (
            _as_sequence({"prompts": "/etc/shadow"}),
            "settings name the input /etc/shadow but its inputs record no sha256",
        ),
        (_set("vfi_manifest", True), "is not a vfi manifest (version 1)"),
        (_set("command", "compare"), "command 'compare' cannot be replayed"),
        (_set("settings.command", "clip"), "settings are of a 'clip' run, not 'pair'"),
        (_set("seeds", {"a": json.loads("[" * 20 + "]" * 20)}), "nested more than 16 levels deep"),
    ],
)
def test_replay_checks_the_manifest_against_its_schema_in_one_sentence(
    tmp_path, pair_manifest, capsys, change, message
):
    import copy

    from vfi.cli import main

    record = copy.deepcopy(pair_manifest)
    change(record)
    (tmp_path / "m.json").write_text(json.dumps(record))
    status = main(["replay", str(tmp_path / "m.json"), "-o", str(tmp_path / "b.mp4")])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "b.mp4").exists()


@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, '{"vfi_manifest": NaN}', '{"a": Infinity}'], ids=["deep", "nan", "inf"]
)
def test_replay_refuses_deep_nesting_and_non_json_numbers_in_one_sentence(tmp_path, text):
    (tmp_path / "m.json").write_text(text)
    result = run_cli("replay", str(tmp_path / "m.json"), "-o", str(tmp_path / "b.mp4"))
    assert_user_error(result)
    assert "is not valid JSON" in result.stderr


def test_a_sequence_manifest_records_its_prompts_file_and_replay_checks_it(tmp_path, keyframe_files):
    first, last = keyframe_files
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n")
    manifest = tmp_path / "m.json"
    args = ("-o", str(tmp_path / "a.mp4"), "--depth", "1", "--prompts", str(prompts), "--manifest", str(manifest))
    made = run_cli("sequence", str(first), str(last), *args)
    assert made.returncode == 0, made.stderr
    assert json.loads(manifest.read_text())["inputs"][str(prompts.resolve())] == sha256(prompts)
    prompts.write_text("\n\n")
    result = run_cli("replay", str(manifest), "-o", str(tmp_path / "b.mp4"))
    assert_user_error(result)
    assert f"The input {prompts.resolve()} is not the file the manifest recorded" in result.stderr


def test_replay_refuses_a_file_added_to_an_input_folder(tmp_path):
    data = tmp_path / "data"
    write_triplet(data / "t1", panned_triplet())
    manifest = tmp_path / "m.json"
    assert run_cli("evaluate", str(data), "--manifest", str(manifest)).returncode == 0
    write_triplet(data / "t2", panned_triplet())
    result = run_cli("replay", str(manifest), "-o", str(tmp_path / "b.json"))
    assert_user_error(result)
    assert "is not recorded in the manifest" in result.stderr
