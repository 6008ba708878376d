"""The book, built from the notebooks ``make test`` just ran under nbval (``runs/nbval``).

Run by ``make test`` after the notebook tests (it is not collected with the unit tests, since it
needs their outputs). Checks that every notebook has a page that carries its figures, and, in a real
browser (headless Chromium): that every page loads with no JavaScript error, that every plotly figure on it
is drawn, every equation typeset (by the book's own MathJax, offline) and every video element there, and a
screenshot of the scorecard page (the book's last).
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
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
    keep = RUN / "book_screenshot.png"
    shutil.copy2(shot, keep)
    print(f"screenshot: {keep}")


#: run first in every page: collect uncaught errors and console.error calls, and write them onto <html> before
#: the browser's virtual time runs out, where ``--dump-dom`` shows them
_PROBE = ("<script>window.__errs=[];addEventListener('error',function(e){__errs.push(String(e.message))});"
          "addEventListener('unhandledrejection',function(e){__errs.push('unhandled rejection: '+e.reason)});"
          "(function(){var ce=console.error;console.error=function(){__errs.push([].slice.call(arguments).join(' '));"
          "ce.apply(console,arguments)}})();setTimeout(function(){document.documentElement.setAttribute("
          "'data-console-errors',JSON.stringify(__errs))},%d);</script>")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _article(html: str) -> str:
    """The page's article (its own content), without the navigation around it."""
    i = html.find("<article")
    return html[i:html.find("</article>", i)] if i >= 0 else html


def _pages(html_dir: Path) -> list[Path]:
    return [html_dir / "intro.html"] + [html_dir / "notebooks" / f"{nb.name}.html" for nb in discover()]


def _browse(browser: str, page: Path, profile: Path, budget_ms: int = 12000) -> tuple[str, list[str]]:
    """The page's DOM after it ran for ``budget_ms`` of virtual time in headless Chromium, and the JavaScript
    errors it raised. The page runs as a copy beside itself (same relative links) with the probe first."""
    text = page.read_text()
    probe = _PROBE % (budget_ms - 1500)
    copy = page.with_name(f".probe-{page.name}")
    head = re.search(r"<head[^>]*>", text)
    copy.write_text(text[:head.end()] + probe + text[head.end():] if head else probe + text)
    try:
        dom = subprocess.run([browser, *_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
                              "--dump-dom", copy.as_uri()], capture_output=True, text=True, timeout=180).stdout
    finally:
        copy.unlink()
    found = re.search(r'data-console-errors="([^"]*)"', dom)
    assert found, f"{page.name}: the page did not run its scripts to the end in the browser"
    return dom, json.loads(htmllib.unescape(found.group(1)))


@pytest.fixture(scope="module")
def browser() -> str:
    path = _chromium()
    if path is None:
        msg = "no Chromium on this machine (.ci/run installs Debian's chromium): browser tests skipped"
        print(msg)
        pytest.skip(msg)
    return path


def test_every_page_loads_without_errors_with_its_figures_drawn_and_videos_there(html_dir, browser, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    pages = _pages(html_dir)
    assert all(p.is_file() for p in pages), [str(p) for p in pages if not p.is_file()]
    with ThreadPoolExecutor(max_workers=3) as ex:      # one browser per page, a profile each
        seen = list(ex.map(lambda ip: _browse(browser, ip[1], tmp_path / f"profile{ip[0]}"), enumerate(pages)))
    bad = []
    for page, (dom, errors) in zip(pages, seen):
        static = page.read_text()
        figures = static.count('class="plotly-graph-div')
        drawn = len(re.findall(r'class="[^"]*\bjs-plotly-plot\b', dom))
        videos = len(re.findall(r"<video\b", static))
        maths = _article(static).count('class="math notranslate')     # the page's own text (not the side bar)
        if errors:
            bad.append(f"{page.name}: JavaScript errors {errors[:3]}")
        if drawn < figures:
            bad.append(f"{page.name}: {drawn} of {figures} plotly figures drawn")
        if len(re.findall(r"<video\b", dom)) < videos:
            bad.append(f"{page.name}: video elements missing in the browser")
        typeset = _article(dom).count('class="MathJax"')
        if typeset < maths:                          # typeset offline, by the book's own MathJax
            bad.append(f"{page.name}: {typeset} of {maths} equations typeset")
    assert not bad, "; ".join(bad)


def test_the_scorecard_page_shows_its_tables_figures_and_video(html_dir, browser, tmp_path):
    page = html_dir / "notebooks" / "10_scorecard.html"
    static = page.read_text()
    text = re.sub(r"<[^>]+>", " ", static)
    for must in ("NeRF-3DTalker", "S3D-NeRF", "DFA-NeRF", "disentangled-audio NeRF", "holds", "ground truth"):
        assert must in text, f"the scorecard page does not say {must!r}"
    assert static.count('class="plotly-graph-div') >= 2 and "<video" in static
    shot = tmp_path / "scorecard.png"
    subprocess.run([browser, *_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000",
                    f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()], capture_output=True, timeout=180)
    assert shot.is_file(), "Chromium wrote no screenshot of the scorecard page"
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), np.float32)
    assert img.shape == (2000, 1200) and img.std() > 10, f"the scorecard screenshot is blank (std {img.std():.1f})"
    keep = RUN / "book_scorecard.png"
    shutil.copy2(shot, keep)
    print(f"scorecard screenshot: {keep}")
