"""``chaoscheck run --dry-run``: what a run would do, resolved against the real target, changing nothing.

Every fault is planned by its backend exactly as the run would plan it (``Backend.plan`` reads the
target's state and chooses the victims, the safety limits included) but never applied, so a user sees
which instances or function a scenario would hit, what would be restored, and which faults would be
refused, before daring to run it. Plans are made against the target as it is now; at the fault's time
the run plans again.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.backends.interface import InjectionError
from chaos.scenario import Scenario
from chaoscheck.targets.base import Target


@dataclass(frozen=True)
class PlannedFault:
    at_s: float
    action: str
    params: dict
    window: str
    target: str | None
    undo: dict | None
    refused: str | None


def plan_faults(scenario: Scenario, target: Target) -> list[PlannedFault]:
    """Each fault of ``scenario`` planned against ``target`` (already started); nothing is changed."""
    backend = target.chaos_backend() if scenario.faults else None
    planned = []
    for fault in scenario.faults:
        window = f"for {fault.duration:g} s" if fault.duration is not None else f"observed {fault.settle:g} s"
        params = fault.params()
        if backend is None:
            planned.append(
                PlannedFault(fault.at, fault.action, params, window, None, None, "no chaos backend")
            )
            continue
        try:
            injection = backend.plan(fault.action, params)
        except InjectionError as exc:
            planned.append(PlannedFault(fault.at, fault.action, params, window, None, None, str(exc)))
            continue
        planned.append(
            PlannedFault(fault.at, fault.action, params, window, injection.target, injection.undo, None)
        )
    return planned


def describe(scenario: Scenario, target_name: str, planned: list[PlannedFault]) -> list[str]:
    """The timeline as lines of text, for the terminal."""
    load = scenario.load
    if load.rate is not None:
        model = f"open model, {len(load.rate)} rate stage(s) from {load.rate[0].rate:g} ops/s"
    else:
        model = f"{load.users} users, closed model"
    lines = [f"scenario {scenario.name} on target {target_name}: {load.duration:g} s of load ({model})"]
    lines.append(f"{0.0:8.1f} s  load starts")
    for fault in planned:
        shown = ", ".join(f"{k}={v}" for k, v in fault.params.items() if not _unset(v))
        head = f"{fault.at_s:8.1f} s  {fault.action} ({shown}) {fault.window}"
        if fault.refused is not None:
            lines.append(f"{head}: WOULD BE REFUSED: {fault.refused}")
        else:
            restore = f"; rollback restores {fault.undo}" if fault.undo else "; nothing to restore (one-shot)"
            lines.append(f"{head}: would hit {fault.target}{restore}")
    lines.append(f"{load.duration:8.1f} s  load ends")
    for condition in scenario.safety.stop_conditions:
        if condition.metric:
            lines.append(
                f"guard: halt when {condition.metric} > {condition.above:g} over {condition.window:g} s"
            )
        else:
            lines.append(f"guard: halt when CloudWatch alarm {condition.alarm} is in ALARM")
    return lines


def _unset(value: object) -> bool:
    """Defaults not worth showing: nothing, an empty selector, a switch left off (0 is shown)."""
    return value is None or value is False or value == {}
