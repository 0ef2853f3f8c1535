"""The built book as a reader sees it, in headless Chromium: math typeset offline, every image
loaded, no console errors, no request leaving the machine, a working search page.

Run after the book is built (``make test`` runs it last, on ``_build/committed/html``; set
``NODEKIT_BOOK_HTML`` for another build). Each page is opened from a copy with a small probe
script that reports what the browser saw; a screenshot of every page goes to
``<html>/../screenshots/``. Skips, naming the package, where Chromium is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("NODEKIT_BOOK_HTML", ROOT / "_build" / "committed" / "html")).resolve()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE_ID = "nodekit-page-probe"
# Installed before anything else runs: records errors, then (after load and MathJax) writes a report into the page.
PROBE = """<script>
window.__errors = [];
const __error = console.error.bind(console);
console.error = (...args) => { window.__errors.push(args.map(String).join(" ")); __error(...args); };
window.addEventListener("error", e => window.__errors.push(String(e.message || e.target && e.target.src)), true);
window.addEventListener("load", () => setTimeout(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const images = [...document.images].filter(i => !i.closest("mjx-container"));
  const report = {
    math_sources: document.querySelectorAll(".math, span.math, div.math").length,
    math_typeset: document.querySelectorAll("mjx-container").length,
    images: images.length,
    broken_images: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src")),
    errors: window.__errors,
    remote: performance.getEntriesByType("resource").map(r => r.name).filter(u => !u.startsWith("file:")),
    search_results: document.querySelectorAll("#search-results li").length,
  };
  const pre = document.createElement("pre");
  pre.id = "%s";
  pre.textContent = JSON.stringify(report);
  document.body.appendChild(pre);
}, 1500));
</script>""" % PROBE_ID

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed: apt-get install --no-install-recommends chromium"),
    pytest.mark.skipif(not (HTML / "index.html").exists(), reason=f"no built book at {HTML}: run `make test` (it builds it first)"),
]


def pages() -> list[Path]:
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return sorted(p for p in HTML.rglob("*.html") if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts)


def chromium(*args: str, timeout: float = 120) -> str:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout).stdout


def probe(page: Path, query: str = "") -> dict:
    """Open an instrumented copy of ``page`` (beside it, so relative links work) and read the probe's report."""
    copy = page.with_name(page.stem + ".probe.html")
    copy.write_text(re.sub(r"<head>", "<head>" + PROBE, page.read_text(), count=1))
    try:
        for _attempt in range(3):  # on a loaded machine Chromium's virtual-time budget can run out before load
            found = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', chromium("--dump-dom", copy.as_uri() + query), re.S)
            if found:
                break
    finally:
        copy.unlink(missing_ok=True)
    assert found, f"{page.relative_to(HTML)}: the page did not finish loading in the browser (three tries)"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(HTML)))
def test_page_renders_offline(page: Path) -> None:
    name = page.relative_to(HTML)
    redirect = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', page.read_text(), re.I)
    if redirect:  # the root index.html only forwards to the first page
        assert (page.parent / redirect.group(1)).exists(), f"{name} forwards to a missing page {redirect.group(1)}"
        return
    report = probe(page)
    if report["math_sources"]:
        assert report["math_typeset"] > 0, f"{name}: raw LaTeX, MathJax typeset nothing"
    assert report["broken_images"] == [], f"{name}: images that did not load: {report['broken_images']}"
    assert report["errors"] == [], f"{name}: console errors: {report['errors']}"
    assert report["remote"] == [], f"{name}: requests that leave the machine: {report['remote']}"
    shots = HTML.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    chromium("--window-size=1280,2400", f"--screenshot={shots / (str(name).replace('/', '__') + '.png')}", page.as_uri())


def test_chapters_have_math_and_figures() -> None:
    """The probe must be able to fail: the chapters do typeset math and load figures."""
    report = probe(HTML / "notebooks" / "01_odes_euler_resnets.html")
    assert report["math_sources"] > 0 and report["math_typeset"] > 0 and report["images"] > 0


def test_search_finds_the_adjoint() -> None:
    report = probe(HTML / "search.html", "?q=adjoint")
    assert report["search_results"] > 0 and report["errors"] == []
