"""Phases of a run from the fault journal, and the request statistics of each phase.

Fault windows (``faults.jsonl``): a fault's window starts at its ``inject`` line and ends at its
first ``rollback`` line after that, or, when it has none (a one-shot fault such as a kill, or a fault
the run never rolled back), at inject + ``window_s``. An ``abort`` line for a fault before any
rollback means the action failed: no fault happened and the fault has no phase (it is listed with
``effective: false`` and counted by the ``faults.aborted`` check).

Phases partition the load window [load_started, load_ended) so that every request belongs to exactly
one phase:

* ``baseline``: [load_started, first injection);
* ``fault-<n>`` (n = fault_id + 1) for each effective fault in injection order: [inject, window end);
* ``recovery-<n>``: [window end, next injection or load end).

Overlapping faults are kept simple: a fault's phase ends when the next fault is injected, so the
overlap is attributed to the later fault, and the earlier fault has no recovery phase (recovery is
only measured once no fault is active). Windows are clipped to the load window; a fault injected
after the load ended has no phase. Zero-length phases are dropped.

Statistics count ``increment`` and ``read`` rows by ``start_ns`` in [start, end). Latency is raw
(``end_ns - start_ns``) and includes failed and indeterminate requests (a timeout is what a user saw).
Percentiles are nearest-rank (``analysis.percentiles``); ``error_rate`` is the share of requests
whose outcome is not ok; ``rps`` is requests / phase length.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from analysis.evidence import RATE_DIGITS, native
from analysis.percentiles import PERCENTILES, percentiles
from chaoscheck.runformat import FAIL, INFO, OK

LOAD_KINDS = ("increment", "read")
"""Kinds of operation that make up the load (``final`` reads come after it)."""


@dataclass(frozen=True)
class FaultWindow:
    """One fault of the journal and the time it was in effect."""

    fault_id: int
    action: str
    target: str
    params: dict
    inject_ns: int
    end_ns: int
    """Rollback time, or inject + window_s when there is no rollback line."""
    window_s: float
    rolled_back: bool
    effective: bool
    """False when the inject was followed by an abort (the action failed)."""
    error: str | None


@dataclass(frozen=True)
class Phase:
    name: str
    kind: str
    """``baseline``, ``fault`` or ``recovery``."""
    start_ns: int
    end_ns: int
    fault_id: int | None = None


def fault_windows(faults: pd.DataFrame) -> list[FaultWindow]:
    """One :class:`FaultWindow` per fault id of the journal, in (inject time, id) order.

    A fault whose only line is an ``abort`` (it failed while its targets were being chosen, before
    anything was injected) is listed as not effective, with an empty window at the abort time, so
    that the ``faults.aborted`` check still sees it.
    """
    windows = []
    per_fault = faults.loc[faults["fault_id"] >= 0]  # a ``halt`` line (id -1) belongs to the run
    for fault_id, lines in per_fault.sort_values(["ts_ns", "line"]).groupby("fault_id", sort=True):
        injects = lines.loc[lines["event"] == "inject"]
        if injects.empty:
            aborts = lines.loc[lines["event"] == "abort"]
            if not aborts.empty:
                first = aborts.iloc[0]
                windows.append(
                    FaultWindow(
                        fault_id=int(fault_id),
                        action=str(first["action"]),
                        target=str(first["target"]),
                        params=dict(first["params"]) if isinstance(first["params"], dict) else {},
                        inject_ns=int(first["ts_ns"]),
                        end_ns=int(first["ts_ns"]),
                        window_s=0.0,
                        rolled_back=False,
                        effective=False,
                        error=str(first["error"]) if first["error"] else None,
                    )
                )
            continue
        inject = injects.iloc[0]
        after = lines.loc[lines["ts_ns"] >= inject["ts_ns"]]
        rollbacks = after.loc[after["event"] == "rollback"]
        aborts = after.loc[after["event"] == "abort"]
        rolled_back = not rollbacks.empty
        rollback_ns = int(rollbacks["ts_ns"].iloc[0]) if rolled_back else None
        aborted = not aborts.empty and (rollback_ns is None or int(aborts["ts_ns"].iloc[0]) <= rollback_ns)
        inject_ns = int(inject["ts_ns"])
        planned_end = inject_ns + round(float(inject["window_s"]) * 1e9)
        windows.append(
            FaultWindow(
                fault_id=int(fault_id),
                action=str(inject["action"]),
                target=str(inject["target"]),
                params=dict(inject["params"]),
                inject_ns=inject_ns,
                end_ns=rollback_ns if rollback_ns is not None else planned_end,
                window_s=float(inject["window_s"]),
                rolled_back=rolled_back,
                effective=not aborted,
                error=str(aborts["error"].iloc[0]) if not aborts.empty and aborts["error"].iloc[0] else None,
            )
        )
    return sorted(windows, key=lambda w: (w.inject_ns, w.fault_id))


def phases_from_journal(windows: list[FaultWindow], load_started_ns: int, load_ended_ns: int) -> list[Phase]:
    """Partition [load_started, load_ended) into baseline, fault and recovery phases (module doc)."""
    lo, hi = load_started_ns, load_ended_ns
    effective = [w for w in windows if w.effective and w.inject_ns < hi]
    phases: list[Phase] = []

    def add(name: str, kind: str, start: int, end: int, fault_id: int | None = None) -> None:
        start, end = max(start, lo), min(end, hi)
        if end > start:
            phases.append(Phase(name, kind, start, end, fault_id))

    add("baseline", "baseline", lo, effective[0].inject_ns if effective else hi)
    for i, window in enumerate(effective):
        following = effective[i + 1].inject_ns if i + 1 < len(effective) else hi
        fault_end = min(window.end_ns, following)
        add(f"fault-{window.fault_id + 1}", "fault", window.inject_ns, fault_end, window.fault_id)
        add(f"recovery-{window.fault_id + 1}", "recovery", fault_end, following, window.fault_id)
    return phases


def load_rows(ops: pd.DataFrame) -> pd.DataFrame:
    """The load's requests (increment and read rows) sorted by start, with ``latency_ms``.

    ``corrected_ms`` measures from when the operation was due (``intended_ns``, open model or
    pacing) instead of when it was sent, so a stall that delayed sending shows in the latency
    (coordinated omission, after wrk2); it is NaN for rows that were not scheduled.
    """
    columns = ["start_ns", "end_ns", "endpoint", "outcome", "status"]
    if "intended_ns" in ops.columns:
        columns.append("intended_ns")
    rows = ops.loc[ops["kind"].isin(LOAD_KINDS), columns]
    rows = rows.sort_values("start_ns", kind="stable").reset_index(drop=True)
    end = rows["end_ns"].to_numpy()
    rows["latency_ms"] = (end - rows["start_ns"].to_numpy()) / 1e6
    if "intended_ns" in rows.columns:
        intended = rows["intended_ns"].to_numpy(dtype="float64", na_value=np.nan)
        rows["corrected_ms"] = (end - intended) / 1e6
    else:
        rows["corrected_ms"] = np.nan
    return rows


def omitted_rows(ops: pd.DataFrame) -> pd.DataFrame:
    """Operations the open model scheduled but could not send, sorted by when they were due."""
    rows = ops.loc[ops["kind"] == "omitted", ["endpoint", "start_ns"]].copy()
    due = ops.loc[rows.index, "intended_ns"] if "intended_ns" in ops.columns else rows["start_ns"]
    rows["due_ns"] = due.fillna(rows["start_ns"]).astype("int64")
    return rows.sort_values("due_ns", kind="stable").reset_index(drop=True)


def phase_stats(ops: pd.DataFrame, phases: list[Phase], load_started_ns: int) -> list[dict]:
    """Request statistics of each phase, overall and per endpoint (JSON-ready dicts, phase order).

    Omitted operations (open model) belong to the phase in which they were due; they are not
    requests, but they count as bad events in ``error_rate`` (see ``request_stats``).
    """
    rows = load_rows(ops)
    omitted = omitted_rows(ops)
    endpoints = sorted(set(ops["endpoint"].unique()))
    starts = rows["start_ns"].to_numpy()
    dues = omitted["due_ns"].to_numpy()
    out = []
    for phase in phases:
        lo = int(np.searchsorted(starts, phase.start_ns, side="left"))
        hi = int(np.searchsorted(starts, phase.end_ns, side="left"))
        part = rows.iloc[lo:hi]
        o_lo = int(np.searchsorted(dues, phase.start_ns, side="left"))
        o_hi = int(np.searchsorted(dues, phase.end_ns, side="left"))
        missed = omitted["endpoint"].iloc[o_lo:o_hi].value_counts()
        duration_s = (phase.end_ns - phase.start_ns) / 1e9
        record = {
            "name": phase.name,
            "kind": phase.kind,
            "fault_id": phase.fault_id,
            "start": iso(phase.start_ns),
            "end": iso(phase.end_ns),
            "start_ns": phase.start_ns,
            "end_ns": phase.end_ns,
            "start_s": native((phase.start_ns - load_started_ns) / 1e9),
            "duration_s": native(duration_s),
            **request_stats(part, duration_s, int(missed.sum())),
        }
        by_endpoint = dict(tuple(part.groupby("endpoint", sort=True)))
        record["endpoints"] = {
            name: request_stats(by_endpoint.get(name, part.iloc[0:0]), duration_s, int(missed.get(name, 0)))
            for name in endpoints
        }
        out.append(record)
    return out


def request_stats(rows: pd.DataFrame, duration_s: float, omitted: int = 0) -> dict:
    """requests, ok/fail/info, omitted, rps, ok_rps, error_rate, p50/p95/p99/max ms, statuses of ``rows``.

    ``error_rate`` is the share of bad events among all events: requests that were not ok, plus
    operations that were due but never sent (``omitted``, open model), over requests + omitted.
    """
    n = len(rows)
    outcomes = rows["outcome"].value_counts()
    ok = int(outcomes.get(OK, 0))
    latency = rows["latency_ms"].to_numpy()
    events = n + omitted
    stats = {
        "requests": n,
        "ok": ok,
        "fail": int(outcomes.get(FAIL, 0)),
        "info": int(outcomes.get(INFO, 0)),
        "omitted": omitted,
        "rps": native(n / duration_s) if duration_s > 0 else None,
        "ok_rps": native(ok / duration_s) if duration_s > 0 else None,
        "error_rate": native((events - ok) / events, RATE_DIGITS) if events else None,
    }
    for name, value in percentiles(latency, PERCENTILES).items():
        stats[f"{name}_ms"] = native(value)
    stats["max_ms"] = native(latency.max()) if n else None
    corrected = rows["corrected_ms"].to_numpy()
    corrected = corrected[~np.isnan(corrected)]
    if len(corrected):
        # latency from when each scheduled operation was due, beside the raw figures above
        stats["corrected"] = {
            f"{name}_ms": native(value) for name, value in percentiles(corrected, PERCENTILES).items()
        }
        stats["corrected"]["max_ms"] = native(corrected.max())
        stats["corrected"]["requests"] = len(corrected)
    statuses = rows["status"].value_counts()
    stats["statuses"] = {str(int(code)): int(count) for code, count in sorted(statuses.items())}
    return stats


def iso(ns: int) -> str:
    """An epoch-nanosecond time as ISO-8601 UTC with microseconds, e.g. ``2024-05-01T12:00:00.250000Z``."""
    seconds, rest = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1000:06d}Z"
