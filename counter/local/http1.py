"""A small HTTP/1.1 server on raw asyncio protocols: the front door of the balancer, the function URL
and the control API.

Why not aiohttp: the balancer is the throughput limit of the whole local stack on a 2-core machine,
and the calibration measured a raw-asyncio balancer at about a quarter of the CPU of aiohttp's server
plus client session. So this is the least that serves the counter's traffic correctly:
Content-Length bodies (chunked request bodies are refused with 411), keep-alive, pipelining handled
one request at a time, and no per-request task: the handler is a plain call that answers now or later
through :meth:`HttpConnection.send`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
CLIENT_IDLE_TIMEOUT = 60.0  # an ALB closes client connections idle this long (its default)

_REASONS = {status.value: status.phrase for status in HTTPStatus}


class Request:
    """One parsed request. ``head`` is the raw request line plus header lines, without the blank line."""

    __slots__ = ("body", "head", "headers", "keep_alive", "method", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        version: bytes,
        headers: dict[str, str],
        head: bytes,
        body: bytes,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.head = head
        self.body = body
        self.keep_alive = keep_alive

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]


Handler = Callable[["HttpConnection", Request], None]
"""Called once per request; must eventually call ``conn.send`` exactly once (now or later)."""


def response_bytes(
    status: int,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    content_type: str | None = "application/json",
) -> bytes:
    """A complete HTTP/1.1 response, keep-alive (see :meth:`HttpConnection.send` for closing)."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if headers:
        lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> bytes:
    return response_bytes(status, json.dumps(payload).encode(), headers)


def with_close(raw: bytes) -> bytes:
    """Add ``Connection: close`` to a complete response made by :func:`response_bytes` or an upstream."""
    end = raw.find(b"\r\n\r\n")
    return raw[:end] + b"\r\nConnection: close" + raw[end:]


class HttpConnection(asyncio.Protocol):
    """One client connection. Parses requests and hands them to the server's handler, one at a time."""

    __slots__ = (
        "_buf",
        "_busy",
        "_handler",
        "_parsing",
        "_paused",
        "_server",
        "closed",
        "last_active",
        "transport",
    )

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._handler = server.handler
        self._buf = b""
        self._busy = False
        self._parsing = False
        self._paused = False
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self.last_active = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self._buf = self._buf + data if self._buf else data
        if not self._busy:
            self._next()
        elif len(self._buf) > MAX_HEAD + MAX_BODY and self.transport is not None:
            self.transport.pause_reading()  # a client pipelining faster than we answer: wait for it
            self._paused = True

    def send(self, raw: bytes, keep_alive: bool = True) -> None:
        """Write the complete response to the current request; close the connection unless keep-alive."""
        self._busy = False
        if self.closed:
            return
        self.last_active = time.monotonic()
        transport = self.transport
        assert transport is not None
        if self._paused:
            self._paused = False
            transport.resume_reading()
        if keep_alive:
            transport.write(raw)
            if self._buf:
                self._next()
        else:
            transport.write(with_close(raw))
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, status: int, message: str) -> None:
        self._busy = True
        self._buf = b""
        self.send(json_response(status, {"error": message}), keep_alive=False)

    def _next(self) -> None:
        if self._parsing:  # a handler answered synchronously: the loop below picks up the next request
            return
        self._parsing = True
        try:
            while not self._busy and self._buf and not self.closed:
                request = self._parse()
                if request is None:
                    return
                self._busy = True
                self.last_active = time.monotonic()
                self._handler(self, request)
        finally:
            self._parsing = False

    def _parse(self) -> Request | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                self._fail(431, "request header too large")
            return None
        head = buf[:end]
        line_end = head.find(b"\r\n")
        request_line = head if line_end < 0 else head[:line_end]
        parts = request_line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._fail(400, "malformed request line")
            return None
        headers: dict[str, str] = {}
        if line_end >= 0:
            for line in head[line_end + 2 :].split(b"\r\n"):
                name, sep, value = line.partition(b":")
                if not sep:
                    self._fail(400, "malformed header line")
                    return None
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if "transfer-encoding" in headers:
            self._fail(411, "chunked request bodies are not supported: send Content-Length")
            return None
        length_text = headers.get("content-length")
        length = 0
        if length_text:
            if not length_text.isdigit():
                self._fail(400, "bad Content-Length")
                return None
            length = int(length_text)
            if length > MAX_BODY:
                self._fail(413, "request body too large")
                return None
        total = end + 4 + length
        if len(buf) < total:
            return None
        self._buf = buf[total:]
        version = parts[2]
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == b"HTTP/1.1" else "keep-alive" in connection
        return Request(
            parts[0].decode("latin-1"),
            parts[1].decode("latin-1"),
            version,
            headers,
            head,
            buf[end + 4 : total],
            keep_alive,
        )


class HttpServer:
    """A listening socket on 127.0.0.1 whose requests go to ``handler``."""

    def __init__(self, handler: Handler, name: str) -> None:
        self.handler = handler
        self.name = name
        self.connections: set[HttpConnection] = set()
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def listen(self, port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: HttpConnection(self), "127.0.0.1", port, backlog=1024, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = loop.create_task(self._close_idle())
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _close_idle(self) -> None:
        while True:
            await asyncio.sleep(CLIENT_IDLE_TIMEOUT / 4)
            limit = time.monotonic() - CLIENT_IDLE_TIMEOUT
            for conn in [c for c in self.connections if not c._busy and c.last_active < limit]:
                conn.close()

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
