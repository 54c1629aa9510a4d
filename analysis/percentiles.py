"""Exact percentiles from raw samples, by the nearest-rank definition.

The p-th percentile of n samples is the smallest sample x such that at least p% of the samples are
<= x: after sorting, the sample at 1-based rank ceil(p/100 * n). It is always a value that was
measured (never an interpolation), it is what HdrHistogram reports as "value at percentile", and it
is numpy's ``method="inverted_cdf"``. The rank is computed in integer arithmetic (percentiles are
given in per-mille), so p95 of 100 samples is the 95th sample, not the 96th by a rounding accident.

Both functions are vectorised: one sort, then array indexing, however many groups there are.
"""

from __future__ import annotations

import numpy as np

PERCENTILES = {"p50": 500, "p95": 950, "p99": 990}
"""The percentiles every latency table reports, in per-mille."""


def rank_index(n: np.ndarray | int, permille: int) -> np.ndarray | int:
    """0-based index of the nearest-rank percentile in a sorted group of ``n`` (> 0) samples."""
    return np.maximum((np.asarray(n) * permille + 999) // 1000 - 1, 0)


def percentile(values: np.ndarray, permille: int) -> float | None:
    """The nearest-rank percentile of ``values`` (any order); None when there are none."""
    return percentiles(values, {"p": permille})["p"]


def percentiles(values: np.ndarray, permilles: dict[str, int]) -> dict[str, float | None]:
    """Several nearest-rank percentiles of ``values`` in one pass (``np.partition``, no full sort)."""
    n = len(values)
    if n == 0:
        return dict.fromkeys(permilles)
    ranks = {name: int(rank_index(n, permille)) for name, permille in permilles.items()}
    selected = np.partition(np.asarray(values), sorted(set(ranks.values())))
    return {name: float(selected[rank]) for name, rank in ranks.items()}


def grouped_percentiles(
    groups: np.ndarray, values: np.ndarray, n_groups: int, permilles: dict[str, int]
) -> dict[str, np.ndarray]:
    """Nearest-rank percentiles of ``values`` per group id in ``groups`` (ints in [0, n_groups)).

    Returns one float array of length ``n_groups`` per name in ``permilles``; NaN for empty groups.
    """
    order = np.lexsort((values, groups))
    sorted_values = values[order]
    sizes = np.bincount(groups, minlength=n_groups)
    offsets = np.concatenate(([0], np.cumsum(sizes)))[:n_groups]
    present = sizes > 0
    out: dict[str, np.ndarray] = {}
    for name, permille in permilles.items():
        result = np.full(n_groups, np.nan)
        index = offsets[present] + rank_index(sizes[present], permille)
        result[present] = sorted_values[index]
        out[name] = result
    return out
