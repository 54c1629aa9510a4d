"""Stand-ins for the local stack's control client, for tests that need no processes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from counter.local.client import ControlError


class FakeControl:
    """An in-memory fleet and function with the control methods ``LocalBackend`` uses.

    Every call is recorded with its monotonic time, so scheduler tests can measure when a fault fired.
    ``fail_next`` maps a method name to an exception raised by its next call. Signals and terminations
    change the instances' states the way the real stack would right away (KILL and asg termination:
    ``terminated``; STOP/CONT: the ``stopped`` flag); an unknown or terminated instance answers
    ``ControlError`` 404 or 409 as the real control API does.
    """

    def __init__(
        self,
        instances: int = 3,
        reserved_concurrency: int | None = 12,
        *,
        minimum: int = 1,
        maximum: int = 6,
        name: str = "fleet",
        function: str = "counter",
    ) -> None:
        self.instances = [
            {"id": f"i-{n:04d}", "state": "in_service", "pid": 1000 + n, "stopped": False}
            for n in range(1, instances + 1)
        ]
        self.desired = instances
        self.minimum = minimum
        self.maximum = maximum
        self.name = name
        self.function = function
        self.tags = {"chaoscheck:allowed": "true"}
        self.reserved_concurrency = reserved_concurrency
        self.faults: dict[str, dict[str, Any] | None] = {"latency": None, "errors": None}
        self.calls: list[tuple[int, str, tuple[Any, ...]]] = []
        self.fail_next: dict[str, Exception] = {}
        self.on_call: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._launched = instances

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
            "fleet": {
                "name": self.name,
                "tags": dict(self.tags),
                "desired": self.desired,
                "min": self.minimum,
                "max": self.maximum,
                "instances": [dict(i) for i in self.instances],
            },
            "lambda": {
                "name": self.function,
                "tags": dict(self.tags),
                "reserved_concurrency": self.reserved_concurrency,
                "faults": {kind: None if f is None else dict(f) for kind, f in self.faults.items()},
                "active": 0,
            },
        }

    def _instance(self, instance_id: str) -> dict[str, Any]:
        for instance in self.instances:
            if instance["id"] == instance_id:
                if instance["state"] == "terminated":
                    raise ControlError(409, f"instance {instance_id} has no running process")
                return instance
        raise ControlError(404, f"no instance {instance_id}")

    def signal_instance(self, instance_id: str, sig: str = "KILL") -> dict[str, Any]:
        self._record("signal_instance", instance_id, sig)
        instance = self._instance(instance_id)
        if sig == "KILL":
            instance["state"] = "terminated"
        elif sig in ("STOP", "CONT"):
            instance["stopped"] = sig == "STOP"
        return {"id": instance_id, "pid": instance["pid"], "signal": sig}

    def terminate_instance(self, instance_id: str, decrement_desired: bool = False) -> dict[str, Any]:
        self._record("terminate_instance", instance_id, decrement_desired)
        instance = self._instance(instance_id)
        previous = self.desired
        if decrement_desired:
            if previous - 1 < self.minimum:
                raise ControlError(
                    400, f"expected desired capacity to stay at or above the minimum {self.minimum}"
                )
            self.desired -= 1
        instance["state"] = "terminated"
        if not decrement_desired:  # the group launches a replacement
            self._launched += 1
            n = self._launched
            self.instances.append({"id": f"i-{n:04d}", "state": "pending", "pid": 1000 + n, "stopped": False})
        return {"id": instance_id, "desired": self.desired, "previous_desired": previous}

    def set_desired_capacity(self, desired: int) -> int:
        self._record("set_desired_capacity", desired)
        if not self.minimum <= desired <= self.maximum:
            raise ControlError(400, f"desired must be between min {self.minimum} and max {self.maximum}")
        previous, self.desired = self.desired, desired
        return previous

    def set_reserved_concurrency(self, value: int | None) -> int | None:
        self._record("set_reserved_concurrency", value)
        previous, self.reserved_concurrency = self.reserved_concurrency, value
        return previous

    def set_lambda_fault(self, kind: str, setting: dict[str, Any] | None) -> dict[str, Any] | None:
        self._record("set_lambda_fault", kind, setting)
        previous, self.faults[kind] = self.faults[kind], None if setting is None else dict(setting)
        return previous

    def times_of(self, method: str) -> list[int]:
        """Monotonic ns of each call of ``method``."""
        return [t for t, name, _ in self.calls if name == method]

    def args_of(self, method: str) -> list[tuple[Any, ...]]:
        return [args for _, name, args in self.calls if name == method]

    def changes(self) -> list[str]:
        """Names of the calls that change something (everything but ``state``)."""
        return [name for _, name, _ in self.calls if name != "state"]


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
