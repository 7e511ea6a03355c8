"""The app in a real browser: headless Chromium (selenium) uploads files, runs each tab, sees playable video.

Screenshots go to pytest's tmp_path; with ``VFI_SCREENSHOT_DIR=docs/screenshots`` (or
``python tests/test_app_browser.py``) they are also written there as keyframes.png, clip.png, compare.png, storyboard.png.
Skipped, with the reason, where Chromium or its driver is missing (``scripts/test.sh`` installs them).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from app_server import EXAMPLES, ROOT, running_app

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TIMEOUT = 90


def _skip_reason() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (apt-get install chromium chromium-driver; scripts/test.sh does it as root)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if reason := _skip_reason():
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory) -> str:
    with running_app(tmp_path_factory.mktemp("browser_app") / "app.log", "--backend", "flow") as url:
        yield url


def _wait(driver, condition, what: str, timeout: float = TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.3).until(
        lambda d: condition(d), message=f"waiting for {what}"
    )


def _upload(driver, elem_id: str, path: Path) -> None:
    from selenium.webdriver.common.by import By

    field = _wait(
        driver, lambda d: d.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=file]"), f"#{elem_id} upload"
    )
    field.send_keys(str(path))
    _wait(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"#{elem_id} img, #{elem_id} video"), f"#{elem_id} preview"
    )


def _click(driver, elem_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, elem_id).click()


def _open_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    tab = _wait(
        driver,
        lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text.strip() == name],
        f"tab {name}",
    )
    tab[0].click()


def _playable_video(driver, elem_id: str) -> dict:
    """Wait until the <video> in ``elem_id`` has loaded its metadata; return its state."""
    script = f"""
        const v = document.querySelector('#{elem_id} video');
        return v && {{readyState: v.readyState, duration: v.duration, width: v.videoWidth, src: v.currentSrc}};
    """
    return _wait(
        driver,
        lambda d: (s := d.execute_script(script)) and s["readyState"] >= 1 and s["duration"] > 0 and s,
        f"a playable video in #{elem_id}",
    )


#: Records every state of the keyframes gallery, as (images shown, a video shown), however briefly it lasted.
STREAM_RECORDER = """
    window.vfiGallerySeen = [];
    const gallery = document.querySelector('#gallery-keyframes');
    const record = () => {
        const state = [gallery.querySelectorAll('img').length, !!document.querySelector('#video-keyframes video')];
        const last = window.vfiGallerySeen[window.vfiGallerySeen.length - 1];
        if (!last || last[0] !== state[0] || last[1] !== state[1]) window.vfiGallerySeen.push(state);
    };
    new MutationObserver(record).observe(document.body, {subtree: true, childList: true, attributes: true});
"""


def _gallery_fits(driver, elem_id: str) -> None:
    """Every column of the gallery is in view (no sideways scrolling) and no caption (frame, t, seed) is cut."""
    script = f"""
        const grid = document.querySelector('#{elem_id} .grid-container');
        const cut = [...grid.querySelectorAll('.caption-label')].filter(c => c.scrollWidth > c.clientWidth);
        return {{hidden: grid.scrollWidth - grid.clientWidth, cut: cut.map(c => c.textContent)}};
    """
    assert driver.execute_script(script) == {"hidden": 0, "cut": []}


def _no_error_toast(driver) -> None:
    from selenium.webdriver.common.by import By

    toasts = [t.text for t in driver.find_elements(By.CSS_SELECTOR, ".toast-body") if "rror" in t.text]
    assert not toasts, toasts


def _screenshot(driver, tmp_path: Path, name: str) -> Path:
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(1280, min(max(height, 1000), 3000))
    time.sleep(0.5)
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    if target := os.environ.get("VFI_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / f"{name}.png")
    assert path.stat().st_size > 10_000
    return path


def test_keyframes_tab(browser, app_url, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(app_url)
    _upload(browser, "first", EXAMPLES / "astronaut_first.png")
    _upload(browser, "last", EXAMPLES / "astronaut_last.png")
    browser.execute_script(STREAM_RECORDER)
    _click(browser, "run-keyframes")
    state = _playable_video(browser, "video-keyframes")
    assert state["width"] == 384
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery-keyframes img")) == 9, "the gallery")
    # Streamed: the gallery showed the keyframes alone, with no video yet, before it filled in.
    seen = browser.execute_script("return window.vfiGallerySeen")
    assert [2, False] in seen and seen.index([2, False]) < seen.index(next(s for s in seen if s[0] == 9)), seen
    assert "9 frames" in browser.find_element(By.ID, "info-keyframes").text
    _gallery_fits(browser, "gallery-keyframes")
    _no_error_toast(browser)
    _screenshot(browser, tmp_path, "keyframes")


def test_clicking_an_example_makes_its_video(browser, app_url):
    from selenium.webdriver.common.by import By

    browser.get(app_url)
    cell = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#examples-keyframes tr.tr-body td"), "examples")
    cell[0].click()  # the first pair: cached lazily, so this click runs the interpolation once
    _playable_video(browser, "video-keyframes")
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery-keyframes img")) == 9, "the gallery")
    _no_error_toast(browser)


def test_clip_tab(browser, app_url, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(app_url)
    _open_tab(browser, "Clip")
    _upload(browser, "clip-in", EXAMPLES / "clip.mp4")
    _wait(browser, lambda d: "24 frames" in d.find_element(By.ID, "info-clip-in").text, "the clip's details")
    browser.find_element(By.CSS_SELECTOR, "#report-clip input[type=checkbox]").click()
    _click(browser, "run-clip")
    state = _playable_video(browser, "video-clip")
    assert abs(state["duration"] - 2.0) < 0.2
    assert "audio kept" in browser.find_element(By.ID, "info-clip").text
    assert "Quality report:" in browser.find_element(By.ID, "info-clip").text
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#plot-clip canvas, #plot-clip svg"), "the PSNR plot")
    _no_error_toast(browser)
    _screenshot(browser, tmp_path, "clip")


def test_compare_tab(browser, app_url, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(app_url)
    _open_tab(browser, "Compare")
    _upload(browser, "cmp-first", EXAMPLES / "coffee_first.png")
    _upload(browser, "cmp-last", EXAMPLES / "coffee_last.png")
    _click(browser, "run-compare")
    state = _playable_video(browser, "video-compare")
    assert state["width"] == 2 * 384
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gallery-compare img")) == 2, "two middle frames")
    slider = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#slider-compare img"), "the image slider")
    assert len(slider) >= 2  # the two middle frames, one over the other
    assert "PSNR" in browser.find_element(By.ID, "info-compare").text
    assert "Left vs right" not in browser.find_element(By.ID, "video-compare").text  # no label over the frames' names
    _no_error_toast(browser)
    _screenshot(browser, tmp_path, "compare")


def test_stop_says_how_far_the_run_got(browser, app_url, tmp_path):
    import subprocess

    from selenium.webdriver.common.by import By

    from vfi.io.video import ffmpeg_exe

    clip = tmp_path / "long.mp4"  # at ×8 the flow backend works on it far longer than the test waits
    source = "testsrc2=size=320x240:rate=10:duration=20"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", source, "-pix_fmt", "yuv420p", str(clip)], check=True
    )
    browser.get(app_url)
    _open_tab(browser, "Clip")
    _upload(browser, "clip-in", clip)
    _wait(browser, lambda d: "200 frames" in d.find_element(By.ID, "info-clip-in").text, "the clip's details")
    [x8] = [label for label in browser.find_elements(By.CSS_SELECTOR, "label") if label.text.strip() == "×8"]
    x8.click()
    _click(browser, "run-clip")
    _wait(browser, lambda d: "frame " in d.find_element(By.ID, "video-clip").text, "progress")
    _click(browser, "stop-clip")
    said = _wait(browser, lambda d: "Stopped after" in (t := d.find_element(By.ID, "info-clip").text) and t, "Stop")
    assert said.strip().endswith("of 1393 frames.")
    # a toast's text renders a moment after the toast itself: wait for the words, not just the element
    _wait(
        browser,
        lambda d: any("Stopped after" in t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast-body")),
        "a notice saying how far the run got",
    )


def _value(driver, elem_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input, #{elem_id} textarea").get_attribute("value")


def test_storyboard_tab_picks_an_in_between_and_an_error_keeps_the_last_outputs(browser, app_url, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(app_url)
    _open_tab(browser, "Storyboard")
    names = ("astronaut_first.png", "astronaut_last.png", "coffee_first.png")
    field = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#sb-files input[type=file]"), "the upload")
    field.send_keys("\n".join(str(EXAMPLES / name) for name in names))
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sb-order-preview img")) == 3, "the order preview")
    _click(browser, "run-storyboard")
    _playable_video(browser, "video-storyboard")
    thumbs = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#gallery-storyboard img"), "the frames")
    assert len(thumbs) == 9  # depth 2 in both transitions: 4 + 4 + the last keyframe
    _gallery_fits(browser, "gallery-storyboard")
    assert _value(browser, "sb-picked") == "1"  # the first in-between, not keyframe 0
    _click(browser, "sb-reroll")  # at once: on flow it cannot change anything, and says so
    _wait(
        browser,
        lambda d: any(
            "deterministic; re-roll has no effect" in t.text for t in d.find_elements(By.CSS_SELECTOR, ".toast-body")
        ),
        "the notice that re-roll has no effect",
    )
    for elem_id in ("video-storyboard", "gallery-storyboard"):  # the last good run stays, no "Error" box over it
        assert "Error" not in browser.find_element(By.ID, elem_id).text
    _playable_video(browser, "video-storyboard")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#gallery-storyboard img")) == 9
    browser.find_elements(By.CSS_SELECTOR, "#gallery-storyboard img")[2].click()  # pick frame 2 and lock it
    _wait(browser, lambda d: _value(d, "sb-picked") == "2", "frame 2 picked")
    _click(browser, "sb-lock")
    _wait(browser, lambda d: _value(d, "sb-locked") == "2", "frame 2 locked")
    _screenshot(browser, tmp_path, "storyboard")


if __name__ == "__main__":  # write the README screenshots
    os.environ.setdefault("VFI_SCREENSHOT_DIR", str(ROOT / "docs" / "screenshots"))
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
