"""Web and API hardening, round three: each finding of the attacker review
(/work/shared/reviews/attacker.md, run on the round-two code), reproduced over HTTP against SQLite
and a real PostgreSQL, and now refused or right. docs/reliability.md ("Round three") lists them
with the figures before and after."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from llmplan.web.app import create_app

from .test_hardening import BASE, SMALL, client, database, pg  # noqa: F401 (fixtures: SQLite and PostgreSQL)


# ------------------------------------------------------------------ 4. YAML tags

@pytest.mark.parametrize("tag, shown", [("!!python/object/apply:os.system ['id']", "!!python/object/apply:os.system"),
                                        ("!!python/name:os.system ''", "!!python/name:os.system"),
                                        ("!foo bar", "!foo"), ("!!binary aGk=", "!!binary"), ("!!set {a, b}", "!!set"),
                                        ("!!str llama", "!!str"), ("!<tag:evil.example,2026:x> y", "tag:evil")])
def test_yaml_tags_are_refused_naming_the_tag(client, tag, shown):
    before = client.get("/api/scenarios").json()
    text = f"name: t\nworkload: {{preset: chat, requests_per_day: 1000}}\nmodels: [llama-3.1-8b]\nnotes: {tag}\n"
    for url in ("/api/scenarios", "/api/scenarios/yaml", "/api/jobs/plan", "/api/plan"):
        r = client.post(url, json={"yaml": text})
        assert r.status_code == 400 and "YAML tag" in r.json()["error"] and shown in r.json()["error"], (url, r.text)
    r = client.post("/api/scenarios/validate", json={"yaml": text}).json()
    assert not r["ok"] and shown in r["error"]
    assert client.get("/api/scenarios").json() == before
