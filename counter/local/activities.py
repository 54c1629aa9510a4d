"""Scaling activities: what the group and the function did to their capacity, and why.

The local counterpart of ``DescribeScalingActivities``: one record per thing that changed capacity,
with its cause, the capacity before and after, when it started and when it ended. An activity is
``in_progress`` until it ends ``successful``, ``failed`` or ``cancelled``. The fields are exactly the
columns of ``chaoscheck.runformat.SCALING_SCHEMA`` (the stack does not import it, so that it does not
load pyarrow); docs/run-format.md#scalingparquet-scaling-activities explains each.

Kinds (``resource`` ``fleet``):
- ``scale-out`` / ``scale-in``: the desired capacity changed (``from``/``to`` are desired capacities),
  by the target tracking policy or by a call of the control API. A scale-out ends when every
  instance it launched is in service (``failed`` if one never got there); a scale-in when its
  instances are terminated.
- ``launch``: one instance (``subject``), from launch to in service; ``parent`` is the scale-out that
  asked for it, ``replaces`` the instance it replaces. ``from``/``to``: instances alive (not
  terminated) before and after.
- ``terminate``: one instance leaving the group (unhealthy, scaled in, terminated on request, died
  while booting); ends when its process is gone.

Kinds (``resource`` ``lambda``; ``from``/``to`` count environments):
- ``cold-start``: a new execution environment, from its start to ready (``failed`` if it died first).
- ``reclaim``: an environment idle for ``idle_timeout``, removed.
- ``terminate``: an environment lost (crashed, timed out, failed its init).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from typing import Any

IN_PROGRESS, SUCCESSFUL, FAILED, CANCELLED = "in_progress", "successful", "failed", "cancelled"
KEEP = 20_000
"""Activities kept (the oldest go first): far more than a run of the local stack makes."""


class Activity:
    """One scaling activity; ``finish`` ends it once."""

    __slots__ = (
        "activity_id",
        "cause",
        "end_ns",
        "from_capacity",
        "kind",
        "metric",
        "parent",
        "replaces",
        "resource",
        "start_ns",
        "status",
        "subject",
        "to_capacity",
    )

    def __init__(
        self,
        activity_id: str,
        resource: str,
        kind: str,
        cause: str,
        from_capacity: int,
        to_capacity: int,
        *,
        subject: str | None = None,
        replaces: str | None = None,
        parent: str | None = None,
        metric: float | None = None,
        start_ns: int | None = None,
    ) -> None:
        self.activity_id = activity_id
        self.resource = resource
        self.kind = kind
        self.cause = cause
        self.from_capacity = from_capacity
        self.to_capacity = to_capacity
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        self.end_ns: int | None = None
        self.status = IN_PROGRESS
        self.subject = subject
        self.replaces = replaces
        self.parent = parent
        self.metric = metric

    @property
    def done(self) -> bool:
        return self.status != IN_PROGRESS

    def finish(self, status: str = SUCCESSFUL, end_ns: int | None = None) -> None:
        """End the activity (the first call wins)."""
        if self.done:
            return
        self.status = status
        self.end_ns = time.time_ns() if end_ns is None else end_ns

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class ActivityLog:
    """Every activity of the stack, oldest first, in a bounded deque."""

    def __init__(self, keep: int = KEEP) -> None:
        self.items: deque[Activity] = deque(maxlen=keep)
        self._ids = itertools.count(1)

    def start(
        self, resource: str, kind: str, cause: str, from_capacity: int, to_capacity: int, **fields: Any
    ) -> Activity:
        activity = Activity(
            f"{resource}-{next(self._ids):06d}", resource, kind, cause, from_capacity, to_capacity, **fields
        )
        self.items.append(activity)
        return activity

    def since(self, ts_ns: int | None = None) -> list[dict[str, Any]]:
        """Activities in progress or ended after ``ts_ns`` (all without it), in start order."""
        return [
            a.to_json()
            for a in self.items
            if ts_ns is None or a.start_ns > ts_ns or a.end_ns is None or a.end_ns > ts_ns
        ]
