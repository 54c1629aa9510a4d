"""The trend page: runs over time, per scenario, so that a nightly job shows its regressions.

``collect_runs(runs_dir)`` finds the run directories under ``runs_dir`` (a directory holding
``summary.json`` or ``run.json``; up to ``MAX_DEPTH`` levels down, so a folder of downloaded CI
artifacts works too) and reads their ``summary.json``. A directory that is not a run is skipped with
a note; a summary that cannot be read gives a one-line error and the others go on.

``trend_model(runs)`` is pure: per scenario, the runs in time order and, for every figure, its value
in each run, its change from the previous run and whether that change is a regression. The figures
are the verdict, each fault's time to recover (``faults[].recovery.ttr_s``; a fault that never
recovered counts as infinite), the availability during the faults, p99 per phase (and over the
whole load), and the consistency anomalies (the counts of every anomaly class of severity
``violation``, and ``lost`` / ``duplicated``).

``render_trend`` makes one self-contained page: inline CSS, inline SVG sparklines, no script, no
request of any kind; links go to each run's ``report.html`` by a relative path. Every string that
came from a file (scenario names, run ids, check names) is escaped by Jinja2's autoescape, and the
SVG built here escapes its own text.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from chaoscheck import runformat as rf
from reports.templating import environment

MAX_DEPTH = 3
"""How many directory levels below ``runs_dir`` are searched for run directories."""
SCHEMA_VERSIONS = (1,)
"""``summary.json`` schema versions this page reads."""

REL_TOLERANCE = 0.10
"""A figure that got worse by more than this share of its previous value is a regression ..."""
ABS_TOLERANCE = {"ms": 1.0, "s": 0.5, "share": 0.01, "count": 0.0}
"""... and by more than this much in its unit (so that 2 ms to 2.3 ms is not one). A share (an
availability) is judged by this absolute change alone: 1 percentage point."""

INF = math.inf
"""A time to recover that never came."""


@dataclass
class TrendRun:
    """One run directory and its summary."""

    run_dir: Path
    summary: dict


@dataclass
class Collected:
    """What ``collect_runs`` found: the runs, the directories it skipped, the summaries it could not read."""

    runs: list[TrendRun] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def collect_runs(runs_dir: str | Path) -> Collected:
    """The run directories under ``runs_dir`` with a readable ``summary.json`` (see the module doc)."""
    found = Collected()
    _walk(Path(runs_dir), 0, found)
    return found


def _walk(directory: Path, depth: int, found: Collected) -> bool:
    """Collect below ``directory``; returns whether any run was found there. A directory with no run
    below it is one note, not one per subdirectory."""
    try:
        children = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        found.errors.append(f"{directory}: cannot list: {exc.strerror or exc}")
        return False
    any_run = False
    for child in children:
        summary_path = child / rf.SUMMARY
        if summary_path.is_file():
            any_run = True
            summary, error = read_summary(summary_path)
            if error is not None:
                found.errors.append(error)
            else:
                found.runs.append(TrendRun(child, summary))
            continue
        if (child / rf.RUN_META).is_file():
            any_run = True
            found.skipped.append(
                f"{child}: a run without {rf.SUMMARY} (no ledger was written, or it was never "
                f"analysed: chaoscheck analyze {child})"
            )
            continue
        below = Collected()
        if depth + 1 < MAX_DEPTH and _walk(child, depth + 1, below):
            any_run = True
            found.runs += below.runs
            found.skipped += below.skipped
            found.errors += below.errors
        else:
            found.errors += [e for e in below.errors if ": cannot list: " in e]
            found.skipped.append(f"{child}: not a run directory (no {rf.SUMMARY}, no {rf.RUN_META})")
    return any_run


def read_summary(path: Path) -> tuple[dict, None] | tuple[None, str]:
    """``(summary, None)``, or ``(None, one-line error)`` when it cannot be used here."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"{path}: unreadable: {exc.strerror or exc}"
    except ValueError as exc:
        return None, f"{path}: unreadable: not JSON ({str(exc).splitlines()[0]})"
    if not isinstance(summary, dict):
        return None, f"{path}: unreadable: expected a JSON object, got {type(summary).__name__}"
    version = summary.get("schema_version")
    if version not in SCHEMA_VERSIONS:
        return (
            None,
            f"{path}: unreadable: schema_version {version!r}, expected one of {list(SCHEMA_VERSIONS)}",
        )
    missing = [key for key in ("scenario", "verdict", "checks") if key not in summary]
    if missing:
        return None, f"{path}: unreadable: no {', '.join(missing)}"
    return summary, None


# -- the model --------------------------------------------------------------------------------------


@dataclass
class Cell:
    """One figure of one run, with its change from the previous run of the scenario."""

    value: float | None
    previous: float | None = None
    delta: float | None = None
    ratio: float | None = None
    regression: bool = False
    improvement: bool = False


@dataclass
class Metric:
    """One figure over a scenario's runs."""

    key: str
    label: str
    unit: str  # ms | s | share | count | verdict
    better: str  # lower | higher
    cells: list[Cell]

    @property
    def latest(self) -> Cell:
        return self.cells[-1]


@dataclass
class ScenarioTrend:
    """A scenario's runs in time order and its figures."""

    name: str
    runs: list[dict]
    metrics: list[Metric]
    anchor: str = ""

    @property
    def regressions(self) -> list[Metric]:
        """The figures whose latest value is a regression from the run before."""
        return [m for m in self.metrics if m.latest.regression]


def trend_model(runs: list[TrendRun], out_dir: Path | None = None) -> list[ScenarioTrend]:
    """Per scenario (by name), its runs oldest first and every figure over them (see the module doc).

    ``out_dir`` is where the page goes: links to the runs' reports are made relative to it.
    """
    by_scenario: dict[str, list[TrendRun]] = {}
    for run in runs:
        by_scenario.setdefault(str(run.summary.get("scenario")), []).append(run)
    trends = []
    for name in sorted(by_scenario):
        ordered = sorted(by_scenario[name], key=_when)
        summaries = [r.summary for r in ordered]
        trends.append(
            ScenarioTrend(
                name=name,
                runs=[_run_row(r, out_dir) for r in ordered],
                metrics=_metrics(summaries),
                anchor=f"scenario-{len(trends) + 1}",
            )
        )
    return trends


def _when(run: TrendRun) -> tuple:
    s = run.summary
    return (str(s.get("started_at") or ""), s.get("load_started_ns") or 0, str(run.run_dir))


def _run_row(run: TrendRun, out_dir: Path | None) -> dict:
    s = run.summary
    report = run.run_dir / rf.REPORT
    href = None
    if report.is_file():
        base = out_dir if out_dir is not None else run.run_dir.parent
        href = quote(Path(os.path.relpath(report.resolve(), base.resolve())).as_posix())
    failed = [str(c.get("name")) for c in s.get("checks") or [] if not c.get("passed")]
    return {
        "run_id": str(s.get("run_id") or run.run_dir.name),
        "dir": run.run_dir.name,
        "started_at": str(s.get("started_at") or ""),
        "target": str(s.get("target") or ""),
        "verdict": str(s.get("verdict") or "?"),
        "failed": failed,
        "checks": len(s.get("checks") or []),
        "href": href,
    }


def _metrics(summaries: list[dict]) -> list[Metric]:
    metrics = [
        _metric("verdict", "verdict (1 pass, 0 fail)", "verdict", "higher",
                [1.0 if s.get("verdict") == "pass" else 0.0 for s in summaries]),
        _metric("failed_checks", "failed checks", "count", "lower",
                [float(sum(not c.get("passed") for c in s.get("checks") or [])) for s in summaries]),
    ]  # fmt: skip
    for fault in _names(s.get("faults") for s in summaries):
        metrics.append(
            _metric(f"ttr.{fault}", f"TTR {fault}", "s", "lower", [_ttr(s, fault) for s in summaries])
        )
    availability = [_fault_availability(s) for s in summaries]
    if any(v is not None for v in availability):
        metrics.append(_metric("availability", "availability during faults", "share", "higher", availability))
    for phase in _names(s.get("phases") for s in summaries):
        values = [_phase_p99(s, phase) for s in summaries]
        metrics.append(_metric(f"p99.{phase}", f"p99 {phase}", "ms", "lower", values))
    metrics.append(
        _metric(
            "p99.load",
            "p99 whole load",
            "ms",
            "lower",
            [_num((s.get("load") or {}).get("p99_ms")) for s in summaries],
        )
    )
    metrics.append(
        _metric("anomalies", "consistency anomalies", "count", "lower", [_anomalies(s) for s in summaries])
    )
    for key in ("lost", "duplicated"):
        values = [_num((s.get("consistency") or {}).get(key)) for s in summaries]
        metrics.append(_metric(f"consistency.{key}", key, "count", "lower", values))
    return metrics


def _names(lists: Any) -> list[str]:
    """The ``name`` of every record of the lists, in order of first appearance."""
    seen: dict[str, None] = {}
    for records in lists:
        for record in records or []:
            if isinstance(record, dict) and record.get("name") is not None:
                seen.setdefault(str(record["name"]), None)
    return list(seen)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _ttr(summary: dict, fault: str) -> float | None:
    for record in summary.get("faults") or []:
        if isinstance(record, dict) and str(record.get("name")) == fault:
            recovery = record.get("recovery")
            if not isinstance(recovery, dict):
                return None
            if recovery.get("recovered") is False:
                return INF
            return _num(recovery.get("ttr_s"))
    return None


def _fault_availability(summary: dict) -> float | None:
    """ok / events over every fault window: from the recovery records, else from the fault phases."""
    ok = events = 0.0
    for record in summary.get("faults") or []:
        recovery = record.get("recovery") if isinstance(record, dict) else None
        if isinstance(recovery, dict) and _num(recovery.get("events")):
            ok += _num(recovery.get("ok")) or 0.0
            events += _num(recovery.get("events")) or 0.0
    if not events:
        for phase in summary.get("phases") or []:
            if isinstance(phase, dict) and phase.get("kind") == "fault":
                ok += _num(phase.get("ok")) or 0.0
                events += (_num(phase.get("requests")) or 0.0) + (_num(phase.get("omitted")) or 0.0)
    return ok / events if events else None


def _phase_p99(summary: dict, phase: str) -> float | None:
    for record in summary.get("phases") or []:
        if isinstance(record, dict) and str(record.get("name")) == phase:
            return _num(record.get("p99_ms"))
    return None


def _anomalies(summary: dict) -> float | None:
    anomalies = (summary.get("consistency") or {}).get("anomalies")
    if not isinstance(anomalies, dict):
        return None
    return float(
        sum(
            _num(record.get("count")) or 0.0
            for record in anomalies.values()
            if isinstance(record, dict) and record.get("severity", "violation") == "violation"
        )
    )


def _metric(key: str, label: str, unit: str, better: str, values: list[float | None]) -> Metric:
    cells = []
    previous: float | None = None
    for value in values:
        cell = Cell(value, previous)
        if value is not None and previous is not None:
            cell.delta = _delta(value, previous)
            if previous not in (0.0, INF) and value != INF:
                cell.ratio = (value - previous) / abs(previous)
            worse = value > previous if better == "lower" else value < previous
            better_now = value < previous if better == "lower" else value > previous
            significant = _significant(value, previous, unit)
            cell.regression = worse and significant
            cell.improvement = better_now and significant
        cells.append(cell)
        if value is not None:
            previous = value
    return Metric(key, label, unit, better, cells)


def _delta(value: float, previous: float) -> float | None:
    if INF in (value, previous):
        return None
    return value - previous


def _significant(value: float, previous: float, unit: str) -> bool:
    if INF in (value, previous):
        return value != previous
    change = abs(value - previous)
    if unit in ("count", "verdict"):
        return change > 0
    if unit == "share":
        return change > ABS_TOLERANCE["share"]
    relative = change / abs(previous) if previous else INF
    return change > ABS_TOLERANCE.get(unit, 0.0) and relative > REL_TOLERANCE


# -- the page ---------------------------------------------------------------------------------------

_ENV = environment()


def render_trend(trends: list[ScenarioTrend], *, source: str = "", notes: list[str] | None = None) -> str:
    """The page for ``trend_model``'s result; ``notes`` are shown under the title (skipped directories)."""
    return _ENV.get_template("trend.html.j2").render(
        trends=trends,
        source=source,
        notes=list(notes or []),
        runs=sum(len(t.runs) for t in trends),
        regressions=[(t, m) for t in trends for m in t.regressions],
    )


def write_trend(runs_dir: str | Path, out: str | Path | None = None) -> tuple[Path, Collected]:
    """Collect the runs under ``runs_dir`` and write the page (default ``RUNS_DIR/trend.html``).

    Returns the page's path and what was collected (its ``errors`` are the unreadable summaries).
    """
    runs_dir = Path(runs_dir)
    path = Path(out) if out is not None else runs_dir / "trend.html"
    collected = collect_runs(runs_dir)
    trends = trend_model(collected.runs, path.parent)
    notes = [*collected.skipped, *collected.errors]
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, render_trend(trends, source=str(runs_dir), notes=notes))
    return path, collected


def _write_atomic(path: Path, text: str) -> None:
    """Through a temporary file beside it and a rename (the analysis's pandas is not imported here)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- filters ----------------------------------------------------------------------------------------


def fmt_metric(value: float | None, unit: str) -> str:
    """A figure in its unit: ``never`` for an infinite TTR, a dash for none."""
    if value is None:
        return "—"
    if value == INF:
        return "never"
    if unit == "verdict":
        return "pass" if value else "fail"
    if unit == "share":
        return f"{value * 100:.2f}%"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:,.2f} s"
    return f"{value:,.1f} ms" if value >= 10 else f"{value:,.2f} ms"


def fmt_delta(cell: Cell, unit: str) -> str:
    """The change from the previous run: ``+3.2 ms (+12%)``, ``now never``, or empty."""
    if cell.value is None or cell.previous is None or cell.value == cell.previous:
        return ""
    if cell.value == INF:
        return "now never recovers"
    if cell.previous == INF:
        return "recovers again"
    if unit == "verdict":
        return "now passes" if cell.value > cell.previous else "now fails"
    delta = cell.value - cell.previous
    if abs(delta) < (0.005 if unit == "s" else 0.00005 if unit == "share" else 0.05):
        return "±0"
    if unit == "share":
        return f"{delta * 100:+.2f} pt"
    if unit == "count":
        return f"{delta:+,.0f}"
    text = f"{delta:+,.2f} s" if unit == "s" else f"{delta:+,.1f} ms"
    if cell.ratio is not None and round(cell.ratio * 100) != 0:
        text += f" ({cell.ratio * 100:+.0f}%)"
    return text


def sparkline(metric: Metric, verdicts: list[str], width: int = 140, height: int = 28) -> Markup:
    """An inline SVG of the metric over the runs: a line through the values, red dots on failed
    runs, the last point ringed; an infinite TTR as a red cross at the top. Escapes its own text."""
    values = [c.value for c in metric.cells]
    finite = [v for v in values if v is not None and v != INF]
    pad = 4.0
    n = len(values)
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if metric.unit == "verdict":
        lo, hi = 0.0, 1.0
    if hi == lo:
        lo, hi = lo - 1.0, hi + 1.0

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        if v == INF:
            return pad
        return height - pad - (height - 2 * pad) * (v - lo) / (hi - lo)

    parts = [
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(metric.label)}: "
        + escape(", ".join(fmt_metric(v, metric.unit) for v in values))
        + "</title>",
    ]
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, v in enumerate(values):
        if v is None or v == INF:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(v):.1f}")
    if segment:
        segments.append(segment)
    for points in segments:
        if len(points) > 1:
            parts.append(f'<polyline points="{" ".join(points)}" class="line"/>')
    for i, v in enumerate(values):
        if v is None:
            continue
        cx, cy = x(i), y(v)
        if v == INF:
            parts.append(
                f'<path d="M{cx - 3:.1f},{cy - 3:.1f}L{cx + 3:.1f},{cy + 3:.1f}M{cx - 3:.1f},{cy + 3:.1f}'
                f'L{cx + 3:.1f},{cy - 3:.1f}" class="never"/>'
            )
            continue
        failed = i < len(verdicts) and verdicts[i] != "pass"
        cls = "dot fail" if failed else "dot"
        radius = 2.8 if i == n - 1 else 1.8
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius}" class="{cls}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


_ENV.filters.update(metric=fmt_metric, delta=fmt_delta)
_ENV.globals.update(sparkline=sparkline)
