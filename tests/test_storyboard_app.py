"""The Storyboard tab over HTTP (gradio_client): several keyframes → one video, then re-roll and lock frames."""

from __future__ import annotations

import numpy as np
import pytest
from app_server import EXAMPLES, running_app
from PIL import Image

pytestmark = pytest.mark.slow

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from test_app_client import tiny_app  # noqa: E402, F401 (a fixture: the app on the tiny generative model)

from vfi.io.images import load_image  # noqa: E402
from vfi.io.video import probe_clip  # noqa: E402
from vfi.modes.storyboard import load_storyboard  # noqa: E402

KEYFRAMES = [EXAMPLES / name for name in ("astronaut_first.png", "astronaut_last.png", "coffee_first.png")]


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Client:
    with running_app(tmp_path_factory.mktemp("storyboard_app") / "app.log", "--backend", "flow") as url:
        yield Client(url, verbose=False)


def _storyboard(client: Client, order: str = "", depth: str = "1,2", keyframes=KEYFRAMES, **options):
    args = dict(frames_per_pair=0, fps=10, prompts="", backend="flow")
    args.update(options)
    files = [handle_file(str(path)) for path in keyframes]
    return client.predict(files, order, depth, api_name="/storyboard", **args)


def test_storyboard_in_the_users_order(client):
    video, gallery, frames_zip, info, *_ = _storyboard(client, order="3,1,2")
    assert probe_clip(video).num_frames == 2 + 4 + 1
    assert "7 frames from 3 keyframes" in info and frames_zip.endswith(".zip")
    keyframes, _ = load_storyboard([KEYFRAMES[2], KEYFRAMES[0], KEYFRAMES[1]])
    for index, keyframe in zip((0, 2, 6), keyframes):  # each keyframe once, unchanged, in the order given
        np.testing.assert_array_equal(load_image(gallery[index]["image"]), keyframe)
    assert [item["caption"].split(":")[0] for item in gallery] == [str(i) for i in range(7)]


def test_a_keyframe_of_another_shape_is_fitted_and_the_summary_says_so(client, tmp_path):
    wide = tmp_path / "wide.png"
    Image.open(KEYFRAMES[2]).resize((600, 256)).save(wide)
    video, gallery, _, info, *_ = _storyboard(client, depth="1", keyframes=[*KEYFRAMES[:2], wide])
    assert (probe_clip(video).width, probe_clip(video).height) == (384, 256)
    assert "Keyframe 3 (600×256) was scaled and center-cropped to the first's 384×256" in info


def test_lock_toggles_and_reroll_on_a_deterministic_backend_says_it_has_no_effect(client):
    *_, info = _storyboard(client, depth="2")
    assert info.endswith("The flow backend is deterministic; re-roll has no effect.")
    locked = client.predict("", 1, api_name="/lock")
    assert locked == "1" and client.predict(locked, 1, api_name="/lock") == ""
    with pytest.raises(AppError, match=r"^The flow backend is deterministic; re-roll has no effect\.$"):
        client.predict(2, "1", 10, api_name="/reroll")  # a new seed would make the same pixels


def test_the_order_preview_skips_what_is_not_an_image_number_yet():
    from vfi.app.storyboard import preview

    files = ["a.png", "b.png", "c.png"]
    assert preview(files, "3,x") == [("c.png", "image 3")]  # typed on each keystroke: no error, no traceback logged
    assert preview(files, "two") == preview(files, "") == [(f, f"image {i}") for i, f in enumerate(files, 1)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: _storyboard(c, order="1,1,2"), "order must list each image number"),
        (lambda c: _storyboard(c, depth="1,2,3"), "one value or one per transition"),
        (lambda c: _storyboard(c, depth=""), "^depth is empty; give one depth"),  # as in the CLI
        (lambda c: _storyboard(c, prompts="walk\nrun"), "need the qwen-edit backend"),
        (lambda c: c.predict(1, "1", 10, api_name="/reroll"), "locked"),
        (lambda c: c.predict(0, "", 10, api_name="/reroll"), "keyframe"),
    ],
)
def test_user_errors_are_one_sentence(client, call, message):
    _storyboard(client, depth="2")
    with pytest.raises(AppError, match=message):
        call(client)


def test_generative_storyboard_with_prompts_and_a_reroll(tiny_app):  # noqa: F811 (the imported fixture)
    """The tiny random Qwen-Image-Edit pipeline (seed-sensitive): a prompt for the second transition only,
    then frame 3 re-rolled: it changes, every other frame stays bit for bit."""
    url, adapter, _ = tiny_app
    client = Client(url, verbose=False)
    files = [handle_file(str(path)) for path in KEYFRAMES]
    generative = dict(backend="qwen-edit", adapter=adapter, resolution=64, steps=2, guidance=1.0, prompt="")
    _, before, _, info, *_ = client.predict(
        files,
        "",
        "1",
        frames_per_pair=0,
        fps=10,
        prompts="\nthe cup turns",
        seed=7,
        api_name="/storyboard",
        **generative,
    )
    assert "5 frames from 3 keyframes" in info
    _, after, _, info, *_ = client.predict(3, "", 10, api_name="/reroll")
    assert "made again [3]," in info
    frames = [[load_image(item["image"]) for item in gallery] for gallery in (before, after)]
    assert np.abs(frames[1][3].astype(int) - frames[0][3]).mean() > 1
    for index in (0, 1, 2, 4):
        np.testing.assert_array_equal(frames[1][index], frames[0][index])
    with pytest.raises(AppError, match="one line per transition"):  # three prompts for two transitions
        client.predict(files, "", "1", prompts="a\nb\nc", api_name="/storyboard", **generative)


def test_lock_answers_one_sentence_without_a_storyboard_or_out_of_range(client, tmp_path):
    fresh = Client(client.src, verbose=False)  # a new session: no storyboard made yet
    with pytest.raises(AppError, match="Make a storyboard first"):
        fresh.predict("", 99999, api_name="/lock")
    _storyboard(client, depth="1")
    for index in (99999, 2**40):
        with pytest.raises(AppError, match=f"There is no frame {index}; the frames are numbered 0 to 4."):
            client.predict("", index, api_name="/lock")
