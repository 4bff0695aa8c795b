"""Open an email's HTML in headless Chromium the way a phone or a webmail shows it, and measure it.

Used by the browser test (tests/reports/test_email_layout_browser.py) and by hand for screenshots:

    .venv/bin/python -m flows.devtools.email_layout outbox/<run>/*.html --width 375 --strip-style --shots /tmp/shots

Chromium comes from the OS (Debian's ``chromium`` package, /usr/bin/chromium); Playwright only drives
it, so no browser is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style>", re.IGNORECASE | re.DOTALL)
# A "short word" is one a reader expects to see whole: a status, a severity, a month, a figure.
SHORT_WORD_MAX = 14
PHONE_SCREEN_PX = 667  # an iPhone SE's 375 x 667 CSS px
# What Outlook for Windows, Windows Mail and Outlook for Android ignore: overflow and word wrapping.
_OVERFLOW_RULES = re.compile(r"(?:overflow(?:-x|-y|-wrap)?|word-wrap|word-break)\s*:[^;\"']*;?", re.IGNORECASE)

# Runs in the page: the document's width, and every table cell whose text wraps inside a short word.
_MEASURE = r"""
(shortMax) => {
  const doc = document.documentElement;
  const broken = [];
  const range = document.createRange();
  for (const cell of document.querySelectorAll('table:not([role=presentation]) td, table:not([role=presentation]) th')) {
    const text = cell.innerText.trim();
    if (!text) continue;
    // Each short word in the cell must sit on one line: all its characters share one line box.
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    let node;
    while ((node = walker.nextNode())) {
      // A line break right after a hyphen ("point-in-|time") is ordinary typography; a break
      // anywhere else inside a word ("Sev|eri|ty") is what makes a narrow table unreadable.
      const re = /[^\s\-\u2013\u2014\/]+[\-\u2013\u2014\/]?/g;
      let match;
      while ((match = re.exec(node.data))) {
        if (match[0].length > shortMax) continue;
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set(Array.from(range.getClientRects()).filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (tops.size > 1) broken.push({word: match[0], cell: text.slice(0, 60)});
      }
    }
  }
  const images = Array.from(document.images).map(img => ({src: img.src.slice(0, 40), alt: img.alt,
    width: img.getBoundingClientRect().width, widthAttribute: Number(img.getAttribute('width') || 0),
    loaded: img.complete && img.naturalWidth > 0}));
  // Every table whose right edge passes the window or whose content is wider than its box.
  const spilling = Array.from(document.querySelectorAll('table')).filter(t =>
      t.getBoundingClientRect().right > window.innerWidth + 0.5 || t.scrollWidth > t.clientWidth + 0.5)
    .map(t => t.innerText.trim().slice(0, 60));
  return {scrollWidth: Math.max(doc.scrollWidth, document.body.scrollWidth), clientWidth: doc.clientWidth,
          height: Math.max(doc.scrollHeight, document.body.scrollHeight), broken, images, spilling};
}
"""


@dataclass
class LayoutReport:
    path: str
    width: int
    styles: bool
    scroll_width: int
    broken_words: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    height: int = 0
    spilling_tables: list[str] = field(default_factory=list)

    @property
    def phone_screens(self) -> float:
        """The page's height in screens of a 375 x 667 phone."""
        return round(self.height / PHONE_SCREEN_PX, 1)

    @property
    def overflows(self) -> bool:
        return self.scroll_width > self.width


def chromium_path() -> str | None:
    for candidate in (os.environ.get("EXEC_REPORTS_CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


_STYLE_ATTRIBUTE = re.compile(r'\sstyle="[^"]*"')


def inline_style_share(html: str) -> float:
    """The share of the HTML's bytes that are inline ``style`` attributes (premailer's output)."""
    total = len(html.encode("utf-8"))
    return sum(len(m.group(0).encode("utf-8")) for m in _STYLE_ATTRIBUTE.finditer(html)) / total if total else 0.0


def without_overflow(html: str) -> str:
    """The email as a client that ignores ``overflow`` and ``overflow-wrap`` lays it out."""
    return _OVERFLOW_RULES.sub("", html)


def without_style_blocks(html: str) -> str:
    """What Gmail's mobile webmail and many gateways do: drop <style> and keep the inline styles."""
    return _STYLE_BLOCK.sub("", html)


@contextmanager
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("no Chromium found: apt-get install -y chromium (or set EXEC_REPORTS_CHROMIUM)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        try:
            yield instance
        finally:
            instance.close()


def measure(chromium, html: str, *, width: int, styles: bool = True, name: str = "",
            screenshot: Path | None = None, overflow: bool = True) -> LayoutReport:
    """Load ``html`` in a ``width``-px phone-like viewport (no network) and measure it; ``overflow=False``
    lays it out as the clients that ignore overflow and overflow-wrap do."""
    if not styles:
        html = without_style_blocks(html)
    if not overflow:
        html = without_overflow(html)
    context = chromium.new_context(viewport={"width": width, "height": 800}, device_scale_factor=1,
                                   is_mobile=width < 500, has_touch=width < 500, offline=True)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("data:")
                   else route.continue_())
        page.set_content(html, wait_until="load")
        result = page.evaluate(_MEASURE, SHORT_WORD_MAX)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    return LayoutReport(name, width, styles, int(result["scrollWidth"]), result["broken"], result["images"],
                        int(result["height"]), result["spilling"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--width", type=int, action="append", help="viewport width(s); default 375 and 600")
    parser.add_argument("--strip-style", action="store_true", help="remove <style> blocks first")
    parser.add_argument("--shots", type=Path, help="folder for full-page PNG screenshots")
    parser.add_argument("--no-overflow", action="store_true",
                        help="remove overflow and overflow-wrap first (Outlook for Windows, Windows Mail)")
    args = parser.parse_args(argv)
    widths = args.width or [375, 600]
    failed = False
    with browser() as chromium:
        for path in args.files:
            html = path.read_text(encoding="utf-8")
            for width in widths:
                shot = args.shots / f"{path.stem}-{width}{'-nostyle' if args.strip_style else ''}.png" if args.shots else None
                report = measure(chromium, html, width=width, styles=not args.strip_style, name=path.name,
                                 screenshot=shot, overflow=not args.no_overflow)
                failed |= report.overflows or bool(report.broken_words) or bool(report.spilling_tables)
                print(json.dumps({"file": path.name, "width": width, "styles": not args.strip_style,
                                  "scrollWidth": report.scroll_width, "broken": report.broken_words[:5],
                                  "spilling_tables": report.spilling_tables[:5], "images": len(report.images),
                                  "phone_screens": report.phone_screens, "html_kb": round(len(html.encode()) / 1024, 1),
                                  "inline_style_share": round(inline_style_share(html), 3)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
