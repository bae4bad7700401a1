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
