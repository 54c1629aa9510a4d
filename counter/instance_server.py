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

On EC2 (``counter/template.yaml``) uvicorn's own process manager runs it with several workers:
``uvicorn --factory counter.instance_server:create_app --workers N ...``; each worker builds its app
from the environment: the store from ``CHAOSCHECK_DB`` or ``CHAOSCHECK_TABLE``
(``counter.dynamodb_store.store_from_env``; an explicit ``--db`` always means SQLite), X-Ray when
``CHAOSCHECK_XRAY=1`` (``counter.xray``). Without ``CHAOSCHECK_XRAY`` nothing is traced and the
request path is exactly the untraced one.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from counter.app import Response, handle
from counter.dynamodb_store import store_from_env
from counter.store import Store
from counter.xray import Tracing, tracing_from_env

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

KEEP_ALIVE_SECONDS = 75  # the ALB's default idle timeout is 60 s; the local balancer's is a few seconds
INSTANCE_ID_ENV = "CHAOSCHECK_INSTANCE_ID"
SERVICE = "chaoscheck-counter-fleet"


class CounterASGI:
    """The ASGI application: one store and one instance id per process, traced when ``tracing``."""

    def __init__(self, store: Store, served_by: str, tracing: Tracing | None = None) -> None:
        self.tracing = tracing
        self.store = tracing.store(store) if tracing is not None else store
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
        if self.tracing is None or scope["path"] == "/health":  # health checks are not worth a trace
            response = handle(scope["method"], scope["path"], headers, body, self.store, self.served_by)
        else:
            response = self._traced(scope["method"], scope["path"], headers, body)
        raw_headers = [(name.lower().encode(), value.encode()) for name, value in response.headers.items()]
        raw_headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": response.body})

    def _traced(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        """One request in its own segment. Synchronous from begin to end (no ``await``), so the SDK's
        thread-local context holds this request's segment only, even with many on the event loop."""
        assert self.tracing is not None
        with self.tracing.request(method, path, headers, served_by=self.served_by) as trace:
            response = handle(method, path, headers, body, self.store, self.served_by)
            trace.status = response.status
        echo = trace.response_header()
        if echo is not None:
            response.headers["X-Amzn-Trace-Id"] = echo
        return response


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
    parser.add_argument(
        "--db", help="SQLite file shared by all instances (default: CHAOSCHECK_DB, else CHAOSCHECK_TABLE)"
    )
    args = parser.parse_args(argv)

    if os.environ.get("CHAOSCHECK_PARENT_PID"):
        from counter.local.lifeline import die_with_parent

        die_with_parent()

    import uvicorn

    # The local stack gives an instance a finite capacity through the environment (nothing when unset).
    from counter.local.capacity import from_environment

    app = from_environment(create_app(args.db))
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


def create_app(db_path: str | None = None) -> CounterASGI:
    """The app as the environment describes it (see the module docstring); uvicorn's ``--factory``."""
    instance_id = os.environ.get(INSTANCE_ID_ENV) or f"instance-{os.getpid()}"
    return CounterASGI(store_from_env(db_path), instance_id, tracing_from_env(SERVICE, "fleet"))


if __name__ == "__main__":
    main()
