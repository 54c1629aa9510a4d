"""Per-second time series of the load, for the report's charts.

Buckets are 1 s wide, by ``start_ns`` relative to ``load_started_ns``: bucket t holds the increment
and read rows that started in [load_started + t s, load_started + (t + 1) s), for every t up to the
end of the load (empty buckets are kept, with zero counts and NaN latencies). Latency percentiles are
nearest-rank over the raw latencies of the bucket, like the phase table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.percentiles import PERCENTILES, grouped_percentiles
from analysis.phases import load_rows
from chaoscheck.runformat import OUTCOMES

BUCKET_NS = 1_000_000_000


def per_second(ops: pd.DataFrame, load_started_ns: int, load_ended_ns: int) -> pd.DataFrame:
    """One row per second of the load.

    Columns: ``t_s`` (seconds since load start, the bucket's left edge), ``requests``, one count per
    outcome (``ok``, ``fail``, ``info``), one count per endpoint seen in ``ops`` (``endpoint:<name>``),
    and ``p50_ms``, ``p95_ms``, ``p99_ms`` (NaN for an empty bucket).
    """
    n_buckets = max(0, -(-(load_ended_ns - load_started_ns) // BUCKET_NS))
    rows = load_rows(ops)
    offset = rows["start_ns"].to_numpy() - load_started_ns
    inside = (offset >= 0) & (offset < n_buckets * BUCKET_NS)
    rows = rows.loc[inside]
    bucket = (offset[inside] // BUCKET_NS).astype(np.int64)

    series = pd.DataFrame({"t_s": np.arange(n_buckets, dtype=np.int64)})
    series["requests"] = np.bincount(bucket, minlength=n_buckets)
    outcome = rows["outcome"].to_numpy()
    for name in OUTCOMES:
        series[name] = np.bincount(bucket[outcome == name], minlength=n_buckets)
    endpoint = rows["endpoint"].to_numpy()
    for name in sorted(set(ops["endpoint"].unique())):
        series[f"endpoint:{name}"] = np.bincount(bucket[endpoint == name], minlength=n_buckets)
    latency = grouped_percentiles(bucket, rows["latency_ms"].to_numpy(), n_buckets, PERCENTILES)
    for name, values in latency.items():
        series[f"{name}_ms"] = values
    return series
