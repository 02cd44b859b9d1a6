"""Regenerate docs/img/*.png: the web app in headless Chromium (/usr/bin/chromium, Playwright), on a
fresh store: `python scripts/screenshots.py`. Each picture is what a user sees after the step named."""

from __future__ import annotations

import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
SLOW_MS = 240_000
EXAMPLE = (ROOT / "src" / "llmplan" / "web" / "static" / "example.yaml").read_text()


def serve(db: Path) -> tuple[uvicorn.Server, str]:
    from llmplan.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(f"sqlite:///{db}"), host="127.0.0.1", port=port,
                                        log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    while not srv.started:
        if not t.is_alive():
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return srv, f"http://127.0.0.1:{port}"


def plan(page) -> None:
    page.click("#run")
    expect(page.locator("#status")).to_have_text(re.compile(r"Run \d+ done"), timeout=SLOW_MS)
    expect(page.frame_locator("#report").locator("figure.llmplan-chart[data-live='1']")).to_have_count(
        4, timeout=SLOW_MS)


def shots(base: str, browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(base + "/")
    expect(page.locator("#valid")).to_contain_text("valid scenario", timeout=SLOW_MS)
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Saved as scenario", timeout=SLOW_MS)
    plan(page)
    page.screenshot(path=str(IMG / "plan-page.png"))
    report = page.frame_locator("#report")
    fig = report.locator("figure.llmplan-chart").nth(1)
    fig.scroll_into_view_if_needed()
    fig.locator(".mark-symbol path").nth(30).hover()
    time.sleep(0.3)  # the tooltip's fade-in, for the picture only
    fig.screenshot(path=str(IMG / "chart-cumulative-cost.png"))
    report.locator("figure.llmplan-chart").nth(2).screenshot(path=str(IMG / "chart-tco-ttft.png"))
    report.locator("figure.llmplan-chart").nth(0).screenshot(path=str(IMG / "chart-tco-bars.png"))
    # no compliant option: the warning with its deciding rule, and an option explained
    page.fill("#yaml", EXAMPLE.replace("ttft_p95_ms: 2000", "ttft_p95_ms: 1"))
    page.dispatch_event("#yaml", "input")
    expect(page.locator("#valid")).to_contain_text("valid scenario", timeout=SLOW_MS)
    page.click("#run")
    expect(page.locator("#recommendation.warn")).to_be_visible(timeout=SLOW_MS)
    page.click("#explain")
    expect(page.locator("#explanation")).to_contain_text("excluded", timeout=SLOW_MS)
    page.locator("#result").screenshot(path=str(IMG / "no-compliant-option.png"))
    page.goto(base + "/compare")
    for box in page.locator("#runs input").all()[:2]:
        box.check()
    page.click("#compare")
    expect(page.locator("#table")).to_contain_text("no option")
    page.screenshot(path=str(IMG / "compare-page.png"))
    page.goto(base + "/catalog")
    expect(page.locator("#entries tbody tr").nth(3)).to_be_visible()
    page.screenshot(path=str(IMG / "catalog-page.png"))
    page.goto(base + "/accuracy")
    page.screenshot(path=str(IMG / "accuracy-page.png"))
    narrow = browser.new_page(viewport={"width": 420, "height": 900})
    narrow.goto(base + "/")
    expect(narrow.locator("#valid")).to_contain_text("valid scenario", timeout=SLOW_MS)
    narrow.screenshot(path=str(IMG / "plan-page-420px.png"))


def main() -> int:
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        srv, base = serve(Path(tmp) / "store.db")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            shots(base, browser)
            browser.close()
        srv.should_exit = True
    print("\n".join(sorted(str(f.relative_to(ROOT)) for f in IMG.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
