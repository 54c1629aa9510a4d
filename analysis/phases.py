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
(``end_ns - start_ns``) and includes failed and indeterminate requests (a timeout is what a user saw),
beside the latency ``corrected`` for coordinated omission: from when each operation was due
(``intended_ns``: open model or pacing) or, when no row has a due time but the scenario paced its
users, by HdrHistogram's back-fill at the pacing interval. Percentiles are exact nearest-rank
(``analysis.percentiles``); ``error_rate`` is the share of events (requests and omitted operations)
that were not ok; ``rps`` is requests / phase length. With a schedule, ``omission`` holds the
omitted-request and generator-lag detectors (:class:`_ScheduleTable`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from analysis.evidence import RATE_DIGITS, native
from analysis.percentiles import LATENCY_PERCENTILES, Backfill, percentiles, sort_by_group, union_percentiles
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


# -- the load's rows as arrays ---------------------------------------------------------------------

OUTCOME_CODES = (OK, FAIL, INFO)
"""Outcome codes of :class:`LoadArrays`: 0 ok, 1 fail, 2 info."""

GENERATOR_LAG_LIMIT = 0.01
"""A phase whose generator lag (sum of send delays over sum of due intervals) exceeds this is noted."""


@dataclass(frozen=True)
class LoadArrays:
    """The load's requests and omitted operations as flat numpy arrays, in ledger order (no sort).

    Built once from ``ops`` by :func:`load_arrays` (no Python object per row: string columns become
    integer codes), then shared by the phase figures and the per-second series.
    """

    endpoints: tuple[str, ...]
    """Endpoint names (sorted, of every row of ``ops``); ``endpoint`` holds indexes into it."""
    start: np.ndarray
    end: np.ndarray
    endpoint: np.ndarray
    outcome: np.ndarray
    """0 ok, 1 fail, 2 info (:data:`OUTCOME_CODES`)."""
    status: np.ndarray
    intended: np.ndarray
    """``intended_ns``, -1 where the row has none."""
    first: np.ndarray
    """``attempt == 0``: on the schedule (a retry's due time is the end of its backoff)."""
    worker: np.ndarray
    """Integer code of the load process (one schedule per process and endpoint in the open model)."""
    omitted_due: np.ndarray
    """Due time of each omitted operation (``intended_ns``, else ``start_ns``)."""
    omitted_endpoint: np.ndarray
    omitted_worker: np.ndarray

    @property
    def latency(self) -> np.ndarray:
        """Raw latency in ns: ``end_ns - start_ns``."""
        return self.end - self.start

    @property
    def scheduled(self) -> bool:
        """Whether any operation had a due time (open model or pacing)."""
        return bool(len(self.omitted_due)) or bool((self.intended >= 0).any())


def load_arrays(ops: pd.DataFrame) -> LoadArrays:
    """The load's rows of ``ops`` (kinds ``increment`` and ``read``, and ``omitted``) as arrays."""
    kind = ops["kind"]
    load = kind.isin(LOAD_KINDS).to_numpy(dtype=bool)
    omitted = (kind == "omitted").to_numpy(dtype=bool)
    endpoints = tuple(sorted(_observed(ops["endpoint"])))
    endpoint = _codes(ops["endpoint"], endpoints)
    start = ops["start_ns"].to_numpy(dtype=np.int64)
    intended = intended_ns(ops)
    worker = _factorized(ops["worker"]) if "worker" in ops.columns else np.zeros(len(ops), np.int64)
    if "attempt" in ops.columns:
        first = ops["attempt"].to_numpy(dtype=np.int64, na_value=0)[load] == 0
    else:
        first = np.ones(int(load.sum()), dtype=bool)
    due = np.where(intended[omitted] >= 0, intended[omitted], start[omitted])
    return LoadArrays(
        endpoints=endpoints,
        start=start[load],
        end=ops["end_ns"].to_numpy(dtype=np.int64)[load],
        endpoint=endpoint[load],
        outcome=_codes(ops["outcome"], OUTCOME_CODES)[load].astype(np.int8),
        status=ops["status"].to_numpy(dtype=np.int64)[load],
        intended=intended[load],
        first=first,
        worker=worker[load],
        omitted_due=due,
        omitted_endpoint=endpoint[omitted],
        omitted_worker=worker[omitted],
    )


def load_rows(ops: pd.DataFrame) -> pd.DataFrame:
    """The load's requests (increment and read rows) sorted by start, with ``latency_ms``.

    ``corrected_ms`` measures from when the operation was due (``intended_ns``, open model or
    pacing) instead of when it was sent; it is NaN for rows that were not scheduled. A convenience
    for notebooks: the figures themselves are computed from :func:`load_arrays`.
    """
    columns = [c for c in ("start_ns", "end_ns", "endpoint", "outcome", "status", "intended_ns") if c in ops]
    rows = ops.loc[ops["kind"].isin(LOAD_KINDS).to_numpy(dtype=bool), columns]
    rows = rows.sort_values("start_ns", kind="stable").reset_index(drop=True)
    end = rows["end_ns"].to_numpy(dtype=np.int64)
    rows["latency_ms"] = (end - rows["start_ns"].to_numpy(dtype=np.int64)) / 1e6
    if "intended_ns" in rows.columns:
        intended = rows["intended_ns"].to_numpy(dtype="float64", na_value=np.nan)
        rows["corrected_ms"] = (end - intended) / 1e6
    else:
        rows["corrected_ms"] = np.nan
    return rows


def scenario_pacing_s(scenario: dict) -> float | None:
    """``load.pacing`` of a (resolved) scenario in seconds, or None (absent, not positive, unreadable)."""
    load = scenario.get("load") if isinstance(scenario, dict) else None
    value = load.get("pacing") if isinstance(load, dict) else None
    if isinstance(value, str):
        text = value.strip().lower()
        for suffix, scale in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0), ("m", 60.0)):
            if text.endswith(suffix):
                try:
                    value = float(text[: -len(suffix)]) * scale
                except ValueError:
                    return None
                break
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value <= 0:
        return None
    return float(value)


def latency_method(arrays: LoadArrays, pacing_s: float | None) -> dict:
    """How latency is corrected for coordinated omission in this run (``summary.latency``).

    ``intended_ns`` when the load's rows carry due times (open model or pacing); else ``backfill``
    (HdrHistogram's expected-interval rule, interval = ``load.pacing``) when the scenario paced its
    users; else none (a plain closed-loop run: only raw latency).
    """
    record: dict = {
        "percentiles": ["p50", "p90", "p95", "p99", "p99.9", "max"],
        "corrected": None,
        "interval_ms": None,
    }
    if (arrays.intended >= 0).any():
        record["corrected"] = "intended_ns"
    elif pacing_s:
        record["corrected"] = "backfill"
        record["interval_ms"] = native(pacing_s * 1e3)
    return record


# -- per-phase figures -----------------------------------------------------------------------------


def phase_stats(
    ops: pd.DataFrame,
    phases: list[Phase],
    load_started_ns: int,
    *,
    pacing_s: float | None = None,
    arrays: LoadArrays | None = None,
) -> list[dict]:
    """Request statistics of each phase, overall and per endpoint (JSON-ready dicts, phase order).

    Phases may overlap (e.g. the phases and the whole load window in one call, at the cost of one).
    Omitted operations (open model) belong to the phase in which they were due; they are not
    requests, but they count as bad events in ``error_rate``. Latency percentiles are exact
    nearest-rank over the raw rows, raw and ``corrected`` for coordinated omission (from
    ``intended_ns``, or by back-fill at the ``pacing_s`` interval when no row has a due time).

    All rows are cut once into atoms (elementary time segment between phase bounds x endpoint) and
    sorted once by (atom, latency); a phase's figures are read from the union of its atoms.
    """
    a = arrays if arrays is not None else load_arrays(ops)
    table = _AtomTable(a, phases, pacing_s)
    out = []
    for phase in phases:
        k0, k1 = table.segments(phase)
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
            **table.stats(table.atoms(k0, k1, None), duration_s),
        }
        record["endpoints"] = {
            name: table.stats(table.atoms(k0, k1, e), duration_s) for e, name in enumerate(a.endpoints)
        }
        out.append(record)
    return out


class _AtomTable:
    """The per-atom tables behind :func:`phase_stats` (an atom = one segment x one endpoint)."""

    def __init__(self, a: LoadArrays, phases: list[Phase], pacing_s: float | None) -> None:
        self.a = a
        self.n_endpoints = e = len(a.endpoints)
        self.bounds = np.unique(np.array([b for p in phases for b in (p.start_ns, p.end_ns)], dtype=np.int64))
        n_seg = max(len(self.bounds) - 1, 0)
        self.n_atoms = n = n_seg * e
        # Whole-length temporaries are made in place and dropped early, and no row mask is applied when
        # every row is inside (the usual case: the phases cover the load): this sets the peak of memory.
        seg = _segment(a.start, self.bounds)
        inside = seg >= 0
        every = bool(inside.all())
        atom = seg if every else seg[inside]
        del seg
        atom *= e
        atom += a.endpoint if every else a.endpoint[inside]
        latency = a.end - a.start if every else a.end[inside] - a.start[inside]
        self.raw, self.raw_offsets = sort_by_group(atom, latency, n)
        del latency
        self.outcomes = _counts_2d(atom, a.outcome if every else a.outcome[inside], n, 0, 3)
        status = a.status if every else a.status[inside]
        low, high = (int(status.min()), int(status.max())) if len(status) else (0, 0)
        if high - low < 4096:  # HTTP statuses: one bincount over (atom, status), no sort of the rows
            counts = _counts_2d(atom, status, n, low, high - low + 1)
            present = np.flatnonzero(counts.sum(axis=0))
            self.status_values, self.statuses = present + low, counts[:, present]
        else:
            self.status_values = np.unique(status)
            k = len(self.status_values)
            self.statuses = _counts_2d(atom, np.searchsorted(self.status_values, status), n, 0, k)
        del status
        o_seg = _segment(a.omitted_due, self.bounds)
        o_in = o_seg >= 0
        self.omitted = np.bincount(o_seg[o_in] * e + a.omitted_endpoint[o_in], minlength=n)

        self.method = None
        self.interval_ns = None
        due = a.intended >= 0
        if due.any():
            self.method = "intended_ns"
            if every and due.all():
                late = a.end - a.intended
            else:
                has = due & inside
                atom = atom[has if every else has[inside]]
                late = a.end[has] - a.intended[has]
            self.corrected, self.corrected_offsets = sort_by_group(atom, late, n)
            del late
        elif pacing_s:
            self.method = "backfill"
            self.interval_ns = max(1, round(pacing_s * 1e9))
        self.schedule = _ScheduleTable(a, self.bounds, pacing_s) if a.scheduled else None

    def segments(self, phase: Phase) -> tuple[int, int]:
        if phase.end_ns <= phase.start_ns:
            return 0, 0
        return int(np.searchsorted(self.bounds, phase.start_ns)), int(
            np.searchsorted(self.bounds, phase.end_ns)
        )

    def atoms(self, k0: int, k1: int, endpoint: int | None) -> np.ndarray:
        e = self.n_endpoints
        segs = np.arange(k0, k1, dtype=np.int64)
        if endpoint is not None:
            return segs * e + endpoint
        return (segs[:, None] * e + np.arange(e)[None, :]).ravel()

    def stats(self, atoms: np.ndarray, duration_s: float) -> dict:
        parts = [self.raw[self.raw_offsets[g] : self.raw_offsets[g + 1]] for g in atoms]
        n, raw, maximum = union_percentiles(parts, LATENCY_PERCENTILES)
        ok, fail, info = (int(c) for c in self.outcomes[atoms].sum(axis=0)) if len(atoms) else (0, 0, 0)
        omitted = int(self.omitted[atoms].sum())
        counts = self.statuses[atoms].sum(axis=0) if len(atoms) else np.zeros(0, np.int64)
        statuses = {str(int(s)): int(c) for s, c in zip(self.status_values, counts, strict=False) if c}
        record = _record(n, ok, fail, info, omitted, duration_s, _ms(raw), _ms1(maximum), statuses)
        corrected = self._corrected(atoms, parts, n)
        if corrected is not None:
            record["corrected"] = corrected
        if self.schedule is not None:
            record["omission"] = self.schedule.figures(atoms, omitted)
        return record

    def _corrected(self, atoms: np.ndarray, parts: list[np.ndarray], n: int) -> dict | None:
        if self.method == "intended_ns":
            off = self.corrected_offsets
            cparts = [self.corrected[off[g] : off[g + 1]] for g in atoms]
            count, values, maximum = union_percentiles(cparts, LATENCY_PERCENTILES)
            if not count:
                return None
            return {"method": "intended_ns", "requests": count, **_ms(values), "max_ms": _ms1(maximum)}
        if self.method == "backfill" and n:
            interval = self.interval_ns
            tails = [p[np.searchsorted(p, 2 * interval) :] for p in parts]
            fill = Backfill(np.concatenate(tails) if tails else np.zeros(0, np.int64), interval)
            count, values, maximum = union_percentiles(parts, LATENCY_PERCENTILES, fill)
            return {
                "method": "backfill",
                "requests": n,
                "samples": count,
                "backfilled": fill.total,
                "interval_ms": native(interval / 1e6),
                **_ms(values),
                "max_ms": _ms1(maximum),
            }
        return None


class _ScheduleTable:
    """Per-atom figures of the schedule, by due time: the omitted-request and generator-lag detectors.

    * due: operations due in the atom (requests with ``intended_ns`` there, and omitted operations);
    * lag: sum over those requests of max(0, start_ns - intended_ns);
    * interval: sum of the due intervals of the scheduled operations (first attempts and omitted
      ones): ``pacing`` each with pacing (every user has its own schedule), else, per schedule
      (load process x endpoint, the open model's unit), the time from the previous due operation of
      the same schedule (the first one of a schedule has none). Over a phase this telescopes to the
      last due time in it minus the last one before it, per schedule.
    """

    def __init__(self, a: LoadArrays, bounds: np.ndarray, pacing_s: float | None) -> None:
        e = len(a.endpoints)
        n_seg = max(len(bounds) - 1, 0)
        n = n_seg * e
        has = a.intended >= 0
        every = bool(has.all())  # then no row mask is applied (whole-length copies set the peak)

        def scheduled(values: np.ndarray) -> np.ndarray:
            return values if every else values[has]

        due = scheduled(a.intended)
        seg = _segment(due, bounds)
        inside = seg >= 0
        all_inside = bool(inside.all())
        atom = seg if all_inside else seg[inside]
        del seg
        atom *= e
        atom += scheduled(a.endpoint) if all_inside else scheduled(a.endpoint)[inside]
        lag = scheduled(a.start) - due
        if not all_inside:
            lag = lag[inside]
        np.maximum(lag, 0, out=lag)
        o_seg = _segment(a.omitted_due, bounds)
        o_in = o_seg >= 0
        o_atom = o_seg[o_in] * e + a.omitted_endpoint[o_in]
        self.due = np.bincount(atom, minlength=n) + np.bincount(o_atom, minlength=n)
        self.lag_ns = np.bincount(atom, weights=lag, minlength=n)
        del lag

        first = scheduled(a.first)
        if pacing_s:
            firsts_atom = atom[first if all_inside else first[inside]]
            scheduled_n = np.bincount(firsts_atom, minlength=n) + np.bincount(o_atom, minlength=n)
            self.interval_ns = scheduled_n * float(round(pacing_s * 1e9))
            return
        del atom
        # per schedule (worker x endpoint): segment k's share is its last due time minus the last due
        # time before it (or its first, when the schedule had none before)
        times = np.concatenate([due[first], a.omitted_due])
        del due
        stream = np.concatenate([scheduled(a.worker)[first], a.omitted_worker])
        np.maximum(stream, 0, out=stream)
        n_workers = int(stream.max()) + 1 if len(stream) else 1
        stream *= e
        stream += np.concatenate([scheduled(a.endpoint)[first], a.omitted_endpoint])
        n_streams = n_workers * e
        # the segment, shifted by one (0: before the first bound), then the schedule
        key = np.searchsorted(bounds, times, side="right").astype(np.int64, copy=False)
        key *= n_streams
        key += stream
        del stream
        width = n_seg + 2
        never = np.iinfo(np.int64).min
        last, firsts = _group_extremes(key, times, width * n_streams, never)
        del key, times
        last = last.reshape(width, n_streams)
        firsts = firsts.reshape(width, n_streams)
        before = np.maximum.accumulate(last, axis=0)  # latest due time up to and including each segment
        interval = np.zeros((n_seg, n_streams), dtype=np.float64)
        for k in range(n_seg):  # loops over segments, not rows
            row = last[k + 1]
            present = row != never
            prev = before[k]
            base = np.where(prev != never, prev, firsts[k + 1])  # no earlier due time: its first
            interval[k] = np.where(present, row - base, 0)
        per_endpoint = np.zeros((n_seg, e), dtype=np.float64)
        for s in range(n_streams):
            per_endpoint[:, s % e] += interval[:, s]
        self.interval_ns = per_endpoint.ravel()

    def figures(self, atoms: np.ndarray, omitted: int) -> dict:
        due = int(self.due[atoms].sum())
        lag = float(self.lag_ns[atoms].sum())
        interval = float(self.interval_ns[atoms].sum())
        ratio = lag / interval if interval > 0 else None
        return {
            "due": due,
            "omitted": omitted,
            "omitted_share": native(omitted / due, RATE_DIGITS) if due else None,
            "lag_s": native(lag / 1e9),
            "interval_s": native(interval / 1e9),
            "generator_lag": native(ratio, RATE_DIGITS),
            "behind": bool(ratio is not None and ratio > GENERATOR_LAG_LIMIT),
        }


def phase_notes(phases: list[dict]) -> list[str]:
    """Notes for the summary: the phases whose generator fell behind, and those that omitted operations."""
    behind, omitted = [], []
    for phase in phases:
        omission = phase.get("omission")
        if not omission:
            continue
        if omission["behind"]:
            behind.append(f"{phase['name']} ({omission['generator_lag']:.1%})")
        if omission["omitted"]:
            omitted.append(f"{phase['name']} ({omission['omitted']:,} of {omission['due']:,})")
    notes = []
    if behind:
        notes.append(
            "latency: the load generator fell behind its schedule (send delays over "
            f"{GENERATOR_LAG_LIMIT:.0%} of the due intervals) in {', '.join(behind)}: raw latency "
            "under-states those phases; read the corrected figures"
        )
    if omitted:
        notes.append(
            "latency: due operations were never sent (omitted, counted as bad events) in "
            + ", ".join(omitted)
        )
    return notes


def request_stats(rows: pd.DataFrame, duration_s: float, omitted: int = 0) -> dict:
    """The figures of :func:`phase_stats` for a frame of rows (columns ``outcome``, ``latency_ms``,
    ``corrected_ms``, ``status``), e.g. from :func:`load_rows`; requests, ok/fail/info, omitted, rps,
    ok_rps, error_rate, p50/p90/p95/p99/p99.9/max ms, ``corrected``, statuses.

    ``error_rate`` is the share of bad events among all events: requests that were not ok, plus
    operations that were due but never sent (``omitted``, open model), over requests + omitted.
    """
    outcomes = rows["outcome"].value_counts()
    latency = rows["latency_ms"].to_numpy(dtype=np.float64)
    raw = percentiles(latency, LATENCY_PERCENTILES)
    statuses = rows["status"].value_counts()
    record = _record(
        len(rows),
        int(outcomes.get(OK, 0)),
        int(outcomes.get(FAIL, 0)),
        int(outcomes.get(INFO, 0)),
        omitted,
        duration_s,
        {f"{name}_ms": native(value) for name, value in raw.items()},
        native(latency.max()) if len(latency) else None,
        {str(int(code)): int(count) for code, count in sorted(statuses.items())},
    )
    corrected = rows["corrected_ms"].to_numpy(dtype=np.float64)
    corrected = corrected[~np.isnan(corrected)]
    if len(corrected):
        values = percentiles(corrected, LATENCY_PERCENTILES)
        record["corrected"] = {
            "method": "intended_ns",
            "requests": len(corrected),
            **{f"{name}_ms": native(value) for name, value in values.items()},
            "max_ms": native(corrected.max()),
        }
    return record


def _record(
    n: int,
    ok: int,
    fail: int,
    info: int,
    omitted: int,
    duration_s: float,
    raw_ms: dict,
    max_ms: float | None,
    statuses: dict,
) -> dict:
    events = n + omitted
    return {
        "requests": n,
        "ok": ok,
        "fail": fail,
        "info": info,
        "omitted": omitted,
        "rps": native(n / duration_s) if duration_s > 0 else None,
        "ok_rps": native(ok / duration_s) if duration_s > 0 else None,
        "error_rate": native((events - ok) / events, RATE_DIGITS) if events else None,
        **raw_ms,
        "max_ms": max_ms,
        "statuses": statuses,
    }


def _ms(values: dict[str, int | None]) -> dict[str, float | None]:
    return {f"{name}_ms": _ms1(value) for name, value in values.items()}


def _ms1(value: int | None) -> float | None:
    return None if value is None else native(value / 1e6)


def _counts_2d(rows: np.ndarray, columns: np.ndarray, n_rows: int, low: int, width: int) -> np.ndarray:
    """An (n_rows, width) table counting the pairs (rows[i], columns[i] - low): one bincount."""
    key = rows * width
    key += columns
    if low:
        key -= low
    return np.bincount(key, minlength=n_rows * width).reshape(n_rows, width)


def _group_extremes(
    groups: np.ndarray, values: np.ndarray, n: int, empty: int
) -> tuple[np.ndarray, np.ndarray]:
    """(max, min) of ``values`` per group id in [0, n) (``empty`` for both where a group has none).

    One stable sort of the (few, small) group ids, then ``reduceat``: no ``ufunc.at`` over the rows.
    """
    top = np.full(n, empty, dtype=np.int64)
    bottom = np.full(n, empty, dtype=np.int64)
    if not len(values):
        return top, bottom
    key = groups.astype(np.int16 if n < 2**15 else np.int64)
    order = np.argsort(key, kind="stable")
    ordered = values[order]
    sizes = np.bincount(groups, minlength=n)
    present = np.flatnonzero(sizes)
    starts = np.concatenate(([0], np.cumsum(sizes)))[present]
    top[present] = np.maximum.reduceat(ordered, starts)
    bottom[present] = np.minimum.reduceat(ordered, starts)
    return top, bottom


def _segment(times: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Index of the segment [bounds[k], bounds[k+1]) holding each time; -1 outside every segment."""
    if len(bounds) < 2:
        return np.full(len(times), -1, dtype=np.int64)
    k = np.searchsorted(bounds, times, side="right").astype(np.int64, copy=False)
    k -= 1  # in place: at ten million rows every temporary array is 80 MB more to fault in
    k[k >= len(bounds) - 1] = -1
    return k


def _observed(column: pd.Series) -> list[str]:
    """The distinct non-null values of a string column (cheap for a categorical one)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = np.unique(column.cat.codes.to_numpy())
        return [str(column.cat.categories[c]) for c in codes if c >= 0]
    return [str(v) for v in column.dropna().unique()]


def _codes(column: pd.Series, names: tuple[str, ...]) -> np.ndarray:
    """Index of each value of ``column`` in ``names`` (-1 for null or another value), as int64."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        lookup = np.array(
            [names.index(c) if c in names else -1 for c in column.cat.categories] + [-1], dtype=np.int64
        )
        return lookup[column.cat.codes.to_numpy()]
    return pd.Categorical(column, categories=list(names)).codes.astype(np.int64)


def _factorized(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype(np.int64)
    return pd.factorize(column)[0].astype(np.int64)


def intended_ns(ops: pd.DataFrame) -> np.ndarray:
    """``intended_ns`` as int64 with -1 for null (all -1 when the column is absent)."""
    if "intended_ns" not in ops.columns:
        return np.full(len(ops), -1, dtype=np.int64)
    column = ops["intended_ns"]
    if isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        return column.to_numpy(dtype=np.int64, na_value=-1)
    values = column.to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isnan(values), -1, values).astype(np.int64)


def iso(ns: int) -> str:
    """An epoch-nanosecond time as ISO-8601 UTC with microseconds, e.g. ``2024-05-01T12:00:00.250000Z``."""
    seconds, rest = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1000:06d}Z"
