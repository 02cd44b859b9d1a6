"""`llmplan serve`: the web app and REST API in one process."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from ..errors import LlmplanError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..web.compute import Budget
    from ..web.security import Auth, Origins


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only)."),
        port: int = typer.Option(8000, "--port", min=1, max=65535),
        database: str | None = typer.Option(None, "--database", help="sqlite:///PATH or postgresql://… (default: "
                                               "LLMPLAN_DATABASE, else a SQLite file in the user data directory)."),
        workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes (they share the store, "
                                    "jobs included)."),
        allowed_host: list[str] = typer.Option([], "--allowed-host", help="A name browsers reach the server by "
                                               "(repeatable; loopback names are always accepted; "
                                               "LLMPLAN_ALLOWED_HOSTS). Any other Host header is refused: DNS "
                                               "rebinding."),
        public_url: str | None = typer.Option(None, "--public-url", help="The origin browsers see behind a "
                                                 "reverse proxy, e.g. https://planner.internal (LLMPLAN_PUBLIC_URL)."),
        trusted_proxy: list[str] = typer.Option([], "--trusted-proxy", help="Address or network of a reverse proxy "
                                                "whose X-Forwarded-Proto/-Host are believed (repeatable; "
                                                "LLMPLAN_TRUSTED_PROXIES)."),
        cpu_budget: float | None = typer.Option(None, "--cpu-budget", min=1, help="CPU seconds one computation "
                                                   "may use (default 120; LLMPLAN_CPU_BUDGET_S)."),
        memory_budget: int | None = typer.Option(None, "--memory-budget", min=64, help="MiB one computation may "
                                                    "allocate (default 2048; LLMPLAN_MEMORY_BUDGET_MIB)."),
        compute_workers: int | None = typer.Option(None, "--compute-workers", min=1, max=256, help="Worker "
                                                      "processes per server process (default: one per core; "
                                                      "LLMPLAN_COMPUTE_WORKERS)."),
        queue: int | None = typer.Option(None, "--queue", min=1, max=100_000, help="Computations that may wait "
                                            "for a worker; more get 429 (default 64; LLMPLAN_QUEUE)."),
        header_timeout: float | None = typer.Option(None, "--header-timeout", min=0.1, max=3600, help="Seconds a "
                                                       "client has to send a request's headers (and between pieces "
                                                       "of its body); slower ones get 408 and are disconnected "
                                                       "(default 10; LLMPLAN_HEADER_TIMEOUT_S)."),
        max_runs: int | None = typer.Option(None, "--max-runs", min=1, max=10_000_000, help="Runs the store "
                                               "keeps; past that a plan gets 409 until runs are deleted (default "
                                               "10,000; LLMPLAN_MAX_RUNS)."),
        max_scenarios: int | None = typer.Option(None, "--max-scenarios", min=1, max=10_000_000, help="Scenarios "
                                                    "the store keeps, archived ones included (default 1,000; "
                                                    "LLMPLAN_MAX_SCENARIOS)."),
        log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning or error: what the server "
                                      "logs on stderr (failed jobs and internal errors with their traceback at "
                                      "error; request lines from info on; never a header or a password)."),
    ) -> None:
        """Serve the web app and the REST API (OpenAPI at /docs); migrates the store on start."""
        from ..web.app import create_app
        from ..web.compute import Budget
        from ..web.security import Auth
        from ..web.server import ENV as TIMEOUT_ENV
        from ..web.server import header_timeout_s

        level = _logging(log_level)
        auth = Auth.from_env()
        origins = _origins(host, auth, allowed_host, public_url, trusted_proxy)
        budget = Budget.from_env(cpu_s=cpu_budget, memory_mib=memory_budget, workers=compute_workers, queue=queue)
        os.environ[TIMEOUT_ENV] = f"{header_timeout_s(header_timeout):g}"  # read by each connection (and worker)
        for value, var in ((max_runs, "LLMPLAN_MAX_RUNS"), (max_scenarios, "LLMPLAN_MAX_SCENARIOS")):
            if value is not None:  # the store reads them (in every --workers process too)
                os.environ[var] = str(value)
        application = create_app(database, auth, origins, budget)
        _check_port(host, port)
        _announce(application, host, port, auth, origins, budget)
        _run(application, host, port, workers, level, origins, budget)


def _origins(host: str, auth: Auth, allowed_host: list[str], public_url: str | None,
             trusted_proxy: list[str]) -> Origins:
    """The names and proxies the server answers to; refused where they publish it without authentication."""
    from ..web.security import Origins, is_loopback

    if not is_loopback(host) and not auth.enabled:
        raise LlmplanError(f"--host {host} is reachable from other machines: set LLMPLAN_AUTH_TOKEN or "
                           "LLMPLAN_AUTH_BASIC=user:password first (or bind to 127.0.0.1)")
    origins = Origins.from_settings(allowed_host or None, [public_url] if public_url else None,
                                    trusted_proxy or None, bind=host)
    exposed = [h for h in origins.hosts if h == "*" or not is_loopback(h)]
    if (exposed or origins.public_urls or origins.proxies) and not auth.enabled:
        # a proxy (or a name other machines use) publishes a loopback-bound server to the network
        raise LlmplanError("--public-url, --trusted-proxy and --allowed-host publish the server to other "
                           f"machines ({', '.join(exposed or origins.public_urls or ['through a proxy'])}): set "
                           "LLMPLAN_AUTH_TOKEN or LLMPLAN_AUTH_BASIC=user:password first")
    return origins


def _check_port(host: str, port: int) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise LlmplanError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port") from None


def _announce(application: FastAPI, host: str, port: int, auth: Auth, origins: Origins, budget: Budget) -> None:
    from sqlalchemy.engine import make_url

    from ..web.server import ENV as TIMEOUT_ENV

    store_url = make_url(application.state.store.url).render_as_string(hide_password=True)
    names = ", ".join(["loopback", *origins.hosts])
    typer.echo(f"llmplan on http://{host}:{port}/ (API docs at /docs); store {store_url}; "
               f"authentication {'on' if auth.enabled else 'off (loopback only)'}; answers to {names}"
               + (f"; public at {origins.public_urls[0]}" if origins.public_urls else "")
               + f"; {budget.pool_size} compute worker(s), {budget.cpu_s:g} CPU s and {budget.memory_mib} MiB "
                 f"per computation; header timeout {os.environ[TIMEOUT_ENV]} s")


def _run(application: FastAPI, host: str, port: int, workers: int, level: str, origins: Origins,
         budget: Budget) -> None:
    import uvicorn

    from ..web.server import TimedH11Protocol

    if workers == 1:  # the proxy headers are ours to judge (--trusted-proxy), not uvicorn's
        uvicorn.run(application, host=host, port=port, log_level=level, proxy_headers=False,
                    http=TimedH11Protocol)
    else:  # each worker process builds its own app from the same settings, passed in the environment
        os.environ["LLMPLAN_DATABASE"] = application.state.store.url
        os.environ["LLMPLAN_ALLOWED_HOSTS"] = ",".join(origins.hosts)
        os.environ["LLMPLAN_PUBLIC_URL"] = ",".join(origins.public_urls)
        os.environ["LLMPLAN_TRUSTED_PROXIES"] = ",".join(str(n) for n in origins.proxies)
        for name, var in (("cpu_s", "LLMPLAN_CPU_BUDGET_S"), ("memory_mib", "LLMPLAN_MEMORY_BUDGET_MIB"),
                          ("workers", "LLMPLAN_COMPUTE_WORKERS"), ("queue", "LLMPLAN_QUEUE")):
            os.environ[var] = str(getattr(budget, name))
        uvicorn.run("llmplan.web.app:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level=level, proxy_headers=False, http=TimedH11Protocol)

LEVELS = ("debug", "info", "warning", "error")


def _logging(level: str) -> str:
    """The llmplan loggers on stderr at `level`; uvicorn logs at the same level (its access log, from
    info on, has request lines, never headers). Worker processes (--workers) read LLMPLAN_LOG_LEVEL."""
    import logging

    name = level.strip().lower()
    if name not in LEVELS:
        raise LlmplanError(f"--log-level {level!r}: one of {', '.join(LEVELS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("llmplan")
    root.handlers[:] = [handler]
    root.setLevel(name.upper())
    root.propagate = False
    os.environ["LLMPLAN_LOG_LEVEL"] = name
    return name
