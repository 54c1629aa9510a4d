"""The counter on an EC2 instance: a raw ASGI app around :func:`counter.app.handle`, served by uvicorn.

No web framework: the contract already lives in ``app.handle`` and a framework would only add CPU per
request on a 2-core machine that the balancer, the instances and the load generator share.
uvicorn runs with httptools and uvloop, no access log, and a keep-alive timeout far above the
balancer's ``idle_timeout``, so that the instance never closes a pooled connection the balancer may
be about to reuse (see shared/reference/local-stack-calibration.md).

Run: ``python -m counter.instance_server --port N --db PATH`` (or ``--fd N`` for a listening socket
inherited from the parent, which is how the local stack starts it). The instance id comes from
``CHAOSCHECK_INSTANCE_ID``; ``CHAOSCHECK_INSTANCE_CONCURRENCY`` and ``CHAOSCHECK_SERVICE_TIME`` give it a
finite capacity (``counter.local.capacity``).
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from counter.app import handle
from counter.sqlite_store import SQLiteStore
from counter.store import Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

KEEP_ALIVE_SECONDS = 75  # the ALB's default idle timeout is 60 s; the local balancer's is a few seconds
INSTANCE_ID_ENV = "CHAOSCHECK_INSTANCE_ID"


class CounterASGI:
    """The ASGI application: one store and one instance id per process."""

    def __init__(self, store: Store, served_by: str) -> None:
        self.store = store
        self.served_by = served_by

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        response = handle(scope["method"], scope["path"], headers, body, self.store, self.served_by)
        raw_headers = [(name.lower().encode(), value.encode()) for name, value in response.headers.items()]
        raw_headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the counter on one instance.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT")
    where.add_argument("--fd", type=int, help="serve on this inherited, already listening socket")
    parser.add_argument("--db", required=True, help="SQLite file shared by all instances")
    args = parser.parse_args(argv)

    if os.environ.get("CHAOSCHECK_PARENT_PID"):
        from counter.local.lifeline import die_with_parent

        die_with_parent()

    import uvicorn

    instance_id = os.environ.get(INSTANCE_ID_ENV) or f"instance-{os.getpid()}"
    # The local stack gives an instance a finite capacity through the environment (nothing when unset).
    from counter.local.capacity import from_environment

    app = from_environment(CounterASGI(SQLiteStore(args.db), instance_id))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port or 0,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    if args.fd is not None:
        server.run(sockets=[socket.socket(fileno=args.fd)])
    else:
        server.run()


if __name__ == "__main__":
    main()
