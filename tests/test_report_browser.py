"""The report page in a real browser: headless Chromium loads it without a console error, fetches
nothing but the page's own files, and decodes every picture on it.

Chromium is driven with Playwright (the ``test`` extra) pointed at the system's Chromium
(Debian's ``chromium``, which ``.ci/run`` installs): Playwright's own browser download needs the
network. Skipped, with the reason, where either is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ganctl.report import page
from tests.conftest import invoke

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str | None:
    """The browser to drive: $GANCTL_TEST_CHROMIUM, else the first of BROWSERS on the PATH."""
    return os.environ.get("GANCTL_TEST_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)


sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'")
CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``ganctl train dcgan --dataset digits --epochs 3``, small: the issue's own example."""
    home = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCTL_HOME", str(home))
        r = invoke("train", "dcgan", "--dataset", "digits", "--epochs", "3", "--image-size", "16", "--batch-size", "256", "-q")
    assert r.exit_code == 0, r.output
    return home / "runs" / "dcgan" / "digits"


def open_in_chromium(html: Path, screenshot: Path) -> dict:
    """Load ``html`` headless; what it logged, fetched and decoded, and a full-page screenshot."""
    seen: dict = {"console": [], "errors": [], "requests": [], "failed": []}
    with sync_api.sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
            tab.on("pageerror", lambda e: seen["errors"].append(str(e)))
            tab.on("request", lambda r: seen["requests"].append(r.url))
            tab.on("requestfailed", lambda r: seen["failed"].append(r.url))
            tab.goto(html.resolve().as_uri(), wait_until="load")
            seen["images"] = tab.evaluate(
                "[...document.images].map(i => ({src: i.src.slice(0, 60), complete: i.complete, width: i.naturalWidth}))")
            seen["title"] = tab.title()
            tab.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


def check_page(seen: dict, screenshot: Path, pictures: int) -> None:
    assert seen["errors"] == [] and seen["failed"] == []
    assert [m for m in seen["console"] if m.startswith(("error", "warning"))] == []
    assert len(seen["images"]) == pictures
    assert all(i["complete"] and i["width"] > 0 for i in seen["images"]), seen["images"]
    # nothing from the network: the page itself, and (beside it) its own files
    assert all(u.startswith(("file://", "data:")) for u in seen["requests"]), seen["requests"]
    with Image.open(screenshot) as shot:
        assert shot.width == 1280 and shot.height > 2000  # the whole page: curves, tables, 3 grids


def test_chromium_renders_the_page_with_every_picture(run, tmp_path):
    out = _report(run, tmp_path / "r")
    seen = open_in_chromium(out, tmp_path / "page.png")
    check_page(seen, tmp_path / "page.png", pictures=4)  # progress.gif and 3 epoch grids
    assert seen["title"] == "ganctl report: dcgan/digits"
    assert all(i["src"].startswith("data:image/") for i in seen["images"])


def test_chromium_loads_pictures_written_beside_the_page(run, tmp_path, monkeypatch):
    monkeypatch.setattr(page, "EMBED_LIMIT", 0)
    out = _report(run, tmp_path / "r")
    seen = open_in_chromium(out, tmp_path / "page.png")
    check_page(seen, tmp_path / "page.png", pictures=4)
    assert all(i["src"].startswith("file://") for i in seen["images"])


def _report(run: Path, out: Path) -> Path:
    r = invoke("report", run, "-o", out)
    assert r.exit_code == 0, r.output
    return Path(r.stdout.strip())
