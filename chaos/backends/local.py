"""The local backend: every registered action carried out for real through the local stack's control API.

It drives the stack only through its control client (``StackControl``), so it works with the real
client of ``counter.local.client`` and with any stand-in that has the same methods:

- ``terminate-instance``: mode ``ec2`` is a ``SIGKILL`` underneath the group (the health check notices,
  the group replaces); mode ``asg`` is the group terminating the instance itself (deregistered first,
  then stopped), replaced at once or, with ``decrement_desired``, not replaced. One-shot: no undo.
- ``stop-instance``: ``SIGSTOP`` for the duration, then ``SIGCONT`` to exactly the stopped instances.
- ``set-capacity``: the group's desired capacity, restored to the captured value.
- ``throttle-lambda``: the pool's reserved concurrency (429s), restored exactly, ``null`` included.
- ``lambda-latency`` / ``lambda-errors``: the pool's fault settings, applied per invocation inside the
  environments; each restored to its captured previous setting (usually ``null``).

Fleet faults choose their victims with ``chaos.blast_radius.choose_instances`` and the backend's seeded
generator, among the instances in service, within the group's minimum and ``max_share``. A target
selector must match the stack's own group (``fleet``) or function (``counter``) and their tags.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from chaos.actions import (
    LAMBDA_ERRORS,
    LAMBDA_LATENCY,
    SET_CAPACITY,
    STOP_INSTANCE,
    TERMINATE_INSTANCE,
    THROTTLE_LAMBDA,
    InstanceCount,
    LambdaErrorsParams,
    LambdaLatencyParams,
    SetCapacityParams,
    StopInstanceParams,
    TargetSelector,
    TerminateInstanceParams,
    ThrottleLambdaParams,
)
from chaos.backends.interface import Backend, Injection, InjectionError
from chaos.blast_radius import DEFAULT_MAX_SHARE, choose_instances
from counter.local.client import ControlError, LocalStack, StackError
from counter.local.config import FUNCTION_NAME, GROUP_NAME, RESOURCE_TAGS

log = logging.getLogger(__name__)

IN_SERVICE = "in_service"
LAMBDA_TARGET = "lambda"
"""``Injection.target`` of the function faults (the journal's ``target``), as it has always been."""
GONE_STATUSES = frozenset({404, 409})
"""Control API answers meaning the instance is no longer there to resume (unknown, or no process)."""


class StackControl(Protocol):
    """The part of the local stack's control client this backend uses (``counter.local.client``)."""

    def state(self) -> dict[str, Any]:
        """``{"fleet": {"name", "tags", "desired", "min", "max", "instances": [...]}, "lambda": {...}}``."""
        ...

    def signal_instance(self, instance_id: str, sig: str = "KILL") -> Any:
        """Send ``sig`` to the process of one fleet instance."""
        ...

    def terminate_instance(self, instance_id: str, decrement_desired: bool = False) -> Any:
        """The group terminates the instance (deregistered first); replaced unless ``decrement_desired``."""
        ...

    def set_desired_capacity(self, desired: int) -> int:
        """Set the group's desired capacity; returns the previous value."""
        ...

    def set_reserved_concurrency(self, value: int | None) -> int | None:
        """Set the function's reserved concurrency (``None``: unreserved); returns the previous value."""
        ...

    def set_lambda_fault(self, kind: str, setting: dict[str, Any] | None) -> dict[str, Any] | None:
        """Set the ``latency`` or ``errors`` fault of the function (``None``: off); returns the previous."""
        ...


Planner = Callable[[dict[str, Any]], Injection]
Applier = Callable[[dict[str, Any], Injection], None]
Restorer = Callable[[Injection], dict[str, Any]]


class LocalBackend(Backend):
    """Injects faults into a running local stack.

    ``seed`` seeds the choice of instances (pass the scenario's ``seed``), so that a run can be
    repeated with the same victims given the same fleet. ``max_share`` is the blast radius: the largest
    share of the in-service instances one fault may hit. ``state_file`` is the state file of a stack
    started by ``chaoscheck stack up``: with it, ``descriptor()`` lets ``chaoscheck rollback`` reach
    the stack again after a crash (a stack the run started itself dies with the run).
    """

    name: ClassVar[str] = "local"
    actions: ClassVar[frozenset[str]] = frozenset(
        {
            TERMINATE_INSTANCE.name,
            STOP_INSTANCE.name,
            SET_CAPACITY.name,
            THROTTLE_LAMBDA.name,
            LAMBDA_LATENCY.name,
            LAMBDA_ERRORS.name,
        }
    )

    def __init__(
        self,
        control: StackControl,
        *,
        seed: int | None = None,
        max_share: float = DEFAULT_MAX_SHARE,
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if not 0 < max_share <= 1:
            raise ValueError(f"expected max_share above 0 and at most 1, got {max_share!r}")
        self._control = control
        self._random = random.Random(seed)
        self.max_share = max_share
        self.state_file = None if state_file is None else Path(os.path.abspath(state_file))
        self._steps: dict[str, tuple[Planner, Applier, Restorer]] = {
            TERMINATE_INSTANCE.name: (self._plan_terminate, self._apply_terminate, self._rollback_terminate),
            STOP_INSTANCE.name: (self._plan_stop, self._apply_stop, self._rollback_stop),
            SET_CAPACITY.name: (self._plan_capacity, self._apply_capacity, self._rollback_capacity),
            THROTTLE_LAMBDA.name: (self._plan_throttle, self._apply_throttle, self._rollback_throttle),
            LAMBDA_LATENCY.name: (self._plan_latency, self._apply_latency, self._rollback_latency),
            LAMBDA_ERRORS.name: (self._plan_errors, self._apply_errors, self._rollback_errors),
        }

    # the Backend interface ---------------------------------------------------------------------------

    def plan(self, action: str, params: dict[str, Any]) -> Injection:
        return self._steps[self._supported(action)][0](params)

    def apply(self, action: str, params: dict[str, Any], injection: Injection) -> None:
        self._steps[self._supported(action)][1](params, injection)

    def rollback(self, action: str, injection: Injection) -> dict[str, Any]:
        return self._steps[self._supported(action)][2](injection)

    def descriptor(self) -> dict[str, Any]:
        """``{"state_file": PATH}`` for a stack attached through its state file, else ``{}``."""
        return {} if self.state_file is None else {"state_file": str(self.state_file)}

    @classmethod
    def from_descriptor(cls, config: dict[str, Any] | None) -> LocalBackend:
        """The backend on the stack a journal's ``backend_config`` names; ``InjectionError`` (one line)
        when there is no state file or no stack answers there."""
        path = (config or {}).get("state_file")
        if not path:
            raise InjectionError(
                "expected a state_file in the local backend's config, got none: the run started its own "
                "stack, which stopped with it, so no fault of it is still in force"
            )
        try:
            stack = LocalStack.from_state_file(Path(path))
        except (StackError, ControlError, KeyError, ValueError, OSError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise InjectionError(
                f"expected a running local stack described by {path}, got none: {reason}"
            ) from None
        return cls(stack.control, state_file=path)

    def _supported(self, action: str) -> str:
        if action not in self.actions:
            raise InjectionError(f"the local backend has no action {action!r}")
        return action

    # what the stack is -------------------------------------------------------------------------------

    def _fleet(self, target: TargetSelector) -> dict[str, Any]:
        """The group's part of ``state()``, once the selector is checked against it."""
        fleet = self._control.state()["fleet"]
        _check_target(target, "group", fleet.get("name", GROUP_NAME), fleet.get("tags", RESOURCE_TAGS))
        return fleet

    def _function(self, target: TargetSelector) -> dict[str, Any]:
        """The function's part of ``state()``, once the selector is checked against it."""
        function = self._control.state()["lambda"]
        _check_target(
            target, "function", function.get("name", FUNCTION_NAME), function.get("tags", RESOURCE_TAGS)
        )
        return function

    def _choose(self, fleet: dict[str, Any], selection: InstanceCount) -> list[str]:
        in_service = [str(i["id"]) for i in fleet["instances"] if i.get("state") == IN_SERVICE]
        return choose_instances(
            in_service, selection, minimum=int(fleet["min"]), max_share=self.max_share, rng=self._random
        )

    # terminate-instance: one-shot, the group repairs -------------------------------------------------

    def _plan_terminate(self, params: dict[str, Any]) -> Injection:
        checked = TerminateInstanceParams.model_validate(params)
        fleet = self._fleet(checked.target)
        chosen = self._choose(fleet, checked)
        if checked.decrement_desired:
            desired, minimum = int(fleet["desired"]), int(fleet["min"])
            if desired - len(chosen) < minimum:
                raise InjectionError(
                    f"blast radius: expected the desired capacity to stay at or above the group's minimum "
                    f"of {minimum}, got {desired} - {len(chosen)} = {desired - len(chosen)}"
                )
        return Injection(target=",".join(chosen), undo=None)

    def _apply_terminate(self, params: dict[str, Any], injection: Injection) -> None:
        checked = TerminateInstanceParams.model_validate(params)
        for instance_id in injection.target.split(","):
            if checked.mode == "asg":
                self._control.terminate_instance(instance_id, decrement_desired=checked.decrement_desired)
            else:
                self._control.signal_instance(instance_id, sig="KILL")

    def _rollback_terminate(self, injection: Injection) -> dict[str, Any]:
        return {"restored": None, "reason": "one-shot: the group replaces terminated instances"}

    # stop-instance: frozen for the duration, then exactly those resumed ------------------------------

    def _plan_stop(self, params: dict[str, Any]) -> Injection:
        checked = StopInstanceParams.model_validate(params)
        chosen = self._choose(self._fleet(checked.target), checked)
        return Injection(target=",".join(chosen), undo={"instance_ids": chosen})

    def _apply_stop(self, params: dict[str, Any], injection: Injection) -> None:
        for instance_id in injection.target.split(","):
            self._control.signal_instance(instance_id, sig="STOP")

    def _rollback_stop(self, injection: Injection) -> dict[str, Any]:
        ids = (injection.undo or {}).get("instance_ids")
        if not ids:
            raise InjectionError("expected the stopped instance ids in the undo record, got none")
        resumed: list[str] = []
        gone: list[str] = []
        failed: list[Exception] = []
        for instance_id in ids:  # every one is tried, so one unreachable instance does not freeze the rest
            try:
                self._control.signal_instance(instance_id, sig="CONT")
            except ControlError as exc:
                if exc.status not in GONE_STATUSES:
                    failed.append(exc)
                    continue
                gone.append(instance_id)  # died or replaced since: nothing left to resume
            else:
                resumed.append(instance_id)
        if failed:
            raise failed[0]
        return {"resumed": resumed, "gone": gone}

    # set-capacity: the desired capacity for the duration, then the captured one ----------------------

    def _plan_capacity(self, params: dict[str, Any]) -> Injection:
        checked = SetCapacityParams.model_validate(params)
        fleet = self._fleet(checked.target)
        desired, minimum, maximum = int(fleet["desired"]), int(fleet["min"]), int(fleet["max"])
        if not minimum <= checked.desired <= maximum:
            raise InjectionError(
                f"expected desired between the group's minimum {minimum} and maximum {maximum}, "
                f"got {checked.desired}"
            )
        # min and max are captured for the record: the local stack never changes them.
        return Injection(
            target=str(fleet.get("name", GROUP_NAME)),
            undo={"desired": desired, "min": minimum, "max": maximum},
        )

    def _apply_capacity(self, params: dict[str, Any], injection: Injection) -> None:
        replaced = self._control.set_desired_capacity(SetCapacityParams.model_validate(params).desired)
        planned = (injection.undo or {}).get("desired")
        if replaced != planned:
            log.warning("desired capacity was %r when set, %r when planned", replaced, planned)

    def _rollback_capacity(self, injection: Injection) -> dict[str, Any]:
        previous = (injection.undo or {}).get("desired")
        if not isinstance(previous, int):
            raise InjectionError("expected the previous desired capacity in the undo record, got none")
        replaced = self._control.set_desired_capacity(previous)
        return {"desired": previous, "replaced": replaced}

    # throttle-lambda: hold a reserved concurrency, then restore the previous one exactly -------------

    def _plan_throttle(self, params: dict[str, Any]) -> Injection:
        checked = ThrottleLambdaParams.model_validate(params)
        previous = self._function(checked.target)["reserved_concurrency"]
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

    # lambda-latency and lambda-errors: a fault setting of the pool, restored exactly -----------------

    def _plan_fault(self, kind: str, target: TargetSelector) -> Injection:
        faults = self._function(target).get("faults")
        if not isinstance(faults, dict) or kind not in faults:
            raise InjectionError(f"expected the local stack to report its lambda {kind} fault, got none")
        return Injection(target=LAMBDA_TARGET, undo={kind: faults[kind]})

    def _set_fault(self, kind: str, setting: dict[str, Any], injection: Injection) -> None:
        replaced = self._control.set_lambda_fault(kind, setting)
        planned = (injection.undo or {}).get(kind)
        if replaced != planned:
            log.warning("the lambda %s fault was %r when set, %r when planned", kind, replaced, planned)

    def _restore_fault(self, kind: str, injection: Injection) -> dict[str, Any]:
        if injection.undo is None or kind not in injection.undo:
            raise InjectionError(f"expected the previous lambda {kind} fault in the undo record, got none")
        previous = injection.undo[kind]
        replaced = self._control.set_lambda_fault(kind, previous)
        return {kind: previous, "replaced": replaced}

    def _plan_latency(self, params: dict[str, Any]) -> Injection:
        return self._plan_fault("latency", LambdaLatencyParams.model_validate(params).target)

    def _apply_latency(self, params: dict[str, Any], injection: Injection) -> None:
        checked = LambdaLatencyParams.model_validate(params)
        self._set_fault("latency", {"delay_s": checked.delay, "percent": checked.percent}, injection)

    def _rollback_latency(self, injection: Injection) -> dict[str, Any]:
        return self._restore_fault("latency", injection)

    def _plan_errors(self, params: dict[str, Any]) -> Injection:
        return self._plan_fault("errors", LambdaErrorsParams.model_validate(params).target)

    def _apply_errors(self, params: dict[str, Any], injection: Injection) -> None:
        checked = LambdaErrorsParams.model_validate(params)
        self._set_fault("errors", {"status": checked.status, "percent": checked.percent}, injection)

    def _rollback_errors(self, injection: Injection) -> dict[str, Any]:
        return self._restore_fault("errors", injection)


def _check_target(target: TargetSelector, kind: str, name: str, tags: dict[str, str]) -> None:
    """Refuse a selector that does not match the stack's only group (or function) and its tags."""
    if target.name is not None and target.name != name:
        raise InjectionError(
            f"expected target {kind} {target.name!r}, got the local stack's only {kind} {name!r}"
        )
    if target.tags is not None:
        missing = {key: value for key, value in target.tags.items() if tags.get(key) != value}
        if missing:
            wanted, found = _tags(target.tags), _tags(tags)
            raise InjectionError(
                f"expected target {kind} tagged {wanted}, got {kind} {name!r} tagged {found}"
            )


def _tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(tags.items())) or "nothing"
