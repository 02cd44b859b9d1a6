"""The web UI in a real headless Chromium (Debian's chromium driven by Playwright; no browser
download): plan, see the result and its charts, save, reload, load; no request leaves the app.
Screenshots and the downloaded PDF are kept in tests/artifacts/ (ignored by git)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
# Waits are for a condition (an element, a text), never a blind sleep; a computation on the server (a plan,
# a PDF) gets this long on a loaded machine; the page's own reactions (a list refreshed from the server) get
# PAGE_MS, set as Playwright's default expect timeout by the browser fixture: on a 2-core machine shared with
# other jobs, the 5 s default failed while the page was right, only late
SLOW_MS = 240_000
PAGE_MS = 60_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from llmplan.web.app import create_app

    port = _free_port()
    db = tmp_path_factory.mktemp("web") / "store.db"
    srv = uvicorn.Server(uvicorn.Config(create_app(f"sqlite:///{db}"), host="127.0.0.1", port=port,
                                        log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: run scripts/install-test-deps.sh (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=PAGE_MS)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def test_plan_save_reload_in_chromium(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    # bypass_csp lets the test's own wait_for_function expressions run; test_pages_work_under_csp
    # checks the pages themselves with the policy enforced
    page = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True).new_page()
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc) if r.url.startswith("http") else None)
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('yaml').value.includes('schema_version')")
    page.wait_for_function("document.getElementById('valid').textContent.includes('valid scenario')")
    # form and YAML edit the same scenario
    page.wait_for_function("document.querySelector('[data-path=\"workload.requests_per_day\"]').value === '60000'")
    page.fill("[data-path='workload.requests_per_day']", "61000")
    page.dispatch_event("[data-path='workload.requests_per_day']", "change")
    page.wait_for_function("document.getElementById('yaml').value.includes('requests_per_day: 61000')",
                           timeout=60_000)
    # validated as you type
    page.fill("#yaml", "hardware: [h100-sxn]")
    page.wait_for_function("document.getElementById('valid').textContent.includes('h100-sxm')", timeout=60_000)
    # an invalid scenario: a clear error, nothing saved
    page.fill("#yaml", "workload: [1")
    page.click("#save")
    page.wait_for_selector("#status.error")
    assert "not valid YAML" in page.inner_text("#status")
    # the example: plan it
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('yaml').value.includes('schema_version')")
    page.click("#run")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Run 1 done')", timeout=SLOW_MS)
    assert "Recommended:" in page.inner_text("#recommendation")
    frame = page.frame_locator("#report")
    frame.locator("h1").wait_for(timeout=SLOW_MS)
    # the charts made live by the bundled library: cost bars, cumulative cost, TCO × TTFT scatter, exclusions
    frame.locator("figure.llmplan-chart[data-live='1']").nth(3).wait_for(timeout=SLOW_MS)
    assert frame.locator(".mark-symbol path").count() > 5  # one point per ranked option
    page.screenshot(path=str(ARTIFACTS / "plan.png"), full_page=True)
    # save, reload, load it back
    page.click("#save")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Saved as scenario')")
    page.reload()
    page.wait_for_selector("#saved li a")
    page.fill("#yaml", "")
    page.click("#saved li a")
    page.wait_for_function("document.getElementById('yaml').value.includes('Internal assistant')")
    page.wait_for_function("document.querySelector('[data-path=\"workload.requests_per_day\"]').value === '60000'")
    # the PDF report downloads
    page.click("#run")
    # the links of this run, not those of the run before (the PDF of a run that is still planning would queue
    # behind it)
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Run 2 done')", timeout=SLOW_MS)
    with page.expect_download(timeout=SLOW_MS) as dl:
        page.click("#pdf")
    pdf = ARTIFACTS / "plan.pdf"
    dl.value.save_as(str(pdf))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    # a second scenario, then compare the two runs
    page.fill("#yaml", page.input_value("#yaml").replace("requests_per_day: 60000", "requests_per_day: 200000"))
    page.click("#run")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Run 3 done')", timeout=SLOW_MS)
    page.goto(server + "/compare")
    page.wait_for_selector("#runs input")
    boxes = page.locator("#runs input")
    assert boxes.count() >= 3
    boxes.nth(0).check()
    boxes.nth(2).check()
    page.click("#compare")
    page.wait_for_selector("table.compare tr")
    table = page.inner_text("table.compare")
    assert "run 1" in table and "run 3" in table and "TCO (USD)" in table
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)
    own = urlparse(server).netloc
    assert hosts == {own}, hosts


def test_quick_fit_and_catalog_pages(server, browser):
    page = browser.new_context(viewport={"width": 1300, "height": 900}, bypass_csp=True).new_page()
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc) if r.url.startswith("http") else None)
    page.goto(server + "/fit")
    page.wait_for_function("document.getElementById('verdict').textContent.length > 0", timeout=30_000)
    assert page.inner_text("#verdict").startswith("FITS")  # Llama-3.3-70B bf16 on 4 × H100
    page.wait_for_function("document.getElementById('speed').textContent.includes('TPOT')", timeout=30_000)
    assert "weights" in page.inner_text("#components")
    page.fill("#num_gpus", "1")
    page.dispatch_event("#num_gpus", "change")
    page.wait_for_function("document.getElementById('verdict').textContent.startsWith('DOES NOT FIT')",
                           timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "fit.png"), full_page=True)
    page.goto(server + "/accuracy")
    assert page.locator("svg circle").count() > 100  # predicted against measured, every row
    assert "**" not in page.inner_text("main") and page.locator("main strong").count() >= 2  # Markdown rendered
    page.goto(server + "/catalog")
    page.wait_for_selector("#entries tr:nth-child(3)")
    assert "h100-sxm" in page.inner_text("#entries")
    row = page.locator("#entries tr", has_text="h100-sxm").first
    # the figures of the datasheet (80 GB HBM3, 3,350 GB/s) and a linked source
    assert "80" in row.inner_text() and "3,350" in row.inner_text() and "$" in row.inner_text()
    assert row.locator("td.src a[href^='https://']").count() >= 1
    page.fill("#filter", "mi300x")
    assert "h100-sxm" not in page.inner_text("#entries") and "mi300x" in page.inner_text("#entries")
    assert hosts == {urlparse(server).netloc}, hosts


def test_api_docs_page_is_offline(server, browser):
    page = browser.new_page()
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(urlparse(r.url).netloc) if r.url.startswith("http") else None)
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)  # swagger-ui rendered the operations
    assert page.locator(".opblock").count() > 20
    assert hosts == {urlparse(server).netloc}, hosts


def test_pages_work_under_csp_and_escape_user_text(server, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1300, "height": 900})  # the CSP enforced
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server + "/")
    expect(page.locator("#valid")).to_contain_text("valid scenario", timeout=20_000)
    # a scenario named like a script: text everywhere, never executed
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    page.fill("[data-path='name']", evil)
    page.dispatch_event("[data-path='name']", "change")
    expect(page.locator("#yaml")).to_have_value(__import__("re").compile("alert"), timeout=20_000)
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Saved as scenario", timeout=20_000)
    page.click("#run")
    expect(page.locator("#recommendation")).to_contain_text("Recommended", timeout=SLOW_MS)
    frame = page.frame_locator("#report")
    expect(frame.locator("h1")).to_contain_text("<script>alert(1)</script>", timeout=SLOW_MS)
    # under the enforced CSP the report's charts still go live (Vega's interpreter: no eval)
    expect(frame.locator("figure.llmplan-chart[data-live='1']").first).to_be_attached(timeout=SLOW_MS)
    expect(page.locator("#saved")).to_contain_text("<script>alert(1)</script>")
    assert frame.locator("img[src=x]").count() == 0 and page.locator("img[src=x]").count() == 0
    for path in ("/fit", "/compare", "/catalog", "/accuracy", "/docs"):
        page.goto(server + path)
        page.wait_for_load_state("networkidle")
    assert not dialogs, dialogs
    assert not violations, violations


def test_overrides_are_shown_disabled_and_deleted_in_the_ui(server, browser):
    """An override in force shows on every page; the catalog page lists it and disables or deletes it."""
    import httpx
    from playwright.sync_api import expect

    entry = httpx.get(server + "/api/catalog/gpus/l40s").json()
    entry["name"] = "L40S as measured in our lab"
    r = httpx.post(server + "/api/overrides/gpus?replace=true", json=entry)
    assert r.status_code == 201, r.text
    page = browser.new_page(viewport={"width": 1300, "height": 900})  # the CSP enforced
    try:
        page.goto(server + "/fit")
        expect(page.locator("#overrides-banner")).to_contain_text("1 catalog override(s) in force, 1 replacing")
        page.goto(server + "/catalog")
        row = page.locator("#override-list tr", has_text="l40s")
        expect(row).to_contain_text("in force, replaces the built-in entry")
        row.locator("button", has_text="Disable").click()
        expect(page.locator("#override-list tr", has_text="l40s")).to_contain_text("not in force: disabled")
        page.goto(server + "/")
        expect(page.locator("#overrides-banner")).to_be_hidden()
        page.goto(server + "/catalog")
        page.locator("#override-list tr", has_text="l40s").locator("button", has_text="Delete").click()
        expect(page.locator("#override-status")).to_contain_text("No override is stored")
    finally:
        page.close()
    assert httpx.get(server + "/api/overrides").json() == []
