"""The viewer really renders: headless Chromium screenshot of image, segmentation and meshes."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from dendrosam.viz.publishing import publish
from dendrosam.viz.viewer import view

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-unsafe-swiftshader"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("chromedriver") is None,
                       reason="needs Debian chromium and chromium-driver (apt-get install chromium chromium-driver)"),
]


def _with_timeout(fn, seconds: float):
    """Run ``fn`` in a daemon thread; fail the test instead of hanging past ``seconds``."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(value=fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    if "value" not in out:
        pytest.fail(f"viewer did not answer within {seconds} s")
    return out["value"]


def test_screenshot_shows_image_segments_and_meshes(tmp_path, synthetic, monkeypatch):
    from PIL import Image
    from neuroglancer.webdriver import Webdriver

    monkeypatch.setenv("SE_OFFLINE", "true")
    res = publish(None, tmp_path / "pc", image=synthetic["image"], labels=synthetic["labels"],
                  skeletons=synthetic["skeletons"], voxel_size=synthetic["voxel_size"])
    handle = view(res, block=False)
    assert handle.url.startswith("http://127.0.0.1:")
    assert handle.state_path.is_file() and handle.url_path.read_text().startswith("https://")
    profile = tempfile.mkdtemp(dir=tmp_path)
    driver = _with_timeout(lambda: Webdriver(handle.viewer, headless=True, browser="chrome",
                                             browser_binary_path=str(CHROMIUM), docker=True,
                                             extra_command_line_args=[*FLAGS, f"--user-data-dir={profile}"]), 60)
    try:
        shot = _with_timeout(lambda: handle.viewer.screenshot(size=[800, 400]), 60)
    finally:
        driver.driver.quit()
        handle.close()
    rgb = np.asarray(Image.open(io.BytesIO(shot.screenshot.image)).convert("RGB")).astype(int)
    h, w, _ = rgb.shape
    colourful = (rgb.max(-1) - rgb.min(-1)) > 80  # segment colours, not the grey EM or black
    xy, three_d = slice(0, int(w * 0.28)), slice(int(w * 0.35), int(w * 0.6))
    assert (rgb[:, xy].max(-1) > 15).mean() > 0.9  # the EM image fills the xy panel
    assert colourful[:, xy].sum() > 500  # segment overlays on it
    assert colourful[:, three_d].sum() > 500  # meshes in the 3D panel
    assert os.environ["SE_OFFLINE"] == "true"
