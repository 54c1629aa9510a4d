"""The HTML report: one self-contained file that works offline.

``render_html`` is pure (summary, run and series in, text out). The page loads nothing: the CSS is
inline, the charts are inline SVG (``reports.charts``), there is no script, and no ``src``/``href``
points anywhere but inside the page. Templates are Jinja2 with autoescape on, so every value that
came from a file (error texts, fault targets, run metadata) is escaped; the only markup inserted
as-is is the SVG that ``reports.charts`` built, which escapes its own text.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from analysis.phases import iso
from analysis.rundir import Run, load_run
from analysis.series import per_second
from analysis.summary import Analysis, summarize, write_atomic
from chaoscheck import runformat as rf
from reports import charts

_ENV = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_html(summary: dict, run: Run, series: pd.DataFrame) -> str:
    """The report page for ``summary`` (as ``analysis.summarize`` makes it), its run and its series."""
    figures = {
        "latency": charts.latency_chart(series, summary),
        "requests": charts.requests_chart(series, summary),
        "capacity": charts.capacity_chart(run.timeline, summary) if run.timeline is not None else None,
    }
    consistency = summary["consistency"]
    anomalies = [
        {"name": name, **record, "columns": _columns(record["examples"])}
        for name, record in consistency["anomalies"].items()
    ]
    checks = summary["checks"]
    return _ENV.get_template("report.html.j2").render(
        s=summary,
        checks=checks,
        failed=[c for c in checks if not c["passed"]],
        consistency=consistency,
        anomalies=anomalies,
        flagged=[a for a in anomalies if a["count"]],
        figures=figures,
        meta=sorted(run.meta.items()),
        description=run.scenario.get("description"),
    )


def write_report(run_dir: str | Path, analysis: Analysis | None = None) -> Path:
    """Write ``report.html`` in ``run_dir`` atomically and return its path.

    Uses ``analysis`` when given (what ``analysis.analyze`` returned); otherwise reads the run
    directory, takes ``summary.json`` if it is there (else summarizes the run) and the series from
    the ops. Raises ``analysis.RunFormatError`` when the run directory is not valid.
    """
    run_dir = Path(run_dir)
    if analysis is None:
        run = load_run(run_dir)
        summary_path = run_dir / rf.SUMMARY
        summary = (
            json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else summarize(run)
        )
        series = per_second(run.ops, run.meta["load_started_ns"], run.meta["load_ended_ns"])
        analysis = Analysis(run=run, summary=summary, series=series)
    path = run_dir / rf.REPORT
    write_atomic(path, render_html(analysis.summary, analysis.run, analysis.series))
    return path


# -- filters ---------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    """A value for a table cell: None as an em dash, floats to ``digits`` significant decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) < 10**15 else str(value)  # epoch ns stay unbroken
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def ns_time(value: int | None) -> str:
    return "—" if value is None else iso(value)


def statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{code}×{n:,}" for code, n in counts.items()) or "—"


def _columns(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


_ENV.filters.update(fmt=fmt, percent=percent, ns_time=ns_time, statuses=statuses)
