"""The HTML report: escaped, self-contained, offline, sections from the summary, failed checks first.

The page in a real browser: test_report_browser.py; its size for large runs: test_report_size.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re

import pytest
from history import applied, final, inc, inject, read, rollback, write_run
from report_synthetic import scaling_rows, write_scaling

from analysis import analyze, load_run
from analysis.summary import summarize
from chaoscheck import runformat as rf
from reports import aggregate, plotlyjs
from reports.explain import explain
from reports.html import render_html, write_report

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def timeline_rows(seconds: int):
    from history import ns

    return [
        {
            "ts_ns": ns(i * 200),
            "fleet_desired": 3,
            "fleet_pending": 1 if 25 <= i < 40 else 0,
            "fleet_in_service": 2 if 25 <= i < 60 else 3,
            "fleet_unhealthy": 0,
            "fleet_requests": i,
            "fleet_errors": 0,
            "lambda_reserved": 0 if 25 <= i < 35 else 10,
            "lambda_active": 1,
            "lambda_environments": 4,
            "lambda_requests": i,
            "lambda_throttles": max(0, min(i, 35) - 25),
            "lambda_cold_starts": min(i, 4),
        }
        for i in range(seconds * 5)
    ]


def make(path, *, timeline=True, lost=False, meta=None):
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
        meta={"scenario": f"scenario {XSS}", "endpoints": {"fleet": "http://127.0.0.1:8080"}, **(meta or {})},
    )


@pytest.fixture
def report(tmp_path):
    run_dir = make(tmp_path)
    write_report(run_dir, analyze(run_dir))
    return (run_dir / rf.REPORT).read_text(encoding="utf-8")


SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)


def outside_scripts(html: str) -> str:
    return SCRIPT.sub("<script></script>", html)


def figures(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="cc-figures">(.*?)</script>', html, re.S)
    assert found
    return json.loads(found.group(1))


def test_everything_from_files_is_escaped(report):
    assert XSS not in report
    assert "<script>alert" not in report.lower()
    # in the HTML: the ops errors (errors table), the fault target (faults table), the abort error,
    # the scenario name from run.json (title, header, run table)
    assert outside_scripts(report).count(ESCAPED) >= 6
    # in the figures' JSON: HTML-escaped for plotly.js, then < > & escaped for the <script> element
    data = figures(report)
    labels = [a.get("hovertext", "") + a["text"] for a in data["cc-timeline"]["layout"]["annotations"]]
    assert any(ESCAPED in label for label in labels)
    assert "\\u0026lt;script\\u0026gt;" in report
    # no <script> element but the page's three, and none of them is cut short
    opened = re.findall(r"<script\b", report, re.I)
    assert len(opened) == 3 == len(re.findall(r"</script>", report, re.I))


def test_offline_and_self_contained(report):
    page = outside_scripts(report)
    assert not re.search(r"""\b(src|href|xlink:href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"<(link|img|iframe|object|embed|base|frame)\b", page, re.I)
    assert "@import" not in page and "url(" not in page
    assert all(not attrs.strip() or attrs.strip() == 'type="application/json" id="cc-figures"'
               for attrs, _ in SCRIPT.findall(report))  # fmt: skip
    assert "default-src 'none'" in page  # the page may fetch nothing, even by mistake
    assert "http://127.0.0.1:8080" in page  # the endpoint is shown as text, not linked
    assert report.count("plotly.js (basic - minified) v4.1.1") == 1  # inlined once


def test_the_vendored_plotly_bundle_is_the_documented_one():
    bundle = plotlyjs.plotly_js()
    readme = (plotlyjs.resources.files("reports") / "vendor" / "README.md").read_text(encoding="utf-8")
    assert hashlib.sha256(bundle.encode()).hexdigest() in readme
    assert f"v{plotlyjs.VERSION}" in bundle[:200] and plotlyjs.VERSION in readme
    assert len(bundle.encode()) < 1_300_000


def test_script_json_cannot_close_its_element():
    value = {"a": "</script><script>x()</script><!-- & \u2028\u2029", "b": [1.5, None]}
    text = plotlyjs.script_json(value)
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == value
    with pytest.raises(ValueError):
        plotlyjs.script_json({"x": float("nan")})
    with pytest.raises(ValueError):
        plotlyjs.inline_js("var a = '</script>';")


def test_sections_and_failed_checks_first(report):
    assert '<div class="verdict fail">FAIL</div>' in report
    failed_box = report.index('class="failed-box"')
    for section in ('id="timeline"', 'id="checks"', 'id="consistency"', 'id="phases"', 'id="faults"'):
        assert report.index(section) > failed_box
    assert report.index("baseline.p95_ms") < report.index('id="checks"')  # in the failed box
    for element in ('<div id="cc-timeline"', '<div id="cc-histograms"'):
        assert element in report
    for phase in ("baseline", "fault-1", "recovery-1", "fault-2", "recovery-2"):
        assert f'<td class="phase-name">{phase}</td>' in report
    assert "<td>fleet</td>" in report and "<td>lambda</td>" in report  # endpoint rows
    for heading in ("<h3>Recovery</h3>", "<h3>Error budget</h3>", "<h3>Baseline versus recovery</h3>"):
        assert heading in report
    assert "<h3>Endpoints over the whole load</h3>" in report
    assert 'id="xray"' not in report and 'id="scaling"' not in report  # no xray.jsonl, no scaling.parquet
    assert "not shown (" not in report  # every section had the shape it expects


def test_every_check_has_its_figures_and_an_explanation(tmp_path):
    run_dir = make(tmp_path)
    summary = analyze(run_dir).summary
    html = write_report(run_dir).read_text(encoding="utf-8")
    checks = html[html.index('id="checks"') : html.index('id="consistency"')]
    for check in summary["checks"]:
        line = explain(check)
        assert "passes when the measured value is within" not in line, check["name"]  # a known check
        row = re.search(rf'<td class="mono">{re.escape(check["name"])}</td>(.*?)</tr>', checks, re.S)
        assert row, check["name"]
        assert line.replace("'", "&#39;") in row.group(1)
        assert "≤" in row.group(1) or "≥" in row.group(1) or "= " in row.group(1)
    failed = html[html.index('class="failed-box"') : html.index('id="timeline"')]
    assert failed.count('<span class="tag fail">FAIL</span>') == len(summary["failed_checks"])


def test_consistency_panel_shows_examples(tmp_path):
    run_dir = make(tmp_path, lost=True)
    analysis = analyze(run_dir)
    html = render_html(analysis.summary, analysis.run)
    assert '<span class="mono">lost</span>: 1 (first 1)' in html
    assert "<td>k99</td>" in html


def test_the_timeline_shares_one_axis_and_marks_faults(report):
    timeline = figures(report)["cc-timeline"]
    layout = timeline["layout"]
    axes = sorted(k for k in layout if k.startswith("xaxis"))
    assert len(axes) == 6  # latency, requests, statuses, fleet, lambda, lambda events
    assert all(layout[a].get("matches") == "x" for a in axes if a != "xaxis")
    names = [t["name"] for t in timeline["data"]]
    for name in ("p50 raw", "p99 raw", "p95 SLO", "p99 SLO", "ok", "fail", "info", "429", "0 no response"):
        assert name in names
    for name in (
        "in service",
        "desired",
        "reserved concurrency",
        "active (peak)",
        "throttles",
        "cold starts",
    ):
        assert name in names
    # fault phases shaded in every row, recovery phases tinted, one line per fault in every row
    rects = [s for s in layout["shapes"] if s["type"] == "rect"]
    assert len(rects) == 4 * len(axes)  # fault-1, recovery-1, fault-2, recovery-2
    lines = [s for s in layout["shapes"] if s["type"] == "line"]
    assert len(lines) == 3 * len(axes)  # two injections and the aborted one (dashed)
    assert sum(s["line"]["dash"] == "dash" for s in lines) == len(axes)
    labels = [a["text"] for a in layout["annotations"]]
    assert "fault-3 aborted" in labels and "fault-2 throttle-lambda fn" in labels
    # aggregated: one value per second of the 10 s load (steps: one more), never one per row
    assert all(len(t.get("y", [])) <= 11 for t in timeline["data"] if "x0" in t)


def test_figures_are_valid_plotly(report):
    go = pytest.importorskip("plotly.graph_objects")
    for figure in figures(report).values():
        go.Figure(figure)  # raises on any property plotly.js does not know


def test_write_report_without_analysis_reads_summary_json(tmp_path):
    run_dir = make(tmp_path, timeline=False)
    analyze(run_dir)
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert 'No <span class="mono">timeline.parquet</span>' in html
    assert len([k for k in figures(html)["cc-timeline"]["layout"] if k.startswith("xaxis")]) == 3
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]


def test_rendering_is_deterministic(tmp_path):
    run = load_run(make(tmp_path))
    summary = summarize(run)
    assert render_html(summary, run) == render_html(summary, run)


def test_an_empty_run_still_renders(tmp_path):
    run_dir = write_run(tmp_path, [], load_ms=(0, 0))
    html = write_report(run_dir, analyze(run_dir)).read_text(encoding="utf-8")
    assert '<div class="verdict fail">FAIL</div>' in html and '<div id="cc-timeline"' in html
    assert "cc-histograms" not in figures(html)


OLD_KEYS = ("budget", "comparison", "latency", "xray")


def old_summary(summary: dict) -> dict:
    """``summary`` as the analysis wrote it before recovery, budget, comparison, p90/p99.9, X-Ray."""
    old = {k: v for k, v in copy.deepcopy(summary).items() if k not in OLD_KEYS}
    for fault in old["faults"]:
        fault.pop("recovery", None)
    for record in [*old["phases"], old["load"]]:
        for r in [record, *record.get("endpoints", {}).values()]:
            r.pop("p90_ms", None)
            r.pop("p999_ms", None)
    return old


def test_an_older_summary_renders_without_the_newer_sections(tmp_path):
    run_dir = make(tmp_path)
    analysis = analyze(run_dir)
    html = render_html(old_summary(analysis.summary), analysis.run)
    assert '<div class="verdict fail">FAIL</div>' in html and 'id="phases"' in html
    for gone in ("<h3>Recovery</h3>", "<h3>Error budget</h3>", "<h3>Baseline versus recovery</h3>", "p90 ms"):
        assert gone not in html
    assert "p95 ms" in html and "not shown (" not in html
    assert "p90 ms" in render_html(analysis.summary, analysis.run)


XRAY = {
    "file": "xray.jsonl",
    "segments": 40,
    "in_progress": 1,
    "traces": 20,
    "rows": 100,
    "joined": 19,
    "coverage": 0.19,
    "unmatched_traces": 1,
    "negative_overhead": 0,
    "cold_starts": 2,
    "phases": [
        {
            "name": "baseline",
            "rows": 100,
            "joined": 19,
            "coverage": 0.19,
            "faults": 0,
            "errors": 1,
            "throttles": 0,
            "client": {"p50_ms": 12.5, "p99_ms": 40.0, "max_ms": 41.0},
            "server": {"p50_ms": 7.25, "p99_ms": 30.0, "max_ms": 31.0},
            "overhead": {"p50_ms": 5.25, "p99_ms": 10.0, "max_ms": 11.0},
            "endpoints": {XSS: {"rows": 50, "joined": 9, "client": {}, "server": {}, "overhead": {}}},
            "cold_starts": {"count": 2, "p50_ms": 150.5, "max_ms": 170.0},
        }
    ],
}


def test_newer_sections_render_when_present(tmp_path):
    run_dir = make(tmp_path)
    analysis = analyze(run_dir)
    steps = [{"name": "step-1", "at_s": 4.0, "from_rate": 200, "to_rate": 600, "init_ms": {"p50": 1.5}}]
    scaling_check = {"name": "scaling.reaction_s", "passed": True, "measured": 2.5, "threshold": 5}
    summary = {
        **analysis.summary,
        "xray": XRAY,
        "scaling": {"fleet": {"scale_outs": 2, "steps": steps}, "events": [{"name": XSS, "at_s": 3.0}]},
        "checks": [*analysis.summary["checks"], scaling_check],
    }
    html = render_html(summary, analysis.run)
    assert 'id="xray"' in html and '<td class="num">7.2</td>' in html and "19.0%" in html
    assert '<td class="num">150.5 / 170 ms</td>' in html
    assert 'id="scaling"' in html and "scale_outs" in html and "scaling · events" in html
    assert "<th>init_ms.p50</th>" in html  # a record of figures becomes columns
    assert "seconds from a load step to the fleet&#39;s first scale-out" in html
    labels = [a["text"] for a in figures(html)["cc-timeline"]["layout"]["annotations"]]
    assert "step-1 200→600/s" in labels
    assert XSS not in html and outside_scripts(html).count(ESCAPED) >= 8
    unreadable = {**summary, "xray": {"file": "xray.jsonl", "error": f"line 3: not valid JSON {XSS}"}}
    assert "xray.jsonl could not be read: line 3: not valid JSON &lt;script&gt;" in render_html(
        unreadable, analysis.run
    )


def test_a_section_of_an_unexpected_shape_becomes_a_note(tmp_path):
    run_dir = make(tmp_path)
    analysis = analyze(run_dir)
    summary = copy.deepcopy(analysis.summary)
    summary["budget"]["phases"][0] = "not a record"
    summary["faults"][0]["recovery"]["health"] = ["not", "a", "mapping"]
    html = render_html(summary, analysis.run)
    assert "report: error budget: not shown (AttributeError" in html
    assert "report: recovery: not shown (AttributeError" in html
    assert 'id="consistency"' in html and 'id="phases"' in html


def test_scaling_activities_are_lines_and_a_table(tmp_path):
    run_dir = make(tmp_path)
    write_scaling(run_dir, scaling_rows(5.0, cause=f"failed health checks {XSS}"))
    analysis = analyze(run_dir)
    html = render_html(analysis.summary, analysis.run)
    assert 'id="scaling"' in html and "<h3>Scaling activities</h3>" in html
    assert f'<td class="error-text">failed health checks {ESCAPED}</td>' in html
    activities_table = (
        outside_scripts(html).split("<h3>Scaling activities</h3>", 1)[1].split("</table>", 1)[0]
    )
    assert "cold-start" not in activities_table  # counted in the timeline and the summary, not listed
    layout = figures(html)["cc-timeline"]["layout"]
    fleet = next(
        f"y{k[5:]}" for k in layout if k.startswith("yaxis") and "instances" in json.dumps(layout[k])
    )
    dotted = [s for s in layout["shapes"] if s["type"] == "line" and s["line"]["dash"] == "dot"]
    assert [s["yref"] for s in dotted] == [f"{fleet} domain"] * 2
    hover = [a.get("hovertext", "") for a in layout["annotations"]]
    assert any(
        h.startswith("terminate 3→2 i-1 (successful, 0.0 s): failed health checks &lt;script") for h in hover
    )


def test_no_credential_is_shown(tmp_path):
    run_dir = make(
        tmp_path,
        meta={
            "aws_secret_access_key": "SECRET-A",
            "session_token": "SECRET-B",
            "backend_config": {"profile": "ops", "password": "SECRET-C"},
        },
    )
    html = write_report(run_dir, analyze(run_dir)).read_text(encoding="utf-8")
    assert "SECRET-" not in html
    assert "[redacted]" in html and "ops" in html


def test_buckets_get_wider_for_long_loads():
    assert aggregate.bucket_width(45) == 1
    assert aggregate.bucket_width(aggregate.MAX_BUCKETS) == 1
    assert aggregate.bucket_width(aggregate.MAX_BUCKETS + 1) == 2
    assert aggregate.bucket_width(86_400) == 48
