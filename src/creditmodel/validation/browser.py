"""Open a report in a real headless Chromium: console errors, failed requests and a screenshot.

The report must open without network access and without errors; this is how that is checked, in
the tests and by `creditmodel report --screenshot`. Uses Playwright's driver with the system's
Chromium (no browser download), started with the flags a sandboxed CI machine needs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def find_chromium() -> str | None:
    """Path of an installed Chromium or Chrome, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def open_in_browser(html: str | Path, screenshot: str | Path | None = None, width: int = 1400,
                    height: int = 900) -> dict[str, Any]:
    """Load the HTML file offline (every outside request is blocked and recorded) and report what happened."""
    from playwright.sync_api import sync_playwright

    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no Chromium found (install the 'chromium' package)")
    html = Path(html).resolve()
    console, page_errors, outside = [], [], []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(profile, executable_path=exe, headless=True, args=FLAGS,
                                                        viewport={"width": width, "height": height})
        try:
            page = browser.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))

            def route(r: Any) -> None:
                if r.request.url.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(html.as_uri(), wait_until="load")
            info = page.evaluate("""() => ({
                title: document.title,
                images: document.images.length,
                broken_images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length,
                summary_rows: document.querySelectorAll('#summary table tr').length,
                pills: Array.from(document.querySelectorAll('#summary .pill.big')).map(p => p.textContent)
            })""")
            if screenshot is not None:
                page.locator("#summary").screenshot(path=str(screenshot))
        finally:
            browser.close()
    return {**info, "console_errors": console, "page_errors": page_errors, "outside_requests": outside}


NOTDEF = "\u0378"  # an unassigned code point: a font draws it as its missing-glyph box (tofu)
CJK = "[\\u4e00-\\u9fff]"  # the CJK unified ideographs, as a JavaScript regular expression
_CJK_SAMPLE_JS = """([selector, n, pattern]) => {
    const text = Array.from(document.querySelectorAll(selector)).map(e => e.textContent).join('');
    const wanted = new RegExp(pattern, 'u');
    const chars = Array.from(new Set(Array.from(text).filter(c => wanted.test(c)))).slice(0, n);
    const box = document.createElement('div');
    box.id = 'glyph-check';
    box.style.cssText = 'position:absolute;left:0;top:0;width:1000px;background:#fff;color:#000;font-size:40px;line-height:64px';
    for (const c of [...chars, NOTDEF]) {
        const s = document.createElement('span');
        s.textContent = c;
        s.style.cssText = 'display:block;float:left;width:64px;height:64px;overflow:hidden';  // whole pixels
        box.appendChild(s);
    }
    document.body.appendChild(box);
    return chars;
}"""


def glyph_check(html: str | Path, screenshot: str | Path | None = None, *, selector: str = "h1, h2, th, td",
                sample: int = 12, pattern: str = CJK, width: int = 1400, height: int = 900) -> dict[str, Any]:
    """Whether a page's Chinese text renders as glyphs rather than missing-glyph boxes (tofu).

    Up to `sample` distinct CJK characters of the elements matching `selector` are drawn one per box in
    the page's own font, beside an unassigned code point (drawn as the missing-glyph box). Missing glyphs
    all look alike, real ones do not: the answer has ``chars`` (the characters), ``distinct`` (how many
    different images they gave) and ``like_notdef`` (how many look exactly like the missing glyph).
    With `screenshot`, the page as a reader sees it (the top `height` pixels) is saved first. `pattern`:
    which characters to sample (a JavaScript regular expression; default the CJK ideographs).
    """
    import hashlib

    from playwright.sync_api import sync_playwright

    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no Chromium found (install the 'chromium' package)")
    page_path = Path(html).resolve()
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(profile, executable_path=exe, headless=True, args=FLAGS,
                                                        viewport={"width": width, "height": height})
        try:
            page = browser.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
            page.goto(page_path.as_uri(), wait_until="load")
            if screenshot is not None:
                page.screenshot(path=str(screenshot))
            chars = page.evaluate(_CJK_SAMPLE_JS.replace("NOTDEF", repr(NOTDEF)), [selector, sample, pattern])
            spans = page.locator("#glyph-check span")
            images = [hashlib.sha256(spans.nth(i).screenshot()).hexdigest() for i in range(spans.count())]
        finally:
            browser.close()
    glyphs, notdef = images[:-1], images[-1]
    return {"chars": chars, "distinct": len(set(glyphs)), "like_notdef": sum(g == notdef for g in glyphs)}
