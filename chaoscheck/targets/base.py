"""The interface between the orchestrator and whatever runs the counter service."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa


class Target(Protocol):
    """A deployment of the counter service that a run can load, break and observe."""

    name: str
    has_chaos: bool
    """Whether faults can be injected (a chaos backend exists for this target)."""

    def start(self) -> Target:
        """Bring the target up (or attach to it). Returns itself."""
        ...

    def endpoints(self) -> dict[str, str]:
        """Base URLs by tier (``fleet``, ``lambda``)."""
        ...

    def chaos_backend(self) -> Any | None:
        """The chaos backend that injects faults into this target, None when it has none."""
        ...

    def wait_quiet(self, timeout: float) -> bool:
        """Wait until no request is in flight anywhere in the target; False if it did not settle."""
        ...

    def timeline(self, since_ns: int) -> pa.Table | None:
        """The target's sampled state since ``since_ns`` (``TIMELINE_SCHEMA``), if it has one."""
        ...

    def activities(self, since_ns: int) -> pa.Table | None:
        """The target's scaling activities in progress or ended since ``since_ns`` (``SCALING_SCHEMA``).

        Optional: a target without this method, or that answers None, has no ``scaling.parquet``.
        """
        ...

    def server_ops(self, counter: str) -> pa.Table | None:
        """The store's ledger of applied increments for ``counter`` (``SERVER_OPS_SCHEMA``)."""
        ...

    def stop(self) -> None:
        """Release everything the target started. Idempotent."""
        ...

    def log_paths(self) -> list[Path]:
        """Log files the target wrote into the run directory."""
        ...
