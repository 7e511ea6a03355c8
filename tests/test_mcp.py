"""The app as an agent sees it: the real ``mcp`` client over streamable HTTP against ``app.py`` in a subprocess."""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
import re
import urllib.request
from pathlib import Path

import pytest
from app_server import EXAMPLES, running_app

from vfi.io.video import probe_clip

pytestmark = pytest.mark.slow

mcp = pytest.importorskip("mcp")
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

#: Every tool an agent should see; re-roll and lock need a session's storyboard and stay off the list, and so does the
#: tab's storyboard (uploaded files, which Gradio 6.31's MCP server cannot make from a list of data URLs).
TOOLS = {"keyframes", "clip", "clip_info", "storyboard_from_data_urls", "compare"}
FILE_URL = re.compile(r"https?://[^\s'\"]+/gradio_api/file=[^\s'\"]+")
#: What each returned file must be: the Content-Type served (a zip may go as a plain download) and its content.
KINDS = {
    ".mp4": ({"video/mp4"}, lambda body: body[4:8] == b"ftyp"),
    ".png": ({"image/png"}, lambda body: body[:8] == b"\x89PNG\r\n\x1a\n"),
    ".gif": ({"image/gif"}, lambda body: body[:6] == b"GIF89a"),
    ".webp": ({"image/webp"}, lambda body: body[:4] == b"RIFF" and body[8:12] == b"WEBP"),
    ".zip": ({"application/zip", "application/octet-stream"}, lambda body: body[:4] == b"PK\x03\x04"),
    ".json": ({"application/json"}, lambda body: isinstance(json.loads(body), dict)),
}


def data_url(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def pair(name: str) -> dict[str, str]:
    return {"first": data_url(EXAMPLES / f"{name}_first.png"), "last": data_url(EXAMPLES / f"{name}_last.png")}


STORYBOARD = ("astronaut_last", "astronaut_first", "coffee_first")
#: (tool, arguments, frames in the first MP4 it returns): small inputs, flow backend.
CALLS = [
    ("keyframes", {**pair("astronaut"), "depth": 1, "fps": 10}, 3),
    ("keyframes", {**pair("coffee"), "count": 2, "playback": "ping-pong", "seed": 7}, None),
    ("clip", {"video": data_url(EXAMPLES / "clip.mp4"), "factor": 4, "end": 1}, 4 * 11 + 1),
    ("clip", {"video": data_url(EXAMPLES / "clip.mp4"), "factor": 8, "end": 0.5}, 8 * 5 + 1),
    ("clip", {"video": data_url(EXAMPLES / "clip.mp4"), "fps": "24", "end": 1, "report": True}, 24),
    ("clip_info", {"video": data_url(EXAMPLES / "clip.mp4"), "factor": 8}, None),
    (
        "storyboard_from_data_urls",
        {"images": [data_url(EXAMPLES / f"{n}.png") for n in STORYBOARD], "depth": "1,2", "fps": 10},
        1 + 2 + 4,
    ),
    ("compare", {**pair("coffee"), "depth": 1}, 3),
]


#: A PNG data URL past the 1 MiB limit the test app runs with.
TOO_LARGE = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(2**20)).decode()


@pytest.fixture(scope="module")
def mcp_url(tmp_path_factory) -> str:
    log = tmp_path_factory.mktemp("mcp_app") / "app.log"
    with running_app(log, "--backend", "flow", "--max-upload-mb", "1") as url:
        yield url + "gradio_api/mcp/"


async def _session(url: str, work):
    async with streamable_http_client(url) as (read, write, _), mcp.ClientSession(read, write) as session:
        await session.initialize()
        return await work(session)


def run(url: str, work):
    return asyncio.run(_session(url, work))


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.status, response.headers.get_content_type(), response.read()


def test_the_tools_an_agent_sees_are_documented_in_sentences(mcp_url):
    tools = {tool.name: tool for tool in run(mcp_url, lambda s: s.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert "data:image/png;base64" in tool.description and ", summary" not in tool.description
        assert re.fullmatch(r"[A-Z][^\n]*\.", tool.description), tool.description
        described = [p for p in tool.inputSchema["properties"].values() if p.get("description")]
        assert len(described) == len(tool.inputSchema["properties"]), tool.name
    assert tools["clip"].inputSchema["properties"]["factor"]["type"] == "integer"


@pytest.mark.parametrize(("tool", "arguments", "frames"), CALLS)
def test_every_tool_works_and_its_files_download(mcp_url, tmp_path, tool, arguments, frames):
    result = run(mcp_url, lambda s: s.call_tool(tool, arguments))
    texts = [c.text for c in result.content if c.type == "text"]
    assert not result.isError, texts
    urls = sorted({u for text in texts for u in FILE_URL.findall(text)})
    if tool == "clip_info":
        assert not urls and "fps" in texts[0]
        return
    videos = []
    for url in urls:
        status, content_type, body = fetch(url)
        types, is_kind = KINDS[Path(url).suffix]
        assert status == 200 and content_type in types and is_kind(body), (url, content_type)
        if url.endswith(".mp4"):
            videos.append(tmp_path / f"{len(videos)}.mp4")
            videos[-1].write_bytes(body)
    assert videos, urls
    if frames is not None:
        assert probe_clip(videos[0]).num_frames == frames


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("keyframes", {"first": "data:image/png;base64,aGVsbG8=", "last": "data:image/png;base64,aGVsbG8="}),
        ("clip", {"video": data_url(EXAMPLES / "astronaut_first.png"), "factor": 2}),
        ("clip_info", {"video": data_url(EXAMPLES / "astronaut_first.png"), "factor": 2}),
        ("compare", {"first": data_url(EXAMPLES / "clip.mp4"), "last": data_url(EXAMPLES / "astronaut_last.png")}),
        ("clip", {"video": data_url(EXAMPLES / "clip.mp4"), "factor": 3}),  # the schema's check, by the mcp server
    ],
    ids=["not-an-image", "not-a-video", "info-not-a-video", "compare-not-an-image", "bad-factor"],
)
def test_a_bad_input_comes_back_as_one_sentence(mcp_url, tool, arguments):
    result = run(mcp_url, lambda s: s.call_tool(tool, arguments))
    text = " ".join(c.text for c in result.content if c.type == "text").strip()
    assert "Traceback" not in text and "\n" not in text and "/tmp" not in text, text
    assert result.isError or tool == "clip_info", text
    assert len(re.findall(r"[.!?](\s|$)", text)) <= 1, text


@pytest.mark.parametrize(
    ("image", "said"),
    [
        ("https://example.com/a.png", "Image 2 is not a base64 image data URL (data:image/png;base64,...); "
         "http(s) URLs are not fetched."),
        (TOO_LARGE, "Image 2 is larger than the 1 MiB limit for an image."),
        ("data:image/png;base64,aGVsbG8=", "The image data is not an image we can read "
         "(PNG, JPEG, WebP, BMP, TIFF, GIF, PPM or TGA)."),
    ],
    ids=["http-url", "too-large", "not-an-image"],
)  # fmt: skip
def test_storyboard_refuses_a_keyframe_that_is_not_a_small_image_data_url_in_one_sentence(mcp_url, image, said):
    arguments = {"images": [data_url(EXAMPLES / "rocket_first.png"), image]}
    result = run(mcp_url, lambda s: s.call_tool("storyboard_from_data_urls", arguments))
    assert result.isError and [c.text for c in result.content] == [said]


def test_each_output_is_written_once(tmp_path):
    # Without GRADIO_TEMP_DIR (as on a Space), Gradio's cache is the app's output folder: outputs are served in place.
    env = {"GRADIO_TEMP_DIR": "", "TMPDIR": str(tmp_path)}
    with running_app(tmp_path / "app.log", "--backend", "flow", env=env) as url:
        result = run(url + "gradio_api/mcp/", lambda s: s.call_tool("keyframes", {**pair("rocket"), "depth": 1}))
        assert not result.isError
        written = [p.name for p in tmp_path.rglob("*") if p.name.startswith(("interpolated.", "frames."))]
    assert sorted(written) == ["frames.zip", "interpolated.gif", "interpolated.mp4"], written
