"""Training data: triplet folders and videos → filtered, diverse, held-out triplets (vfi.training.data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scenes import panned_triplet, textured_image, write_triplet

from vfi.errors import VFIError
from vfi.training.data import Dataset, DataSettings, build_dataset, farthest_points


@pytest.fixture
def triplet_root(tmp_path: Path) -> Path:
    root = tmp_path / "triplets"
    for i in range(4):
        write_triplet(root / f"vimeo/{i:03d}", panned_triplet(64, 96, shift=3, seed=i))
    write_triplet(
        root / "mb/Pan", panned_triplet(64, 96, shift=2, seed=9), ("frame10.png", "frame10i11.png", "frame11.png")
    )
    still = textured_image(64, 96, seed=5)
    write_triplet(root / "vimeo/static", (still, still, still))
    return root


def test_triplet_folders_both_layouts_static_skipped(triplet_root, tmp_path):
    dataset = build_dataset([triplet_root], tmp_path / "work", DataSettings(size=10, num_validation=1))
    names = {s.name for s in dataset.train + dataset.validation}
    assert names == {"vimeo/000", "vimeo/001", "vimeo/002", "vimeo/003", "mb/Pan"}
    assert dataset.skipped == {"static": 1}
    assert len(dataset.validation) == 1 and dataset.validation[0] not in dataset.train
    sample = dataset.train[0]
    assert sample.t == 0.5 and (sample.width, sample.height) == (96, 64) and sample.motion > 0.01
    first, middle, last = sample.load()
    assert first.shape == middle.shape == last.shape == (64, 96, 3)
    summary = dataset.summary()
    assert "4 training + 1 validation" in summary and "96×64 ×5" in summary and "1 static" in summary


def test_manifest_round_trip(triplet_root, tmp_path):
    dataset = build_dataset([triplet_root], tmp_path / "work", DataSettings(size=3, num_validation=1, seed=3))
    dataset.save(tmp_path)
    assert Dataset.load(tmp_path) == dataset
    assert len(dataset.train) == 3


def _clip(path: Path) -> Path:
    """40 frames: a pan (3 px/frame), a cut to another texture at frame 20, then 10 still frames from 30."""
    from vfi.io.video import write_mp4

    a, b = textured_image(96, 128 + 120, seed=1), textured_image(96, 128 + 120, seed=2)
    frames = [a[:, 3 * k : 3 * k + 128] for k in range(20)]
    frames += [b[:, 3 * k : 3 * k + 128] for k in range(10)]
    frames += [b[:, 30 : 30 + 128]] * 10
    return write_mp4(frames, path, fps=25, crf=10)


def test_video_triplets_gap_cuts_static_and_holdout(tmp_path):
    clip = _clip(tmp_path / "pan.mp4")
    settings = DataSettings(size=50, num_validation=2, target_motion=0.04, max_gap=2, stride=1, seed=1)
    dataset = build_dataset([clip], tmp_path / "work", settings)
    assert dataset.skipped["across a scene cut"] > 0 and dataset.skipped["static"] > 0
    spans = []
    for sample in dataset.train + dataset.validation:
        start, middle, end = (int(n) for n in sample.name.split("/")[1].split("-"))
        assert not start < 20 <= end, f"{sample.name} spans the cut"
        assert end - start == 4, "a gap of 2 frames gives 0.04 of the width at 3 px/frame"
        assert sample.motion >= settings.min_motion and sample.t == (middle - start) / (end - start) == 0.5
        assert all(p.is_file() for p in (sample.first, sample.middle, sample.last))
        spans.append((sample in dataset.validation, start, end))
    held = [(s, e) for v, s, e in spans if v]
    assert all(e < s2 or e2 < s for _, s, e in [x for x in spans if not x[0]] for s2, e2 in held), (
        "validation overlaps training"
    )
    first, middle, last = dataset.train[0].load()
    assert np.abs(middle.astype(int) - first).mean() > 1 and first.shape == (96, 128, 3)


def test_video_other_times(tmp_path):
    clip = _clip(tmp_path / "pan.mp4")
    dataset = build_dataset(
        [tmp_path], tmp_path / "work", DataSettings(size=6, num_validation=0, gap=3, other_times=1.0)
    )
    assert dataset.train and all(s.t != 0.5 and s.t in {k / 6 for k in range(1, 6)} for s in dataset.train)
    assert clip.name in {s.source for s in dataset.train}


def test_videos_of_the_same_name_keep_their_own_triplets(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    clips = [_clip(tmp_path / folder / "clip.mp4") for folder in ("a", "b")]
    dataset = build_dataset(clips, tmp_path / "work", DataSettings(size=50, num_validation=0, gap=2, stride=4))
    assert len({s.middle.parent for s in dataset.train}) == len(dataset.train)  # no triplet overwrote another
    assert len({s.name.split("/")[0] for s in dataset.train}) == 2


def test_diverse_subset_spreads_out():
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0, 0.01, (50, 2)), [[5.0, 5.0], [-5.0, 5.0]]])
    picked = farthest_points(features, 3, np.random.default_rng(1))
    assert {50, 51} <= set(picked) and len(set(picked)) == 3
    assert farthest_points(features, 100, rng) == list(range(52))


def test_errors(tmp_path, triplet_root):
    with pytest.raises(VFIError, match="at least 6"):
        build_dataset([triplet_root], tmp_path / "w", DataSettings(num_validation=5))
    with pytest.raises(VFIError, match="not found"):
        build_dataset([tmp_path / "missing"], tmp_path / "w")
    with pytest.raises(VFIError, match="is not a video"):
        build_dataset([triplet_root / "vimeo/000/im1.png"], tmp_path / "w")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VFIError, match="neither triplet folders nor videos"):
        build_dataset([tmp_path / "empty"], tmp_path / "w")
    with pytest.raises(VFIError, match="min_motion"):
        DataSettings(min_motion=0.5, max_motion=0.1)
    with pytest.raises(VFIError, match="size"):
        DataSettings(size=0)


def test_unreadable_videos_are_skipped_with_a_warning_naming_them(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    good = _clip(clips / "good.mp4")
    (clips / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    (clips / "truncated.mp4").write_bytes(good.read_bytes()[:1200])  # cut inside the header
    with pytest.warns(UserWarning) as caught:
        dataset = build_dataset([clips], tmp_path / "work", DataSettings(size=4, num_validation=1, gap=2))
    skipping = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    assert len(skipping) == 2 and "garbage.mp4" in skipping[0] and "truncated.mp4" in skipping[1]
    assert not any(str(tmp_path) in text for text in skipping), "a file name, not a server path"
    assert dataset.skipped["unreadable"] == 2 and {s.source for s in dataset.train} == {"good.mp4"}
    assert "2 unreadable" in dataset.summary()

    (clips / "good.mp4").unlink()
    with pytest.warns(UserWarning), pytest.raises(VFIError, match=r"^Only 0 usable triplets.*2 unreadable") as error:
        build_dataset([clips], tmp_path / "work2", DataSettings(size=4, num_validation=1))
    assert "\n" not in str(error.value)


def test_a_corrupt_triplet_is_skipped_with_a_warning(triplet_root, tmp_path):
    (triplet_root / "vimeo/001/im2.png").write_bytes(b"\x89PNG broken")
    with pytest.warns(UserWarning, match="Skipping the triplet vimeo/001: Image file im2.png"):
        dataset = build_dataset([triplet_root], tmp_path / "work", DataSettings(size=10, num_validation=0))
    assert "vimeo/001" not in {s.name for s in dataset.train} and dataset.skipped["unreadable"] == 1


def test_fewer_triplets_than_asked_says_why(tmp_path):
    clip = _clip(tmp_path / "pan.mp4")
    (tmp_path / "short").mkdir()
    from vfi.io.video import write_mp4

    short = write_mp4([textured_image(96, 128, seed=3)] * 2, tmp_path / "short" / "two-frames.mp4", fps=25)
    settings = DataSettings(size=40, num_validation=2, target_motion=0.04, max_gap=2, stride=1, seed=1)
    with pytest.warns(UserWarning, match=r"^Only \d+ of the 40 training triplets") as caught:
        dataset = build_dataset([clip, short], tmp_path / "work", settings)
    text = str(caught[0].message)
    for reason in ("across a scene cut", "static", "overlapping validation", "2 held out for validation"):
        assert reason in text, text
    assert f"Only {len(dataset.train)} of" in text and "1 too short" in text
    assert dataset.skipped["overlapping validation"] > 0 and dataset.skipped["too short"] == 1
