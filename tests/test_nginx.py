"""`llmplan serve` behind a real nginx that terminates TLS with a self-signed certificate, as
deploy/README.md sets it up: a browser at https://planner.internal plans and saves; a page on a
rebinding name is refused. Runs where nginx is installed (scripts/install-test-deps.sh installs
it); Chromium reaches the proxy by name through a host-resolver rule, no /etc/hosts change."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log {tmp}/access.log;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{tls} ssl;
    server_name planner.internal;
    ssl_certificate {tmp}/cert.pem;
    ssl_certificate_key {tmp}/key.pem;
    client_max_body_size 1m;
    proxy_read_timeout 300s;
    location / {{
      proxy_pass http://127.0.0.1:{app};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
"""

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed (scripts/install-test-deps.sh)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, proc: subprocess.Popen, what: str) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port}")


USER, PASSWORD = "architect", "proxy-test-passphrase"  # behind a proxy the server is published: auth is required


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nginx")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=planner.internal", "-addext", "subjectAltName=DNS:planner.internal",
                    "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")], check=True, capture_output=True)
    app, tls = _port(), _port()
    public = f"https://planner.internal:{tls}"
    (tmp / "nginx.conf").write_text(CONF.format(tmp=tmp, tls=tls, app=app))
    server = subprocess.Popen([sys.executable, "-m", "llmplan.cli", "serve", "--port", str(app), "--database",
                               f"sqlite:///{tmp / 'store.db'}", "--public-url", public, "--trusted-proxy",
                               "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True, env={**os.environ, "LLMPLAN_AUTH_BASIC": f"{USER}:{PASSWORD}"})
    nginx = subprocess.Popen([NGINX, "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(app, server, "llmplan serve")
        _wait(tls, nginx, "nginx")
        yield {"public": public, "tls": tls, "app": app, "cert": tmp / "cert.pem"}
    finally:
        nginx.terminate()
        nginx.wait(10)
        os.killpg(server.pid, 15)
        server.wait(20)


def _client(p):
    import httpx

    ctx = ssl.create_default_context(cafile=str(p["cert"]))
    return httpx.Client(base_url=f"https://127.0.0.1:{p['tls']}", verify=ctx, timeout=120, auth=(USER, PASSWORD),
                        headers={"host": f"planner.internal:{p['tls']}"}), {"sni_hostname": "planner.internal"}


def test_browser_writes_work_through_the_tls_proxy(proxied):
    c, ext = _client(proxied)
    body = {"scenario": {"name": "through nginx", "workload": {"preset": "chat", "requests_per_day": 20000},
                         "models": ["llama-3.1-8b"], "hardware": ["h100-sxm"]}}
    r = c.post("/api/scenarios", json=body, headers={"origin": proxied["public"]}, extensions=ext)
    assert r.status_code == 201, r.text
    assert r.headers["strict-transport-security"] and "script-src 'self'" in r.headers["content-security-policy"]
    # a page on another origin, or a rebinding name, through the same proxy
    r = c.post("/api/scenarios", json=body, headers={"origin": "https://evil.example"}, extensions=ext)
    assert r.status_code == 403
    evil = f"rebind.evil.example:{proxied['tls']}"
    r = c.post("/api/scenarios", json=body, headers={"host": evil, "origin": f"https://{evil}"}, extensions=ext)
    assert r.status_code == 421 and r.json()["error"].startswith("Host 'rebind.evil.example'")
    assert [s["name"] for s in c.get("/api/scenarios", extensions=ext).json()] == ["through nginx"]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium not installed")
def test_plan_and_save_in_chromium_behind_the_proxy(proxied):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--host-resolver-rules=MAP planner.internal 127.0.0.1"])
        try:
            page = b.new_context(ignore_https_errors=True, viewport={"width": 1300, "height": 900},
                                 http_credentials={"username": USER, "password": PASSWORD}).new_page()
            page.goto(proxied["public"] + "/")
            expect(page.locator("#valid")).to_contain_text("valid scenario", timeout=30_000)
            page.click("#run")
            expect(page.locator("#status")).to_contain_text("done", timeout=120_000)
            expect(page.locator("#recommendation")).to_contain_text("Recommended")
            page.click("#save")
            expect(page.locator("#status")).to_contain_text("Saved as scenario", timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "behind-nginx.png"), full_page=True)
        finally:
            b.close()


def test_the_proxy_without_authentication_is_refused(tmp_path):
    """Attacker review: the documented proxy setup ran with authentication off, published to the network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMPLAN_AUTH")}
    for extra in (["--public-url", "https://planner.internal"], ["--trusted-proxy", "127.0.0.1"],
                  ["--allowed-host", "planner.internal"], ["--allowed-host", "*"]):
        r = subprocess.run([sys.executable, "-m", "llmplan.cli", "serve", "--port", str(_port()), "--database",
                            f"sqlite:///{tmp_path / 'x.db'}", *extra], capture_output=True, text=True, env=env,
                           timeout=60)
        assert r.returncode == 2 and "LLMPLAN_AUTH_TOKEN" in r.stderr, (extra, r.stderr)
