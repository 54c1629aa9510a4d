"""Pooled keep-alive connections from the balancer to one instance.

The rules that keep the pool from manufacturing errors no fault caused (local-stack-calibration.md):
- a connection the instance closed is dropped from the pool the moment its EOF arrives, and is checked
  again when taken out, so a request is only ever written to a connection believed open;
- a connection idle longer than ``idle_timeout`` is not reused (the instance server keeps idle
  connections far longer, so it never closes one the balancer may be about to use);
- once a byte of a request may have reached the instance, the request is never retried: a lost
  connection then means 502 (the increment may or may not have been applied, as behind an ALB).
  The only "retry" is taking another (or a fresh) connection before anything was written.

Responses must have a Content-Length body (the instance server always sends one); anything else is
answered 502 by the balancer rather than guessed at.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Exchange(Protocol):
    """The request in flight on a connection: it is told the response or the failure, once."""

    expect_body: bool  # False for HEAD
    done: bool  # already answered (e.g. timed out): a connection made for it goes back to the pool
    carrier: UpstreamConnection | asyncio.Task[None] | None  # what to abort on timeout

    def on_response(self, head: bytes, body: bytes, status: int) -> None: ...

    def on_failure(self, status: int, message: str) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to an instance, carrying one exchange at a time."""

    __slots__ = (
        "_buf",
        "_head_end",
        "_length",
        "_reusable",
        "_status",
        "closed",
        "exchange",
        "idle_since",
        "pool",
        "transport",
    )

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.closed = False
        self.idle_since = time.monotonic()
        self._buf = b""
        self._head_end = -1
        self._length = 0
        self._status = 0
        self._reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, payload: bytes, exchange: Exchange) -> None:
        self.exchange = exchange
        exchange.carrier = self
        self._buf = b""
        self._head_end = -1
        assert self.transport is not None
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: the connection is out of step
            self.abort()
            return
        buf = self._buf = self._buf + data if self._buf else data
        if self._head_end < 0 and not self._read_head(buf, exchange):
            return
        total = self._head_end + 4 + self._length
        if len(buf) < total:
            return
        head = buf[: self._head_end]
        body = buf[self._head_end + 4 : total]
        self.exchange = None
        self._buf = b""
        if self._reusable and len(buf) == total:
            self.pool.release(self)
        else:
            head = _without_connection_header(head)
            self.abort()
        exchange.on_response(head, body, self._status)

    def _read_head(self, buf: bytes, exchange: Exchange) -> bool:
        """Parse the status line and headers once they are complete; False if not yet (or broken)."""
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lower = buf[:end].lower()
        try:
            status = int(lower[9:12])
        except ValueError:
            self._broken("malformed status line from instance")
            return False
        if b"\r\ntransfer-encoding:" in lower:
            self._broken("instance answered with a chunked body, which the balancer does not support")
            return False
        length = 0
        if exchange.expect_body and status not in (204, 304) and status >= 200:
            value = _header(lower, b"\r\ncontent-length:")
            if value is None or not value.isdigit():
                self._broken("instance answered without a valid Content-Length")
                return False
            length = int(value)
        connection = _header(lower, b"\r\nconnection:")
        self._reusable = connection is None or b"close" not in connection
        self._status = status
        self._length = length
        self._head_end = end
        return True

    def _broken(self, message: str) -> None:
        exchange = self.exchange
        self.abort()
        if exchange is not None:
            exchange.on_failure(502, message)

    def eof_received(self) -> bool:
        self._lost("instance closed the connection before answering")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(f"connection to instance lost: {exc}" if exc else "connection to instance closed")

    def _lost(self, message: str) -> None:
        self.closed = True
        self.pool.discard(self)
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.on_failure(502, message)

    def abort(self) -> None:
        """Drop the connection now; its exchange, if any, is not told (the caller answers it)."""
        self.exchange = None
        self.closed = True
        self.pool.discard(self)
        if self.transport is not None:
            self.transport.abort()


def _header(lower_head: bytes, marker: bytes) -> bytes | None:
    pos = lower_head.find(marker)
    if pos < 0:
        return None
    stop = lower_head.find(b"\r\n", pos + 2)
    return lower_head[pos + len(marker) : stop if stop >= 0 else None].strip()


def _without_connection_header(head: bytes) -> bytes:
    return b"\r\n".join(line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:"))


class UpstreamPool:
    """The idle keep-alive connections to one instance, most recently used on top."""

    def __init__(self, host: str, port: int, idle_timeout: float) -> None:
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.idle: list[UpstreamConnection] = []
        self.closed = False

    def request(self, payload: bytes, exchange: Exchange) -> None:
        """Send ``payload`` on an open pooled connection, or else on a new one."""
        now = time.monotonic()
        idle = self.idle
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if (
                conn.closed
                or transport is None
                or transport.is_closing()
                or now - conn.idle_since > self.idle_timeout
            ):
                conn.abort()
                continue
            conn.send(payload, exchange)
            return
        exchange.carrier = asyncio.get_running_loop().create_task(self._connect_and_send(payload, exchange))

    async def _connect_and_send(self, payload: bytes, exchange: Exchange) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port)
        except OSError as exc:
            exchange.on_failure(502, f"cannot connect to instance: {exc.strerror or exc}")
            return
        if exchange.done:  # answered (timed out) meanwhile; the fresh connection is still good
            self.release(conn)
        else:
            conn.send(payload, exchange)

    def release(self, conn: UpstreamConnection) -> None:
        if self.closed or conn.closed:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        self.idle.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def expire_idle(self) -> None:
        """Close connections idle longer than ``idle_timeout`` (the group calls this now and then)."""
        limit = time.monotonic() - self.idle_timeout
        for conn in [c for c in self.idle if c.idle_since < limit]:
            conn.abort()

    def close(self) -> None:
        """Close the idle connections and pool no more; exchanges in flight finish on theirs."""
        self.closed = True
        for conn in list(self.idle):
            conn.abort()
