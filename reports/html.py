"""The HTML report: one self-contained file that works offline, with interactive charts.

``render_html`` is pure (summary and run in, text out); ``write_report`` writes ``report.html``. The
page loads nothing: the CSS and the JavaScript are inline (plotly.js from ``reports/vendor``, once;
our few lines from ``templates/report.js``), no ``src``/``href`` points outside the page, and the
figures are JSON in a ``<script type="application/json">`` block (``reports.plotlyjs.script_json``
escapes ``<``, ``>`` and ``&`` so that no text can close it). Templates are Jinja2 with autoescape,
so every value that came from a file (error texts, fault targets, causes, run metadata) is escaped
in the HTML; texts that go into the charts are escaped for plotly.js by ``reports.charts``.

What the page shows and where each figure comes from: docs/reports.md. The charts plot aggregates
(``reports.aggregate``: time buckets, histogram bins), so the file weighs the same for any number
of rows. Sections whose data the summary lacks (an older summary, or a run without faults, X-Ray or
scaling activities) are left out; a section whose record has an unexpected shape is replaced by a
one-line note rather than failing the whole report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from markupsafe import Markup

from analysis.phases import iso
from analysis.rundir import Run, load_run
from analysis.summary import Analysis, summarize, write_atomic
from chaoscheck import runformat as rf
from reports import aggregate, charts, plotlyjs, tables
from reports.templating import environment

_ENV = environment()


def render_html(summary: dict, run: Run, series: pd.DataFrame | None = None) -> str:
    """The report page for ``summary`` (as ``analysis.summarize`` makes it) and its run.

    ``series`` (``analysis.series.per_second``) is accepted for compatibility and not needed: the
    charts aggregate the run's rows themselves (``reports.aggregate``), in buckets that stay few for
    long loads.
    """
    del series
    lo = int(summary.get("load_started_ns") or run.meta.get("load_started_ns") or 0)
    hi = int(summary.get("load_ended_ns") or run.meta.get("load_ended_ns") or lo)
    problems: list[str] = []

    def guarded(what: str, build: Callable[[], Any]) -> Any:
        """An optional section: None (and a note on the page) if its record has an unexpected shape."""
        try:
            return build()
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            problems.append(f"{what}: not shown ({type(exc).__name__}: {exc})")
            return None

    buckets = aggregate.load_buckets(run.ops, lo, hi)
    timeline = (
        aggregate.timeline_buckets(run.timeline, lo, buckets.width_s, buckets.n)
        if run.timeline is not None
        else None
    )
    events, events_total = guarded(
        "scaling activities",
        lambda: aggregate.scaling_events(getattr(run, "path", None), lo, hi, getattr(run, "scaling", None)),
    ) or ([], 0)
    phases = [p for p in summary.get("phases") or [] if isinstance(p, dict)]
    histograms = aggregate.latency_histograms(run.ops, phases, lo, hi)
    figures = {"cc-timeline": charts.timeline_figure(summary, buckets, timeline, events)}
    histogram = charts.histogram_figure(summary, histograms)
    if histogram is not None:
        figures["cc-histograms"] = histogram

    faults = [f for f in summary.get("faults") or [] if isinstance(f, dict)]
    checks = summary.get("checks") or []
    consistency = summary.get("consistency") or {}
    anomalies = [
        {"name": name, **record, "columns": _columns(record.get("examples") or [])}
        for name, record in (consistency.get("anomalies") or {}).items()
    ]
    xray = summary.get("xray") if isinstance(summary.get("xray"), dict) else None
    scaling = summary.get("scaling")
    context = {
        "s": summary,
        "checks": checks,
        "checks_table": tables.checks_table(checks),
        "failed_table": tables.checks_table([c for c in checks if not c.get("passed")]),
        "failed": [c for c in checks if not c.get("passed")],
        "consistency": consistency,
        "anomalies": anomalies,
        "flagged": [a for a in anomalies if a.get("count")],
        "phase_table": tables.phase_table(phases),
        "endpoint_table": guarded("endpoints", lambda: tables.endpoint_table(summary.get("load"))),
        "has_histograms": histogram is not None,
        "faults_table": tables.faults_table(faults),
        "recovery_table": guarded("recovery", lambda: tables.recovery_table(faults)),
        "budget_table": guarded("error budget", lambda: tables.budget_table(summary.get("budget"))),
        "comparison_table": guarded(
            "baseline versus recovery", lambda: tables.comparison_table(summary.get("comparison"))
        ),
        "xray": xray,
        "xray_figures": guarded("X-Ray", lambda: tables.xray_figures(xray)) if xray else None,
        "xray_table": guarded("X-Ray", lambda: tables.xray_table(xray)) if xray else None,
        "scaling_table": tables.scaling_table(events, events_total),
        "scaling_tables": guarded("scaling", lambda: tables.generic_tables(scaling, "scaling"))
        if scaling
        else None,
        "bucket_s": buckets.width_s,
        "has_timeline": timeline is not None,
        "corrected": buckets.corrected is not None,
        "meta": tables.meta_rows(run.meta, summary),
        "scenario_yaml": _scenario_yaml(run.scenario),
        "description": (run.scenario or {}).get("description"),
        "problems": problems,
        "figures_json": Markup(plotlyjs.script_json(figures)),
        "plotly_js": Markup(plotlyjs.plotly_js()),
        "report_js": Markup(plotlyjs.inline_js(_ENV.loader.get_source(_ENV, "report.js")[0])),
        "plotly_version": plotlyjs.VERSION,
    }
    return _ENV.get_template("report.html.j2").render(**context)


def write_report(run_dir: str | Path, analysis: Analysis | None = None) -> Path:
    """Write ``report.html`` in ``run_dir`` atomically and return its path.

    Uses ``analysis`` when given (what ``analysis.analyze`` returned); otherwise reads the run
    directory and takes ``summary.json`` if it is there (else summarizes the run). Raises
    ``analysis.RunFormatError`` when the run directory is not valid.
    """
    run_dir = Path(run_dir)
    if analysis is not None:
        run, summary = analysis.run, analysis.summary
    else:
        run = load_run(run_dir)
        summary_path = run_dir / rf.SUMMARY
        summary = (
            json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else summarize(run)
        )
    path = run_dir / rf.REPORT
    write_atomic(path, render_html(summary, run))
    return path


def _scenario_yaml(scenario: dict | None) -> str | None:
    if not scenario:
        return None
    return yaml.safe_dump(tables.redacted(scenario), sort_keys=False, allow_unicode=True, width=100)


def _columns(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            seen.update(dict.fromkeys(row))
    return list(seen)


# -- filters ---------------------------------------------------------------------------------------


def ns_time(value: Any) -> str:
    return "—" if not isinstance(value, int) else iso(value)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not (isinstance(value, float) and not math.isfinite(value))


_ENV.filters.update(
    fmt=tables.fmt,
    percent=tables.percent,
    seconds=tables.seconds,
    ns_time=ns_time,
    statuses=tables.statuses,
)
_ENV.tests.update(finite=_finite)
