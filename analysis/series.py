"""Per-second time series of the load, for the report's charts.

Buckets are 1 s wide, by ``start_ns`` relative to ``load_started_ns``: bucket t holds the increment
and read rows that started in [load_started + t s, load_started + (t + 1) s), for every t up to the
end of the load (empty buckets are kept, with zero counts and NaN latencies). Latency percentiles are
nearest-rank over the raw latencies of the bucket, like the phase table (one sort of all rows by
bucket and latency, see ``analysis.percentiles.sort_by_group``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.percentiles import PERCENTILES, grouped_percentiles, rank_index
from analysis.phases import OUTCOME_CODES, LoadArrays, load_arrays

BUCKET_NS = 1_000_000_000


def per_second(
    ops: pd.DataFrame, load_started_ns: int, load_ended_ns: int, *, arrays: LoadArrays | None = None
) -> pd.DataFrame:
    """One row per second of the load.

    Columns: ``t_s`` (seconds since load start, the bucket's left edge), ``requests``, one count per
    outcome (``ok``, ``fail``, ``info``), one count per endpoint seen in ``ops`` (``endpoint:<name>``),
    and ``p50_ms``, ``p95_ms``, ``p99_ms`` (NaN for an empty bucket). ``arrays`` (from
    ``analysis.phases.load_arrays(ops)``) saves reading ``ops`` again.

    Memory: a few int64 arrays of the load's length at most (bucket index, one count key, the
    latencies), modified in place and freed as soon as they are used; no frame of the rows.
    """
    a = arrays if arrays is not None else load_arrays(ops)
    n_buckets = max(0, -(-(load_ended_ns - load_started_ns) // BUCKET_NS))
    bucket = a.start - load_started_ns
    bucket //= BUCKET_NS  # floor: negative offsets stay negative, so the bounds test below is the same
    inside = (bucket >= 0) & (bucket < n_buckets)
    everything = bool(inside.all())
    if everything:
        inside = None
    else:
        bucket = bucket[inside]
    outcome = a.outcome if inside is None else a.outcome[inside]
    endpoint = a.endpoint if inside is None else a.endpoint[inside]

    sizes = np.bincount(bucket, minlength=n_buckets)
    series = pd.DataFrame({"t_s": np.arange(n_buckets, dtype=np.int64)})
    series["requests"] = sizes
    key = np.empty_like(bucket)
    for names, codes, prefix in ((OUTCOME_CODES, outcome, ""), (a.endpoints, endpoint, "endpoint:")):
        counts = _counts_by_code(bucket, codes, len(names), n_buckets, key)
        for code, name in enumerate(names):
            series[f"{prefix}{name}"] = counts[:, code]
    del key, outcome, endpoint

    latency = np.subtract(a.end, a.start)
    if inside is not None:
        latency = latency[inside]
    del inside
    for name, values in _percentiles(bucket, latency, sizes, n_buckets).items():
        series[f"{name}_ms"] = values / 1e6
    return series


def _counts_by_code(
    bucket: np.ndarray, codes: np.ndarray, n_codes: int, n_buckets: int, key: np.ndarray
) -> np.ndarray:
    """(n_buckets, n_codes) row counts per bucket and code, by one bincount of ``bucket * n_codes + code``
    (computed into the scratch array ``key``); rows with a negative code (null, unknown) count nowhere."""
    if n_codes == 0:
        return np.zeros((n_buckets, 0), dtype=np.int64)
    np.multiply(bucket, n_codes, out=key)
    key += codes
    unknown = codes < 0
    if unknown.any():
        key[unknown] = n_buckets * n_codes
    del unknown
    counts = np.bincount(key, minlength=n_buckets * n_codes + 1)[: n_buckets * n_codes]
    return counts.reshape(n_buckets, n_codes)


def _percentiles(
    bucket: np.ndarray, latency: np.ndarray, sizes: np.ndarray, n_buckets: int
) -> dict[str, np.ndarray]:
    """:func:`analysis.percentiles.grouped_percentiles` of ``latency`` per ``bucket`` (the same values),
    consuming both arrays: the sort key ``bucket << k | (latency - min)`` is built in ``bucket``'s
    buffer, and only the selected ranks are decoded."""
    if len(latency) == 0:
        return grouped_percentiles(bucket, latency, n_buckets, PERCENTILES)
    low = int(latency.min())
    span = int(latency.max()) - low
    group_bits = max(1, int(n_buckets - 1).bit_length())
    value_bits = max(1, span.bit_length())
    if group_bits + value_bits > 62:
        return grouped_percentiles(bucket, latency, n_buckets, PERCENTILES)
    latency -= low
    bucket <<= value_bits
    bucket |= latency
    del latency
    bucket.sort()
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    present = sizes > 0
    out: dict[str, np.ndarray] = {}
    for name, permille in PERCENTILES.items():
        result = np.full(n_buckets, np.nan)
        index = offsets[:-1][present] + rank_index(sizes[present], permille)
        result[present] = (bucket[index] & ((1 << value_bits) - 1)) + low
        out[name] = result
    return out
