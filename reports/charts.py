"""Inline SVG charts for the HTML report, drawn in Python (no JavaScript, nothing fetched).

Every chart has the same width, margins and x scale (seconds since the load started), so stacked one
above the other they share one time axis. Fault phases are shaded and labelled, recovery phases
tinted, and an aborted fault is drawn as a dashed line at its injection time. Every piece of text
that came from a file goes through ``markupsafe.escape``; numbers are formatted here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

WIDTH = 960
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 26

COLORS = {
    "p50": "#2b6cb0",
    "p95": "#dd6b20",
    "p99": "#c53030",
    "ok": "#38a169",
    "info": "#d69e2e",
    "fail": "#e53e3e",
    "fleet_in_service": "#2b6cb0",
    "fleet_desired": "#718096",
    "lambda_environments": "#805ad5",
    "lambda_active": "#d53f8c",
}
_FAULT_FILL, _RECOVERY_FILL = "rgba(229,62,62,0.13)", "rgba(56,161,105,0.08)"
MAX_BUCKETS = 600
"""Charts draw at most this many time buckets (consecutive seconds are combined), so that an hour of
load stays a small file; the plot is about 880 px wide."""


@dataclass(frozen=True)
class _Frame:
    height: int
    x_max: float
    y_max: float

    @property
    def plot_h(self) -> float:
        return self.height - TOP - BOTTOM

    def x(self, seconds: float | np.ndarray) -> float | np.ndarray:
        return LEFT + (WIDTH - LEFT - RIGHT) * np.asarray(seconds) / self.x_max

    def y(self, value: float | np.ndarray) -> float | np.ndarray:
        return TOP + self.plot_h * (1 - np.asarray(value) / self.y_max)


def latency_chart(series: pd.DataFrame, summary: dict, height: int = 260) -> Markup:
    """p50/p95/p99 per second (ms), with the latency SLO of each phase as a dashed segment."""
    x_max = _x_max(summary)
    slo = summary.get("slo", {})
    t, width, lines = _coarsen(series, [f"{name}_ms" for name in ("p50", "p95", "p99")], np.fmax)
    lines = {name[:3]: values for name, values in lines.items()}
    thresholds = [
        (phase, name, float(slo[phase["kind"]][f"{name}_ms"]))
        for phase in summary["phases"]
        for name in ("p50", "p95", "p99")
        if f"{name}_ms" in slo.get(phase["kind"], {})
    ]
    peak = max(
        [np.nanmax(v) if np.isfinite(v).any() else 0.0 for v in lines.values()] + [t for *_, t in thresholds]
    )
    frame = _Frame(height, x_max, _nice_max(peak))
    t = t + width / 2
    parts = [*_bands(frame, summary), *_y_axis(frame, "ms"), *_x_axis(frame)]
    for name, values in lines.items():
        parts.append(
            f'<path d="{_line_path(frame, t, values)}" fill="none" stroke="{COLORS[name]}" '
            'stroke-width="1.6"/>'
        )
    for phase, name, threshold in thresholds:
        x0, x1 = frame.x(phase["start_s"]), frame.x(phase["start_s"] + phase["duration_s"])
        y = frame.y(threshold)
        parts.append(
            f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLORS[name]}" '
            f'stroke-dasharray="6 4" stroke-width="1.2"><title>{escape(phase["name"])} {name} SLO '
            f"{_num(threshold)} ms</title></line>"
        )
    legend = [(COLORS[n], n) for n in lines] + [("#4a5568", "SLO (dashed)")]
    return _svg(frame, "Latency per second (ms, raw)", legend, parts)


def requests_chart(series: pd.DataFrame, summary: dict, height: int = 220) -> Markup:
    """Requests per second, stacked by outcome (ok at the bottom, then info, then fail)."""
    x_max = _x_max(summary)
    t, width, counts = _coarsen(series, ["ok", "info", "fail"], np.add)
    stacked = np.cumsum([counts["ok"], counts["info"], counts["fail"]], axis=0) / width
    peak = float(stacked[-1].max()) if len(t) else 0.0
    frame = _Frame(height, x_max, _nice_max(peak))
    parts = [*_y_axis(frame, "req/s"), *_x_axis(frame)]
    # Each layer is drawn as the area from zero up to its cumulative top, the tallest first; the
    # (translucent) phase bands go on top, since the areas are opaque.
    for name, top in reversed(list(zip(("ok", "info", "fail"), stacked, strict=True))):
        parts.append(f'<path d="{_step_area(frame, t, width, top)}" fill="{COLORS[name]}"/>')
    parts += _bands(frame, summary)
    return _svg(
        frame, "Requests per second by outcome", [(COLORS[n], n) for n in ("ok", "info", "fail")], parts
    )


def capacity_chart(timeline: pd.DataFrame, summary: dict, height: int = 200) -> Markup:
    """The target's capacity over time: fleet instances in service and desired, Lambda environments."""
    x_max = _x_max(summary)
    t = (timeline["ts_ns"].to_numpy(dtype=np.int64) - int(summary["load_started_ns"])) / 1e9
    inside = (t >= 0) & (t <= x_max)
    names = ["fleet_in_service", "fleet_desired", "lambda_environments", "lambda_active"]
    lines = {name: timeline[name].to_numpy(dtype=float)[inside] for name in names}
    t = t[inside]
    peak = max((float(v.max()) for v in lines.values() if len(v)), default=0.0)
    frame = _Frame(height, x_max, _nice_max(peak))
    parts = [*_bands(frame, summary), *_y_axis(frame, ""), *_x_axis(frame)]
    for name, values in lines.items():
        dash = ' stroke-dasharray="4 3"' if name == "fleet_desired" else ""
        parts.append(
            f'<path d="{_step_line(frame, t, values)}" fill="none" stroke="{COLORS[name]}" '
            f'stroke-width="1.5"{dash}/>'
        )
    legend = [(COLORS[n], n.replace("_", " ")) for n in names]
    return _svg(frame, "Capacity (from timeline.parquet)", legend, parts)


# -- pieces ----------------------------------------------------------------------------------------


def _svg(frame: _Frame, title: str, legend: Sequence[tuple[str, str]], parts: Iterable[str]) -> Markup:
    head = [f'<text x="{LEFT}" y="14" class="chart-title">{escape(title)}</text>']
    x = WIDTH - RIGHT
    for color, label in reversed(legend):
        width = 14 + 6.5 * len(label)
        x -= width + 10
        head.append(f'<rect x="{x:.1f}" y="5" width="10" height="10" fill="{color}"/>')
        head.append(f'<text x="{x + 14:.1f}" y="14" class="legend">{escape(label)}</text>')
    body = "".join([*head, *parts])
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {frame.height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">{body}</svg>'
    )


def _bands(frame: _Frame, summary: dict) -> list[str]:
    """Shaded fault phases (labelled), tinted recovery phases, dashed lines for aborted faults."""
    faults = {f["fault_id"]: f for f in summary.get("faults", [])}
    out: list[str] = []
    bottom = TOP + frame.plot_h
    labelled = 0
    for phase in summary["phases"]:
        if phase["kind"] not in ("fault", "recovery"):
            continue
        x0 = frame.x(phase["start_s"])
        x1 = frame.x(phase["start_s"] + phase["duration_s"])
        fill = _FAULT_FILL if phase["kind"] == "fault" else _RECOVERY_FILL
        fault = faults.get(phase["fault_id"], {})
        what = f"{phase['name']}: {fault.get('action', '')} {fault.get('target', '')}".strip()
        out.append(
            f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 0.5):.1f}" height="{frame.plot_h:.1f}" '
            f'fill="{fill}"><title>{escape(what)}</title></rect>'
        )
        if phase["kind"] == "fault":
            y = TOP + 11 + 11 * (labelled % 2)
            labelled += 1
            out.append(f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{TOP}" y2="{bottom:.1f}" class="fault-line"/>')
            out.append(f'<text x="{x0 + 3:.1f}" y="{y}" class="band-label">{escape(_short(what))}</text>')
    for fault in summary.get("faults", []):
        if not fault["effective"] and 0 <= fault["inject_s"] <= frame.x_max:
            x = frame.x(fault["inject_s"])
            label = f"{fault['name']} aborted: {fault['action']} {fault['target']}"
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{bottom:.1f}" class="abort-line">'
                f"<title>{escape(label)}: {escape(fault.get('error') or '')}</title></line>"
            )
            anchor, at = ("end", x - 3) if x > WIDTH - 260 else ("start", x + 3)
            out.append(
                f'<text x="{at:.1f}" y="{bottom - 4:.1f}" class="band-label" text-anchor="{anchor}">'
                f"{escape(_short(label))}</text>"
            )
    return out


def _x_axis(frame: _Frame) -> list[str]:
    bottom = TOP + frame.plot_h
    out = [f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom:.1f}" y2="{bottom:.1f}" class="axis"/>']
    step = _nice_step(frame.x_max / 10)
    for tick in np.arange(0, frame.x_max + step / 2, step):
        x = frame.x(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom:.1f}" y2="{bottom + 4:.1f}" class="axis"/>')
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 16:.1f}" class="tick" text-anchor="middle">{_clock(tick)}</text>'
        )
    return out


def _y_axis(frame: _Frame, unit: str) -> list[str]:
    out = []
    step = _nice_step(frame.y_max / 4)
    for tick in np.arange(0, frame.y_max + step / 2, step):
        y = frame.y(tick)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_num(tick)}</text>')
    if unit:
        out.append(f'<text x="{LEFT - 6}" y="{TOP - 6}" class="tick" text-anchor="end">{escape(unit)}</text>')
    return out


def _coarsen(
    series: pd.DataFrame, columns: list[str], combine: np.ufunc
) -> tuple[np.ndarray, float, dict[str, np.ndarray]]:
    """At most :data:`MAX_BUCKETS` buckets for drawing: ``k`` consecutive seconds combined by
    ``combine`` (``np.add`` for counts, ``np.fmax`` for latencies, so a spike stays visible).

    Returns the left edges (s), the bucket width (s) and the combined columns.
    """
    n = len(series)
    k = max(1, math.ceil(n / MAX_BUCKETS))
    starts = np.arange(0, n, k)
    t = series["t_s"].to_numpy(dtype=float)[starts] if n else np.zeros(0)
    out = {}
    for column in columns:
        values = series[column].to_numpy(dtype=float)
        out[column] = combine.reduceat(values, starts) if n else values
    return t, float(k), out


def _line_path(frame: _Frame, t: np.ndarray, values: np.ndarray) -> str:
    """A polyline through the finite points; a NaN (empty bucket) breaks the line."""
    xs, ys = frame.x(t), frame.y(np.nan_to_num(values))
    finite = np.isfinite(values)
    starts = finite & ~np.concatenate(([False], finite[:-1]))
    return " ".join(
        f"{'M' if start else 'L'}{x:.1f},{y:.1f}"
        for x, y, ok, start in zip(xs, ys, finite, starts, strict=True)
        if ok
    )


def _step_area(frame: _Frame, t: np.ndarray, width: float, top: np.ndarray) -> str:
    """The area from zero up to ``top``, one flat step per bucket of ``width`` seconds."""
    if not len(t):
        return ""
    xs = frame.x(np.repeat(np.append(t, t[-1] + width), 2)[1:-1])  # t0 t1 t1 t2 t2 ... tn
    ys = frame.y(np.repeat(top, 2))
    base = frame.y(0.0)
    edge = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return f"M{xs[0]:.1f},{base:.1f} L{edge} L{xs[-1]:.1f},{base:.1f} Z"


def _step_line(frame: _Frame, t: np.ndarray, values: np.ndarray) -> str:
    """A step line that holds each sample until the next change (only changes are drawn)."""
    if not len(t):
        return ""
    changes = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    xs, ys = frame.x(t[changes]), frame.y(values[changes])
    points = [f"M{xs[0]:.1f},{ys[0]:.1f}"]
    points += [f"H{x:.1f}V{y:.1f}" for x, y in zip(xs[1:], ys[1:], strict=True)]
    points.append(f"H{frame.x(min(float(t[-1]), frame.x_max)):.1f}")
    return " ".join(points)


def _x_max(summary: dict) -> float:
    return max(float(summary.get("duration_s") or 0.0), 1.0)


def _nice_step(raw: float) -> float:
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _nice_max(peak: float) -> float:
    if peak <= 0 or not math.isfinite(peak):
        return 1.0
    step = _nice_step(peak * 1.1 / 4)
    return step * math.ceil(peak * 1.1 / step)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}"


def _clock(seconds: float) -> str:
    seconds = round(float(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds}s"


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
