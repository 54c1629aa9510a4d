"""The error budget of a run, per phase and over the whole load (Google SRE workbook).

Events are counted like the phase figures (``analysis.phases``): requests by ``start_ns``, omitted
operations by their due time, each in the phase whose [start, end) holds it. For a target T
(``slo.availability``) and a span with N valid events (requests + omitted) of which G are good (ok):

* SLI = G / N (1 - the span's ``error_rate``);
* budget = (1 - T) x N, the bad events the span may have; ``consumed`` = bad / budget (1.0 is the
  whole budget, above it the span broke its SLO); ``run_share`` = bad / the whole load's budget (a
  phase's part of the run's budget; the phases' shares add up to the load's ``consumed``);
* burn rate over a sliding window of W seconds = error ratio(W) / (1 - T), where the error ratio is
  bad / events over W consecutive 1 s buckets of the span (aligned to the span's start, the last one
  may be partial; a span shorter than W is one window). ``max_error_ratio`` and ``max_burn_rate``
  hold the worst window for each W in :data:`BURN_WINDOWS_S`; windows without events are skipped.
  A burn rate of 1 spends the budget exactly as fast as the target allows; 14.4 over an hour is the
  workbook's page-now threshold for a 30-day SLO.

Without a target the SLI, counts and error ratios are still given; the budget figures are null.
One vectorised pass over the rows for all phases (searchsorted into the phases, one bincount).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analysis.evidence import RATE_DIGITS, native
from analysis.recovery import BUCKET_NS, LoadEvents

BURN_WINDOWS_S = (5, 30)
"""The sliding windows of the burn rate, in seconds."""


def error_budget(
    events: LoadEvents,
    phases: Sequence[Mapping[str, Any]],
    target: float | None,
    load_started_ns: int,
    load_ended_ns: int,
) -> dict:
    """The ``budget`` record: ``target``, ``windows_s``, ``load`` and one entry per phase (module doc).

    ``phases`` are records with ``name``, ``kind``, ``start_ns`` and ``end_ns``, sorted and not
    overlapping (the summary's phases).
    """
    spans = [(str(p["name"]), str(p["kind"]), int(p["start_ns"]), int(p["end_ns"])) for p in phases]
    load_span = ("load", "load", load_started_ns, load_ended_ns)
    (load,) = _span_counts(events, [load_span])
    entries = _span_counts(events, spans)
    load_budget = (1 - target) * int(load["per_s"].sum()) if target is not None else None
    records = [_entry(load, target, load_budget)] + [_entry(e, target, load_budget) for e in entries]
    return native(
        {
            "target": target,
            "windows_s": list(BURN_WINDOWS_S),
            "load": records[0],
            "phases": records[1:],
        },
        RATE_DIGITS,
    )


def _span_counts(events: LoadEvents, spans: list[tuple[str, str, int, int]]) -> list[dict]:
    """Events, good events and per-second (events, bad) of each span, in one pass over the rows."""
    if not spans:
        return []
    starts = np.array([s[2] for s in spans], dtype=np.int64)
    ends = np.array([s[3] for s in spans], dtype=np.int64)
    sizes = np.maximum(0, -(-(ends - starts) // BUCKET_NS))
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    total = int(offsets[-1])

    def buckets(times: np.ndarray) -> np.ndarray:
        """The span bucket of each time, -1 when no span holds it."""
        span = np.searchsorted(starts, times, side="right") - 1
        clipped = np.maximum(span, 0)
        inside = (span >= 0) & (times < ends[clipped])
        return np.where(inside, offsets[clipped] + (times - starts[clipped]) // BUCKET_NS, -1)

    requests = buckets(events.start_ns)
    omitted = buckets(events.omitted_ns)
    n_good = np.bincount(requests[events.ok & (requests >= 0)], minlength=total)
    n_events = np.bincount(requests[requests >= 0], minlength=total)
    n_events += np.bincount(omitted[omitted >= 0], minlength=total)
    out = []
    for i, (name, kind, _, _) in enumerate(spans):
        lo, hi = offsets[i], offsets[i + 1]
        out.append({"name": name, "kind": kind, "per_s": n_events[lo:hi], "good_per_s": n_good[lo:hi]})
    return out


def _entry(counts: dict, target: float | None, load_budget: float | None) -> dict:
    per_s, good_per_s = counts["per_s"], counts["good_per_s"]
    n, good = int(per_s.sum()), int(good_per_s.sum())
    bad = n - good
    budget = (1 - target) * n if target is not None else None
    worst_ratio = {f"{w}s": _worst_ratio(per_s, per_s - good_per_s, w) for w in BURN_WINDOWS_S}
    return {
        "name": counts["name"],
        "kind": counts["kind"],
        "events": n,
        "good": good,
        "bad": bad,
        "sli": good / n if n else None,
        "budget": budget,
        "consumed": bad / budget if budget else None,
        "run_share": bad / load_budget if load_budget else None,
        "max_error_ratio": worst_ratio,
        "max_burn_rate": {
            key: ratio / (1 - target) if ratio is not None and target is not None else None
            for key, ratio in worst_ratio.items()
        },
    }


def _worst_ratio(events: np.ndarray, bad: np.ndarray, window: int) -> float | None:
    """The largest bad / events over ``window`` consecutive buckets (all of them when fewer)."""
    w = min(window, len(events))
    if w == 0:
        return None
    e = np.concatenate(([0], np.cumsum(events)))
    b = np.concatenate(([0], np.cumsum(bad)))
    in_window = e[w:] - e[:-w]
    bad_in_window = b[w:] - b[:-w]
    has = in_window > 0
    if not has.any():
        return None
    return float((bad_in_window[has] / in_window[has]).max())
