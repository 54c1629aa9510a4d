"""Stand-ins for the local stack's control client, for tests that need no processes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class FakeControl:
    """An in-memory fleet and function with the three control methods ``LocalBackend`` uses.

    Every call is recorded with its monotonic time, so scheduler tests can measure when a fault fired.
    ``fail_next`` maps a method name to an exception raised by its next call.
    """

    def __init__(self, instances: int = 3, reserved_concurrency: int | None = 12) -> None:
        self.instances = [
            {"id": f"i-{n:04d}", "state": "in_service", "pid": 1000 + n} for n in range(1, instances + 1)
        ]
        self.reserved_concurrency = reserved_concurrency
        self.calls: list[tuple[int, str, tuple[Any, ...]]] = []
        self.fail_next: dict[str, Exception] = {}
        self.on_call: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _record(self, method: str, *args: Any) -> None:
        with self._lock:
            self.calls.append((time.monotonic_ns(), method, args))
        hook = self.on_call.get(method)
        if hook is not None:
            hook(*args)
        error = self.fail_next.pop(method, None)
        if error is not None:
            raise error

    def state(self) -> dict[str, Any]:
        self._record("state")
        return {
            "fleet": {"instances": [dict(i) for i in self.instances], "desired": len(self.instances)},
            "lambda": {"reserved_concurrency": self.reserved_concurrency, "active": 0},
        }

    def signal_instance(self, instance_id: str, sig: str = "KILL") -> None:
        self._record("signal_instance", instance_id, sig)
        for instance in self.instances:
            if instance["id"] == instance_id and instance["state"] != "terminated":
                instance["state"] = "terminated"
                return
        raise RuntimeError(f"no running instance {instance_id}")

    def set_reserved_concurrency(self, value: int | None) -> int | None:
        self._record("set_reserved_concurrency", value)
        previous, self.reserved_concurrency = self.reserved_concurrency, value
        return previous

    def times_of(self, method: str) -> list[int]:
        """Monotonic ns of each call of ``method``."""
        return [t for t, name, _ in self.calls if name == method]

    def args_of(self, method: str) -> list[tuple[Any, ...]]:
        return [args for _, name, args in self.calls if name == method]


class FileControl:
    """A control whose function state lives in a JSON file, so it outlives a killed process."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        return json.loads(self.path.read_text())

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.path)

    def state(self) -> dict[str, Any]:
        return self._load()

    def signal_instance(self, instance_id: str, sig: str = "KILL") -> None:
        raise NotImplementedError

    def set_reserved_concurrency(self, value: int | None) -> int | None:
        state = self._load()
        previous = state["lambda"]["reserved_concurrency"]
        state["lambda"]["reserved_concurrency"] = value
        self._save(state)
        return previous
