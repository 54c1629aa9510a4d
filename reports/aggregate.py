"""What the report's charts plot: the run's rows reduced to time buckets and histogram bins.

Nothing per row reaches the page. The load window is cut into buckets of ``width_s`` whole seconds,
1 s unless the load is longer than :data:`MAX_BUCKETS` seconds (then just enough seconds per bucket
to stay under it), so the page weighs the same for a thousand rows or ten million, and an hour of
load or a day. Everything is computed with numpy from the columns of the run directory's files
(``docs/run-format.md``), one pass each:

- :func:`load_buckets`: from ``ops.parquet``, the requests (``increment`` and ``read`` rows, by
  ``start_ns``, like the phase table) per bucket by outcome and by HTTP status; omitted operations
  by their due time; nearest-rank p50/p95/p99/max of the raw latency (``end_ns - start_ns``) and,
  when rows carry ``intended_ns``, of the corrected latency (``end_ns - intended_ns``).
- :func:`timeline_buckets`: from ``timeline.parquet``, the target's gauges at each bucket boundary
  (the last sample at or before it; Lambda active executions: each bucket's highest sample) and its
  cumulative counters (throttles, cold starts) as mean rates per second over each bucket.
- :func:`latency_histograms`: per phase, the share of its requests in log-spaced latency bins.
- :func:`scaling_events`: the scaling activities of ``scaling.parquet`` that change the fleet's
  desired capacity (scale-out, scale-in), when the run has that file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from analysis.percentiles import grouped_percentiles

MAX_BUCKETS = 1800
"""Most time buckets a chart has (30 minutes at 1 s; a 24-hour load gets 48 s buckets)."""
LOAD_KINDS = ("increment", "read")
LATENCY_PERMILLES = {"p50": 500, "p95": 950, "p99": 990, "max": 1000}
TOP_STATUSES = 8
"""Non-2xx statuses drawn one by one (the most frequent); the others are summed as ``other``."""
BINS_PER_DECADE = 20
MAX_EVENTS = 60
"""Scaling activities drawn as lines at most (the first ones); the rest are counted."""
SCALING_FILE = "scaling.parquet"


@dataclass(frozen=True)
class Buckets:
    """Per-bucket figures of the load; arrays of length ``n``, bucket i = [i·w, (i+1)·w) seconds."""

    width_s: int
    n: int
    requests: np.ndarray
    ok: np.ndarray
    fail: np.ndarray
    info: np.ndarray
    omitted: np.ndarray
    statuses: dict[int, np.ndarray]
    """Non-2xx HTTP statuses (``0``: no response), most frequent first; ``-1`` sums the others."""
    raw: dict[str, np.ndarray]
    """``p50``, ``p95``, ``p99``, ``max`` latency in ms (NaN for an empty bucket)."""
    corrected: dict[str, np.ndarray] | None
    """The same from the due time, or None when no row has ``intended_ns``."""


@dataclass(frozen=True)
class Timeline:
    """Per-bucket state of the target (NaN before its first sample)."""

    gauges: dict[str, np.ndarray] = field(default_factory=dict)
    rates: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Histograms:
    """Log-spaced latency bins (ms edges) and, per phase name, the percent of its requests per bin."""

    edges: np.ndarray
    percent: dict[str, np.ndarray]
    requests: dict[str, int]


def bucket_width(duration_s: float) -> int:
    """Whole seconds per bucket: 1, or the fewest that keep the load under :data:`MAX_BUCKETS`."""
    return max(1, math.ceil(max(duration_s, 0.0) / MAX_BUCKETS))


def bucket_count(load_started_ns: int, load_ended_ns: int, width_s: int) -> int:
    return max(0, -(-(load_ended_ns - load_started_ns) // (width_s * 1_000_000_000)))


def load_buckets(ops: pd.DataFrame, load_started_ns: int, load_ended_ns: int) -> Buckets:
    width = bucket_width((load_ended_ns - load_started_ns) / 1e9)
    n = bucket_count(load_started_ns, load_ended_ns, width)
    span = width * 1_000_000_000
    # Whole-length temporaries are few and dropped early: at ten million rows each is 80 MB, and the
    # report is drawn in the process that holds the analysis.
    kind = ops["kind"]
    start = ops["start_ns"].to_numpy(dtype=np.int64)
    offset = start - load_started_ns
    inside = kind.isin(LOAD_KINDS).to_numpy(dtype=bool) & (offset >= 0)  # a new, writable array
    inside &= offset < n * span
    bucket = offset[inside]
    bucket //= span
    del offset
    # outcome by comparison (a categorical compares its codes): no Python string per row
    outcome = {name: (ops["outcome"] == name).to_numpy(dtype=bool)[inside] for name in ("ok", "fail", "info")}
    status = ops["status"].to_numpy(dtype=np.int64, na_value=0)[inside]

    def count(mask: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(bucket if mask is None else bucket[mask], minlength=n)[:n]

    intended = (
        ops["intended_ns"].to_numpy(dtype=np.int64, na_value=-1)
        if "intended_ns" in ops.columns
        else np.full(len(ops), -1, dtype=np.int64)
    )
    # omitted operations: by their due time (intended_ns, else start_ns)
    omitted_rows = (kind == "omitted").to_numpy(dtype=bool)
    due = np.where(intended[omitted_rows] >= 0, intended[omitted_rows], start[omitted_rows]) - load_started_ns
    due = due[(due >= 0) & (due < n * span)] // span

    end = ops["end_ns"].to_numpy(dtype=np.int64)[inside]
    latency = end - start[inside]
    raw = _percentiles_ms(bucket, latency, n)
    del latency
    corrected = None
    intended = intended[inside]
    has_due = intended >= 0
    if has_due.all():
        end -= intended
        corrected = _percentiles_ms(bucket, end, n)
    elif has_due.any():
        corrected = _percentiles_ms(bucket[has_due], end[has_due] - intended[has_due], n)
    del end, intended

    return Buckets(
        width_s=width,
        n=n,
        requests=count(),
        ok=count(outcome["ok"]),
        fail=count(outcome["fail"]),
        info=count(outcome["info"]),
        omitted=np.bincount(due, minlength=n)[:n],
        statuses=_statuses(bucket, status, n),
        raw=raw,
        corrected=corrected,
    )


def _percentiles_ms(bucket: np.ndarray, values_ns: np.ndarray, n: int) -> dict[str, np.ndarray]:
    if n == 0:
        return {name: np.zeros(0) for name in LATENCY_PERMILLES}
    found = grouped_percentiles(bucket, values_ns.astype(np.int64), n, LATENCY_PERMILLES)
    return {name: np.asarray(values, dtype=float) / 1e6 for name, values in found.items()}


def _statuses(bucket: np.ndarray, status: np.ndarray, n: int) -> dict[int, np.ndarray]:
    bad = (status < 200) | (status >= 300)
    codes, totals = np.unique(status[bad], return_counts=True)
    order = np.lexsort((codes, -totals))  # most frequent first, then by code
    top = [int(c) for c in codes[order][:TOP_STATUSES]]
    out = {code: np.bincount(bucket[status == code], minlength=n)[:n] for code in top}
    rest = bad & ~np.isin(status, top)
    if rest.any():
        out[-1] = np.bincount(bucket[rest], minlength=n)[:n]
    return out


GAUGES = (
    "fleet_desired",
    "fleet_in_service",
    "fleet_pending",
    "fleet_unhealthy",
    "lambda_reserved",
    "lambda_environments",
)
"""Gauges drawn as the target's state at each bucket boundary (the last sample at or before it)."""
PEAK_GAUGES = ("lambda_active",)
"""Gauges drawn as each bucket's highest sample (a burst between two boundaries stays visible)."""
COUNTERS = ("lambda_throttles", "lambda_cold_starts")
"""Cumulative counters drawn as their mean rate per second over each bucket."""


def timeline_buckets(timeline: pd.DataFrame, load_started_ns: int, width_s: int, n: int) -> Timeline:
    """The target's state per bucket of the load window, as step series of ``n + 1`` points.

    Point k sits at k·w seconds. For a gauge it is the state then (the last sample at or before it;
    NaN before the first sample); for a peak gauge and a counter's rate it describes the bucket
    [k·w, (k+1)·w) (its highest sample; its increase / w), and the last point repeats the one before
    so that the step closes at the end of the load.
    """
    span = width_s * 1_000_000_000
    ts = timeline["ts_ns"].to_numpy(dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    bounds = load_started_ns + span * np.arange(0, n + 1, dtype=np.int64)
    last = np.searchsorted(ts, bounds, side="right") - 1  # the last sample at or before each boundary

    def at_bounds(values: np.ndarray) -> np.ndarray:
        if not len(ts):
            return np.full(n + 1, np.nan)
        return np.where(last >= 0, values[np.clip(last, 0, None)], np.nan)

    def column(name: str) -> np.ndarray:
        return timeline[name].to_numpy(dtype=float, na_value=np.nan)[order]

    gauges: dict[str, np.ndarray] = {}
    for name in GAUGES:
        if name in timeline.columns:
            gauges[name] = at_bounds(column(name))
    index = (ts - load_started_ns) // span if len(ts) else np.zeros(0, dtype=np.int64)
    for name in PEAK_GAUGES:
        if name not in timeline.columns:
            continue
        values = column(name)
        peak = np.full(n, -np.inf)
        inside = (index >= 0) & (index < n) & ~np.isnan(values)
        np.maximum.at(peak, index[inside], values[inside])
        state = at_bounds(values)[:n]
        gauges[name] = _close(np.where(np.isfinite(peak), np.fmax(peak, state), state))
    rates: dict[str, np.ndarray] = {}
    for name in COUNTERS:
        if name not in timeline.columns:
            continue
        cumulative = at_bounds(column(name))
        if len(ts) and n:
            # before the first sample inside the load, the counter stood at its first value
            cumulative[0] = column(name)[0] if np.isnan(cumulative[0]) else cumulative[0]
        rate = np.diff(cumulative) / width_s
        rates[name] = _close(np.where(rate < 0, np.nan, rate))  # a reset (restarted sampler): no rate
    return Timeline(gauges=gauges, rates=rates)


def _close(per_bucket: np.ndarray) -> np.ndarray:
    """n values per bucket as n + 1 step points (the last repeated)."""
    return np.append(per_bucket, per_bucket[-1:] if len(per_bucket) else np.nan)


def latency_histograms(
    ops: pd.DataFrame, phases: list[dict], load_started_ns: int, load_ended_ns: int
) -> Histograms:
    """Per phase (``summary.phases``), the percent of its requests in each latency bin.

    Bins are log-spaced, :data:`BINS_PER_DECADE` per decade, from the decade fraction just below the
    fastest request to just above the slowest (all phases share them, so they compare).
    """
    start = ops["start_ns"].to_numpy(dtype=np.int64)
    rows = ops["kind"].isin(LOAD_KINDS).to_numpy(dtype=bool) & (start >= load_started_ns)
    rows &= start < load_ended_ns
    start = start[rows]
    logs = ops["end_ns"].to_numpy(dtype=np.int64)[rows]
    del rows
    logs -= start
    logs = logs.astype(np.float64)  # latency (ns; the log of ms is the log of ns minus 6)
    positive = logs > 0
    if not positive.any() or not phases:
        return Histograms(edges=np.zeros(0), percent={}, requests={})
    np.maximum(logs, logs[positive].min(), out=logs)
    del positive
    logs /= 1e6
    np.log10(logs, out=logs)
    lo = math.floor(logs.min() * BINS_PER_DECADE)
    hi = max(math.ceil(logs.max() * BINS_PER_DECADE), lo + 1)
    if hi * BINS_PER_DECADE == logs.max() * BINS_PER_DECADE:  # the slowest sits on an edge: close it
        hi += 1
    edges = 10.0 ** (np.arange(lo, hi + 1) / BINS_PER_DECADE)
    logs *= BINS_PER_DECADE
    np.floor(logs, out=logs)
    bins = logs.astype(np.int64)
    del logs
    bins -= lo
    np.clip(bins, 0, hi - lo - 1, out=bins)
    bounds = np.array([p["start_ns"] for p in phases[1:]], dtype=np.int64)
    which = np.searchsorted(bounds, start, side="right").astype(np.int64, copy=False)
    del start
    n_bins = hi - lo
    which *= n_bins
    which += bins
    counts = np.bincount(which, minlength=len(phases) * n_bins).reshape(len(phases), n_bins)
    percent: dict[str, np.ndarray] = {}
    requests: dict[str, int] = {}
    for i, phase in enumerate(phases):
        total = int(counts[i].sum())
        requests[phase["name"]] = total
        if total:
            percent[phase["name"]] = counts[i] * 100.0 / total
    return Histograms(edges=edges, percent=percent, requests=requests)


@dataclass(frozen=True)
class ScalingEvent:
    """One scaling activity, times in seconds since the load started (``end_s`` None: not ended)."""

    t_s: float
    end_s: float | None
    resource: str
    kind: str
    from_capacity: int | None
    to_capacity: int | None
    status: str
    cause: str
    subject: str


DRAWN_KINDS = {"fleet": ("scale-out", "scale-in", "launch", "terminate"), "lambda": ("terminate",)}
"""Activities drawn as lines: every change of the fleet, and Lambda environments lost. Cold starts
and reclaimed environments are many; they are drawn as rates from the timeline instead."""


def scaling_events(
    run_path: Path | None, load_started_ns: int, load_ended_ns: int, frame: pd.DataFrame | None = None
) -> tuple[list[ScalingEvent], int]:
    """The drawn activities (:data:`DRAWN_KINDS`) that started during the load, at most
    :data:`MAX_EVENTS` (the first ones), and how many there were in all.

    ``frame`` is the activities table if the caller has it; otherwise ``scaling.parquet`` is read
    from ``run_path`` when it is there. Without either: no events.
    """
    if frame is None:
        path = run_path / SCALING_FILE if run_path is not None else None
        if path is None or not path.exists():
            return [], 0
        frame = pq.read_table(path).to_pandas()
    if frame.empty or not {"resource", "kind", "start_ns"} <= set(frame.columns):
        return [], 0
    start = frame["start_ns"].to_numpy(dtype=np.int64)
    resource = frame["resource"].astype(str).to_numpy(dtype=object)
    kind = frame["kind"].astype(str).to_numpy(dtype=object)
    drawn = np.array([k in DRAWN_KINDS.get(r, ()) for r, k in zip(resource, kind, strict=True)], dtype=bool)
    chosen = drawn & (start >= load_started_ns) & (start <= load_ended_ns)
    rows = frame.loc[chosen].sort_values("start_ns", kind="stable")
    events = [
        ScalingEvent(
            t_s=(int(row["start_ns"]) - load_started_ns) / 1e9,
            end_s=_seconds(row.get("end_ns"), load_started_ns),
            resource=str(row["resource"]),
            kind=str(row["kind"]),
            from_capacity=_int(row.get("from_capacity")),
            to_capacity=_int(row.get("to_capacity")),
            status=_text(row.get("status")),
            cause=_text(row.get("cause")),
            subject=_text(row.get("subject")),
        )
        for row in rows.head(MAX_EVENTS).to_dict("records")
    ]
    return events, len(rows)


def _seconds(value: object, load_started_ns: int) -> float | None:
    number = _int(value)
    return None if number is None else (number - load_started_ns) / 1e9


def _int(value: object) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)
