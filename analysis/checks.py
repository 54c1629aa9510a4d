"""Checks: the scenario's SLO thresholds applied to what the run measured.

Every check is ``{"name", "passed", "measured", "threshold", "phase", "note"}``; a check passes when
``measured <= threshold`` (``min_rps``: ``measured >= threshold``, where the measure is the
phase's goodput ``ok_rps``, so that fast failures such as throttles cannot meet it) and fails when
nothing could be measured (``measured`` is None; ``note`` says why). Checks, in this order:

* ``run.aborted`` (always): 1 if the run was aborted (a signal, or a ``halt`` line in the journal: a
  stop condition's breach or ``chaoscheck halt``, whose reason is the check's note), threshold 0.
* ``faults.aborted`` (always): faults whose action failed (inject then abort), threshold 0: a chaos
  run whose fault did not happen has not tested what it claims.
* ``consistency.valid`` (always): the consistency checker found no violation (bounds hold, and with a
  ledger V == |A|; see ``analysis.consistency``).
* ``consistency.<key>`` for each key of ``slo.consistency``. Without a server ledger, ``lost`` is
  measured by its lower bound ``lost_min`` and ``duplicated`` by ``overcount_min`` (true counts are at
  least these); ``unexpected`` is held to ``overcount_min`` too (without the store's ledger an
  unexpected application and a duplicated one leave the same trace, V above U).
* ``<phase>.<key>`` for each key of ``slo.baseline`` on the baseline phase, of ``slo.fault`` on every
  fault phase, of ``slo.recovery`` on every recovery phase, in time order. A phase with no requests
  fails with ``measured`` None. A section with no phase of its kind in the run yields one failing
  check ``<section>.<key>`` (e.g. all faults aborted: the fault SLO was never exercised).

Then the resilience checks (``analysis.recovery``, ``analysis.budget``, ``analysis.compare``), each
only when the scenario states its threshold:

* ``recovery.<fault>.ttr_s`` (``slo.resilience.ttr_s``), ``recovery.<fault>.degradation_rs``
  (``max_degradation_rs``) and ``recovery.<fault>.availability`` (``min_availability``, measured >=
  threshold) for each fault with a recovery record, in injection order. A fault that never recovered
  has ``ttr_s`` None (infinite), so its TTR check fails; its degradation check fails too (the area
  up to the end of the load is only a lower bound). With no such fault at all: one failing
  ``recovery.ttr_s`` / ``recovery.degradation_rs`` / ``recovery.availability``.
* ``budget.<phase>.consumed`` (``slo.availability``) for the baseline and each recovery phase:
  the share of the phase's error budget it spent, threshold 1. Fault phases are expected to spend
  budget; they are reported in ``summary.budget`` but not checked.
* ``compare.<recovery phase>.<metric>`` for each metric of ``slo.resilience.compare``: measured is
  the effect (p99 ratio, error-rate shift), threshold the tolerance; it passes unless classified
  ``High`` (``NoData`` fails with ``measured`` None). Without a baseline or a recovery phase: one
  failing ``compare.<metric>``.
"""

from __future__ import annotations

from typing import Any

from analysis.compare import MIN_SAMPLES
from analysis.rundir import (
    AVAILABILITY_SLO,
    CONSISTENCY_SLO_KEYS,
    PHASE_SLO_KEYS,
    PHASE_SLO_SECTIONS,
    RESILIENCE_SLO,
)

_PHASE_MEASURE = {"min_rps": "ok_rps"}
"""SLO key -> phase statistic, where the names differ."""


def evaluate_checks(
    slo: dict[str, dict[str, float]],
    consistency: dict,
    phases: list[dict],
    *,
    aborted: bool = False,
    aborted_faults: int = 0,
    abort_reason: str | None = None,
    faults: list[dict] | None = None,
    budget: dict | None = None,
    comparison: dict | None = None,
) -> list[dict]:
    """All checks of a run (see the module doc for names, order and rules).

    ``faults`` are the summary's fault records (with their ``recovery``), ``budget`` and
    ``comparison`` its sections; each left out skips its checks.
    """
    checks = [
        check("run.aborted", int(aborted), 0, note=abort_reason),
        check("faults.aborted", aborted_faults, 0),
        check("consistency.valid", consistency["valid"], True),
    ]
    limits = slo.get("consistency", {})
    for key in CONSISTENCY_SLO_KEYS:
        if key in limits:
            measured, note = _consistency_measure(consistency, key)
            checks.append(check(f"consistency.{key}", measured, limits[key], note=note))

    for section in PHASE_SLO_SECTIONS:
        limits = slo.get(section, {})
        if limits and not any(p["kind"] == section for p in phases):
            for key in _ordered(limits):
                note = f"no {section} phase in this run"
                checks.append(check(f"{section}.{key}", None, limits[key], section, note=note))
    for phase in phases:
        limits = slo.get(phase["kind"], {})
        for key in _ordered(limits):
            if phase["requests"]:
                measured, note = phase.get(_PHASE_MEASURE.get(key, key)), None
            else:
                measured, note = None, "no requests in this phase"
            checks.append(
                check(
                    f"{phase['name']}.{key}",
                    measured,
                    limits[key],
                    phase["name"],
                    at_least=key == "min_rps",
                    note=note,
                )
            )
    resilience = slo.get(RESILIENCE_SLO) or {}
    if faults is not None:
        checks += _recovery_checks(resilience, faults)
    if budget is not None and slo.get(AVAILABILITY_SLO) is not None:
        checks += _budget_checks(budget)
    if comparison is not None:
        checks += _compare_checks(resilience.get("compare") or {}, comparison)
    return checks


def check(
    name: str,
    measured: Any,
    threshold: Any,
    phase: str | None = None,
    *,
    at_least: bool = False,
    note: str | None = None,
) -> dict:
    """One check record. Booleans compare for equality; numbers by <= (or >= when ``at_least``)."""
    if measured is None:
        passed = False
    elif isinstance(threshold, bool):
        passed = measured == threshold
    else:
        passed = measured >= threshold if at_least else measured <= threshold
    return {
        "name": name,
        "passed": bool(passed),
        "measured": measured,
        "threshold": threshold,
        "phase": phase,
        "note": note,
    }


def _consistency_measure(consistency: dict, key: str) -> tuple[Any, str | None]:
    if consistency["ledger"] or key == "read_violations":
        return consistency[key], None
    bounds = consistency["bounds"]
    if key == "lost":
        return bounds["lost_min"], "no server ledger: lower bound max(0, L - V)"
    if key == "duplicated":
        return bounds["overcount_min"], "no server ledger: lower bound max(0, V - U)"
    # V - U > 0 is the only trace an unexpected application leaves without the store's ledger (it
    # cannot be told apart from a duplicated one), so both are held to the same bound.
    return bounds["overcount_min"], "no server ledger: lower bound max(0, V - U), shared with duplicated"


def _ordered(limits: dict[str, float]) -> list[str]:
    return [key for key in PHASE_SLO_KEYS if key in limits]


_RECOVERY_CHECKS = (
    ("ttr_s", "ttr_s", "ttr_s", False),
    ("max_degradation_rs", "degradation_rs", "degradation_rs", False),
    ("min_availability", "availability", "availability", True),
)
"""(SLO key, check suffix, recovery record field, at least) of the per-fault checks, in order."""

_UNRECOVERED = {
    "ttr_s": "no recovery point before the load ended: TTR is infinite",
    "degradation_rs": "no recovery point before the load ended: its area to the load's end is a lower bound",
}
"""Why a fault that never recovered fails these checks whatever they measured."""


def _recovery_checks(resilience: dict, faults: list[dict]) -> list[dict]:
    measured_faults = [f for f in faults if f.get("recovery") is not None]
    checks = []
    for key, suffix, field, at_least in _RECOVERY_CHECKS:
        if key not in resilience:
            continue
        limit = resilience[key]
        if not measured_faults:
            note = "no effective fault in this run"
            checks.append(check(f"recovery.{suffix}", None, limit, at_least=at_least, note=note))
            continue
        for fault in measured_faults:
            recovery = fault["recovery"]
            result = check(
                f"recovery.{fault['name']}.{suffix}",
                recovery[field],
                limit,
                fault["name"],
                at_least=at_least,
                note=recovery.get("note") if recovery[field] is None else None,
            )
            if not recovery["recovered"] and field in _UNRECOVERED:
                result["passed"] = False
                result["note"] = _UNRECOVERED[field]
            checks.append(result)
    return checks


def _budget_checks(budget: dict) -> list[dict]:
    checks = []
    for phase in budget["phases"]:
        if phase["kind"] not in ("baseline", "recovery"):
            continue
        note = None if phase["consumed"] is not None else "no events in this phase"
        checks.append(
            check(f"budget.{phase['name']}.consumed", phase["consumed"], 1, phase["name"], note=note)
        )
    return checks


def _compare_checks(limits: dict, comparison: dict) -> list[dict]:
    checks = []
    metrics = [m for m in ("p99_ms", "error_rate") if m in limits]
    if metrics and not comparison["phases"]:
        for metric in metrics:
            note = comparison["note"] or "nothing to compare"
            checks.append(check(f"compare.{metric}", None, limits[metric], note=note))
    for phase in comparison["phases"]:
        for metric in metrics:
            judged = phase["metrics"][metric]
            label = judged["classification"]
            result = check(
                f"compare.{phase['name']}.{metric}", judged["effect"], limits[metric], phase["name"]
            )
            result["passed"] = label != "High" and judged["effect"] is not None
            if label == "NoData":
                result["note"] = (
                    f"NoData: under {MIN_SAMPLES} seconds with a value in {phase['name']} or the baseline"
                )
            else:
                result["note"] = (
                    f"{label}: Mann-Whitney p={judged['p_value']}, Hodges-Lehmann shift {judged['shift']}"
                )
            checks.append(result)
    return checks
