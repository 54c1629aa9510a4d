"""Baseline versus recovery: has the service come back to where it was? (Netflix Kayenta's judge)

For each recovery phase, each metric's per-second aggregates (the whole 1 s buckets of
``analysis.recovery.health_buckets`` that lie inside the phase: ``p99_ms``, the nearest-rank p99 of
the second's raw latency, and ``error_rate``, its bad events over events; seconds without a value
are left out) are compared with the baseline phase's:

* the Mann-Whitney U test (``scipy.stats.mannwhitneyu``, two-sided), for whether they differ;
* the Hodges-Lehmann shift, the median of every pairwise difference recovery - baseline, for how
  much. Past :data:`MAX_PAIRS` pairs each side is thinned to evenly spaced order statistics, so
  the estimate stays a deterministic, vectorised O(MAX_PAIRS);
* the effect: for ``p99_ms`` the ratio (baseline median + shift) / baseline median, for
  ``error_rate`` the shift itself (a ratio of rates near 0 means nothing).

Classification, gated on the effect size and not on the p-value alone (with enough seconds every
difference is significant): **High** when p < alpha and the effect is above the tolerance (ratio >
tolerance, or shift > tolerance); **Low** when p < alpha and it is below the mirror bound (ratio <
1 / tolerance, or shift < -tolerance); **Pass** otherwise; **NoData** with fewer than
:data:`MIN_SAMPLES` seconds on either side. Tolerances and alpha come from
``slo.resilience.compare``, else :data:`DEFAULT_TOLERANCE` and :data:`DEFAULT_ALPHA`. For both
metrics lower is better, so only High fails a ``compare.*`` check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.evidence import RATE_DIGITS, native
from analysis.recovery import BUCKET_NS

METRICS = ("p99_ms", "error_rate")
DEFAULT_TOLERANCE = {"p99_ms": 1.1, "error_rate": 0.01}
"""p99: recovered within 1.1x the baseline passes; error rate: within 1 percentage point."""
DEFAULT_ALPHA = 0.05
MIN_SAMPLES = 3
MAX_PAIRS = 1_000_000
HIGH, LOW, PASS, NODATA = "High", "Low", "Pass", "NoData"


def hodges_lehmann(baseline: np.ndarray, other: np.ndarray, max_pairs: int = MAX_PAIRS) -> float | None:
    """The median of ``other[j] - baseline[i]`` over all pairs (thinned past ``max_pairs``)."""
    x, y = np.sort(np.asarray(baseline, dtype=float)), np.sort(np.asarray(other, dtype=float))
    if not len(x) or not len(y):
        return None
    if len(x) * len(y) > max_pairs:
        side = max(1, math.isqrt(max_pairs))
        x, y = _thin(x, side), _thin(y, side)
    return float(np.median(np.subtract.outer(y, x)))


def judge(
    baseline: np.ndarray, other: np.ndarray, metric: str, tolerance: float, alpha: float = DEFAULT_ALPHA
) -> dict:
    """One metric of one phase against the baseline: the test, the shift, the effect, the class."""
    x = np.asarray(baseline, dtype=float)
    y = np.asarray(other, dtype=float)
    record: dict[str, Any] = {
        "baseline_n": len(x),
        "n": len(y),
        "baseline_median": float(np.median(x)) if len(x) else None,
        "median": float(np.median(y)) if len(y) else None,
        "u": None,
        "p_value": None,
        "shift": None,
        "effect": None,
        "tolerance": tolerance,
        "classification": NODATA,
    }
    if len(x) < MIN_SAMPLES or len(y) < MIN_SAMPLES:
        return record
    from scipy.stats import mannwhitneyu  # here: importing scipy.stats costs half a second per process

    test = mannwhitneyu(y, x, alternative="two-sided")
    p = float(test.pvalue)
    p = 1.0 if math.isnan(p) else p  # all values equal: no evidence of a difference
    shift = hodges_lehmann(x, y)
    assert shift is not None
    if metric == "p99_ms":
        effect = _ratio(record["baseline_median"], shift)
        high, low = effect > tolerance, effect < 1 / tolerance
    else:
        effect = shift
        high, low = effect > tolerance, effect < -tolerance
    significant = p < alpha
    record.update(
        u=float(test.statistic),
        p_value=p,
        shift=shift,
        effect=effect,
        classification=HIGH if significant and high else LOW if significant and low else PASS,
    )
    return record


def compare_recovery(
    buckets: pd.DataFrame, phases: Sequence[Mapping[str, Any]], slo: Mapping[str, Any]
) -> dict:
    """The ``comparison`` record: each recovery phase's metrics judged against the baseline phase."""
    given = (slo.get("resilience") or {}).get("compare") or {}
    tolerance = {metric: given.get(metric, DEFAULT_TOLERANCE[metric]) for metric in METRICS}
    alpha = given.get("alpha", DEFAULT_ALPHA)
    baseline = next((p for p in phases if p["kind"] == "baseline"), None)
    recoveries = [p for p in phases if p["kind"] == "recovery"]
    record: dict[str, Any] = {
        "alpha": alpha,
        "tolerance": tolerance,
        "baseline": baseline["name"] if baseline else None,
        "phases": [],
        "note": None,
    }
    if baseline is None:
        record["note"] = "no baseline phase in this run"
        return native(record, RATE_DIGITS)
    if not recoveries:
        record["note"] = "no recovery phase in this run"
    reference = per_second_values(buckets, baseline["start_ns"], baseline["end_ns"])
    for phase in recoveries:
        values = per_second_values(buckets, phase["start_ns"], phase["end_ns"])
        record["phases"].append(
            {
                "name": phase["name"],
                "fault_id": phase.get("fault_id"),
                "metrics": {
                    metric: judge(reference[metric], values[metric], metric, tolerance[metric], alpha)
                    for metric in METRICS
                },
            }
        )
    return native(record, RATE_DIGITS)


def per_second_values(buckets: pd.DataFrame, start_ns: int, end_ns: int) -> dict[str, np.ndarray]:
    """Each metric's values over the whole buckets inside [start_ns, end_ns), NaNs left out."""
    starts = buckets["start_ns"].to_numpy()
    inside = (starts >= start_ns) & (starts + BUCKET_NS <= end_ns)
    out = {}
    for metric in METRICS:
        values = buckets[metric].to_numpy()[inside]
        out[metric] = values[~np.isnan(values)]
    return out


def _ratio(base: float, shift: float) -> float:
    """(base + shift) / base, the recovered level as a multiple of the baseline's."""
    if base > 0:
        return (base + shift) / base
    return 1.0 if shift == 0 else math.inf if shift > 0 else 0.0


def _thin(sorted_values: np.ndarray, size: int) -> np.ndarray:
    """``size`` evenly spaced order statistics of ``sorted_values`` (all of them when fewer)."""
    if len(sorted_values) <= size:
        return sorted_values
    index = np.round(np.linspace(0, len(sorted_values) - 1, size)).astype(np.int64)
    return sorted_values[index]
