"""The per-process buffer between the users and the ledger.

Users (through Locust's request event) and the open model's omissions append rows here; the plugin
takes them away in batches: to the ledger file in a single process, to the master in a worker's
report. Keeping the buffer in its own module lets users and plugin share it without importing each
other's wiring.
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections.abc import Callable

from loadtests.ledger import Row

COUNTED = ("ok", "fail", "info", "omitted")


class RowSink:
    """Rows not yet shipped, and live counts of outcomes for the web UI."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.counts: dict[str, int] = dict.fromkeys(COUNTED, 0)
        self.enabled = True
        self._pid = 0
        self.worker = ""
        self.key_prefix = ""
        self.sequence = itertools.count()
        self.observer: Callable[[list[Row]], None] | None = None
        """Sees every row once, on ``observe`` or before ``take`` hands it away (the live window)."""
        self._observed = 0
        self.identify()

    def identify(self) -> None:
        """Name this process afresh if it is a new one: Locust forks its workers after importing us,
        and two workers sharing a key prefix would send the same idempotency keys."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self.worker = f"{socket.gethostname()}:{self._pid}"
            self.key_prefix = uuid.uuid4().hex[:8]
            self.sequence = itertools.count()

    def append(self, row: Row, counted_as: str) -> None:
        """Hot path: one append and one counter increment."""
        if self.enabled:
            self.rows.append(row)
            self.counts[counted_as] += 1

    def take(self) -> list[Row]:
        """Every row collected since the last call."""
        rows, self.rows = self.rows, []
        if self.observer is not None and self._observed < len(rows):
            self.observer(rows[self._observed :])
        self._observed = 0
        return rows

    def observe(self) -> None:
        """Show the observer the rows appended since it last saw any (none are taken away)."""
        if self.observer is not None:
            end = len(self.rows)
            if self._observed < end:
                self.observer(self.rows[self._observed : end])
            self._observed = end

    def reset(self) -> None:
        self.rows = []
        self._observed = 0
        self.counts = dict.fromkeys(COUNTED, 0)


sink = RowSink()
