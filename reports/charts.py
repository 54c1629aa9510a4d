"""The report's interactive charts as plotly.js figures (plain dicts, serialised by ``reports.html``).

Two figures:

- :func:`timeline_figure`: stacked rows sharing one time axis (seconds since the load started;
  zooming one row zooms them all): latency percentiles (raw, and corrected when the run has due
  times) with the phases' latency SLOs; requests per second by outcome; non-2xx responses per second
  by status; the fleet's instances by state and its desired capacity; Lambda reserved concurrency,
  environments and active executions; Lambda throttles and cold starts per second. Fault phases are
  shaded and recovery phases tinted in every row; each fault is a labelled line at its injection (an
  aborted one dashed), and scaling activities (``scaling.parquet``) are labelled lines in their row.
- :func:`histogram_figure`: per phase, the share of its requests in log-spaced latency bins.

Inputs are the aggregates of ``reports.aggregate`` (never a row per request). Series are evenly
spaced, so a trace carries ``x0``/``dx`` and its values only. Every text that came from a file
(fault targets, phase names, causes, endpoint names) goes through :func:`text`, which HTML-escapes
it: plotly.js reads a subset of HTML in labels (``<b>``, ``<a href>``, ``<br>``) and decodes
entities, so an escaped ``<script>`` is shown as it is and never becomes markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from markupsafe import escape

from reports.aggregate import Buckets, Histograms, ScalingEvent, Timeline

FAULT_FILL = "rgba(229,62,62,0.13)"
RECOVERY_FILL = "rgba(56,161,105,0.08)"
FAULT_LINE = "#c53030"
ABORT_LINE = "#718096"
GRID = "#edf2f7"
COLORS = {
    "p50": "#2b6cb0",
    "p95": "#dd6b20",
    "p99": "#c53030",
    "max": "#718096",
    "requests": "#4a5568",
    "ok": "#38a169",
    "fail": "#dd6b20",
    "info": "#e53e3e",
    "omitted": "#805ad5",
    "fleet_in_service": "#2b6cb0",
    "fleet_pending": "#90cdf4",
    "fleet_unhealthy": "#e53e3e",
    "fleet_desired": "#1a202c",
    "lambda_reserved": "#1a202c",
    "lambda_environments": "#b794f4",
    "lambda_active": "#805ad5",
    "lambda_throttles": "#dd6b20",
    "lambda_cold_starts": "#3182ce",
}
STATUS_COLORS = ["#e53e3e", "#dd6b20", "#d69e2e", "#805ad5", "#d53f8c", "#319795", "#975a16", "#2c5282"]
EVENT_COLORS = {
    "scale-out": "#2f855a",
    "scale-in": "#2b6cb0",
    "launch": "#3182ce",
    "terminate": "#9b2c2c",
}
SLO_DASH = "dash"
FONT = {"family": "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, Arial, sans-serif", "size": 12}
GAP_PX = 44
"""Space between two rows, for the row's title and the labels of its lines."""
MARGIN = {"l": 64, "r": 190, "t": 56, "b": 48}
SIGNIFICANT = 4
"""Significant digits kept in the page (about 0.1%: finer than a pixel on any of these charts)."""


def text(value: Any) -> str:
    """A text from a file, made literal for plotly.js (HTML-escaped: no tag, no entity survives)."""
    return str(escape("" if value is None else str(value)))


def values(array: np.ndarray | Sequence[float]) -> list[float | int | None]:
    """Numbers for the page: :data:`SIGNIFICANT` digits, whole numbers as ints, NaN as null."""
    out: list[float | int | None] = []
    for v in np.asarray(array, dtype=float).tolist():
        if not math.isfinite(v):
            out.append(None)
        elif v == int(v) and abs(v) < 2**53:
            out.append(int(v))
        else:
            out.append(float(f"{v:.{SIGNIFICANT}g}"))
    return out


@dataclass
class Row:
    """One row of the timeline: its traces share a y axis."""

    key: str
    title: str
    height: int
    traces: list[dict] = field(default_factory=list)
    yaxis: dict = field(default_factory=dict)
    domain: tuple[float, float] = (0.0, 1.0)
    """The row's vertical extent in the figure (paper coordinates), set by the layout."""


def timeline_figure(
    summary: dict,
    buckets: Buckets,
    timeline: Timeline | None,
    events: Sequence[ScalingEvent] = (),
) -> dict:
    """The timeline figure (see the module doc)."""
    x_max = max(float(summary.get("duration_s") or 0.0), 1.0)
    width = buckets.width_s
    per = f"per {width} s bucket, " if width > 1 else ""
    rows = [latency_row(summary, buckets), requests_row(buckets)]
    if buckets.statuses:
        rows.append(status_row(buckets))
    if timeline is not None:
        rows += [r for r in (fleet_row(timeline, width), *lambda_rows(timeline, width)) if r is not None]
    layout = _layout(rows, x_max)
    data: list[dict] = []
    for i, row in enumerate(rows):
        axis = _axis_suffix(i)
        for trace in row.traces:
            data.append({**trace, "xaxis": "x" + axis, "yaxis": "y" + axis, "legend": "legend" + axis})
    layout["shapes"], layout["annotations"] = _phase_marks(summary, rows, layout["annotations"])
    _event_marks(events, rows, layout)
    _load_step_marks(summary, rows, layout)
    for note in layout["annotations"]:  # a line's label near the right end reads leftwards
        if note["xref"].startswith("x") and note["x"] > 0.8 * x_max:
            note["xanchor"] = "right"
    layout["meta"] = {"bucket_s": width, "note": per}
    return {"data": data, "layout": layout}


# -- rows ------------------------------------------------------------------------------------------


def latency_row(summary: dict, b: Buckets) -> Row:
    """Raw p50/p95/p99 (max hidden until clicked), corrected percentiles dashed, SLOs as segments."""
    title = "Latency (ms, log scale): raw"
    row = Row("latency", title, 280, yaxis={"type": "log", "dtick": "D2", "title": {"text": "ms"}})
    shown = {"p50": True, "p95": True, "p99": True, "max": "legendonly"}
    for name, visible in shown.items():
        row.traces.append(
            _line(f"{name} raw", b.raw[name], b.width_s, COLORS[name], visible=visible, group="raw")
        )
    if b.corrected is not None:
        row.title += ", and corrected from the due time (dotted)"
        for name in ("p50", "p95", "p99", "max"):
            visible = True if name == "p99" else "legendonly"
            trace = _line(f"{name} corrected", b.corrected[name], b.width_s, COLORS[name], visible=visible)
            trace["line"]["dash"] = "dot"
            row.traces.append(trace)
    row.traces += _slo_traces(summary)
    return row


def _slo_traces(summary: dict) -> list[dict]:
    """One trace per percentile with a latency SLO: a flat segment over each phase it applies to."""
    slo = summary.get("slo") or {}
    out = []
    for name in ("p50", "p95", "p99", "max"):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for phase in summary.get("phases") or []:
            limit = (slo.get(phase.get("kind")) or {}).get(f"{name}_ms")
            if isinstance(limit, int | float) and limit > 0:
                start = float(phase["start_s"])
                xs += [start, start + float(phase["duration_s"]), None]
                ys += [float(limit), float(limit), None]
        if xs:
            out.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"{name} SLO",
                    "x": values(np.array(xs, dtype=float)),
                    "y": values(np.array(ys, dtype=float)),
                    "line": {"color": COLORS[name], "width": 1.5, "dash": SLO_DASH},
                    "hovertemplate": f"{name} SLO %{{y}} ms<extra></extra>",
                    "connectgaps": False,
                }
            )
    return out


def requests_row(b: Buckets) -> Row:
    unit = "per second" if b.width_s == 1 else f"per second (mean over {b.width_s} s)"
    row = Row("requests", f"Requests {unit}: all, ok (successes), fail and info (failures)", 210)
    row.yaxis = {"title": {"text": "req/s"}, "rangemode": "tozero"}
    for name in ("requests", "ok", "fail", "info"):
        row.traces.append(_line(name, getattr(b, name) / b.width_s, b.width_s, COLORS[name]))
    if b.omitted.any():
        row.traces.append(
            _line("omitted (due, never sent)", b.omitted / b.width_s, b.width_s, COLORS["omitted"])
        )
    return row


def status_row(b: Buckets) -> Row:
    row = Row("status", "Failed responses per second by HTTP status (stacked; 0 = no response)", 180)
    row.yaxis = {"title": {"text": "resp/s"}, "rangemode": "tozero"}
    for i, (code, counts) in enumerate(b.statuses.items()):
        name = "other" if code == -1 else ("0 no response" if code == 0 else str(code))
        trace = _line(name, counts / b.width_s, b.width_s, STATUS_COLORS[i % len(STATUS_COLORS)])
        color = STATUS_COLORS[i % len(STATUS_COLORS)]
        trace.update(stackgroup="status", line={"width": 0.8, "color": color}, fillcolor=_fill(color, 0.6))
        row.traces.append(trace)
    return row


def fleet_row(t: Timeline, width_s: int) -> Row | None:
    g = t.gauges
    names = ("fleet_in_service", "fleet_pending", "fleet_unhealthy")
    if not any(_has(g.get(n)) for n in (*names, "fleet_desired")):
        return None
    row = Row("fleet", "Fleet: instances by state (stacked) and desired capacity", 180)
    row.yaxis = {"title": {"text": "instances"}, "rangemode": "tozero"}
    labels = {"fleet_in_service": "in service", "fleet_pending": "pending", "fleet_unhealthy": "unhealthy"}
    for name in names:
        if name in g:
            trace = _step(labels[name], g[name], width_s, COLORS[name])
            trace.update(
                stackgroup="fleet",
                line={"width": 0.8, "color": COLORS[name], "shape": "hv"},
                fillcolor=_fill(COLORS[name], 0.45),
            )
            row.traces.append(trace)
    if "fleet_desired" in g:
        trace = _step("desired", g["fleet_desired"], width_s, COLORS["fleet_desired"])
        trace["line"]["dash"] = "dash"
        row.traces.append(trace)
    return row


def lambda_rows(t: Timeline, width_s: int) -> list[Row | None]:
    g, r = t.gauges, t.rates
    names = ("lambda_reserved", "lambda_environments", "lambda_active")
    concurrency = None
    if any(_has(g.get(n)) for n in names):
        concurrency = Row("lambda", "Lambda: reserved concurrency, environments, active executions", 180)
        concurrency.yaxis = {"title": {"text": "concurrency"}, "rangemode": "tozero"}
        labels = {
            "lambda_reserved": "reserved concurrency",
            "lambda_environments": "environments",
            "lambda_active": "active (peak)",
        }
        for name in names:
            if name in g:
                trace = _step(labels[name], g[name], width_s, COLORS[name])
                if name == "lambda_reserved":
                    trace["line"]["dash"] = "dash"
                concurrency.traces.append(trace)
    events = None
    if any(_has(r.get(n)) for n in ("lambda_throttles", "lambda_cold_starts")):
        unit = "per second" if width_s == 1 else f"per second (mean over {width_s} s)"
        events = Row("lambda_events", f"Lambda throttles and cold starts {unit}", 160)
        events.yaxis = {"title": {"text": "per s"}, "rangemode": "tozero"}
        for name, label in (("lambda_throttles", "throttles"), ("lambda_cold_starts", "cold starts")):
            if name in r:
                events.traces.append(_step(label, r[name], width_s, COLORS[name]))
    return [concurrency, events]


def _has(array: np.ndarray | None) -> bool:
    """Whether a series says anything: some finite value that is not zero."""
    if array is None or not len(array):
        return False
    finite = np.isfinite(array)
    return bool(finite.any() and np.any(array[finite] != 0))


def _line(
    name: str, series: np.ndarray, width_s: int, color: str, *, visible: Any = True, group: str | None = None
) -> dict:
    """A series per bucket, drawn at the buckets' middles."""
    trace = {
        "type": "scatter",
        "mode": "lines",
        "name": text(name),
        "x0": width_s / 2,
        "dx": width_s,
        "y": values(series),
        "line": {"color": color, "width": 1.5},
        "visible": visible,
        "hovertemplate": "%{y}<extra>" + text(name) + "</extra>",
    }
    if group:
        trace["legendgroup"] = group
    return trace


def _step(name: str, series: np.ndarray, width_s: int, color: str) -> dict:
    """A step line: point k at k·w seconds, held until the next (``reports.aggregate.Timeline``)."""
    trace = _line(name, series, width_s, color)
    trace.update(x0=0, line={"color": color, "width": 1.5, "shape": "hv"})
    return trace


def _fill(color: str, alpha: float = 0.55) -> str:
    """A ``#rrggbb`` colour as a translucent fill, so that the phase shading shows through."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


# -- layout ----------------------------------------------------------------------------------------


def _axis_suffix(i: int) -> str:
    return "" if i == 0 else str(i + 1)


def _full_height(row: int, x0: float, x1: float, **style: Any) -> dict:
    """A plotly shape from ``x0`` to ``x1`` over the whole height of chart row ``row`` (a line when
    ``x0 == x1``): fault and recovery bands, fault lines, scaling activities, load steps."""
    suffix = _axis_suffix(row)
    return {"xref": "x" + suffix, "yref": f"y{suffix} domain", "x0": x0, "x1": x1, "y0": 0, "y1": 1, **style}


def _layout(rows: list[Row], x_max: float) -> dict:
    plot_px = sum(r.height for r in rows) + GAP_PX * (len(rows) - 1)
    height = plot_px + MARGIN["t"] + MARGIN["b"]
    layout: dict[str, Any] = {
        "height": height,
        "margin": MARGIN,
        "font": FONT,
        "hovermode": "x unified",
        "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff",
        "annotations": [],
    }
    top = plot_px
    for i, row in enumerate(rows):
        suffix = _axis_suffix(i)
        y1 = top / plot_px
        y0 = (top - row.height) / plot_px
        top -= row.height + GAP_PX
        row.domain = (y0, y1)
        last = i == len(rows) - 1
        layout["xaxis" + suffix] = {
            "domain": [0, 1],
            "anchor": "y" + suffix,
            "range": [0, x_max],
            "showgrid": True,
            "gridcolor": GRID,
            "zeroline": False,
            "ticksuffix": " s",
            "showticklabels": last,
            "showspikes": True,
            "spikemode": "across",
            "spikethickness": 1,
            "spikecolor": "#a0aec0",
            **({"matches": "x"} if i else {}),
            **({"title": {"text": "seconds since the load started"}} if last else {}),
        }
        layout["yaxis" + suffix] = {
            "domain": [y0, y1],
            "anchor": "x" + suffix,
            "showgrid": True,
            "gridcolor": GRID,
            "zeroline": False,
            "fixedrange": True,
            **row.yaxis,
        }
        layout["legend" + suffix] = {
            "x": 1.01,
            "xanchor": "left",
            "y": y1,
            "yanchor": "top",
            "yref": "paper",
            "font": {"size": 11},
            "bgcolor": "rgba(255,255,255,0.8)",
        }
        layout["annotations"].append(
            {
                "text": f"<b>{row.title}</b>",
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": y1,
                "xanchor": "left",
                "yanchor": "bottom",
                "yshift": 6,
                "showarrow": False,
                "font": {"size": 13, "color": "#1a202c"},
            }
        )
    return layout


def _phase_marks(summary: dict, rows: list[Row], annotations: list[dict]) -> tuple[list[dict], list[dict]]:
    """Fault phases shaded and recovery phases tinted in every row; a labelled line per fault."""
    shapes: list[dict] = []
    annotations = list(annotations)
    for phase in summary.get("phases") or []:
        kind = phase.get("kind")
        if kind not in ("fault", "recovery"):
            continue
        x0 = float(phase["start_s"])
        x1 = x0 + float(phase["duration_s"])
        fill = FAULT_FILL if kind == "fault" else RECOVERY_FILL
        shapes += [
            _full_height(i, x0, x1, type="rect", fillcolor=fill, line={"width": 0}, layer="below")
            for i in range(len(rows))
        ]
    marks = []
    for fault in summary.get("faults") or []:
        x = fault.get("inject_s")
        if not isinstance(x, int | float):
            continue
        effective = bool(fault.get("effective"))
        name = fault.get("name", "fault")
        label = f"{name} {fault.get('action') or ''} {fault.get('target') or ''}".strip()
        detail = label
        if not effective:
            label = f"{name} aborted"
            detail = f"{detail}: aborted: {fault.get('error') or ''}"
        marks.append((float(x), _short(label), detail, FAULT_LINE if effective else ABORT_LINE, effective))
    halted = summary.get("halted")
    if isinstance(halted, dict) and isinstance(halted.get("ts_ns"), int) and summary.get("load_started_ns"):
        x = (halted["ts_ns"] - summary["load_started_ns"]) / 1e9
        marks.append((x, "halted", f"halted: {halted.get('reason') or ''}", "#1a202c", True))
    for n, (x, label, detail, color, solid) in enumerate(sorted(marks, key=lambda m: m[0])):
        style = {"color": color, "width": 1.2, "dash": "solid" if solid else "dash"}
        shapes += [_full_height(i, x, x, type="line", line=style) for i in range(len(rows))]
        annotations.append(
            {
                "text": text(label),
                "hovertext": text(detail),
                "xref": "x",
                "yref": "y domain",
                "x": x,
                "y": 1,
                "xanchor": "left",
                "yanchor": "top",
                "yshift": -2 - 14 * (n % 2),
                "showarrow": False,
                "font": {"size": 10.5, "color": color},
                "bgcolor": "rgba(255,255,255,0.75)",
            }
        )
    return shapes, annotations


def _event_marks(events: Sequence[ScalingEvent], rows: list[Row], layout: dict) -> None:
    """Scaling activities: a dotted line in the fleet row (or the Lambda row), labelled at its top."""
    where = {r.key: i for i, r in enumerate(rows)}
    for n, event in enumerate(events):
        i = where.get("fleet" if event.resource == "fleet" else "lambda")
        if i is None:
            continue
        suffix = _axis_suffix(i)
        color = EVENT_COLORS.get(event.kind, "#4a5568")
        dotted = {"color": color, "width": 1, "dash": "dot"}
        layout["shapes"].append(_full_height(i, event.t_s, event.t_s, type="line", line=dotted))
        change = (
            f" {event.from_capacity}→{event.to_capacity}"
            if event.from_capacity is not None and event.to_capacity is not None
            else ""
        )
        took = f", {event.end_s - event.t_s:.1f} s" if event.end_s is not None else ", not ended"
        label = f"{event.kind}{change}"
        detail = f"{event.kind}{change} {event.subject} ({event.status}{took}): {event.cause}"
        layout["annotations"].append(
            {
                "text": text(_short(label, 28)),
                "hovertext": text(_short(detail, 300)),
                "xref": "x" + suffix,
                "yref": f"y{suffix} domain",
                "x": event.t_s,
                "y": 1,
                "xanchor": "left",
                "yanchor": "top",
                "yshift": -2 - 12 * (n % 3),
                "showarrow": False,
                "font": {"size": 10, "color": color},
                "bgcolor": "rgba(255,255,255,0.7)",
            }
        )


def _load_step_marks(summary: dict, rows: list[Row], layout: dict) -> None:
    """The load steps of ``summary.scaling.fleet.steps`` (when the analysis has them): a dotted grey
    line in the requests row, labelled with the rate before and after."""
    fleet = (summary.get("scaling") or {}).get("fleet") if isinstance(summary.get("scaling"), dict) else None
    steps = fleet.get("steps") if isinstance(fleet, dict) else None
    where = next((i for i, r in enumerate(rows) if r.key == "requests"), None)
    if not isinstance(steps, list) or where is None:
        return
    suffix = _axis_suffix(where)
    for n, step in enumerate(
        s for s in steps if isinstance(s, dict) and isinstance(s.get("at_s"), int | float)
    ):
        x = float(step["at_s"])
        layout["shapes"].append(
            _full_height(where, x, x, type="line", line={"color": "#4a5568", "width": 1, "dash": "dot"})
        )
        label = f"{step.get('name') or 'step'} {_rate(step.get('from_rate'))}→{_rate(step.get('to_rate'))}/s"
        layout["annotations"].append(
            {
                "text": text(label),
                "xref": "x" + suffix,
                "yref": f"y{suffix} domain",
                "x": x,
                "y": 0,
                "xanchor": "left",
                "yanchor": "bottom",
                "yshift": 2 + 12 * (n % 2),
                "showarrow": False,
                "font": {"size": 10, "color": "#4a5568"},
                "bgcolor": "rgba(255,255,255,0.7)",
            }
        )


def _rate(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "?"


# -- histograms ------------------------------------------------------------------------------------


PHASE_COLORS = {
    "baseline": ["#2b6cb0"],
    "fault": ["#c53030", "#dd6b20", "#d53f8c", "#975a16"],
    "recovery": ["#38a169", "#319795", "#2f855a", "#68d391"],
}


def histogram_figure(summary: dict, histograms: Histograms) -> dict | None:
    """Per phase, the percent of its requests per log-spaced latency bin (step lines)."""
    if not histograms.percent:
        return None
    edges = histograms.edges
    seen: dict[str, int] = {}
    data = []
    for phase in summary.get("phases") or []:
        name = phase.get("name")
        if name not in histograms.percent:
            continue
        kind = phase.get("kind", "baseline")
        palette = PHASE_COLORS.get(kind, ["#4a5568"])
        color = palette[seen.get(kind, 0) % len(palette)]
        seen[kind] = seen.get(kind, 0) + 1
        percent = histograms.percent[name]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": text(f"{name} ({histograms.requests[name]:,} requests)"),
                "x": values(edges),
                "y": values(np.append(percent, percent[-1])),
                "line": {
                    "color": color,
                    "width": 1.6,
                    "shape": "hv",
                    "dash": "dot" if kind == "fault" else "solid",
                },
                "hovertemplate": "≥ %{x} ms: %{y}%<extra>" + text(name) + "</extra>",
            }
        )
    layout = {
        "height": 340,
        "margin": {"l": 64, "r": 220, "t": 20, "b": 48},
        "font": FONT,
        "hovermode": "closest",
        "plot_bgcolor": "#ffffff",
        "xaxis": {
            "type": "log",
            "title": {"text": "latency (ms, log scale)"},
            "gridcolor": GRID,
            "zeroline": False,
        },
        "yaxis": {"title": {"text": "% of the phase's requests"}, "gridcolor": GRID, "rangemode": "tozero"},
        "legend": {"x": 1.01, "xanchor": "left", "y": 1, "yanchor": "top", "font": {"size": 11}},
    }
    return {"data": data, "layout": layout}


def _short(value: str, limit: int = 44) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
