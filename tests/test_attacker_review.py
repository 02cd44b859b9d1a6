

# ------------------------------------------------------------------ 3. names in the Markdown and HTML reports

def test_names_cannot_become_markup_in_the_reports(client):
    from markdown_it import MarkdownIt

    evil = "[click](https://evil.example) *bold* _em_ ~~gone~~ | cell ![img](https://evil.example/x.png) <b>&amp;"
    run = client.post("/api/plan", json={"scenario": {**SMALL, "name": evil}}).json()["run_id"]
    md = client.get(f"/api/runs/{run}/report.md").text
    title = md.splitlines()[0]
    assert title == ("# Plan: \\[click\\](https://evil.example) \\*bold\\* \\_em\\_ \\~\\~gone\\~\\~ \\| cell "
                     "\\!\\[img\\](https://evil.example/x.png) &lt;b>&amp;amp;"), title
    for renderer in (MarkdownIt("commonmark"), MarkdownIt("gfm-like") if _has_linkify() else MarkdownIt("commonmark")
                     .enable("table").enable("strikethrough")):
        html = renderer.render(md)
        first = html.split("</h1>")[0]
        for tag in ("<a", "<img", "<em", "<strong", "<s>", "<del", "<b>", "<td"):
            assert tag not in first, (tag, first)
        assert evil.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in first  # shown as typed
    page = client.get(f"/api/runs/{run}/report.html").text
    assert "evil.example" not in page.replace("https://evil.example", "")  # sanity: only as text
    assert 'href="https://evil.example' not in page and "<img src=\"https://evil" not in page


def _has_linkify() -> bool:
    try:
        import linkify_it  # noqa: F401
    except ImportError:
        return False
    return True
