"""The local backend: the registered actions carried out through the local stack's control client.

It needs only three methods of the control client (``StackControl``), so it works with the real
client of ``counter.local.client`` and with any stand-in that has them. Kills are real ``SIGKILL``s to
instance processes; the throttle sets the local Lambda pool's reserved concurrency, which the pool
enforces with 429s exactly as AWS does.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from chaos.actions import TERMINATE_INSTANCE, THROTTLE_LAMBDA, TerminateInstanceParams, ThrottleLambdaParams
from chaos.backends.interface import Backend, Injection, InjectionError

log = logging.getLogger(__name__)

IN_SERVICE = "in_service"
LAMBDA_TARGET = "lambda"


class StackControl(Protocol):
    """The part of the local stack's control client this backend uses."""

    def state(self) -> dict[str, Any]:
        """``{"fleet": {"instances": [{"id", "state", ...}]}, "lambda": {"reserved_concurrency"}}``."""
        ...

    def signal_instance(self, instance_id: str, sig: str = "KILL") -> Any:
        """Send ``sig`` to the process of one fleet instance."""
        ...

    def set_reserved_concurrency(self, value: int | None) -> int | None:
        """Set the function's reserved concurrency (``None``: unreserved); returns the previous value."""
        ...


class LocalBackend(Backend):
    """Injects faults into a running local stack.

    ``seed`` seeds the choice of instances to kill (pass the scenario's ``seed``), so that a run can be
    repeated with the same victims given the same fleet.
    """

    name: ClassVar[str] = "local"
    actions: ClassVar[frozenset[str]] = frozenset({TERMINATE_INSTANCE.name, THROTTLE_LAMBDA.name})

    def __init__(self, control: StackControl, *, seed: int | None = None) -> None:
        self._control = control
        self._random = random.Random(seed)
        self._planners: dict[str, Callable[[dict[str, Any]], Injection]] = {
            TERMINATE_INSTANCE.name: self._plan_terminate,
            THROTTLE_LAMBDA.name: self._plan_throttle,
        }
        self._appliers: dict[str, Callable[[dict[str, Any], Injection], None]] = {
            TERMINATE_INSTANCE.name: self._apply_terminate,
            THROTTLE_LAMBDA.name: self._apply_throttle,
        }
        self._rollbacks: dict[str, Callable[[Injection], dict[str, Any]]] = {
            TERMINATE_INSTANCE.name: self._rollback_terminate,
            THROTTLE_LAMBDA.name: self._rollback_throttle,
        }

    def plan(self, action: str, params: dict[str, Any]) -> Injection:
        return self._planners[self._supported(action)](params)

    def apply(self, action: str, params: dict[str, Any], injection: Injection) -> None:
        self._appliers[self._supported(action)](params, injection)

    def rollback(self, action: str, injection: Injection) -> dict[str, Any]:
        return self._rollbacks[self._supported(action)](injection)

    def _supported(self, action: str) -> str:
        if action not in self.actions:
            raise InjectionError(f"the local backend has no action {action!r}")
        return action

    # terminate-instance: one-shot, the group replaces what was killed ------------------------------

    def _plan_terminate(self, params: dict[str, Any]) -> Injection:
        count = TerminateInstanceParams.model_validate(params).count
        instances = self._control.state()["fleet"]["instances"]
        in_service = sorted(str(i["id"]) for i in instances if i.get("state") == IN_SERVICE)
        if len(in_service) < count:
            raise InjectionError(
                f"expected at least {count} in-service instance(s) to terminate, found {len(in_service)}"
            )
        # Sorted first, so the choice depends on the seed and the fleet, not on the order of the listing.
        return Injection(target=",".join(self._random.sample(in_service, count)), undo=None)

    def _apply_terminate(self, params: dict[str, Any], injection: Injection) -> None:
        for instance_id in injection.target.split(","):
            self._control.signal_instance(instance_id, sig="KILL")

    def _rollback_terminate(self, injection: Injection) -> dict[str, Any]:
        return {"restored": None, "reason": "one-shot: the group replaces terminated instances"}

    # throttle-lambda: hold a reserved concurrency, then restore the previous one exactly -----------

    def _plan_throttle(self, params: dict[str, Any]) -> Injection:
        ThrottleLambdaParams.model_validate(params)
        previous = self._control.state()["lambda"]["reserved_concurrency"]
        return Injection(target=LAMBDA_TARGET, undo={"reserved_concurrency": previous})

    def _apply_throttle(self, params: dict[str, Any], injection: Injection) -> None:
        value = ThrottleLambdaParams.model_validate(params).reserved_concurrency
        replaced = self._control.set_reserved_concurrency(value)
        planned = (injection.undo or {}).get("reserved_concurrency")
        if replaced != planned:
            # Someone changed it between plan and apply; the journal holds the planned value.
            log.warning("reserved concurrency was %r when throttled, %r when planned", replaced, planned)

    def _rollback_throttle(self, injection: Injection) -> dict[str, Any]:
        if injection.undo is None or "reserved_concurrency" not in injection.undo:
            raise InjectionError("expected the previous reserved concurrency in the undo record, got none")
        previous = injection.undo["reserved_concurrency"]
        replaced = self._control.set_reserved_concurrency(previous)
        return {"reserved_concurrency": previous, "replaced": replaced}
