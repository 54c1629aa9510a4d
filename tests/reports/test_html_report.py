"""The HTML report: escaped, self-contained, offline, with the failed checks first."""

from __future__ import annotations

import re

import pytest
from history import applied, final, inc, inject, read, rollback, write_run

from analysis import analyze, load_run
from analysis.series import per_second
from analysis.summary import summarize
from chaoscheck import runformat as rf
from reports.html import render_html, write_report

XSS = "<script>alert(1)</script>"


def timeline_rows(seconds: int):
    from history import ns

    return [
        {
            "ts_ns": ns(i * 200),
            "fleet_desired": 3,
            "fleet_pending": 0,
            "fleet_in_service": 2 if 25 <= i < 60 else 3,
            "fleet_unhealthy": 0,
            "fleet_requests": i,
            "fleet_errors": 0,
            "lambda_reserved": None,
            "lambda_active": 1,
            "lambda_environments": 4,
            "lambda_requests": i,
            "lambda_throttles": 0,
            "lambda_cold_starts": 1,
        }
        for i in range(seconds * 5)
    ]


def make(path, *, timeline=True, lost=False):
    ops = [
        inc(f"k{i}", i * 100, i * 100 + 15 + i % 7, value=i + 1, endpoint=("fleet", "lambda")[i % 2])
        for i in range(100)
    ]
    ops.append(read(3_000, 3_010, None, "info", status=0, error=XSS))
    ops.append(inc("x", 4_000, 4_010, "fail", status=429, error=f"throttled {XSS}"))
    ops += [final(11_000, 11_001, 100), final(11_000, 11_002, 100, endpoint="lambda")]
    ledger = [applied(f"k{i}", i + 1, i * 100 + 5) for i in range(100 - int(lost))]
    faults = [
        inject(0, 2_000, 1.0, target=XSS, note=XSS),
        inject(1, 5_000, 30.0, action="throttle-lambda", target="fn"),
        rollback(1, 7_000),
        inject(2, 8_000, 1.0),
        {**inject(2, 8_001, 1.0), "event": "abort", "error": f"failed {XSS}"},
    ]
    slo = {"consistency": {"lost": 0}, "baseline": {"p95_ms": 10, "p99_ms": 50}, "fault": {"error_rate": 0.5}}
    return write_run(
        path,
        ops,
        server_ops=ledger,
        faults=faults,
        slo=slo,
        timeline=timeline_rows(10) if timeline else None,
        load_ms=(0, 10_000),
        meta={"scenario": f"scenario {XSS}", "endpoints": {"fleet": "http://127.0.0.1:8080"}},
    )


@pytest.fixture
def report(tmp_path):
    run_dir = make(tmp_path)
    write_report(run_dir, analyze(run_dir))
    return (run_dir / rf.REPORT).read_text(encoding="utf-8")


def test_everything_from_files_is_escaped(report):
    assert "<script" not in report.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    # in the ops error (errors table), the fault target (table and chart label), the abort error, run.json
    assert report.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5


def test_offline_and_self_contained(report):
    assert not re.search(r"""\b(src|href|xlink:href|action)\s*=\s*["']?\s*(https?:)?//""", report, re.I)
    assert not re.search(r"<(link|img|iframe|object|embed|script)\b", report, re.I)
    assert "@import" not in report and "url(" not in report
    assert "http://127.0.0.1:8080" in report  # the endpoint is shown as text, not linked


def test_sections_and_failed_checks_first(report):
    assert '<div class="verdict fail">FAIL</div>' in report
    failed_box = report.index('class="failed-box"')
    for section in ("<h2>Over time</h2>", "<h2>Checks</h2>", "<h2>Consistency</h2>", "<h2>Phases</h2>"):
        assert report.index(section) > failed_box
    assert report.index("baseline.p95_ms") < report.index("<h2>Checks</h2>")  # in the failed box
    assert report.count("<svg") == 3  # latency, requests, capacity
    for phase in ("baseline", "fault-1", "recovery-1", "fault-2", "recovery-2"):
        assert f"<td><b>{phase}</b></td>" in report
    assert "<td>fleet</td>" in report and "<td>lambda</td>" in report


def test_consistency_panel_shows_examples(tmp_path):
    run_dir = make(tmp_path, lost=True)
    analysis = analyze(run_dir)
    html = render_html(analysis.summary, analysis.run, analysis.series)
    assert '<span class="mono">lost</span>: 1 (first 1)' in html
    assert "<td>k99</td>" in html


def test_write_report_without_analysis_reads_summary_json(tmp_path):
    run_dir = make(tmp_path, timeline=False)
    analyze(run_dir)
    path = write_report(run_dir)
    html = path.read_text(encoding="utf-8")
    assert html.count("<svg") == 2
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]


def test_rendering_is_deterministic(tmp_path):
    run = load_run(make(tmp_path))
    summary = summarize(run)
    series = per_second(run.ops, run.meta["load_started_ns"], run.meta["load_ended_ns"])
    assert render_html(summary, run, series) == render_html(summary, run, series)


def test_an_hour_of_load_stays_small(tmp_path):
    ops = [inc(f"k{i}", i * 1_000, i * 1_000 + 20, value=i + 1) for i in range(3_600)]
    ops.append(final(3_600_500, 3_600_501, 3_600))
    run_dir = write_run(tmp_path, ops, load_ms=(0, 3_600_000), timeline=timeline_rows(3_600))
    path = write_report(run_dir, analyze(run_dir))
    assert path.stat().st_size < 400_000


def test_an_empty_run_still_renders(tmp_path):
    run_dir = write_run(tmp_path, [], load_ms=(0, 0))
    html = write_report(run_dir, analyze(run_dir)).read_text(encoding="utf-8")
    assert '<div class="verdict fail">FAIL</div>' in html and html.count("<svg") == 2
