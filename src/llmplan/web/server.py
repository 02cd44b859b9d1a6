"""The HTTP protocol `llmplan serve` runs uvicorn with: uvicorn's h11 protocol plus a read timeout,
so that a slow client (slowloris: headers sent a byte at a time, or a connection that sends
nothing) cannot hold a connection, and with it a file descriptor and memory, for ever.

- A request's headers must arrive within `LLMPLAN_HEADER_TIMEOUT_S` seconds (default 10) of the
  connection opening, or of the first byte of the next request on a kept-alive connection; else
  the server answers 408 (JSON) and closes the connection.
- While a body is being read, no more than the same number of seconds may pass between two
  pieces of it; else the connection is closed (the app sees the client gone).
- Between requests on a kept-alive connection uvicorn's own keep-alive timeout (5 s) applies.

`llmplan serve --header-timeout S` sets it (and passes it to `--workers` processes through the
environment)."""

from __future__ import annotations

import asyncio
import json
import os

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import LlmplanError
from .security import HEADERS

DEFAULT_HEADER_TIMEOUT_S = 10.0
ENV = "LLMPLAN_HEADER_TIMEOUT_S"


def header_timeout_s(value: float | None = None) -> float:
    """The header/read timeout: `value`, else LLMPLAN_HEADER_TIMEOUT_S, else 10 s; from 0.1 to 3,600."""
    raw = value if value is not None else os.environ.get(ENV, "").strip() or DEFAULT_HEADER_TIMEOUT_S
    try:
        t = float(raw)
    except ValueError:
        raise LlmplanError(f"{ENV}={raw!r}: a number of seconds (e.g. 10)") from None
    if not 0.1 <= t <= 3600:
        raise LlmplanError(f"header timeout {t:g} s: give 0.1 to 3,600 seconds ({ENV} or --header-timeout)")
    return t


def _timeout_answer() -> bytes:
    body = json.dumps({"error": "request timeout: the request's headers did not arrive in time"}).encode()
    head = ["HTTP/1.1 408 Request Timeout", "content-type: application/json", f"content-length: {len(body)}",
            "connection: close", *(f"{k}: {v}" for k, v in HEADERS.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout and a body read timeout (see the module doc)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - uvicorn's signature
        super().__init__(*args, **kwargs)
        self.read_timeout_s = header_timeout_s()
        self._read_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.read_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # the first request's headers are due from now

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        state = self.conn.their_state
        if state is h11.IDLE and self._read_timer is None:
            self._arm()  # the first byte of a request on a kept-alive connection: its headers are due
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm()  # headers in; each further piece of the body is due within the timeout
        elif state is not h11.IDLE:
            self._disarm()  # the whole request is in (or the connection is done)

    def _expired(self) -> None:
        self._read_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(_timeout_answer())  # headers never completed: 408, then close
            self.transport.close()
        elif state is h11.SEND_BODY:
            self.transport.close()  # a body that stopped arriving: the app is told the client left
