"""The book, built from the notebooks ``make test`` just ran under nbval (``runs/nbval``).

Run by ``make test`` after the notebook tests (it is not collected with the unit tests, since it
needs their outputs). Checks that every notebook has a page that carries its figures, and that a
real browser draws a plotly figure on one page.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from talklib.book import BOOK, build
from talklib.pipeline import ROOT, discover

RUN = Path(os.environ.get("TALKLIB_BOOK_RUN", ROOT / "runs" / "nbval"))


@pytest.fixture(scope="module")
def html_dir() -> Path:
    index = build(RUN)
    assert index.is_file()
    return index.parent


def test_intro_says_what_and_how(html_dir):
    text = re.sub(r"<[^>]+>", "", (html_dir / "intro.html").read_text())
    assert "make reproduce" in text and "make test" in text
    assert "NeRF-3DTalker" in text


@pytest.mark.parametrize("name", [nb.name for nb in discover()])
def test_every_notebook_has_a_page_with_its_figures(html_dir, name):
    page = html_dir / "notebooks" / f"{name}.html"
    assert page.is_file(), f"no page for {name}"
    html = page.read_text()
    source = (ROOT / "notebooks" / f"{name}.py").read_text()
    figures = len(re.findall(r"\bfig\w*\.show\(\)|\bdisplay\(fig", source))
    plotly_divs = len(re.findall(r'class="plotly-graph-div"', html))
    images = len(re.findall(r'<img [^>]*src="[^"]*(?:\.png|data:image)', html))
    assert plotly_divs + images >= max(1, figures), f"{name}: {plotly_divs} plotly + {images} images, expected {figures}"
    if plotly_divs:
        assert "window.PlotlyConfig" in html or "plotly.min.js" in html or "Plotly.newPlot" in html


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_a_browser_draws_the_overview_figure(html_dir, tmp_path):
    browser = _chromium()
    if browser is None:
        msg = "no Chromium on this machine (.ci/run installs Debian's chromium): screenshot test skipped"
        print(msg)
        pytest.skip(msg)
    page = html_dir / "notebooks" / "00_overview.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert "main-svg" in dom.stdout, "plotly did not draw the pipeline figure in the browser"
    shot = tmp_path / "page.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 20_000
    keep = ROOT / "runs" / "nbval" / "book_screenshot.png"
    shutil.copy2(shot, keep)
    print(f"screenshot: {keep}")
