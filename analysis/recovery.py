"""Recovery of each fault, judged on the load's 1 s buckets (shared/reference/verification.md).

**Events.** The load's events are its ``increment`` and ``read`` rows (requests) and its ``omitted``
rows (operations the open model scheduled but never sent: bad events). A request's time is when it
was due (``intended_ns``, open model or pacing) when it has one, else when it was sent
(``start_ns``); an omitted row's time is its due time. :func:`load_events` reads them once, without
sorting, for this module, ``analysis.budget`` and ``analysis.compare``.

**Buckets.** Bucket k holds the events whose time falls in [load start + k s, load start + (k+1) s),
for each *whole* second of the load window (a final partial second is not judged: its goodput
would be a fraction of a second's). A bucket is **healthy** when it has at least one request and
each health threshold holds: its error rate ((requests + omitted - ok) / (requests + omitted)), the
nearest-rank p99 of its raw latency, and its goodput (ok requests in the second, against
``min_rps``). The thresholds are ``slo.resilience.health``; a key it leaves out comes from
``slo.baseline`` (the steady state's own limits), and a key neither gives is not applied. An empty
bucket is unhealthy.

**Per fault** (effective faults injected before the load ended; k0 = the bucket holding the
injection, W = ``slo.resilience.stability_window`` rounded up to whole seconds, 10 s by default):

* time to impact: the first unhealthy bucket from k0 on, minus the injection (0 when the bucket
  holding the injection is unhealthy); null when no bucket after the injection is unhealthy.
* recovery point: the earliest k >= k0 whose W buckets k .. k+W-1 are all healthy and inside the
  load, at time max(bucket start, injection). TTR = recovery point - injection;
  ``since_fault_end_s`` = recovery point - end of the fault window (negative when the service held
  up or healed before the fault was undone). Without such a k TTR is infinite: ``ttr_s`` is null and
  ``recovered`` false (JSON has no infinity).
* degradation area: sum over buckets k0 .. recovery point (excluded; to the end of the load when
  there is none, a lower bound) of max(0, 1 - ok / expected) x 1 s, where expected is the baseline
  phase's median ok per second over its whole buckets. The unit is the request-second: one second's
  worth of the baseline's goodput; ``requests_lost`` = area x expected.
* depth: the worst bucket's ok / expected, from k0 to the later of the recovery point and the end
  of the fault window (at least bucket k0).
* availability: ok / (requests + omitted) over the events of the fault window [inject, end).

Everything is vectorised: one pass over the rows to bucket them (a radix sort of the bucket ids for
the p99), then arrays of buckets; loops run over buckets and faults only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.evidence import RATE_DIGITS, native
from analysis.percentiles import rank_index
from analysis.phases import LOAD_KINDS, FaultWindow, intended_ns, iso
from analysis.rundir import HEALTH_SLO_KEYS
from chaoscheck.runformat import OK

BUCKET_NS = 1_000_000_000
DEFAULT_STABILITY_WINDOW_S = 10.0
"""W when the scenario gives no ``slo.resilience.stability_window`` (the scenario model's default)."""
P99_PERMILLE = 990


@dataclass(frozen=True)
class LoadEvents:
    """The load's events as flat arrays, in ledger order (not sorted)."""

    time_ns: np.ndarray
    """Each request's time: ``intended_ns`` when it has one, else ``start_ns``."""
    start_ns: np.ndarray
    """Each request's ``start_ns`` (what the phase figures go by)."""
    ok: np.ndarray
    """Whether each request's outcome is ok."""
    latency_ms: np.ndarray
    """Each request's raw latency, ``end_ns - start_ns``."""
    omitted_ns: np.ndarray
    """The due time of each omitted operation."""


def load_events(ops: pd.DataFrame) -> LoadEvents:
    """The requests (increment and read rows) and omitted operations of ``ops``, one pass, no sort."""
    # compare the string columns as pandas Series: their (Arrow) kernels, no object arrays
    requests = ops["kind"].isin(LOAD_KINDS).to_numpy(dtype=bool)
    omitted = (ops["kind"] == "omitted").to_numpy(dtype=bool)
    start = ops["start_ns"].to_numpy(dtype=np.int64)
    intended = intended_ns(ops)
    scheduled = intended >= 0
    time = np.where(scheduled, intended, start) if scheduled.any() else start
    request_start = start[requests]
    return LoadEvents(
        time_ns=time[requests] if time is not start else request_start,
        start_ns=request_start,
        ok=(ops["outcome"] == OK).to_numpy(dtype=bool)[requests],
        latency_ms=(ops["end_ns"].to_numpy(dtype=np.int64)[requests] - start[requests]) / 1e6,
        omitted_ns=time[omitted],
    )


def health_buckets(events: LoadEvents, load_started_ns: int, load_ended_ns: int) -> pd.DataFrame:
    """One row per whole second of the load window.

    Columns: ``t_s`` (seconds since load start), ``start_ns``, ``requests``, ``ok``, ``omitted``,
    ``events`` (requests + omitted), ``error_rate`` (bad events / events, NaN without events) and
    ``p99_ms`` (nearest-rank over the raw latency of the bucket's requests, NaN when it has none).
    """
    n = max(0, (load_ended_ns - load_started_ns) // BUCKET_NS)
    k = _bucket_of(events.time_ns, load_started_ns, n)
    inside = k >= 0
    k_in = k[inside]
    requests = np.bincount(k_in, minlength=n)[:n]
    ok = np.bincount(k_in[events.ok[inside]], minlength=n)[:n]
    k_omitted = _bucket_of(events.omitted_ns, load_started_ns, n)
    omitted = np.bincount(k_omitted[k_omitted >= 0], minlength=n)[:n]
    total = requests + omitted
    with np.errstate(invalid="ignore", divide="ignore"):
        error_rate = np.where(total > 0, (total - ok) / total, np.nan)
    return pd.DataFrame(
        {
            "t_s": np.arange(n, dtype=np.int64),
            "start_ns": load_started_ns + np.arange(n, dtype=np.int64) * BUCKET_NS,
            "requests": requests.astype(np.int64),
            "ok": ok.astype(np.int64),
            "omitted": omitted.astype(np.int64),
            "events": total.astype(np.int64),
            "error_rate": error_rate,
            "p99_ms": _bucket_percentile(k_in, events.latency_ms[inside], requests, P99_PERMILLE),
        }
    )


def health_thresholds(slo: Mapping[str, Any]) -> dict[str, float]:
    """The limits of a healthy bucket: ``slo.resilience.health``, else ``slo.baseline``'s same key."""
    given = (slo.get("resilience") or {}).get("health") or {}
    baseline = slo.get("baseline") or {}
    out = {}
    for key in HEALTH_SLO_KEYS:
        value = given.get(key, baseline.get(key))
        if value is not None:
            out[key] = value
    return out


def healthy(buckets: pd.DataFrame, thresholds: Mapping[str, float]) -> np.ndarray:
    """Whether each bucket is healthy: it has requests and meets every threshold given."""
    good = buckets["requests"].to_numpy() > 0
    if "error_rate" in thresholds:
        good &= buckets["error_rate"].to_numpy() <= thresholds["error_rate"]
    if "p99_ms" in thresholds:
        good &= buckets["p99_ms"].to_numpy() <= thresholds["p99_ms"]
    if "min_rps" in thresholds:
        good &= buckets["ok"].to_numpy() >= thresholds["min_rps"]
    return good


def expected_goodput(buckets: pd.DataFrame, start_ns: int, end_ns: int) -> float | None:
    """The median ok per second over the whole buckets inside [start_ns, end_ns); None if none."""
    inside = _inside(buckets, start_ns, end_ns)
    if not inside.any():
        return None
    return float(np.median(buckets["ok"].to_numpy()[inside]))


def stability_window_s(slo: Mapping[str, Any]) -> float:
    """W: ``slo.resilience.stability_window`` or :data:`DEFAULT_STABILITY_WINDOW_S`."""
    return float((slo.get("resilience") or {}).get("stability_window", DEFAULT_STABILITY_WINDOW_S))


def fault_recovery(
    window: FaultWindow,
    buckets: pd.DataFrame,
    good: np.ndarray,
    *,
    stability_s: float,
    expected: float | None,
    availability: tuple[int, int],
    load_started_ns: int,
) -> dict:
    """The recovery record of one fault (module doc) from the buckets and their health ``good``.

    ``availability`` is (ok, events) over the fault window, from :func:`window_counts`.
    """
    n = len(buckets)
    lo = load_started_ns
    inject = max(window.inject_ns, lo)
    k0 = (inject - lo) // BUCKET_NS
    w = max(1, math.ceil(stability_s - 1e-9))
    ok_in_window, events_in_window = availability
    record: dict[str, Any] = {
        "stability_window_s": stability_s,
        "expected_ok_rps": expected,
        "impacted": False,
        "time_to_impact_s": None,
        "recovered": False,
        "recovery_point": None,
        "recovery_point_ns": None,
        "recovery_point_s": None,
        "ttr_s": None,
        "since_fault_end_s": None,
        "unhealthy_s": 0,
        "degradation_rs": None,
        "requests_lost": None,
        "depth": None,
        "events": events_in_window,
        "ok": ok_in_window,
        "availability": native(ok_in_window / events_in_window, RATE_DIGITS) if events_in_window else None,
    }
    notes = []
    if k0 >= n:
        record["note"] = "no whole second of load after the injection: recovery not measured"
        return record
    starts = buckets["start_ns"].to_numpy()
    after = ~good[k0:]
    if after.any():
        k_impact = k0 + int(np.argmax(after))
        record["impacted"] = True
        record["time_to_impact_s"] = native((max(int(starts[k_impact]), inject) - inject) / 1e9, RATE_DIGITS)

    bad_before = np.concatenate(([0], np.cumsum(~good)))
    candidates = np.arange(k0, n - w + 1)
    stable = candidates[bad_before[candidates + w] == bad_before[candidates]]
    k_rp = int(stable[0]) if len(stable) else None
    if k_rp is not None:
        point = max(int(starts[k_rp]), inject)
        record.update(
            recovered=True,
            recovery_point=iso(point),
            recovery_point_ns=point,
            recovery_point_s=native((point - lo) / 1e9, RATE_DIGITS),
            ttr_s=native((point - inject) / 1e9, RATE_DIGITS),
            since_fault_end_s=native((point - window.end_ns) / 1e9, RATE_DIGITS),
        )
    else:
        notes.append(
            f"no {w} s of healthy buckets before the load ended: TTR is infinite (ttr_s null), "
            "degradation counted to the end of the load"
        )
    stop = k_rp if k_rp is not None else n
    record["unhealthy_s"] = int(bad_before[stop] - bad_before[k0])
    if expected is not None and expected > 0:
        ratio = buckets["ok"].to_numpy() / expected
        area = float(np.maximum(0.0, 1.0 - ratio[k0:stop]).sum())
        record["degradation_rs"] = native(area, RATE_DIGITS)
        record["requests_lost"] = native(area * expected)
        end_bucket = -(-(window.end_ns - lo) // BUCKET_NS)
        depth_stop = min(n, max(stop, end_bucket, k0 + 1))
        record["depth"] = native(float(ratio[k0:depth_stop].min()), RATE_DIGITS)
    else:
        notes.append("no baseline goodput (median ok per second of the baseline): no degradation or depth")
    record["note"] = "; ".join(notes) or None
    return record


def window_counts(events: LoadEvents, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(ok, requests + omitted) of the events whose time is in each [start, end), in one pass."""
    if not windows:
        return []
    bounds = np.unique(np.array([b for window in windows for b in window], dtype=np.int64))
    before_all = _counts_before(events.time_ns, bounds)
    before_ok = _counts_before(events.time_ns[events.ok], bounds)
    before_omitted = _counts_before(events.omitted_ns, bounds)
    out = []
    for start, end in windows:
        i, j = np.searchsorted(bounds, [start, end])
        total = (before_all[j] - before_all[i]) + (before_omitted[j] - before_omitted[i])
        out.append((int(before_ok[j] - before_ok[i]), int(total)))
    return out


def recovery_by_fault(
    events: LoadEvents,
    buckets: pd.DataFrame,
    windows: list[FaultWindow],
    phases: list[dict],
    slo: Mapping[str, Any],
    load_started_ns: int,
    load_ended_ns: int,
) -> dict[int, dict]:
    """fault_id -> recovery record, for each effective fault injected before the load ended.

    ``phases`` are the summary's phase records (the baseline gives the expected goodput). Each
    record also carries the ``health`` thresholds it was judged by.
    """
    measured = [w for w in windows if w.effective and w.inject_ns < load_ended_ns]
    thresholds = health_thresholds(slo)
    good = healthy(buckets, thresholds)
    baseline = next((p for p in phases if p["kind"] == "baseline"), None)
    expected = expected_goodput(buckets, baseline["start_ns"], baseline["end_ns"]) if baseline else None
    stability_s = stability_window_s(slo)
    counts = window_counts(
        events, [(max(w.inject_ns, load_started_ns), min(w.end_ns, load_ended_ns)) for w in measured]
    )
    out = {}
    for window, availability in zip(measured, counts, strict=True):
        record = fault_recovery(
            window,
            buckets,
            good,
            stability_s=stability_s,
            expected=expected,
            availability=availability,
            load_started_ns=load_started_ns,
        )
        record["health"] = dict(thresholds)
        if not thresholds:
            record["note"] = "; ".join(
                filter(None, [record["note"], "no health thresholds: only empty seconds are unhealthy"])
            )
        out[window.fault_id] = native(record, RATE_DIGITS)
    return out


# -- helpers ---------------------------------------------------------------------------------------


def _bucket_of(times: np.ndarray, lo: int, n: int) -> np.ndarray:
    """The bucket of each time, or -1 outside the n whole seconds from ``lo``."""
    offset = times - lo
    k = offset // BUCKET_NS
    return np.where((offset >= 0) & (k < n), k, -1)


def _bucket_percentile(k: np.ndarray, values: np.ndarray, sizes: np.ndarray, permille: int) -> np.ndarray:
    """Nearest-rank percentile of ``values`` per bucket id ``k`` (NaN for empty buckets).

    Groups by a stable sort of the bucket ids (a radix sort when they fit 16 bits, and runs are
    mostly in order anyway), then one ``np.partition`` per non-empty bucket: O(n) overall.
    """
    n = len(sizes)
    out = np.full(n, np.nan)
    if not len(k):
        return out
    keys = k.astype(np.uint16) if n <= np.iinfo(np.uint16).max else k
    order = np.argsort(keys, kind="stable")
    grouped = values[order]
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    for bucket in np.flatnonzero(sizes):
        part = grouped[offsets[bucket] : offsets[bucket + 1]]
        rank = int(rank_index(len(part), permille))
        out[bucket] = np.partition(part, rank)[rank]
    return out


def _inside(buckets: pd.DataFrame, start_ns: int, end_ns: int) -> np.ndarray:
    """Whether each bucket lies wholly inside [start_ns, end_ns)."""
    starts = buckets["start_ns"].to_numpy()
    return (starts >= start_ns) & (starts + BUCKET_NS <= end_ns)


def _counts_before(times: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """For each of the sorted ``bounds``, how many ``times`` are strictly before it (O(n log B))."""
    slot = np.searchsorted(bounds, times, side="right")  # t < bounds[j] exactly when slot <= j
    return np.cumsum(np.bincount(slot, minlength=len(bounds) + 1))[: len(bounds)]
