"""--serve in a real headless browser: Chromium from the OS packages (Debian ``chromium``) driven by Playwright loads
the page of a running camera, sees the live image change and the stats update, and saves a screenshot.

Skips with the reason when Playwright or the browser is missing (CI installs both: ``.ci/run``).
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.service_helpers import CameraProcess, make_video

CHROMIUM = os.environ.get("EDGECNN_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Where the page screenshot is kept after the test (to look at); default: the test's tmp_path.
SCREENSHOT_DIR = os.environ.get("EDGECNN_TEST_SCREENSHOT_DIR")


def _image_pixels(page) -> list[int]:
    """The live <img> as the browser decoded it, drawn into a canvas: a coarse 16x12 sample of its pixels."""
    return page.evaluate("""() => {
        const img = document.getElementById('live');
        const c = document.createElement('canvas');
        c.width = 16; c.height = 12;
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0, 16, 12);
        return Array.from(g.getImageData(0, 0, 16, 12).data);
    }""")


def test_page_in_a_real_browser_shows_a_live_image_and_updating_stats(tiny_models, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    video = make_video(tmp_path / "clip.avi", frames=300)
    cam = CameraProcess([tiny_models["int8"], "--source", video, "--headless", "--serve", "0", "--max-fps", "20",
                         "--roi", "20,10,100,100", "--rotate", "180", "--hold", "2"], tmp_path)
    shot = (SCREENSHOT_DIR and os.path.join(SCREENSHOT_DIR, "web-view.png")) or str(tmp_path / "web-view.png")
    try:
        url = cam.url()
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 420, "height": 900})  # a phone-sized window
                page.goto(url, wait_until="domcontentloaded", timeout=30_000)
                page.wait_for_function("document.getElementById('live').naturalWidth > 0", timeout=30_000)
                page.wait_for_function("document.getElementById('frame').textContent !== '-'", timeout=30_000)
                frame1 = int(page.inner_text("#frame"))
                pixels1 = _image_pixels(page)
                page.wait_for_function(f"Number(document.getElementById('frame').textContent) > {frame1 + 10}",
                                       timeout=30_000)
                pixels2 = _image_pixels(page)
                assert pixels1 != pixels2  # the image the browser shows changes
                assert page.inner_text("#status") == "running"
                assert "FPS" in page.inner_text("#fps") and page.inner_text("#fps") != "- FPS"
                rows = page.locator("#top tr").count()
                assert rows == 1 + 3  # header + the top-3
                stages = page.inner_text("#stages")
                assert all(s in stages for s in ("capture", "preprocess", "invoke", "postprocess", "total"))
                assert f"serving {url}" in page.inner_text("h1")
                assert "rotate 180" in page.inner_text("#setup") and "region 20,10,100,100" in page.inner_text("#setup")
                page.screenshot(path=shot, full_page=True)
            finally:
                browser.close()
    finally:
        cam.kill()
    assert os.path.getsize(shot) > 10_000
