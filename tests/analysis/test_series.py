"""Per-second series and nearest-rank percentiles."""

from __future__ import annotations

import numpy as np
from history import definition_rank, inc, load, read
from hypothesis import given
from hypothesis import strategies as st

from analysis.percentiles import grouped_percentiles, percentile
from analysis.series import per_second


def test_per_second_buckets(tmp_path):
    ops = [
        inc("a", 100, 110),
        inc("b", 900, 930, "info", status=504, endpoint="lambda"),
        read(999.999, 1005, 1),
        read(2500, 2540, None, "fail", status=429, endpoint="lambda"),
    ]
    run = load(tmp_path, ops, load_ms=(0, 3_500))
    series = per_second(run.ops, run.meta["load_started_ns"], run.meta["load_ended_ns"])
    assert list(series["t_s"]) == [0, 1, 2, 3]
    assert list(series["requests"]) == [3, 0, 1, 0]
    assert list(series["ok"]) == [2, 0, 0, 0]
    assert list(series["info"]) == [1, 0, 0, 0]
    assert list(series["fail"]) == [0, 0, 1, 0]
    assert list(series["endpoint:fleet"]) == [2, 0, 0, 0]
    assert list(series["endpoint:lambda"]) == [1, 0, 1, 0]
    assert series["p50_ms"].iloc[0] == 10.0 and series["p99_ms"].iloc[0] == 30.0
    assert np.isnan(series["p95_ms"].iloc[1]) and series["p95_ms"].iloc[2] == 40.0


def test_nearest_rank_percentiles():
    values = np.arange(1, 101, dtype=float)
    assert [percentile(values, p) for p in (500, 950, 990, 1000)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile(np.array([7.0]), 990) == 7.0
    assert percentile(np.array([]), 500) is None


@given(st.lists(st.tuples(st.integers(0, 4), st.floats(0, 1e4, allow_nan=False)), min_size=1, max_size=200))
def test_grouped_percentiles_match_the_definition(samples):
    groups = np.array([g for g, _ in samples])
    values = np.array([v for _, v in samples])
    result = grouped_percentiles(groups, values, 5, {"p50": 500, "p95": 950, "p99": 990})
    for g in range(5):
        mine = values[groups == g]
        for name, permille in (("p50", 500), ("p95", 950), ("p99", 990)):
            if len(mine):
                assert result[name][g] == definition_rank(mine, permille)
            else:
                assert np.isnan(result[name][g])
