"""An instance's finite capacity: a concurrency limit and a service time, waited rather than computed.

The local stack runs every instance on one 2-core machine, so an instance cannot be made slower by
giving it work to compute: its CPU is everyone's. Instead each request takes one of the instance's
``concurrency`` slots (the others wait in a first-come queue) and holds it for ``service_time``
(``asyncio.sleep``) before the counter's own handler runs. An instance then serves at most
``concurrency / service_time`` requests per second; above that, requests queue and latency rises with
the load per instance, and a second instance really doubles the capacity, as on EC2.

``GET /health`` bypasses the queue (an ALB health check hits a cheap endpoint; here a saturated
instance stays in service rather than being replaced for being busy).

The instance server (``counter.instance_server``) wraps its application with :func:`from_environment`,
which reads ``CHAOSCHECK_INSTANCE_CONCURRENCY`` and ``CHAOSCHECK_SERVICE_TIME`` (seconds); the fleet
sets them from ``FleetConfig.instance_concurrency`` and ``service_time``. Unset, nothing is wrapped.
This module uses the standard library only: the instance server imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

CONCURRENCY_ENV = "CHAOSCHECK_INSTANCE_CONCURRENCY"
SERVICE_TIME_ENV = "CHAOSCHECK_SERVICE_TIME"
EXEMPT_PATHS = frozenset({"/health"})

Scope = MutableMapping[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]


class InstanceCapacity:
    """ASGI middleware: at most ``concurrency`` requests at once, each held ``service_time`` seconds."""

    def __init__(self, app: App, concurrency: int | None, service_time: float) -> None:
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"expected a concurrency of at least 1, got {concurrency}")
        if service_time < 0:
            raise ValueError(f"expected a service time >= 0, got {service_time}")
        self.app = app
        self.concurrency = concurrency
        self.service_time = service_time
        self._slots: asyncio.Semaphore | None = None  # made in the server's event loop, on first use

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        async with self._slot():
            if self.service_time:
                await asyncio.sleep(self.service_time)
            await self.app(scope, receive, send)

    def _slot(self) -> contextlib.AbstractAsyncContextManager[Any]:
        if self.concurrency is None:
            return contextlib.nullcontext()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._slots


def from_environment(app: App, environ: dict[str, str] | None = None) -> App:
    """``app`` wrapped in :class:`InstanceCapacity` when the environment asks for a limit, else ``app``."""
    env = os.environ if environ is None else environ
    raw_concurrency = env.get(CONCURRENCY_ENV, "").strip()
    raw_service = env.get(SERVICE_TIME_ENV, "").strip()
    concurrency = int(raw_concurrency) if raw_concurrency else None
    service_time = float(raw_service) if raw_service else 0.0
    if concurrency is None and not service_time:
        return app
    return InstanceCapacity(app, concurrency, service_time)


def environment(concurrency: int | None, service_time: float) -> dict[str, str]:
    """The variables that give an instance server this capacity (empty: unlimited, as before)."""
    env: dict[str, str] = {}
    if concurrency is not None:
        env[CONCURRENCY_ENV] = str(concurrency)
    if service_time:
        env[SERVICE_TIME_ENV] = repr(float(service_time))
    return env
