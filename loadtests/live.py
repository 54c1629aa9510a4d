"""The live window: per-second aggregates of a load process's last minute, for the stop conditions.

A stop condition ("abort when the error rate over 5 s goes above 50 %") must see the load as it
happens, not the ledger written at the end. Each load process folds the rows its users produced into
one bucket per second (operations, bad ones, a latency histogram; ``chaoscheck.runformat``) and
replaces ``live/<worker>.json`` in the run directory about four times a second; the runner's monitor
(``chaos.stop_conditions``) merges the files of every process. Only rows are read, after the fact, in
a greenlet of its own: the request path is unchanged, and nothing runs unless a scenario asks for a
metric stop condition.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from chaoscheck.runformat import latency_bucket
from loadtests.ledger import Row

KEEP_S = 60
WRITE_INTERVAL_S = 0.25

_KIND, _START, _END, _OUTCOME = 1, 4, 5, 7


class LiveWindow:
    """Buckets of the last ``KEEP_S`` seconds, by the second an operation ended in."""

    def __init__(self, path: Path, worker: str) -> None:
        self.path = path
        self.worker = worker
        self.seconds: dict[int, list] = {}  # second -> [operations, bad operations, {bucket: count}]

    def observe(self, rows: Iterable[Row]) -> None:
        """Fold rows into their seconds; an omitted operation is bad and has no latency."""
        seconds = self.seconds
        for row in rows:
            kind = row[_KIND]
            if kind == "final":
                continue
            end_ns = row[_END]
            second = end_ns // 1_000_000_000
            bucket = seconds.get(second)
            if bucket is None:
                bucket = seconds[second] = [0, 0, {}]
            bucket[0] += 1
            if row[_OUTCOME] != "ok":
                bucket[1] += 1
            if kind != "omitted":
                hist = bucket[2]
                index = latency_bucket((end_ns - row[_START]) / 1e6)
                hist[index] = hist.get(index, 0) + 1

    def write(self, now_ns: int | None = None) -> None:
        """Drop seconds older than ``KEEP_S`` and replace the file atomically."""
        now_s = (now_ns if now_ns is not None else time.time_ns()) // 1_000_000_000
        for second in [s for s in self.seconds if s < now_s - KEEP_S]:
            del self.seconds[second]
        data = {
            "worker": self.worker,
            "written_ns": now_ns if now_ns is not None else time.time_ns(),
            "seconds": {str(s): b for s, b in sorted(self.seconds.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, self.path)
