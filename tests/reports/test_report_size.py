"""The report's size does not grow with the number of rows, and stays under 5 MB for any run.

The charts plot aggregates (``reports.aggregate``): time buckets, at most ``MAX_BUCKETS`` of them
however long the load, and histogram bins. So a run of 2,000,000 rows weighs what a run of 20,000
rows over the same time weighs, and a day of load what half an hour does; with plotly.js (1.2 MB)
inlined the whole page is about 1.4 MB. (A 10,000,000-row hour, built the same way, gives 1.41 MB:
docs/reports.md.)
"""

from __future__ import annotations

import pytest
from report_synthetic import write_large_run

from analysis import load_run
from analysis.summary import summarize
from reports import aggregate
from reports.html import render_html

LIMIT = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory):
    """Report sizes of a small and a large run over the same two hours (4 s buckets)."""
    sizes = {}
    for rows in (20_000, 2_000_000):
        run = load_run(write_large_run(tmp_path_factory.mktemp(f"rows{rows}"), rows, 7_200))
        sizes[rows] = len(render_html(summarize(run), run).encode("utf-8"))
    return sizes


def test_the_size_does_not_grow_with_the_rows(two_hours):
    small, large = two_hours[20_000], two_hours[2_000_000]
    assert large <= LIMIT and small <= LIMIT
    assert abs(large - small) < 0.02 * small, (small, large)  # the same buckets, other values


def test_a_day_of_load_stays_under_the_limit(tmp_path):
    run = load_run(write_large_run(tmp_path, 200_000, 86_400))
    html = render_html(summarize(run), run)
    assert len(html.encode("utf-8")) <= LIMIT
    assert aggregate.bucket_width(86_400) == 48
    assert "one point per 48 s bucket" in html
