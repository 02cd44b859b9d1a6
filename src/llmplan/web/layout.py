"""The app's pages: one layout (head, header, navigation) around each page's own content in
`pages/*.html`. The accuracy page's content is written by `benchmarks/accuracy_report.py`."""

from __future__ import annotations

from functools import cache
from html import escape
from pathlib import Path

PAGES_DIR = Path(__file__).parent / "pages"
# path, navigation label, content file, page title
PAGES = (
    ("/", "Plan", "plan.html", "plan a deployment"),
    ("/fit", "Quick fit", "fit.html", "quick fit"),
    ("/compare", "Compare", "compare.html", "compare runs"),
    ("/catalog", "Catalog", "catalog.html", "catalog"),
    ("/accuracy", "Accuracy", "accuracy.html", "accuracy"),
)


@cache
def page(path: str) -> str:
    """The whole HTML of the page at `path`, the current one marked in the navigation."""
    _, _, content, title = next(p for p in PAGES if p[0] == path)
    nav = "".join(f'<a href="{href}" aria-current="page">{label}</a>' if href == path
                  else f'<a href="{href}">{label}</a>' for href, label, _, _ in PAGES)
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>llmplan — {escape(title)}</title>\n<link rel=\"stylesheet\" href=\"/static/style.css\">\n"
            "</head>\n<body>\n<header><h1>llmplan</h1><span class=\"tagline\">plan a self-hosted LLM deployment — "
            f"offline</span>\n<nav>{nav}</nav></header>\n"
            "<p id=\"overrides-banner\" class=\"banner\" role=\"status\" hidden></p>\n"
            f"{(PAGES_DIR / content).read_text(encoding='utf-8')}<script src=\"/static/overrides.js\"></script>\n"
            "</body>\n</html>\n")
