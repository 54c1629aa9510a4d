"""The load balancer: round robin over the group's in-service instances, forwarding bytes unchanged.

Per request it does as little as it can, because it is the throughput limit of the local stack: the
request head is forwarded as received (the client's ``X-Amzn-Trace-Id`` passes through; one is added
when absent, as an ALB does), the response is relayed as the instance wrote it. The balancer itself
answers only when no instance could:

- 503 when no instance is in service;
- 502 when the connection to the chosen instance fails or is lost before a complete response
  (a SIGKILLed instance: refused connections and resets);
- 504 when the instance has not answered within ``upstream_timeout`` (a SIGSTOPped instance).

Those responses carry ``X-Served-By: balancer`` and ``X-Target: <instance id>`` (when one was chosen),
and count in ``errors``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from counter.local.config import FleetConfig
from counter.local.fleet import Group, Instance
from counter.local.http1 import HttpConnection, Request, response_bytes
from counter.local.upstream import UpstreamConnection

SERVED_BY = "balancer"
_NO_TARGET = response_bytes(503, b'{"error":"no instance in service"}', [("X-Served-By", SERVED_BY)])


def _error(status: int, message: str, target: str) -> bytes:
    return response_bytes(
        status, json.dumps({"error": message}).encode(), [("X-Served-By", SERVED_BY), ("X-Target", target)]
    )


def _trace_header() -> bytes:
    return b"\r\nX-Amzn-Trace-Id: Root=1-%08x-%s" % (int(time.time()), os.urandom(12).hex().encode())


def upstream_request(request: Request) -> bytes:
    """The bytes to send to the instance: the client's request, with hop-by-hop framing normalised."""
    head = request.head
    headers = request.headers
    if request.version != b"HTTP/1.1" or "connection" in headers or "keep-alive" in headers:
        # rare: rebuild the head as HTTP/1.1 keep-alive (the upstream connection is pooled)
        lines = head.split(b"\r\n")
        method, target, _ = lines[0].split(b" ")
        kept = [
            line
            for line in lines[1:]
            if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")
        ]
        head = b"\r\n".join([method + b" " + target + b" HTTP/1.1", *kept])
    if "x-amzn-trace-id" not in headers:
        head += _trace_header()
    return head + b"\r\n\r\n" + request.body


class _Exchange:
    """One request in flight between a client connection and an instance."""

    __slots__ = ("balancer", "carrier", "conn", "done", "expect_body", "instance", "keep_alive", "timer")

    def __init__(
        self, balancer: Balancer, conn: HttpConnection, instance: Instance, request: Request
    ) -> None:
        self.balancer = balancer
        self.conn = conn
        self.instance = instance
        self.keep_alive = request.keep_alive
        self.expect_body = request.method != "HEAD"
        self.done = False
        self.carrier: UpstreamConnection | asyncio.Task[None] | None = None
        self.timer = balancer.loop.call_later(balancer.config.upstream_timeout, self.on_timeout)

    def _finish(self) -> None:
        self.done = True
        self.timer.cancel()
        self.balancer.in_flight -= 1
        self.instance.in_flight -= 1

    def on_response(self, head: bytes, body: bytes, status: int) -> None:
        if self.done:
            return
        self._finish()
        self.conn.send(head + b"\r\n\r\n" + body, self.keep_alive)

    def on_failure(self, status: int, message: str) -> None:
        if self.done:
            return
        self._finish()
        self.balancer.errors += 1
        self.conn.send(_error(status, message, self.instance.id), self.keep_alive)

    def on_timeout(self) -> None:
        if self.done:
            return
        carrier = self.carrier
        if isinstance(carrier, UpstreamConnection):
            carrier.abort()  # its late response must never be read as the answer to a later request
        elif carrier is not None:
            carrier.cancel()
        self.on_failure(504, f"instance did not answer within {self.balancer.config.upstream_timeout:g}s")


class Balancer:
    """The HTTP handler of the fleet endpoint (create it inside the running event loop)."""

    def __init__(self, group: Group, config: FleetConfig) -> None:
        self.group = group
        self.config = config
        self.requests = 0
        self.errors = 0
        self.in_flight = 0
        self._next = 0
        self.loop = asyncio.get_running_loop()

    def __call__(self, conn: HttpConnection, request: Request) -> None:
        self.requests += 1
        rotation = self.group.rotation
        if not rotation:
            self.errors += 1
            conn.send(_NO_TARGET, request.keep_alive)
            return
        instance = rotation[self._next % len(rotation)]
        self._next += 1
        pool = instance.pool
        if pool is None or pool.closed:  # cannot happen for an in-service instance; answer, don't hang
            self.errors += 1
            conn.send(_error(502, "instance has no connection pool", instance.id), request.keep_alive)
            return
        self.in_flight += 1
        instance.in_flight += 1
        instance.requests += 1
        pool.request(upstream_request(request), _Exchange(self, conn, instance, request))
