"""The atomic writers: a failed write or rename becomes one clear error and leaves no temporary file."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from vfi.errors import VFIError
from vfi.io.files import atomic_dir, atomic_path, check_output, decode_image_data_url


def test_a_failed_rename_is_a_user_error_and_leaves_no_temporary_file(tmp_path: Path):
    out = tmp_path / "out.json"
    with pytest.raises(VFIError, match=r"Could not write .*out\.json: is a directory\."), atomic_path(out) as tmp:
        tmp.write_text("{}")
        out.mkdir()  # the output became a folder while the work ran: the rename fails
    assert out.is_dir() and list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_failed_write_is_a_user_error_and_leaves_no_temporary_file(tmp_path: Path):
    out = tmp_path / "out.json"
    with pytest.raises(VFIError, match="Could not write"), atomic_path(out) as tmp:
        (tmp / "inside").write_text("{}")  # the temporary path is not a folder: ENOENT/ENOTDIR
    assert list(tmp_path.iterdir()) == []


def test_a_failed_folder_rename_is_a_user_error_and_leaves_no_temporary_folder(tmp_path: Path):
    out = tmp_path / "frames"
    with pytest.raises(VFIError, match="Could not write"), atomic_dir(out) as tmp:
        (tmp / "frame_0000.png").write_bytes(b"x")
        out.symlink_to(tmp_path / "elsewhere")  # a dangling link appeared: replacing it with a folder fails
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_check_output_follows_symlinks_and_refuses_non_regular_files(tmp_path: Path):
    real = tmp_path / "real.mp4"
    link = tmp_path / "link.mp4"
    link.symlink_to(real)
    assert check_output(link) == real
    assert check_output(tmp_path / "new.mp4") == tmp_path / "new.mp4"
    with pytest.raises(VFIError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(VFIError, match="not a regular file"):
        check_output("/dev/null")
    with pytest.raises(VFIError, match="does not exist"):
        check_output(tmp_path / "missing" / "x.mp4")
    (tmp_path / "file").write_text("")
    with pytest.raises(VFIError, match="is not a folder"):
        check_output(tmp_path / "file" / "x.mp4")
    with pytest.raises(VFIError, match="exists and is not a folder"):
        check_output(tmp_path / "file", folder=True)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(VFIError, match="symlink that cannot be followed"):
        check_output(tmp_path / "loop")


PNG_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(100)).decode()


def test_an_image_data_url_is_decoded_within_its_limit():
    assert decode_image_data_url(PNG_URL, "Image 1", 108) == b"\x89PNG\r\n\x1a\n" + bytes(100)
    assert decode_image_data_url("DATA:image/jpeg;name=a.jpg;base64,/9j/", "Image 1", 3) == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (PNG_URL, r"^Image 2 is larger than the 107 bytes limit for an image\.$"),
        ("https://example.com/a.png", r"^Image 2 is not a base64 image data URL .*; http\(s\) URLs are not fetched\.$"),
        ("/tmp/a.png", r"^Image 2 is not a base64 image data URL \(data:image/png;base64,\.\.\.\)\.$"),
        ("data:text/plain;base64,aGVsbG8=", "is not a base64 image data URL"),
        ("data:image/png,rawbytes", "is not a base64 image data URL"),
        (["data:image/png;base64,AAAA"], "is not a base64 image data URL"),
        ("data:image/png;base64,AA\nAA", r"^The base64 data of image 2 is not valid\.$"),
        ("data:image/png;base64,", r"^Image 2 is empty\.$"),
    ],
    ids=["too-large", "http", "path", "not-an-image", "not-base64", "not-a-string", "bad-base64", "empty"],
)
def test_anything_else_is_refused_in_one_sentence_before_decoding(url, message):
    with pytest.raises(VFIError, match=message):
        decode_image_data_url(url, "Image 2", 107)
