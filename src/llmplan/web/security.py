"""Authentication, Host and origin checks, CSRF protection, document guards and security headers
for `llmplan serve`.

- Authentication is optional on loopback and required elsewhere: `LLMPLAN_AUTH_TOKEN` (clients
  send `Authorization: Bearer TOKEN`) and/or `LLMPLAN_AUTH_BASIC` (`user:password`, HTTP basic
  auth, which browsers prompt for). Compared in constant time; never logged.
- DNS rebinding: the Host header must be a name this server answers to: loopback names
  (localhost, 127.0.0.1, ::1) always, plus the names it is configured with (`--allowed-host`,
  the host of `--public-url`, the address it binds to). A page on a rebinding domain sends its
  own name and gets 421.
- Behind a reverse proxy: `X-Forwarded-Proto` and `X-Forwarded-Host` are honoured only from the
  addresses given as `--trusted-proxy`; `--public-url` is the origin browsers see
  (`https://planner.internal`), accepted as the app's own origin.
- CSRF: a state-changing request (POST, PUT, PATCH, DELETE) must carry a JSON body (or none) and,
  when the browser sends an Origin, come from this app's own origin. A cross-site HTML form can
  send neither, and a cross-site script cannot send JSON without a CORS preflight this app never
  answers.
- Cross-site reads (Fetch Metadata resource isolation): a request a browser marks
  `Sec-Fetch-Site: cross-site` or `same-site` is refused (403) unless it is a top-level
  navigation (a link to a report opened from elsewhere, read by nobody but the user); the app's
  own pages send `same-origin`, typed addresses and bookmarks `none`, non-browser clients nothing.
- Documents: a JSON body nested deeper than 32 levels, with control characters in its text or
  over a million values is refused (400) before any handler walks it.
- Size: a request body over `MAX_BODY_BYTES` is refused with 413, whether it announces its
  length or streams it in chunks (counted as it arrives, never buffered beyond the limit).
- Headers, on every answer (errors included): a Content-Security-Policy with no inline scripts
  and no third-party origins, no sniffing, no framing by other sites, no referrer; HSTS when
  served over HTTPS.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from ..errors import LlmplanError
from ..jsonutil import MAX_DEPTH, check_document

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'")
HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "x-frame-options": "SAMEORIGIN",
           "referrer-policy": "no-referrer", "cross-origin-opener-policy": "same-origin"}
OPEN_PATHS = ("/api/health",)
MAX_BODY_BYTES = 1 * 2**20
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Auth:
    token: str | None = None
    basic: str | None = None  # "user:password"

    @classmethod
    def from_env(cls) -> Auth:
        return cls(os.environ.get("LLMPLAN_AUTH_TOKEN") or None, os.environ.get("LLMPLAN_AUTH_BASIC") or None)

    @property
    def enabled(self) -> bool:
        return bool(self.token or self.basic)

    def allows(self, header: str | None) -> bool:
        if not self.enabled:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and self.token:
            return hmac.compare_digest(value.strip().encode(), self.token.encode())
        if scheme.lower() == "basic" and self.basic:
            try:
                given = base64.b64decode(value.strip(), validate=True)
            except ValueError:
                return False
            return hmac.compare_digest(given, self.basic.encode())
        return False


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> str:
    """The name in a Host header value, without the port ('[::1]:8000' → '::1')."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass(frozen=True)
class Origins:
    """The names this server answers to, the origins browsers see it at, and the proxies whose
    X-Forwarded-* headers it believes."""

    hosts: tuple[str, ...] = ()  # names besides loopback; "*" answers to any (not for loopback without auth)
    public_urls: tuple[str, ...] = ()  # scheme://host[:port]
    proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_settings(cls, hosts: list[str] | None = None, public_urls: list[str] | None = None,
                      proxies: list[str] | None = None, bind: str | None = None) -> Origins:
        """From the serve options, else LLMPLAN_ALLOWED_HOSTS / LLMPLAN_PUBLIC_URL /
        LLMPLAN_TRUSTED_PROXIES (comma-separated)."""
        def env(var: str) -> list[str]:
            return [x.strip() for x in os.environ.get(var, "").split(",") if x.strip()]

        hosts = list(hosts or env("LLMPLAN_ALLOWED_HOSTS"))
        urls = [_origin(u) for u in (public_urls or env("LLMPLAN_PUBLIC_URL"))]
        hosts += [split_host(urllib.parse.urlsplit(u).netloc) for u in urls]
        if bind and bind not in ("0.0.0.0", "::", "") and not is_loopback(bind):
            hosts.append(bind)
        nets = []
        for p in proxies or env("LLMPLAN_TRUSTED_PROXIES"):
            try:
                nets.append(ipaddress.ip_network(p.strip(), strict=False))
            except ValueError:
                raise LlmplanError(f"--trusted-proxy {p!r}: not an IP address or network (10.0.0.5, 10.0.0.0/24)") \
                    from None
        for h in hosts:
            if h != "*" and not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]{1,253}", h):
                raise LlmplanError(f"--allowed-host {h!r}: not a host name or address")
        return cls(tuple(dict.fromkeys(split_host(h) if h != "*" else h for h in hosts)), tuple(urls), tuple(nets))

    def host_allowed(self, host: str) -> bool:
        name = split_host(host)
        return bool(name) and (is_loopback(name) or name in self.hosts or "*" in self.hosts)

    def trusts(self, peer: str | None) -> bool:
        if not peer or not self.proxies:
            return False
        try:
            ip = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(ip in n for n in self.proxies)


def _origin(url: str) -> str:
    u = urllib.parse.urlsplit(url.strip())
    if u.scheme not in ("http", "https") or not u.netloc or u.path not in ("", "/") or u.query or u.fragment:
        raise LlmplanError(f"--public-url {url!r}: give the origin browsers use, e.g. https://planner.internal "
                           "(scheme and host, optionally a port; no path)")
    return f"{u.scheme}://{u.netloc.lower()}"


class Guard:
    """ASGI middleware: Host, authentication, query pollution, CSRF and document checks in front
    of the app; security headers on every answer it lets through."""

    def __init__(self, app, auth: Auth, origins: Origins):
        self.app, self.auth, self.origins = app, auth, origins

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        scheme, host = scope.get("scheme", "http"), headers.get("host", "")
        if self.origins.trusts((scope.get("client") or (None,))[0]):
            scheme = headers.get("x-forwarded-proto", scheme).split(",")[-1].strip().lower() or scheme
            host = headers.get("x-forwarded-host", host).split(",")[-1].strip() or host
        problem = self._refusal(scope, headers, scheme, host)
        if problem is not None:
            challenge = {"www-authenticate": 'Basic realm="llmplan"' if self.auth.basic else "Bearer"}
            return await _deny(send, *problem, challenge if problem[1] == 401 else None)
        if scope["method"] in UNSAFE and headers.get("content-type", "").startswith("application/json"):
            receive, problem = await _checked_body(receive)
            if problem is not None:
                return await _deny(send, problem, 400)
        extra = dict(HEADERS)
        if scheme == "https":
            extra["strict-transport-security"] = "max-age=31536000"

        async def with_headers(message):
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((k.encode(), v.encode()) for k, v in extra.items()
                                                    if k.encode() not in have)]}
            await send(message)

        await self.app(scope, receive, with_headers)

    def _refusal(self, scope, headers: dict[str, str], scheme: str, host: str) -> tuple[str, int] | None:
        path = scope.get("path", "")
        if not self.origins.host_allowed(host):
            return (f"Host {split_host(host)[:100]!r} is not a name this server answers to (a DNS-rebinding page, "
                    "or a name it was not told about: start it with --allowed-host NAME or --public-url URL)", 421)
        if self.auth.enabled and path not in OPEN_PATHS and not self.auth.allows(headers.get("authorization")):
            return "authentication required", 401
        site = headers.get("sec-fetch-site", "").strip().lower()
        if site in ("cross-site", "same-site") and not _navigation(scope["method"], headers):
            return (f"a {site} request from a browser (Sec-Fetch-Site) is refused: only this app's own pages read "
                    "its data (open the address directly, or call the API from a non-browser client)", 403)
        keys = [k for k, _ in urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                                       keep_blank_values=True)]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:  # parameter pollution: which one would count is the framework's guess
            return f"query parameter {twice[0]!r} given more than once", 400
        if scope["method"] in UNSAFE:
            ctype = headers.get("content-type", "")
            has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
            if has_body and not ctype.startswith("application/json"):
                return "state-changing requests carry a JSON body (content-type: application/json)", 415
            origin = headers.get("origin")
            if origin == "null":
                return "requests from an opaque origin are refused", 403
            if origin and origin.lower() != f"{scheme}://{host.lower()}" and origin.lower() not in \
                    self.origins.public_urls:
                return f"cross-origin request from {origin[:200]} refused", 403
        return None


def _navigation(method: str, headers: dict[str, str]) -> bool:
    """A top-level GET navigation (a followed link): the page it opens is the user's to read, not the linking site's."""
    return method in ("GET", "HEAD") and headers.get("sec-fetch-mode", "").lower() == "navigate" and \
        headers.get("sec-fetch-dest", "document").lower() == "document"


async def _checked_body(receive):
    """Read the JSON body (the size limit sits outside), check it as a document, and hand the app
    a receive that replays it. Returns (receive, refusal or None)."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return receive, None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay():
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    try:
        doc = json.loads(body) if body.strip() else None
        check_document(doc, "request body")
    except (ValueError, UnicodeDecodeError):
        return replay, None  # not JSON: the framework answers 422 with the parser's message
    except RecursionError:
        return replay, f"request body: nested more than {MAX_DEPTH} levels deep"
    except LlmplanError as exc:
        return replay, str(exc)
    return replay, None


async def _deny(send, msg: str, status: int, extra: dict[str, str] | None = None) -> None:
    r = JSONResponse({"error": msg}, status_code=status)
    r.headers.update(HEADERS | (extra or {}))
    await r({"type": "http"}, _no_body, send)


async def _no_body() -> dict[str, Any]:
    """The `receive` of a refused request: a JSONResponse never reads the body it refuses."""
    return {"type": "http.disconnect"}


class BodyLimit:
    """ASGI middleware: 413 with a JSON body for a request body over `max_bytes` (by its
    Content-Length, or counted chunk by chunk when it has none). Past the limit the app is
    told the client left, and whatever it still answers is dropped."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen = 0
        started = refused = False

        async def counted():
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def watched(message):
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send) -> None:
        body = json.dumps({"error": f"request body over {self.max_bytes:,} bytes"}).encode()
        hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"connection", b"close")] + [(k.encode(), v.encode()) for k, v in HEADERS.items()]
        await send({"type": "http.response.start", "status": 413, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})
