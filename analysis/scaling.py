"""Scaling: how fast the stack added capacity when the load asked for it, and whether latency came back.

Reads the run's ledger (``ops.parquet``), its scaling activities (``scaling.parquet``, written by
targets that record them), its timeline, its journal and the scenario's ``load.rate`` stages. Pure:
files in (through ``analysis.rundir``), a JSON-ready record out. docs/scaling.md explains each figure
and how to choose the ``slo.scaling`` limits.

**Load steps.** Every stage of ``load.rate`` that starts above the rate the previous stage ended at
(a step up) or that ramps up is a step; its window runs from its start to the start of the next
stage (or the end of the load). For each step, with t0 its start:

* ``reaction_s``: t0 to the start of the first fleet ``scale-out`` in the window (null: none).
* ``in_service_s``: t0 to the end of that scale-out, i.e. every instance it launched in service
  (null when it never ended, or ended ``failed`` or ``cancelled``).
* ``p95_recovered_s``: t0 to the recovery point: the earliest second from which W = the stability
  window's whole 1 s buckets in a row, inside the window, each have fleet requests and a p95 of raw
  latency at or under the target (``slo.scaling.p95_ms``, else ``slo.baseline.p95_ms``). Buckets go
  by when each request was due (``intended_ns``, else when it was sent); an operation the open model
  omitted counts as a request over the target. 0 when the p95 never went over; null when it never
  recovered before the window ended (too little capacity: ``max`` too low).

**Replacements.** For every instance an effective ``terminate-instance`` fault killed (the journal's
``target``; not with ``decrement_desired``, which asks for no replacement), with t0 the injection:
``detected_s`` to the group's ``terminate`` of it, ``in_service_s`` to the end of the ``launch`` that
``replaces`` it, ``first_2xx_s`` to the first 2xx response (``end_ns``) served by the replacement
(the ledger's ``served_by``).

**Lambda**, per phase (``analysis.phases``) and per load stage: requests, throttles (429) and their
rate, throttles by the scaling rate (``FunctionInvocationRateLimitExceeded``), cold starts (the
``cold-start`` activities that started in it) with their init time, the latency of the requests that
met a cold start (the first request each new environment served), reclaimed environments, and the
peak concurrency and environments of the timeline.

**Checks** (``scaling_checks``): ``scaling.<key>`` for each key of ``slo.scaling`` that is a limit;
each measures the worst case of the run (the slowest step, the slowest replacement, the worst phase)
and fails when it could not be measured (no step, no kill, no activity file; ``note`` says why).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.checks import check
from analysis.columns import contains, isin, labels
from analysis.evidence import RATE_DIGITS, native
from analysis.percentiles import grouped_percentiles, percentiles
from analysis.phases import LOAD_KINDS, LoadArrays, fault_windows, iso, load_arrays, phases_from_journal
from analysis.rundir import Run, read_scaling

BUCKET_NS = 1_000_000_000
DEFAULT_STABILITY_WINDOW_S = 10.0
P95_PERMILLE = 950
BURST_REASON = "FunctionInvocationRateLimitExceeded"
KILL_ACTIONS = ("terminate-instance",)

FLEET_STEP_KEYS = ("reaction_s", "in_service_s", "p95_recovered_s")
"""``slo.scaling`` keys judged on every load step."""
REPLACEMENT_KEYS = {"replacement_in_service_s": "in_service_s", "replacement_first_2xx_s": "first_2xx_s"}
"""``slo.scaling`` key -> field of each replacement record."""
CHECK_ORDER = (
    *FLEET_STEP_KEYS,
    *REPLACEMENT_KEYS,
    "lambda_cold_starts",
    "lambda_cold_start_ms",
    "lambda_throttle_rate",
)


# -- the analysis -------------------------------------------------------------------------------------


def scaling_analysis(run: Run, *, arrays: LoadArrays | None = None) -> dict:
    """The ``scaling`` section of the summary for ``run`` (JSON-ready; see the module doc).

    ``arrays`` (``analysis.phases.load_arrays(run.ops)``) saves converting the rows once more. The
    ledger's string columns (``served_by``, ``error``) are looked at only for the few rows a figure
    needs (a replacement's, a new environment's, a throttle's), never for every request."""
    arrays = arrays if arrays is not None else load_arrays(run.ops)
    lo, hi = int(run.meta["load_started_ns"]), int(run.meta["load_ended_ns"])
    activities = read_scaling(run.path)
    limits = run.slo.get("scaling") or {}
    target = limits.get("p95_ms", (run.slo.get("baseline") or {}).get("p95_ms"))
    window_s = float(limits.get("stability_window", DEFAULT_STABILITY_WINDOW_S))
    notes: list[str] = []
    recorded = activities is not None
    if activities is None:
        notes.append("no scaling.parquet: the target recorded no scaling activities")
        activities = _no_activities()
    rows = _load_positions(run.ops)
    fleet = _Requests.of(arrays, rows, "fleet")
    steps = [
        _step_record(step, lo, activities, fleet, target, window_s)
        for step in load_steps(run.scenario.get("load") or {}, lo, hi)
    ]
    if target is None and steps:
        notes.append("no p95 target (slo.scaling.p95_ms or slo.baseline.p95_ms): p95 recovery not measured")
    timeline = _in_window(run.timeline, lo, hi)
    section = {
        "activities": _activity_counts(activities, lo, hi) if recorded else None,
        "fleet": {
            "p95_target_ms": target,
            "stability_window_s": window_s,
            "steps": steps,
            "replacements": _replacements(run.faults, activities, run.ops, fleet, lo),
            "scale_outs": _count(activities, "fleet", "scale-out", lo, hi),
            "scale_ins": _count(activities, "fleet", "scale-in", lo, hi),
            "peak_desired": _peak(timeline, "fleet_desired"),
            "peak_in_service": _peak(timeline, "fleet_in_service"),
            "activities": _fleet_activities(activities, lo, hi),
        },
        "lambda": _lambda_section(run, _Requests.of(arrays, rows, "lambda"), activities, timeline, lo, hi),
        "notes": notes,
    }
    return native(section, RATE_DIGITS)


def load_steps(load: Mapping[str, Any], load_started_ns: int, load_ended_ns: int) -> list[dict]:
    """The steps up of ``load.rate`` (the resolved scenario's stages): at_ns, window end, rates.

    A stage that starts above the rate the previous one ended at is a ``step``; one that ramps up
    (``to`` above ``rate``) is a ``ramp`` (at its start, when it is not a step already). The window of
    each runs to the next stage's start, or the end of the load.
    """
    stages = load.get("rate")
    if isinstance(stages, int | float) or not stages:
        return []
    out: list[dict] = []
    t = 0.0
    previous_end: float | None = None
    for i, stage in enumerate(stages):
        rate = float(stage["rate"])
        to = stage.get("to")
        duration = stage.get("duration")
        end_rate = float(to) if to is not None and duration is not None else rate
        at_ns = load_started_ns + round(t * 1e9)
        until_ns = (
            load_ended_ns if duration is None else min(load_ended_ns, at_ns + round(float(duration) * 1e9))
        )
        stepped = previous_end is not None and rate > previous_end
        ramped = to is not None and float(to) > rate
        if (stepped or ramped) and at_ns < load_ended_ns:
            out.append(
                {
                    "name": f"step-{len(out) + 1}",
                    "kind": "step" if stepped else "ramp",
                    "stage": i,
                    "at_s": t,
                    "at_ns": at_ns,
                    "until_ns": until_ns,
                    "from_rate": previous_end if stepped else rate,
                    "to_rate": end_rate if not stepped or ramped else rate,
                }
            )
        previous_end = end_rate
        if duration is None:
            break
        t += float(duration)
    return out


def _step_record(
    step: dict,
    lo: int,
    activities: pd.DataFrame,
    fleet: _Requests,
    target: float | None,
    window_s: float,
) -> dict:
    at, until = step["at_ns"], step["until_ns"]
    fleet_changes = activities.loc[
        (activities["resource"] == "fleet")
        & activities["kind"].isin(("scale-out", "scale-in"))
        & (activities["start_ns"] >= at)
        & (activities["start_ns"] < until)
    ]
    outs = fleet_changes.loc[fleet_changes["kind"] == "scale-out"]
    record: dict[str, Any] = {
        **step,
        "at": iso(at),
        "window_s": (until - at) / 1e9,
        "first_scale_out": None,
        "reaction_s": None,
        "in_service_s": None,
        "scale_outs": len(outs),
        "capacity_before": None,
        "capacity_after": None,
        "p95_before_ms": _p95(fleet, max(lo, at - 5 * BUCKET_NS), at),
        "p95_worst_ms": None,
        "omitted": None,
        "p95_after_ms": None,
        "recovered_at_s": None,
        "p95_recovered_s": None,
        "unmeasured": {},
    }
    why: dict[str, str] = record["unmeasured"]
    if outs.empty:
        why["reaction_s"] = why["in_service_s"] = "no scale-out in the step's window"
    else:
        first = outs.iloc[0]
        record["first_scale_out"] = _activity_record(first, lo)
        record["reaction_s"] = (int(first["start_ns"]) - at) / 1e9
        record["capacity_before"] = int(first["from_capacity"])
        record["capacity_after"] = int(outs["to_capacity"].max())
        if first["status"] == "successful" and not pd.isna(first["end_ns"]):
            record["in_service_s"] = (int(first["end_ns"]) - at) / 1e9
        else:
            why["in_service_s"] = (
                f"the first scale-out ended {first['status']}: its instances never all served"
            )
    if target is None:
        why["p95_recovered_s"] = "no p95 target: slo.scaling.p95_ms or slo.baseline.p95_ms"
    else:
        record.update(_recovery(fleet, at, until, float(target), window_s, lo))
        if record["p95_recovered_s"] is None:
            why["p95_recovered_s"] = (
                f"the fleet's p95 never stayed at or under {target:g} ms for {window_s:g} s before the "
                "step's window ended"
            )
    return record


def _recovery(
    fleet: _Requests,
    at: int,
    until: int,
    target: float,
    window_s: float,
    lo: int,
) -> dict:
    """Bucket p95s of the fleet from ``at`` to ``until`` and the recovery point against ``target``."""
    n = max(0, (until - at) // BUCKET_NS)
    w = max(1, math.ceil(window_s - 1e-9))
    out: dict[str, Any] = {
        "p95_worst_ms": None,
        "omitted": 0,
        "p95_after_ms": None,
        "recovered_at_s": None,
        "p95_recovered_s": None,
    }
    if n == 0:
        return out
    time = fleet.time
    k = (time - at) // BUCKET_NS
    inside = (time >= at) & (k < n)
    latency = fleet.latency_ms[inside]
    k_in = k[inside].astype(np.int64)
    o_time = fleet.omitted
    o_k = (o_time - at) // BUCKET_NS
    o_in = (o_time >= at) & (o_k < n)
    # an omitted operation is a request that would have been over any target
    k_all = np.concatenate([k_in, o_k[o_in].astype(np.int64)])
    values = np.concatenate([latency, np.full(int(o_in.sum()), np.inf)])
    sizes = np.bincount(k_all, minlength=n)[:n]
    p95 = (
        grouped_percentiles(k_all, values, n, {"p95": P95_PERMILLE})["p95"]
        if len(k_all)
        else np.full(n, np.nan)
    )
    healthy = (sizes > 0) & (p95 <= target)
    finite = p95[np.isfinite(p95)]
    out["p95_worst_ms"] = float(finite.max()) if len(finite) else None
    out["omitted"] = int(o_in.sum())
    start = None
    streak = 0
    for i, ok in enumerate(healthy):
        streak = streak + 1 if ok else 0
        if streak >= w:
            start = i - w + 1
            break
    if start is not None:
        out["recovered_at_s"] = (at + start * BUCKET_NS - lo) / 1e9
        out["p95_recovered_s"] = float(start)
        after = values[k_all >= start]
        out["p95_after_ms"] = percentiles(after, {"p95": P95_PERMILLE})["p95"] if len(after) else None
    return out


# -- replacements --------------------------------------------------------------------------------------


def _replacements(
    faults: pd.DataFrame, activities: pd.DataFrame, ops: pd.DataFrame, fleet: _Requests, lo: int
) -> list[dict]:
    out: list[dict] = []
    for window in fault_windows(faults):
        if window.action not in KILL_ACTIONS or not window.effective:
            continue
        expected = not window.params.get("decrement_desired", False)
        for instance in [i for i in window.target.split(",") if i]:
            record: dict[str, Any] = {
                "fault": f"fault-{window.fault_id + 1}",
                "instance": instance,
                "kill_ns": window.inject_ns,
                "kill_s": (window.inject_ns - lo) / 1e9,
                "expected": expected,
                "detected_s": None,
                "replacement": None,
                "launched_s": None,
                "in_service_s": None,
                "first_2xx_s": None,
                "note": None,
            }
            gone = activities.loc[
                (activities["resource"] == "fleet")
                & (activities["kind"] == "terminate")
                & (activities["subject"] == instance)
            ]
            if not gone.empty:
                record["detected_s"] = (int(gone["start_ns"].iloc[0]) - window.inject_ns) / 1e9
            launches = activities.loc[
                (activities["resource"] == "fleet")
                & (activities["kind"] == "launch")
                & (activities["replaces"] == instance)
            ]
            if launches.empty:
                record["note"] = (
                    "no launch replaced it" if expected else "decrement_desired: no replacement expected"
                )
                out.append(record)
                continue
            launch = launches.iloc[0]
            replacement = str(launch["subject"])
            record["replacement"] = replacement
            record["launched_s"] = (int(launch["start_ns"]) - window.inject_ns) / 1e9
            if launch["status"] == "successful" and not pd.isna(launch["end_ns"]):
                record["in_service_s"] = (int(launch["end_ns"]) - window.inject_ns) / 1e9
            else:
                record["note"] = f"its replacement {replacement} ended {launch['status']}, never in service"
            served = isin(ops["served_by"], fleet.rows, {replacement}) & (fleet.status >= 200)
            served &= fleet.status < 300
            if served.any():
                record["first_2xx_s"] = (int(fleet.end[served].min()) - window.inject_ns) / 1e9
            elif record["note"] is None:
                record["note"] = f"no 2xx served by its replacement {replacement} during the load"
            out.append(record)
    return out


# -- lambda ---------------------------------------------------------------------------------------------


def _lambda_section(
    run: Run, lam: _Requests, activities: pd.DataFrame, timeline: pd.DataFrame | None, lo: int, hi: int
) -> dict:
    starts = activities.loc[(activities["resource"] == "lambda") & (activities["kind"] == "cold-start")]
    reclaims = activities.loc[(activities["resource"] == "lambda") & (activities["kind"] == "reclaim")]
    new_envs = set(starts["subject"].dropna().astype(str))
    # The first request (by start, the earlier row on a tie) each new environment served.
    met = np.flatnonzero(isin(run.ops["served_by"], lam.rows, new_envs))
    met = met[np.lexsort((met, lam.start[met]))]
    cold = met[~pd.Series(labels(run.ops["served_by"], lam.rows[met]), dtype=object).duplicated().to_numpy()]
    cold_start, cold_ms = lam.start[cold], lam.latency_ms[cold]
    throttled = lam.status == 429
    # Throttles by the scaling rate: the error text of the 429s only.
    burst = np.zeros(len(lam.rows), dtype=bool)
    burst[throttled] = contains(run.ops["error"], lam.rows[throttled], BURST_REASON)
    periods = [
        (p.name, p.kind, p.start_ns, p.end_ns) for p in phases_from_journal(fault_windows(run.faults), lo, hi)
    ]
    stages = [
        (f"stage-{i + 1}", "stage", start, end) for i, (start, end) in enumerate(_stage_windows(run, lo, hi))
    ]

    def stats(name: str, kind: str, start: int, end: int) -> dict:
        part = (lam.start >= start) & (lam.start < end)
        throttles = int((throttled & part).sum())
        begun = starts.loc[(starts["start_ns"] >= start) & (starts["start_ns"] < end)]
        done = begun.loc[(begun["status"] == "successful") & begun["end_ns"].notna()]
        init_ms = (done["end_ns"].astype("int64") - done["start_ns"]).to_numpy() / 1e6
        met = cold_ms[(cold_start >= start) & (cold_start < end)]
        window = _in_window(timeline, start, end)
        requests = int(part.sum())
        return {
            "name": name,
            "kind": kind,
            "start_s": (start - lo) / 1e9,
            "end_s": (end - lo) / 1e9,
            "requests": requests,
            "throttles": throttles,
            "burst_throttles": int((burst & part).sum()),
            "throttle_rate": throttles / requests if requests else None,
            "cold_starts": len(begun),
            "init_ms": _figures(init_ms),
            "cold_requests": len(met),
            "cold_request_ms": _figures(met),
            "reclaimed": int(((reclaims["start_ns"] >= start) & (reclaims["start_ns"] < end)).sum()),
            "peak_concurrency": _peak(window, "lambda_active"),
            "peak_environments": _peak(window, "lambda_environments"),
        }

    phase_stats = [stats(*p) for p in periods]
    all_stats = stats("load", "load", lo, hi)
    return {
        **{
            k: all_stats[k]
            for k in (
                "requests",
                "throttles",
                "burst_throttles",
                "throttle_rate",
                "cold_starts",
                "reclaimed",
                "peak_concurrency",
                "peak_environments",
            )
        },
        "cold_request_ms": all_stats["cold_request_ms"],
        "init_ms": all_stats["init_ms"],
        "phases": phase_stats,
        "stages": [stats(*s) for s in stages] if len(stages) > 1 else [],
    }


def _stage_windows(run: Run, lo: int, hi: int) -> list[tuple[int, int]]:
    stages = (run.scenario.get("load") or {}).get("rate")
    if not isinstance(stages, list):
        return []
    out = []
    t = lo
    for stage in stages:
        duration = stage.get("duration")
        end = hi if duration is None else min(hi, t + round(float(duration) * 1e9))
        if t < end:
            out.append((t, end))
        if duration is None or end >= hi:
            break
        t = end
    return out


def _figures(values: np.ndarray) -> dict:
    """p50, p95 and max of ``values`` (nearest rank), None each when empty."""
    figures = percentiles(np.asarray(values, dtype=float), {"p50": 500, "p95": P95_PERMILLE})
    figures["max"] = float(np.max(values)) if len(values) else None
    return figures


# -- checks ---------------------------------------------------------------------------------------------


def scaling_checks(section: dict, slo: Mapping[str, Any]) -> list[dict]:
    """``scaling.<key>`` checks of ``slo["scaling"]`` against ``section`` (``scaling_analysis``'s record).

    Each measures the run's worst case: the slowest step, the slowest expected replacement, the worst
    phase; ``measured`` is None (and the check fails) when any of them could not be measured or when
    there is none to measure. ``phase`` names the events judged.
    """
    limits = slo.get("scaling") or {}
    fleet = section["fleet"]
    lam = section["lambda"]
    checks = []
    for key in CHECK_ORDER:
        if key not in limits:
            continue
        limit = limits[key]
        if key in FLEET_STEP_KEYS:
            checks.append(
                _worst(f"scaling.{key}", fleet["steps"], key, limit, "no load step in the scenario")
            )
        elif key in REPLACEMENT_KEYS:
            expected = [r for r in fleet["replacements"] if r["expected"]]
            checks.append(
                _worst(
                    f"scaling.{key}",
                    expected,
                    REPLACEMENT_KEYS[key],
                    limit,
                    "no instance killed in this run",
                    label="instance",
                )
            )
        elif key == "lambda_cold_starts":
            checks.append(check(f"scaling.{key}", lam["cold_starts"], limit, "load"))
        elif key == "lambda_cold_start_ms":
            measured = [p["cold_request_ms"]["p95"] for p in lam["phases"] if p["cold_requests"]]
            note = None if measured else "no Lambda request met a cold start"
            checks.append(check(f"scaling.{key}", max(measured) if measured else None, limit, note=note))
        else:
            measured = [p["throttle_rate"] for p in lam["phases"] if p["throttle_rate"] is not None]
            note = None if measured else "no Lambda request in this run"
            checks.append(check(f"scaling.{key}", max(measured) if measured else None, limit, note=note))
    if "activities" in section and section["activities"] is None:
        for record in checks:
            if not record["passed"] and record["note"] is None:
                record["note"] = "the target recorded no scaling activities"
    return checks


def _worst(
    name: str, events: list[dict], field: str, limit: float, none_note: str, label: str = "name"
) -> dict:
    if not events:
        return check(name, None, limit, note=none_note)
    values = [e[field] for e in events]
    names = ",".join(str(e[label]) for e in events)
    if any(v is None for v in values):
        missing = next(e for e in events if e[field] is None)
        why = (missing.get("unmeasured") or {}).get(field) or missing.get("note") or "not measured"
        return check(name, None, limit, names, note=f"{missing[label]}: {why}")
    detail = ", ".join(f"{e[label]} {e[field]:g}" for e in events) if len(events) > 1 else None
    return check(name, max(values), limit, names, note=detail)


# -- helpers ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Requests:
    """One endpoint's load requests as arrays in ledger order, and its omitted operations' due times."""

    rows: np.ndarray
    """Each request's row in ``ops`` (to look up a string column for the few rows that need it)."""
    start: np.ndarray
    end: np.ndarray
    status: np.ndarray
    time: np.ndarray
    """When each request was due (``intended_ns``), else when it was sent: what buckets go by."""
    omitted: np.ndarray
    """When each omitted operation was due."""

    @property
    def latency_ms(self) -> np.ndarray:
        """Raw latency: ``end_ns - start_ns`` in milliseconds."""
        return (self.end - self.start) / 1e6

    @classmethod
    def of(cls, arrays: LoadArrays, rows: np.ndarray, endpoint: str) -> _Requests:
        """``endpoint``'s requests from the load's arrays; ``rows`` are the load's rows in ``ops``."""
        code = arrays.endpoints.index(endpoint) if endpoint in arrays.endpoints else -2
        mine = arrays.endpoint == code
        start = arrays.start[mine]
        intended = arrays.intended[mine]
        return cls(
            rows=rows[mine],
            start=start,
            end=arrays.end[mine],
            status=arrays.status[mine],
            time=np.where(intended >= 0, intended, start),
            omitted=arrays.omitted_due[arrays.omitted_endpoint == code],
        )


def _load_positions(ops: pd.DataFrame) -> np.ndarray:
    """The rows of ``ops`` that ``load_arrays`` keeps as the load's requests, in the same order."""
    return np.flatnonzero(ops["kind"].isin(LOAD_KINDS).to_numpy(dtype=bool))


def _p95(fleet: _Requests, start: int, end: int) -> float | None:
    values = fleet.latency_ms[(fleet.time >= start) & (fleet.time < end)]
    omitted = int(((fleet.omitted >= start) & (fleet.omitted < end)).sum())
    values = np.concatenate([values, np.full(omitted, np.inf)])
    return percentiles(values, {"p95": P95_PERMILLE})["p95"] if len(values) else None


def _no_activities() -> pd.DataFrame:
    from chaoscheck.runformat import SCALING_SCHEMA

    return SCALING_SCHEMA.empty_table().to_pandas()


def _activity_counts(activities: pd.DataFrame, lo: int, hi: int) -> dict:
    during = activities.loc[(activities["start_ns"] >= lo) & (activities["start_ns"] < hi)]
    counts: dict[str, dict[str, int]] = {"fleet": {}, "lambda": {}}
    for (resource, kind), n in during.groupby(["resource", "kind"], sort=True).size().items():
        counts.setdefault(str(resource), {})[str(kind)] = int(n)
    return counts


def _count(activities: pd.DataFrame, resource: str, kind: str, lo: int, hi: int) -> int:
    return int(
        (
            (activities["resource"] == resource)
            & (activities["kind"] == kind)
            & (activities["start_ns"] >= lo)
            & (activities["start_ns"] < hi)
        ).sum()
    )


def _fleet_activities(activities: pd.DataFrame, lo: int, hi: int) -> list[dict]:
    """The desired-capacity changes during the load, in start order."""
    changes = activities.loc[
        (activities["resource"] == "fleet")
        & activities["kind"].isin(("scale-out", "scale-in"))
        & (activities["start_ns"] >= lo)
        & (activities["start_ns"] < hi)
    ]
    return [_activity_record(row, lo) for _, row in changes.iterrows()]


def _activity_record(row: pd.Series, lo: int) -> dict:
    end = None if pd.isna(row["end_ns"]) else int(row["end_ns"])
    return {
        "activity_id": row["activity_id"],
        "kind": row["kind"],
        "from": int(row["from_capacity"]),
        "to": int(row["to_capacity"]),
        "start_s": (int(row["start_ns"]) - lo) / 1e9,
        "end_s": None if end is None else (end - lo) / 1e9,
        "status": row["status"],
        "metric": None if pd.isna(row["metric"]) else float(row["metric"]),
        "cause": row["cause"],
    }


def _in_window(timeline: pd.DataFrame | None, start: int, end: int) -> pd.DataFrame | None:
    if timeline is None:
        return None
    return timeline.loc[(timeline["ts_ns"] >= start) & (timeline["ts_ns"] < end)]


def _peak(timeline: pd.DataFrame | None, column: str) -> int | None:
    if timeline is None or timeline.empty or column not in timeline.columns:
        return None
    return int(timeline[column].max())
