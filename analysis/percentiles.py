"""Exact percentiles from raw samples, by the nearest-rank definition.

The p-th percentile of n samples is the smallest sample x such that at least p% of the samples are
<= x: after sorting, the sample at 1-based rank ceil(p/100 * n). It is always a value that was
measured (never an interpolation), it is what HdrHistogram reports as "value at percentile", and it
is numpy's ``method="inverted_cdf"``. The rank is computed in integer arithmetic (percentiles are
given in per-mille), so p95 of 100 samples is the 95th sample, not the 96th by a rounding accident.

Everything is vectorised: one sort (of a combined group-and-value integer key when the values are
integers, as latencies in nanoseconds are), then array indexing, however many groups there are.
:func:`select_rank` finds a rank in the union of several sorted groups, and optionally of
HdrHistogram's back-filled samples, by a binary search over the value, without merging or
materialising anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PERCENTILES = {"p50": 500, "p95": 950, "p99": 990}
"""The percentiles of the per-second series, in per-mille."""

LATENCY_PERCENTILES = {"p50": 500, "p90": 900, "p95": 950, "p99": 990, "p999": 999}
"""The percentiles every latency table reports (``p999`` is p99.9), in per-mille; the maximum too."""


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


def sort_by_group(groups: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``values`` sorted by (group, value), and the start offset of each group (length n_groups + 1).

    Integer values are sorted as one int64 key ``group << k | (value - min)`` when it fits (one
    ``np.sort``, no argsort); anything else falls back to ``np.lexsort``.
    """
    groups = np.asarray(groups, dtype=np.int64)
    sizes = np.bincount(groups, minlength=n_groups)
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    if len(values) == 0:
        return np.asarray(values), offsets
    if np.issubdtype(values.dtype, np.integer):
        low = int(values.min())
        span = int(values.max()) - low
        group_bits = max(1, int(n_groups - 1).bit_length())
        value_bits = max(1, span.bit_length())
        if group_bits + value_bits <= 62:
            key = values.astype(np.int64, copy=True)  # built in place: one whole-length temporary
            key -= low
            key |= groups << value_bits
            key.sort()
            key &= (1 << value_bits) - 1
            key += low
            return key, offsets
    order = np.lexsort((values, groups))
    return values[order], offsets


def grouped_percentiles(
    groups: np.ndarray, values: np.ndarray, n_groups: int, permilles: dict[str, int]
) -> dict[str, np.ndarray]:
    """Nearest-rank percentiles of ``values`` per group id in ``groups`` (ints in [0, n_groups)).

    Returns one float array of length ``n_groups`` per name in ``permilles``; NaN for empty groups.
    """
    sorted_values, offsets = sort_by_group(groups, values, n_groups)
    sizes = np.diff(offsets)
    present = sizes > 0
    out: dict[str, np.ndarray] = {}
    for name, permille in permilles.items():
        result = np.full(n_groups, np.nan)
        index = offsets[:-1][present] + rank_index(sizes[present], permille)
        result[present] = sorted_values[index]
        out[name] = result
    return out


class Backfill:
    """HdrHistogram's ``recordValueWithExpectedInterval(v, I)`` (the Java rule) without recording.

    For a sample v > I the histogram also records v - I, v - 2I, ... while the value is >= I: the
    samples a user paced every I would have taken while the system was stalled. ``extra[i]`` is how
    many sample i adds: max(0, floor(v / I) - 1). Values and I are integers (nanoseconds).
    """

    def __init__(self, values: np.ndarray, interval: int) -> None:
        self.interval = int(interval)
        values = np.asarray(values, dtype=np.int64)
        extra = np.maximum(values // self.interval - 1, 0)
        keep = extra > 0
        self.values = values[keep]
        self.extra = extra[keep]
        self.total = int(self.extra.sum())

    def count_le(self, x: int) -> int:
        """How many back-filled samples are <= x: for v, those v - jI (1 <= j <= extra) with v - jI <= x."""
        if not len(self.values):
            return 0
        first = np.maximum(-((x - self.values) // self.interval), 1)  # smallest j with v - jI <= x
        return int(np.maximum(self.extra - first + 1, 0).sum())

    def max(self) -> int | None:
        return int(self.values.max()) - self.interval if len(self.values) else None


def select_rank(parts: Sequence[np.ndarray], rank: int, backfill: Backfill | None = None) -> int:
    """The sample at 0-based ``rank`` of the union of the sorted integer arrays ``parts`` (and of the
    samples ``backfill`` adds): the smallest x with at least rank + 1 samples <= x, by binary search
    over the value. Exact: the answer is always one of the samples."""
    lows = [int(p[0]) for p in parts if len(p)]
    highs = [int(p[-1]) for p in parts if len(p)]
    if backfill is not None and backfill.total:
        lows.append(backfill.interval)
        highs.append(int(backfill.max() or backfill.interval))
    lo, hi = min(lows), max(highs)
    while lo < hi:
        mid = (lo + hi) // 2
        count = sum(int(np.searchsorted(p, mid, side="right")) for p in parts)
        if backfill is not None:
            count += backfill.count_le(mid)
        if count >= rank + 1:
            hi = mid
        else:
            lo = mid + 1
    return lo


MANY_PARTS = 32
"""Above this many parts :func:`union_percentiles` concatenates and partitions instead of searching."""


def union_percentiles(
    parts: Sequence[np.ndarray], permilles: dict[str, int], backfill: Backfill | None = None
) -> tuple[int, dict[str, int | None], int | None]:
    """(sample count, nearest-rank percentiles, maximum) of the union of sorted integer ``parts``.

    With one part, ranks are read directly; with several, or back-fill, by :func:`select_rank`.
    """
    parts = [p for p in parts if len(p)]
    n = sum(len(p) for p in parts) + (backfill.total if backfill is not None else 0)
    if n == 0:
        return 0, dict.fromkeys(permilles), None
    maximum = max(int(p[-1]) for p in parts)  # a back-filled sample is below its source sample
    if len(parts) > MANY_PARTS and (backfill is None or not backfill.total):
        # many small parts (a run with many faults): one partition beats a binary search per rank
        ranks = {name: int(rank_index(n, permille)) for name, permille in permilles.items()}
        selected = np.partition(np.concatenate(parts), sorted(set(ranks.values())))
        return n, {name: int(selected[rank]) for name, rank in ranks.items()}, maximum
    out: dict[str, int | None] = {}
    for name, permille in permilles.items():
        rank = int(rank_index(n, permille))
        if len(parts) == 1 and (backfill is None or not backfill.total):
            out[name] = int(parts[0][rank])
        else:
            out[name] = select_rank(parts, rank, backfill)
    return n, out, maximum
