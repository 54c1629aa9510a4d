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

from analysis.percentiles import PERCENTILES, grouped_percentiles
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
    """
    a = arrays if arrays is not None else load_arrays(ops)
    n_buckets = max(0, -(-(load_ended_ns - load_started_ns) // BUCKET_NS))
    offset = a.start - load_started_ns
    inside = (offset >= 0) & (offset < n_buckets * BUCKET_NS)
    bucket = offset[inside] // BUCKET_NS

    series = pd.DataFrame({"t_s": np.arange(n_buckets, dtype=np.int64)})
    series["requests"] = np.bincount(bucket, minlength=n_buckets)
    outcome = a.outcome[inside]
    for code, name in enumerate(OUTCOME_CODES):
        series[name] = np.bincount(bucket[outcome == code], minlength=n_buckets)
    endpoint = a.endpoint[inside]
    for code, name in enumerate(a.endpoints):
        series[f"endpoint:{name}"] = np.bincount(bucket[endpoint == code], minlength=n_buckets)
    latency = grouped_percentiles(bucket, a.latency[inside], n_buckets, PERCENTILES)
    for name, values in latency.items():
        series[f"{name}_ms"] = values / 1e6
    return series
