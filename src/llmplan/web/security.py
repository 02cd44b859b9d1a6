"""Authentication, CSRF protection and security headers for `llmplan serve`.

- Authentication is optional on loopback and required elsewhere: `LLMPLAN_AUTH_TOKEN` (clients
  send `Authorization: Bearer TOKEN`) and/or `LLMPLAN_AUTH_BASIC` (`user:password`, HTTP basic
  auth, which browsers prompt for). Compared in constant time; never logged.
- CSRF: a state-changing request (POST, PUT, PATCH, DELETE) must carry a JSON body (or none) and,
  when the browser sends an Origin, come from this app's own origin. A cross-site HTML form can
  send neither, and a cross-site script cannot send JSON without a CORS preflight this app never
  answers.
- Size: a request body over `MAX_BODY_BYTES` is refused with 413, whether it announces its
  length or streams it in chunks (counted as it arrives, never buffered beyond the limit).
- Headers: a Content-Security-Policy with no inline scripts and no third-party origins, no
  sniffing, no framing by other sites, no referrer.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import os
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse

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
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def install(app, auth: Auth) -> None:
    @app.middleware("http")
    async def _guard(request: Request, call_next):
        if auth.enabled and request.url.path not in OPEN_PATHS and not auth.allows(request.headers.get("authorization")):
            r = JSONResponse({"error": "authentication required"}, status_code=401,
                             headers={"www-authenticate": 'Basic realm="llmplan"' if auth.basic else "Bearer"})
            r.headers.update(HEADERS)
            return r
        keys = [k for k, _ in request.query_params.multi_items()]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:  # parameter pollution: which one would count is the framework's guess
            return _deny(f"query parameter {twice[0]!r} given more than once", 400)
        if request.method in UNSAFE:
            ctype = request.headers.get("content-type", "")
            length = request.headers.get("content-length", "0")
            has_body = length not in ("", "0") or "transfer-encoding" in request.headers
            if has_body and not ctype.startswith("application/json"):
                return _deny("state-changing requests carry a JSON body (content-type: application/json)", 415)
            origin = request.headers.get("origin")
            if origin and origin != "null":
                own = f"{request.url.scheme}://{request.headers.get('host', '')}"
                if origin != own:
                    return _deny(f"cross-origin request from {origin} refused", 403)
            elif origin == "null":
                return _deny("requests from an opaque origin are refused", 403)
        response = await call_next(request)
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        return response


def _deny(msg: str, status: int) -> JSONResponse:
    r = JSONResponse({"error": msg}, status_code=status)
    r.headers.update(HEADERS)
    return r


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
