"""The page flows of issue 15 in a real headless Chromium, each waiting for a condition, never for a
blind sleep: load → edit → save as a new version → reload → compare; save as a new scenario, tell
duplicates apart, archive; "no compliant option" as a warning with its explanation and an option
explained from the page; charts live with hover values under the enforced CSP and no request to
another host; every page at 420 px wide."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.test_browser import ARTIFACTS, SLOW_MS, browser, server  # noqa: F401 - the fixtures

EXAMPLE = (Path(__file__).parents[1] / "src" / "llmplan" / "web" / "static" / "example.yaml").read_text()
SMALL = EXAMPLE.replace("[meta-llama/Llama-3.3-70B-Instruct, Qwen/Qwen2.5-72B-Instruct]", "[meta-llama/Llama-3.1-8B]") \
    .replace("[h100-sxm, h200, mi300x, l40s]", "[l40s, h100-sxm]").replace("min_quality_recovery_pct: 97", "")


def _page(browser, width=1400, height=1000):  # noqa: F811
    """A page with the CSP enforced, recording every host it sends a request to and every CSP complaint."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.hosts, page.csp = set(), []
    page.on("request", lambda r: page.hosts.add(urlparse(r.url).netloc) if r.url.startswith("http") else None)
    page.on("console", lambda m: page.csp.append(m.text) if "Content Security Policy" in m.text else None)
    return page


def _yaml(page, text):
    from playwright.sync_api import expect

    page.fill("#yaml", text)
    page.dispatch_event("#yaml", "input")
    expect(page.locator("#valid")).to_contain_text("valid scenario", timeout=SLOW_MS)


def _plan(page, run_id):
    from playwright.sync_api import expect

    page.click("#run")
    expect(page.locator("#status")).to_have_text(f"Run {run_id} done.", timeout=SLOW_MS)


def test_load_edit_save_version_reload_compare(server, browser):  # noqa: F811
    from playwright.sync_api import expect

    page = _page(browser)
    page.goto(server + "/")
    expect(page.locator("#valid")).to_contain_text("valid scenario", timeout=SLOW_MS)
    _yaml(page, SMALL.replace("Internal assistant for 3,000 employees", "Flow A"))
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Saved as scenario", timeout=SLOW_MS)
    sid = int(re.search(r"scenario (\d+)", page.inner_text("#status")).group(1))
    _plan(page, 1)
    # another scenario in the editor, then load the saved one: form and YAML both show the loaded one
    page.reload()
    _yaml(page, SMALL.replace("Internal assistant for 3,000 employees", "Something else")
          .replace("requests_per_day: 60000", "requests_per_day: 1234"))
    page.locator("#saved a", has_text="Flow A").click()
    expect(page.locator("[data-path='name']")).to_have_value("Flow A")
    expect(page.locator("[data-path='workload.requests_per_day']")).to_have_value("60000")
    expect(page.locator("#loaded")).to_contain_text(f"#{sid}")
    # edit a field: the loaded scenario plus the edit, never the previous one
    page.fill("[data-path='workload.requests_per_day']", "90000")
    page.dispatch_event("[data-path='workload.requests_per_day']", "change")
    expect(page.locator("#yaml")).to_have_value(re.compile("requests_per_day: 90000"), timeout=SLOW_MS)
    assert "Flow A" in page.input_value("#yaml") and "Something else" not in page.input_value("#yaml")
    page.click("#save-version")
    expect(page.locator("#status")).to_have_text(f"Saved scenario {sid} as version 2.", timeout=SLOW_MS)
    page.reload()
    expect(page.locator("#saved li", has_text="Flow A")).to_contain_text("v2")
    page.locator("#saved a", has_text="Flow A").click()
    expect(page.locator("[data-path='workload.requests_per_day']")).to_have_value("90000")
    _plan(page, 2)
    page.goto(server + "/compare")
    page.locator("#runs label", has_text="run 1:").locator("input").check()
    page.locator("#runs label", has_text="run 2:").locator("input").check()
    page.click("#compare")
    expect(page.locator("#table")).to_contain_text("run 2")
    table = page.inner_text("#table")
    assert f"Flow A (scenario {sid} v1)" in table and f"Flow A (scenario {sid} v2)" in table
    assert not page.csp, page.csp
    assert page.hosts == {urlparse(server).netloc}, page.hosts


def test_what_the_user_typed_before_the_example_loaded_is_kept(server, browser):  # noqa: F811
    """The page fills its editor with the example once that file arrives: text typed or pasted before then is
    the user's and stays (it was overwritten, and the example saved in its place, on a loaded machine)."""
    from playwright.sync_api import expect

    page = _page(browser)
    held = []
    # the example's response waits until the user typed
    page.route("**/static/example.yaml", lambda route: held.append(route))
    page.goto(server + "/")
    expect(page.locator("#yaml")).to_be_editable()
    _yaml(page, SMALL.replace("Internal assistant for 3,000 employees", "Typed first"))
    with page.expect_response(lambda r: "/api/scenarios?" in r.url):  # the saved list comes after the example
        held[0].continue_()
    assert "Typed first" in page.input_value("#yaml")
    expect(page.locator("#valid")).to_contain_text("valid scenario")


def test_duplicates_told_apart_and_archive(server, browser):  # noqa: F811
    from playwright.sync_api import expect

    page = _page(browser)
    page.goto(server + "/")
    _yaml(page, SMALL.replace("Internal assistant for 3,000 employees", "Twin"))
    twins = page.locator("#saved li", has_text="Twin")
    for n in (1, 2):
        page.click("#save")
        # wait for this save's own effect (one more entry), not for a status the first save already showed
        try:
            expect(twins).to_have_count(n, timeout=SLOW_MS)
        except AssertionError as exc:  # say what the page said
            raise AssertionError(f"save {n}: status {page.inner_text('#status')!r}; saved list "
                                 f"{page.inner_text('#saved')[:500]!r}") from exc
    a, b = twins.nth(0).inner_text(), twins.nth(1).inner_text()
    assert a != b and "same name as another" in a and re.search(r"#\d+ · v1 · \d{4}-\d\d-\d\d", a)
    twins.nth(1).locator("a").click()
    expect(page.locator("#archive")).to_be_enabled()
    page.click("#archive")
    expect(page.locator("#status")).to_contain_text("Archived scenario")
    expect(page.locator("#saved li", has_text="Twin")).to_have_count(1)


def test_no_compliant_option_is_a_warning_with_an_explanation(server, browser):  # noqa: F811
    from playwright.sync_api import expect

    page = _page(browser)
    page.goto(server + "/")
    # a TTFT p95 of 1 ms: no deployment meets it
    _yaml(page, SMALL.replace("ttft_p95_ms: 2000", "ttft_p95_ms: 1").replace("alternatives: [cloud_gpu, api]",
                                                                           "alternatives: []"))
    page.click("#run")
    box = page.locator("#recommendation.warn")
    expect(box).to_contain_text("No compliant option", timeout=SLOW_MS)
    expect(box).to_contain_text("Deciding rule: latency")
    assert page.locator("#summary .rec").count() == 0 and "--explain" not in box.inner_text()
    rid = int(re.search(r"Run (\d+) done", page.inner_text("#status")).group(1))
    option = page.input_value("#explain-option")
    assert option
    page.click("#explain")
    expect(page.locator("#explanation")).to_contain_text(f"{option}: excluded", timeout=SLOW_MS)
    expect(page.locator("#explanation li").first).to_contain_text("latency")
    page.screenshot(path=str(ARTIFACTS / "no-option.png"), full_page=True)
    # compare two runs (a second one of its own, so the test does not lean on runs other tests left):
    # "no option", never "TCO 0"
    page.click("#run")
    expect(page.locator("#status")).to_contain_text(f"Run {rid + 1} done", timeout=SLOW_MS)
    page.goto(server + "/compare")
    page.locator("#runs label", has_text=f"run {rid}:").locator("input").check()
    page.locator("#runs label", has_text=f"run {rid + 1}:").locator("input").check()
    page.click("#compare")
    expect(page.locator("#table")).to_contain_text("no option")
    row = page.locator("#table tr", has_text="TCO (USD)")
    assert "$0" not in row.inner_text() and " 0\t" not in row.inner_text() + "\t"


def test_charts_live_with_hover_values_offline(server, browser):  # noqa: F811
    from playwright.sync_api import expect

    page = _page(browser)
    page.goto(server + "/")
    _yaml(page, SMALL)
    page.click("#run")
    expect(page.locator("#recommendation")).to_contain_text("Recommended", timeout=SLOW_MS)
    report = page.frame_locator("#report")
    live = report.locator("figure.llmplan-chart[data-live='1']")
    expect(live).to_have_count(4, timeout=SLOW_MS)
    # the cumulative cost chart: titled axes with units, month ticks whole numbers, values on hover
    cum = live.nth(1)
    svg = cum.locator("svg.marks").inner_html()
    assert "cumulative cost (USD)" in svg and ">month<" in svg and "e+" not in svg
    ticks = [t for t in re.findall(r">(\d+)</text>", svg)]
    assert ticks and all(t.isdigit() for t in ticks)
    point = cum.locator(".mark-symbol path").nth(10)
    point.hover()
    tip = page.frame_locator("#report").locator("#vg-tooltip-element")
    expect(tip).to_be_visible(timeout=10_000)
    assert "month" in tip.inner_text() and "$" in tip.inner_text(), tip.inner_text()
    page.screenshot(path=str(ARTIFACTS / "charts.png"), full_page=True)
    assert not page.csp, page.csp
    assert page.hosts == {urlparse(server).netloc}, page.hosts


@pytest.mark.parametrize("path", ["/", "/fit", "/compare", "/catalog", "/accuracy"])
def test_pages_fit_a_420px_screen(server, browser, path):  # noqa: F811
    page = _page(browser, width=420, height=900)
    page.goto(server + path)
    page.wait_for_load_state("networkidle")
    # nothing wider than the screen: wide tables and charts scroll or shrink inside their own box
    over = page.evaluate("document.documentElement.scrollWidth")
    assert over <= 420, (path, over)
    assert page.locator("meta[name=viewport]").count() == 1
    if path == "/":
        nav = page.locator("header nav").bounding_box()
        editor = page.locator("#editor").bounding_box()
        result = page.locator("#result").bounding_box()
        assert nav["x"] + nav["width"] <= 420 and result["y"] >= editor["y"] + editor["height"] - 1  # one column
        page.screenshot(path=str(ARTIFACTS / f"narrow{path.replace('/', '-') or '-plan'}.png"), full_page=True)
