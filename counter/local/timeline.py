"""The stack's timeline: every ``sample_interval``, one row of counts, kept in a bounded ring.

A row has exactly the columns of ``chaoscheck.runformat.TIMELINE_SCHEMA`` (the test suite checks the
names against the schema; the schema module is not imported here so that the stack process does not
load pyarrow). The ring keeps the last hour.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import Any

from counter.local.balancer import Balancer
from counter.local.fleet import IN_SERVICE, PENDING, UNHEALTHY, Group
from counter.local.lambda_pool import FunctionPool

RETENTION_SECONDS = 3600.0


class Timeline:
    """Samples the group, the balancer and the function; the control API serves the samples."""

    def __init__(self, interval: float, group: Group, balancer: Balancer, pool: FunctionPool) -> None:
        self.interval = interval
        self.group = group
        self.balancer = balancer
        self.pool = pool
        self.samples: deque[dict[str, Any]] = deque(maxlen=max(1, math.ceil(RETENTION_SECONDS / interval)))
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> dict[str, Any]:
        counts = self.group.counts()
        row = {
            "ts_ns": time.time_ns(),
            "fleet_desired": self.group.desired,
            "fleet_pending": counts[PENDING],
            "fleet_in_service": counts[IN_SERVICE],
            "fleet_unhealthy": counts[UNHEALTHY],
            "fleet_requests": self.balancer.requests,
            "fleet_errors": self.balancer.errors,
            "lambda_reserved": self.pool.reserved,
            "lambda_active": self.pool.active,
            "lambda_environments": len(self.pool.environments),
            "lambda_requests": self.pool.requests,
            "lambda_throttles": self.pool.throttles,
            "lambda_cold_starts": self.pool.cold_starts,
        }
        self.samples.append(row)
        return row

    def since(self, ts_ns: int | None = None) -> list[dict[str, Any]]:
        if ts_ns is None:
            return list(self.samples)
        return [row for row in self.samples if row["ts_ns"] > ts_ns]

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self.sample()
            next_at += self.interval
            delay = next_at - loop.time()
            if delay < 0:  # fell behind (a stalled loop): skip the missed slots rather than burst
                next_at = loop.time() + self.interval
                delay = self.interval
            await asyncio.sleep(delay)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
