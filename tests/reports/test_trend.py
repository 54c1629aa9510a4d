"""The trend page: runs per scenario over time, deltas and regressions, skipped directories, escaping."""

from __future__ import annotations

import json
import math
import re

import pytest
from history import applied, final, inc, inject, rollback, write_run

from analysis.summary import write_summary
from chaoscheck import runformat as rf
from reports.trend import (
    INF,
    TrendRun,
    collect_runs,
    fmt_delta,
    fmt_metric,
    render_trend,
    sparkline,
    trend_model,
    write_trend,
)

XSS = "<script>alert(1)</script>"


def summary(
    run_id: str,
    started: str,
    *,
    scenario: str = "smoke",
    verdict: str = "pass",
    p99: tuple[float, float, float] = (10.0, 30.0, 12.0),
    ttr: float | None = 1.0,
    recovered: bool = True,
    availability: tuple[int, int] = (90, 100),
    lost: int = 0,
) -> dict:
    """A summary.json record with the fields the trend reads."""
    ok, events = availability
    return {
        "schema_version": 1,
        "run_id": run_id,
        "scenario": scenario,
        "target": "local",
        "started_at": started,
        "verdict": verdict,
        "checks": [
            {
                "name": "run.aborted",
                "passed": True,
                "measured": 0,
                "threshold": 0,
                "phase": None,
                "note": None,
            },
            {
                "name": "consistency.lost",
                "passed": lost == 0,
                "measured": lost,
                "threshold": 0,
                "phase": None,
                "note": None,
            },
        ],
        "phases": [
            {
                "name": "baseline",
                "kind": "baseline",
                "p99_ms": p99[0],
                "requests": 100,
                "ok": 100,
                "omitted": 0,
            },
            {
                "name": "fault-1",
                "kind": "fault",
                "p99_ms": p99[1],
                "requests": events,
                "ok": ok,
                "omitted": 0,
            },
            {
                "name": "recovery-1",
                "kind": "recovery",
                "p99_ms": p99[2],
                "requests": 100,
                "ok": 100,
                "omitted": 0,
            },
        ],
        "load": {"p99_ms": max(p99)},
        "faults": [
            {
                "name": "fault-1",
                "recovery": {
                    "recovered": recovered,
                    "ttr_s": ttr if recovered else None,
                    "ok": ok,
                    "events": events,
                },
            }
        ],
        "consistency": {
            "lost": lost,
            "duplicated": 0,
            "anomalies": {
                "lost": {"count": lost, "severity": "violation"},
                "recovered": {"count": 7, "severity": "note"},
            },
        },
    }


def runs(tmp_path, *summaries: dict) -> list[TrendRun]:
    return [TrendRun(tmp_path / s["run_id"], s) for s in summaries]


def metric(trend, key):
    return next(m for m in trend.metrics if m.key == key)


def test_runs_are_ordered_in_time_per_scenario_with_deltas(tmp_path):
    trends = trend_model(
        runs(
            tmp_path,
            summary("c", "2026-11-03T00:00:00Z", p99=(10, 45, 12), ttr=3.0, availability=(70, 100)),
            summary("a", "2026-11-01T00:00:00Z"),
            summary("b", "2026-11-02T00:00:00Z", p99=(10.5, 31, 12)),
            summary("z", "2026-11-01T00:00:00Z", scenario="baseline"),
        )
    )
    assert [t.name for t in trends] == ["baseline", "smoke"]
    smoke = trends[1]
    assert [r["run_id"] for r in smoke.runs] == ["a", "b", "c"]
    p99 = metric(smoke, "p99.fault-1")
    assert [c.value for c in p99.cells] == [30.0, 31.0, 45.0]
    assert p99.cells[2].delta == pytest.approx(14.0) and p99.cells[2].ratio == pytest.approx(14 / 31)
    assert not p99.cells[1].regression  # +1 ms, +3 %: noise
    assert p99.cells[2].regression  # +14 ms, +45 %
    assert not metric(smoke, "p99.baseline").cells[1].regression  # +0.5 ms is under the 1 ms floor
    ttr = metric(smoke, "ttr.fault-1")
    assert [c.value for c in ttr.cells] == [1.0, 1.0, 3.0] and ttr.latest.regression
    availability = metric(smoke, "availability")
    assert availability.latest.value == pytest.approx(0.7) and availability.latest.regression
    assert {m.key for m in smoke.regressions} == {"p99.fault-1", "p99.load", "ttr.fault-1", "availability"}
    assert metric(smoke, "anomalies").latest.value == 0  # the "recovered" note is not an anomaly
    assert trends[0].regressions == []


def test_a_fault_that_never_recovers_and_a_failed_verdict_are_regressions(tmp_path):
    (trend,) = trend_model(
        runs(
            tmp_path,
            summary("a", "2026-11-01T00:00:00Z"),
            summary("b", "2026-11-02T00:00:00Z", verdict="fail", recovered=False, lost=3),
        )
    )
    ttr = metric(trend, "ttr.fault-1")
    assert ttr.latest.value == INF and ttr.latest.regression and ttr.latest.delta is None
    assert fmt_metric(INF, "s") == "never" and fmt_delta(ttr.latest, "s") == "now never recovers"
    assert metric(trend, "verdict").latest.regression
    assert fmt_delta(metric(trend, "verdict").latest, "verdict") == "now fails"
    assert metric(trend, "anomalies").latest.value == 3 and metric(trend, "anomalies").latest.regression
    assert metric(trend, "consistency.lost").latest.regression
    assert metric(trend, "failed_checks").latest.value == 1


def test_improvements_are_not_regressions(tmp_path):
    (trend,) = trend_model(
        runs(
            tmp_path,
            summary("a", "2026-11-01T00:00:00Z", recovered=False, p99=(10, 80, 12)),
            summary("b", "2026-11-02T00:00:00Z"),
        )
    )
    assert trend.regressions == []
    assert metric(trend, "p99.fault-1").latest.improvement
    assert fmt_delta(metric(trend, "ttr.fault-1").latest, "s") == "recovers again"


def test_formats():
    assert fmt_metric(None, "ms") == "—"
    assert fmt_metric(12.345, "ms") == "12.3 ms" and fmt_metric(1.234, "ms") == "1.23 ms"
    assert fmt_metric(0.98765, "share") == "98.77%"
    assert fmt_metric(1.0, "verdict") == "pass" and fmt_metric(0.0, "verdict") == "fail"
    assert fmt_metric(1234.0, "count") == "1,234"


def test_page_is_self_contained_escaped_and_shows_the_regression(tmp_path):
    trends = trend_model(
        runs(
            tmp_path,
            summary("a", "2026-11-01T00:00:00Z", scenario=f"s{XSS}"),
            summary(f"b{XSS}", "2026-11-02T00:00:00Z", scenario=f"s{XSS}", p99=(10, 60, 12)),
            summary("c", "2026-11-03T00:00:00Z", scenario=f"s{XSS}", p99=(10, 61, 12), verdict="fail"),
        )
    )
    page = render_trend(trends, source=f"runs{XSS}", notes=[f"dir{XSS}: not a run directory"])
    assert "<script" not in page.lower()
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # source, note, scenario, run id
    assert not re.search(r"""\b(src|href|xlink:href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"<(link|img|iframe|object|embed|script)\b", page, re.I)
    assert "@import" not in page and "url(" not in page and "http://" not in page and "https://" not in page
    regressions = page.split('id="regressions"', 1)[1].split("</div>", 1)[0]
    assert "verdict" in regressions and "p99 fault-1" not in regressions  # 60 -> 61 ms is noise
    assert page.count("<svg") == len(trends[0].metrics)
    assert 'class="dot fail"' in page  # the failed run's point


def test_sparkline_gaps_and_never(tmp_path):
    (trend,) = trend_model(
        [
            TrendRun(tmp_path, summary("a", "1", recovered=False)),
            TrendRun(tmp_path, summary("b", "2")),
            TrendRun(tmp_path, summary("c", "3", ttr=2.0)),
        ]
    )
    svg = str(sparkline(metric(trend, "ttr.fault-1"), ["pass", "pass", "pass"]))
    assert svg.count('class="never"') == 1 and svg.count("<circle") == 2 and svg.count("<polyline") == 1
    assert "<title>TTR fault-1: never, 1.00 s, 2.00 s</title>" in svg
    assert not any(math.isnan(float(n)) for n in re.findall(r"-?\d+\.\d+", svg))


# -- over run directories written by the analysis ------------------------------------------------------


def real_run(path, run_id: str, started: str, *, latency_ms: float, throttle_ok: bool = False):
    """A 20 s run of 10 requests a second with a 2 s Lambda throttle at 5 s: the analysis computes
    its phases, TTR and availability."""
    ops = []
    for i in range(200):
        t = i * 100
        throttled = 5_000 <= t < 7_000 and not throttle_ok
        if throttled:
            ops.append(inc(f"k{i}", t, t + 2, "fail", status=429, endpoint="lambda"))
        else:
            ops.append(inc(f"k{i}", t, t + latency_ms, value=None, endpoint=("fleet", "lambda")[i % 2]))
    ok_keys = [o["op_id"] for o in ops if o["outcome"] == "ok"]
    ledger = [applied(k, n + 1, 1) for n, k in enumerate(ok_keys)]
    ops += [final(20_500, 20_501, len(ok_keys))]
    faults = [inject(0, 5_000, 2.0, action="throttle-lambda", target="fn"), rollback(0, 7_000)]
    meta = {"run_id": run_id, "scenario": "smoke", "started_at": started}
    slo = {"baseline": {"error_rate": 0.01}, "resilience": {"stability_window": 3}}
    run_dir = write_run(path / run_id, ops, server_ops=ledger, faults=faults, meta=meta, load_ms=(0, 20_000),
                        slo=slo)  # fmt: skip
    write_summary(run_dir)
    (run_dir / rf.REPORT).write_text("<html></html>")
    return run_dir


@pytest.fixture
def runs_dir(tmp_path):
    root = tmp_path / "runs"
    real_run(root, "r1", "2026-11-01T00:00:00Z", latency_ms=5)
    real_run(root, "r2", "2026-11-02T00:00:00Z", latency_ms=6)
    real_run(root, "r3", "2026-11-03T00:00:00Z", latency_ms=25)
    (root / "not-a-run").mkdir()
    (root / "empty" / "deeper").mkdir(parents=True)
    aborted = root / "aborted-run"
    aborted.mkdir()
    (aborted / rf.RUN_META).write_text("{}")
    broken = root / "broken"
    broken.mkdir()
    (broken / rf.SUMMARY).write_text("{not json")
    future = root / "future"
    future.mkdir()
    (future / rf.SUMMARY).write_text(json.dumps({"schema_version": 99, "scenario": "x"}))
    (root / "trend.html").write_text("an older page")
    return root


def test_collect_skips_non_runs_with_a_note_and_reports_unreadable_summaries(runs_dir):
    found = collect_runs(runs_dir)
    assert sorted(r.run_dir.name for r in found.runs) == ["r1", "r2", "r3"]
    assert len(found.skipped) == 3
    assert any("not-a-run: not a run directory" in s for s in found.skipped)
    assert any("empty: not a run directory" in s for s in found.skipped)
    assert any("aborted-run: a run without summary.json" in s for s in found.skipped)
    assert len(found.errors) == 2 and all("\n" not in e for e in found.errors)
    assert any(
        e.startswith(f"{runs_dir / 'broken' / rf.SUMMARY}: unreadable: not JSON") for e in found.errors
    )
    assert any("schema_version 99" in e for e in found.errors)


def test_runs_found_one_level_down(tmp_path):
    real_run(tmp_path / "artifacts" / "night-1", "r1", "2026-11-01T00:00:00Z", latency_ms=5)
    real_run(tmp_path / "artifacts" / "night-2", "r2", "2026-11-02T00:00:00Z", latency_ms=5)
    found = collect_runs(tmp_path / "artifacts")
    assert sorted(r.run_dir.name for r in found.runs) == ["r1", "r2"] and not found.skipped


def test_write_trend_over_analysed_runs(runs_dir, tmp_path):
    out = tmp_path / "site" / "trend.html"
    path, found = write_trend(runs_dir, out)
    assert path == out and len(found.runs) == 3
    page = out.read_text(encoding="utf-8")
    (trend,) = trend_model(found.runs, out.parent)
    ttr = metric(trend, "ttr.fault-1")
    assert all(c.value is not None and 1.0 <= c.value <= 4.0 for c in ttr.cells)
    availability = metric(trend, "availability")
    assert all(c.value == pytest.approx(0.0) for c in availability.cells)  # every request throttled
    p99 = metric(trend, "p99.baseline")
    assert [c.value for c in p99.cells] == pytest.approx([5.0, 6.0, 25.0])
    assert p99.latest.regression and not p99.cells[1].regression
    assert 'href="../runs/r1/report.html"' in page
    assert "p99 baseline 6.00 ms → 25.0 ms" in page
    assert "not-a-run: not a run directory" in page and "unreadable: not JSON" in page
    assert "<script" not in page.lower()
