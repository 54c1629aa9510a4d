"""The balancer's building blocks, against real sockets: the pooled upstream client never writes a
request on a connection the instance closed, nor on one idle longer than ``idle_timeout``; the request
it forwards is the client's, headers unchanged."""

from __future__ import annotations

import asyncio

from counter.local.balancer import upstream_request
from counter.local.http1 import Request
from counter.local.upstream import UpstreamConnection, UpstreamPool

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class Recorder:
    """An exchange that records what the pool reports."""

    def __init__(self) -> None:
        self.expect_body = True
        self.done = False
        self.carrier: UpstreamConnection | asyncio.Task[None] | None = None
        self.result: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()

    def on_response(self, head: bytes, body: bytes, status: int) -> None:
        self.done = True
        self.result.set_result((status, body))

    def on_failure(self, status: int, message: str) -> None:
        self.done = True
        self.result.set_result((status, message.encode()))


async def serve(close_idle_after: float | None) -> tuple[asyncio.AbstractServer, list[int]]:
    """A tiny instance: answers every request; closes a connection idle for ``close_idle_after``."""
    accepted = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        try:
            while True:
                try:
                    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), close_idle_after)
                except (TimeoutError, asyncio.IncompleteReadError):
                    return
                writer.write(RESPONSE)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, accepted


async def one(pool: UpstreamPool) -> tuple[int, bytes]:
    exchange = Recorder()
    pool.request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", exchange)
    return await asyncio.wait_for(exchange.result, 2)


def test_a_connection_the_instance_closed_is_not_reused() -> None:
    async def scenario() -> None:
        server, accepted = await serve(close_idle_after=0.1)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool("127.0.0.1", port, idle_timeout=30)
        assert await one(pool) == (200, b"ok")
        assert await one(pool) == (200, b"ok")  # reused while open
        assert accepted[0] == 1
        await asyncio.sleep(0.3)  # the instance closed it meanwhile
        assert await one(pool) == (200, b"ok")
        assert accepted[0] == 2
        pool.close()
        server.close()

    asyncio.run(scenario())


def test_a_connection_idle_longer_than_idle_timeout_is_not_reused() -> None:
    async def scenario() -> None:
        server, accepted = await serve(close_idle_after=None)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool("127.0.0.1", port, idle_timeout=0.1)
        assert await one(pool) == (200, b"ok")
        await asyncio.sleep(0.2)
        assert await one(pool) == (200, b"ok")
        assert accepted[0] == 2
        pool.close()
        server.close()

    asyncio.run(scenario())


def test_a_refused_connection_is_a_502() -> None:
    async def scenario() -> None:
        server, _ = await serve(close_idle_after=None)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        status, message = await one(UpstreamPool("127.0.0.1", port, idle_timeout=1))
        assert status == 502 and b"cannot connect" in message

    asyncio.run(scenario())


def make_request(head: bytes, body: bytes = b"") -> Request:
    lines = head.split(b"\r\n")
    method, target, version = lines[0].split(b" ")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    keep_alive = "close" not in headers.get("connection", "")
    return Request(method.decode(), target.decode(), version, headers, head, body, keep_alive)


def test_forwarded_request_keeps_the_trace_header_and_adds_one_when_absent() -> None:
    traced = (
        b"POST /counters/a/increment HTTP/1.1\r\nHost: x\r\nX-Amzn-Trace-Id: Root=1-abc\r\nContent-Length: 2"
    )
    assert upstream_request(make_request(traced, b"{}")) == traced + b"\r\n\r\n{}"
    plain = b"GET /health HTTP/1.1\r\nHost: x"
    forwarded = upstream_request(make_request(plain))
    assert forwarded.startswith(plain + b"\r\nX-Amzn-Trace-Id: Root=1-")
    assert forwarded.endswith(b"\r\n\r\n")


def test_forwarded_request_drops_hop_by_hop_connection_headers() -> None:
    head = b"GET /health HTTP/1.0\r\nHost: x\r\nConnection: close\r\nX-Amzn-Trace-Id: t"
    assert (
        upstream_request(make_request(head))
        == b"GET /health HTTP/1.1\r\nHost: x\r\nX-Amzn-Trace-Id: t\r\n\r\n"
    )
