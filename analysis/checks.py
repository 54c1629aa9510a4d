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
"""

from __future__ import annotations

from typing import Any

from analysis.rundir import CONSISTENCY_SLO_KEYS, PHASE_SLO_KEYS, PHASE_SLO_SECTIONS

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
) -> list[dict]:
    """All checks of a run (see the module doc for names, order and rules)."""
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
