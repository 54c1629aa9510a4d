"""The report's tables, built from ``summary.json`` records into plain rows of text cells.

Each builder takes a part of the summary and returns a :class:`Table` (or None when the summary has
no such part: an older summary, or a run without it). Builders read with ``.get`` and show a missing
figure as an em dash, so a summary from before or after a change of the analysis still renders.
Cells hold plain text; the template escapes it (autoescape), so nothing here is markup.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reports.aggregate import ScalingEvent
from reports.explain import explain, relation

DASH = "—"


@dataclass(frozen=True)
class Cell:
    text: str
    cls: str = ""
    title: str | None = None
    tag: str | None = None
    """When set, the text is drawn as a tag of this class (``pass``, ``fail``, ``warning``...)."""
    sub: str | None = None
    """A second, smaller line under the text (the corrected latency under the raw one)."""


@dataclass
class Table:
    columns: list[tuple[str, str]]
    """(label, class) per column; class ``num`` right-aligns."""
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    """(row class, cells) per row."""
    caption: str | None = None
    cls: str = ""
    """The table's class: ``compact`` for a figure/value table (as wide as its content)."""


# -- formatting ------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    """A value for a table cell: None as an em dash, floats to ``digits`` significant decimals."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return DASH if math.isnan(value) else ("∞" if value > 0 else "−∞")
        text = f"{value:,.{digits}f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
        return "0" if text == "-0" else text
    if isinstance(value, int):
        return f"{value:,}" if abs(value) < 10**15 else str(value)  # epoch ns stay unbroken
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def percent(value: Any, digits: int = 2) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return DASH
    return f"{value * 100:.{digits}f}%"


def seconds(value: Any) -> str:
    return DASH if not isinstance(value, int | float) else f"{fmt(float(value), 2)} s"


def statuses(counts: Any) -> str:
    if not isinstance(counts, dict):
        return DASH
    return ", ".join(f"{code}×{fmt(n)}" for code, n in counts.items()) or DASH


def num(value: Any, digits: int = 3) -> Cell:
    return Cell(fmt(value, digits), "num")


def txt(value: Any, cls: str = "") -> Cell:
    return Cell(DASH if value is None else str(value), cls)


def _get(record: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


# -- checks ----------------------------------------------------------------------------------------


def checks_table(checks: Sequence[dict]) -> Table:
    """Every check: result, name, phase, measured, threshold (with its relation), explanation, note."""
    table = Table(
        [
            ("result", ""),
            ("check", ""),
            ("phase", ""),
            ("measured", "num"),
            ("threshold", "num"),
            ("what", ""),
        ]
    )
    for c in checks:
        passed = bool(c.get("passed"))
        what = explain(c)
        if c.get("note"):
            what = f"{what}. Note: {c['note']}"
        table.rows.append(
            (
                "" if passed else "failed",
                [
                    Cell("pass" if passed else "FAIL", tag="pass" if passed else "fail"),
                    txt(c.get("name"), "mono"),
                    txt(c.get("phase")),
                    num(c.get("measured")),
                    Cell(f"{relation(c)} {fmt(c.get('threshold'))}", "num"),
                    txt(what, "explain"),
                ],
            )
        )
    return table


# -- phases and endpoints --------------------------------------------------------------------------

LATENCY_COLUMNS = (
    ("p50_ms", "p50"),
    ("p90_ms", "p90"),
    ("p95_ms", "p95"),
    ("p99_ms", "p99"),
    ("p999_ms", "p99.9"),
    ("max_ms", "max"),
)


def _latency_keys(records: Iterable[dict]) -> list[tuple[str, str]]:
    records = list(records)
    return [(key, label) for key, label in LATENCY_COLUMNS if any(key in r for r in records)]


def _corrected(records: Iterable[dict]) -> list[tuple[str, str]]:
    found = [r.get("corrected") for r in records if isinstance(r.get("corrected"), dict)]
    return [(key, label) for key, label in LATENCY_COLUMNS if any(key in c for c in found)]


CORRECTED_CAPTION = (
    "Latency cells: raw on the first line; under it, corrected for coordinated omission "
    "(from when the operation was due)."
)


def phase_table(phases: Sequence[dict]) -> Table:
    """Per phase (and, under it, per endpoint): interval, traffic, errors, latency raw and corrected."""
    subs = [e for p in phases for e in (p.get("endpoints") or {}).values() if isinstance(e, dict)]
    keys = _latency_keys([*phases, *subs])
    corrected = _corrected([*phases, *subs])
    columns = [
        ("phase", ""),
        ("from", "num"),
        ("to", "num"),
        ("requests", "num"),
        ("rps", "num"),
        ("ok rps", "num"),
        ("errors", "num"),
        ("omitted", "num"),
    ]
    columns += [(f"{label} ms", "num") for _, label in keys]
    columns.append(("status codes", ""))
    table = Table(columns, caption=CORRECTED_CAPTION if corrected else None)
    for p in phases:
        start, duration = p.get("start_s"), p.get("duration_s")
        end = (
            start + duration if isinstance(start, int | float) and isinstance(duration, int | float) else None
        )
        table.rows.append(
            (
                f"phase-{p.get('kind', '')}",
                [
                    Cell(str(p.get("name", DASH)), "phase-name"),
                    Cell(seconds(start), "num"),
                    Cell(seconds(end), "num"),
                    *_figures(p, keys, corrected),
                ],
            )
        )
        for name, e in (p.get("endpoints") or {}).items():
            if isinstance(e, dict):
                table.rows.append(("sub", [txt(name), txt(""), txt(""), *_figures(e, keys, corrected)]))
    return table


def endpoint_table(load: dict | None) -> Table | None:
    """The whole load per endpoint (``summary.load.endpoints``), with the total first."""
    if not isinstance(load, dict) or not load.get("requests"):
        return None
    endpoints = {k: v for k, v in (load.get("endpoints") or {}).items() if isinstance(v, dict)}
    keys = _latency_keys([load, *endpoints.values()])
    corrected = _corrected([load, *endpoints.values()])
    columns = [("endpoint", ""), ("requests", "num"), ("rps", "num"), ("ok rps", "num")]
    columns += [("errors", "num"), ("omitted", "num")]
    columns += [(f"{label} ms", "num") for _, label in keys]
    columns.append(("status codes", ""))
    table = Table(columns, caption=CORRECTED_CAPTION if corrected else None)
    table.rows.append(("total", [Cell("all endpoints", "phase-name"), *_figures(load, keys, corrected)]))
    for name, e in endpoints.items():
        table.rows.append(("", [txt(name, "mono"), *_figures(e, keys, corrected)]))
    return table


def _figures(r: dict, keys: list[tuple[str, str]], corrected: list[tuple[str, str]]) -> list[Cell]:
    cells = [
        num(r.get("requests")),
        num(r.get("rps"), 1),
        num(r.get("ok_rps"), 1),
        Cell(percent(r.get("error_rate")), "num"),
        num(r.get("omitted")),
    ]
    with_corrected = {key for key, _ in corrected}
    for key, _ in keys:
        sub = fmt(_get(r, "corrected", key), 1) if key in with_corrected else None
        cells.append(Cell(fmt(r.get(key), 1), "num", sub=sub))
    cells.append(Cell(statuses(r.get("statuses")), "mono"))
    return cells


# -- faults: recovery, budget, comparison ----------------------------------------------------------


def faults_table(faults: Sequence[dict]) -> Table | None:
    if not faults:
        return None
    table = Table(
        [
            ("fault", ""),
            ("action", ""),
            ("target", ""),
            ("params", ""),
            ("inject", "num"),
            ("end", "num"),
            ("ended by", ""),
            ("error", ""),
        ]
    )
    for f in faults:
        if not f.get("effective"):
            ended = "aborted: no fault"
        elif f.get("rolled_back"):
            ended = "rollback"
        else:
            ended = f"window {fmt(f.get('window_s'))} s"
        table.rows.append(
            (
                "" if f.get("effective") else "failed",
                [
                    txt(f.get("name")),
                    txt(f.get("action"), "mono"),
                    txt(f.get("target"), "mono"),
                    Cell(fmt(f.get("params")) if f.get("params") else DASH, "mono"),
                    Cell(seconds(f.get("inject_s")), "num"),
                    Cell(seconds(f.get("end_s")), "num"),
                    txt(ended),
                    Cell(str(f.get("error") or ""), "error-text"),
                ],
            )
        )
    return table


def recovery_table(faults: Sequence[dict]) -> Table | None:
    """``faults[].recovery``: impact, time to recover, degradation, availability (None without it)."""
    records = [(f, f.get("recovery")) for f in faults if isinstance(f.get("recovery"), dict)]
    if not records:
        return None
    table = Table(
        [
            ("fault", ""),
            ("impact after", "num"),
            ("recovered", ""),
            ("TTR", "num"),
            ("after fault end", "num"),
            ("unhealthy", "num"),
            ("degradation (req·s)", "num"),
            ("requests lost", "num"),
            ("depth", "num"),
            ("availability", "num"),
            ("healthy when", ""),
            ("note", ""),
        ]
    )
    for f, r in records:
        recovered = r.get("recovered")
        health = r.get("health") or {}
        window = r.get("stability_window_s")
        when = ", ".join(f"{k} {_limit(k)} {fmt(v)}" for k, v in health.items()) if health else "requests > 0"
        if window is not None:
            when += f"; for {fmt(window)} s"
        table.rows.append(
            (
                "" if recovered else "failed",
                [
                    txt(f"{f.get('name', DASH)} {f.get('action') or ''}".strip()),
                    Cell(seconds(r.get("time_to_impact_s")) if r.get("impacted") else "no impact", "num"),
                    Cell(
                        "yes" if recovered else "NEVER",
                        tag="pass" if recovered else "fail",
                    ),
                    Cell(seconds(r.get("ttr_s")) if recovered else "∞", "num"),
                    Cell(seconds(r.get("since_fault_end_s")), "num"),
                    Cell(seconds(r.get("unhealthy_s")), "num"),
                    num(r.get("degradation_rs")),
                    num(r.get("requests_lost"), 0),
                    Cell(percent(r.get("depth"), 1), "num"),
                    Cell(percent(r.get("availability"), 3), "num"),
                    txt(when, "mono"),
                    txt(r.get("note") or ""),
                ],
            )
        )
    return table


def _limit(key: str) -> str:
    return "≥" if key == "min_rps" else "≤"


def budget_table(budget: dict | None) -> Table | None:
    """``summary.budget``: SLI and budget per phase and over the load (None without it)."""
    if not isinstance(budget, dict) or not isinstance(budget.get("phases"), list):
        return None
    windows = [str(w) for w in budget.get("windows_s") or []]
    target = budget.get("target")
    columns = [("span", ""), ("events", "num"), ("bad", "num"), ("SLI", "num")]
    if target is not None:
        columns += [("budget (bad events)", "num"), ("consumed", "num"), ("share of run's", "num")]
    columns += [(f"worst {w} s error ratio", "num") for w in windows]
    table = Table(columns)
    table.caption = (
        f"Availability target {percent(target, 3)}."
        if target is not None
        else "No availability target (slo.availability): the SLI and error ratios only."
    )
    spans = [*budget["phases"], *([budget["load"]] if isinstance(budget.get("load"), dict) else [])]
    for span in spans:
        consumed = span.get("consumed")
        over = isinstance(consumed, int | float) and consumed > 1
        cells = [
            Cell(str(span.get("name", DASH)), "phase-name"),
            num(span.get("events")),
            num(span.get("bad")),
            Cell(percent(span.get("sli"), 3), "num"),
        ]
        if target is not None:
            cells += [num(span.get("budget"), 1), Cell(percent(consumed, 1), "num")]
            cells.append(Cell(percent(span.get("run_share"), 1), "num"))
        for w in windows:
            burn = _get(span, "max_burn_rate", f"{w}s")
            sub = f"burn rate {fmt(burn, 2)}" if target is not None else None
            cells.append(Cell(percent(_get(span, "max_error_ratio", f"{w}s"), 2), "num", sub=sub))
        cls = (
            "total"
            if span.get("kind") == "load"
            else ("failed" if over and span.get("kind") != "fault" else "")
        )
        table.rows.append((cls, cells))
    return table


CLASS_TAGS = {"Pass": "pass", "High": "fail", "Low": "note", "NoData": "warning"}


def comparison_table(comparison: dict | None) -> Table | None:
    """``summary.comparison``: each recovery phase against the baseline, per metric."""
    if not isinstance(comparison, dict) or not comparison.get("phases"):
        return None
    table = Table(
        [
            ("recovery phase", ""),
            ("metric", ""),
            ("baseline median", "num"),
            ("median", "num"),
            ("shift (HL)", "num"),
            ("effect", "num"),
            ("tolerance", "num"),
            ("p-value", "num"),
            ("seconds (base / rec.)", "num"),
            ("class", ""),
        ]
    )
    for phase in comparison["phases"]:
        for metric, m in (phase.get("metrics") or {}).items():
            if not isinstance(m, dict):
                continue
            cls = str(m.get("classification", DASH))
            table.rows.append(
                (
                    "failed" if cls == "High" else "",
                    [
                        Cell(str(phase.get("name", DASH)), "phase-name"),
                        txt(metric, "mono"),
                        num(m.get("baseline_median")),
                        num(m.get("median")),
                        num(m.get("shift")),
                        num(m.get("effect")),
                        num(m.get("tolerance")),
                        num(m.get("p_value"), 4),
                        Cell(f"{fmt(m.get('baseline_n'))} / {fmt(m.get('n'))}", "num"),
                        Cell(cls, tag=CLASS_TAGS.get(cls, "note")),
                    ],
                )
            )
    if comparison.get("note"):
        table.caption = str(comparison["note"])
    return table


# -- X-Ray -----------------------------------------------------------------------------------------


def xray_figures(xray: dict) -> list[tuple[str, str]]:
    """The join's headline figures: (label, value)."""
    return [
        ("segments", fmt(xray.get("segments"))),
        ("traces", fmt(xray.get("traces"))),
        ("rows joined", f"{fmt(xray.get('joined'))} / {fmt(xray.get('rows'))}"),
        ("coverage", percent(xray.get("coverage"), 1)),
        ("unmatched traces", fmt(xray.get("unmatched_traces"))),
        ("negative overhead", fmt(xray.get("negative_overhead"))),
        ("in progress", fmt(xray.get("in_progress"))),
        ("cold starts", fmt(xray.get("cold_starts"))),
    ]


def xray_table(xray: dict) -> Table | None:
    """Per phase (and endpoint): client vs server vs overhead time, and cold starts."""
    phases = [p for p in xray.get("phases") or [] if isinstance(p, dict)]
    if not phases:
        return None
    table = Table(
        [
            ("phase", ""),
            ("joined", "num"),
            ("coverage", "num"),
            ("client p50", "num"),
            ("client p99", "num"),
            ("server p50", "num"),
            ("server p99", "num"),
            ("overhead p50", "num"),
            ("overhead p99", "num"),
            ("faults / errors / throttles", "num"),
            ("cold starts", "num"),
            ("init p50 / max", "num"),
        ]
    )

    def cells(r: dict) -> list[Cell]:
        return [
            Cell(f"{fmt(r.get('joined'))} / {fmt(r.get('rows'))}", "num"),
            Cell(percent(r.get("coverage"), 1), "num"),
            *(
                num(_get(r, part, key), 1)
                for part in ("client", "server", "overhead")
                for key in ("p50_ms", "p99_ms")
            ),
            Cell(f"{fmt(r.get('faults'))} / {fmt(r.get('errors'))} / {fmt(r.get('throttles'))}", "num"),
        ]

    for p in phases:
        cold = p.get("cold_starts") if isinstance(p.get("cold_starts"), dict) else {}
        table.rows.append(
            (
                "total" if p.get("name") == "load" else "",
                [
                    Cell(str(p.get("name", DASH)), "phase-name"),
                    *cells(p),
                    num(cold.get("count")),
                    Cell(f"{fmt(cold.get('p50_ms'), 1)} / {fmt(cold.get('max_ms'), 1)} ms", "num"),
                ],
            )
        )
        for name, e in (p.get("endpoints") or {}).items():
            if isinstance(e, dict):
                table.rows.append(("sub", [txt(name), *cells(e), txt(""), txt("")]))
    return table


# -- scaling ---------------------------------------------------------------------------------------


def scaling_table(events: Sequence[ScalingEvent], total: int) -> Table | None:
    """The scaling activities drawn on the timeline (``scaling.parquet``)."""
    if not events:
        return None
    table = Table(
        [
            ("at", "num"),
            ("resource", ""),
            ("activity", ""),
            ("capacity", "num"),
            ("took", "num"),
            ("status", ""),
            ("subject", ""),
            ("cause", ""),
        ]
    )
    for e in events:
        took = seconds(e.end_s - e.t_s) if e.end_s is not None else "not ended"
        change = f"{fmt(e.from_capacity)} → {fmt(e.to_capacity)}"
        table.rows.append(
            (
                "failed" if e.status == "failed" else "",
                [
                    Cell(seconds(e.t_s), "num"),
                    txt(e.resource),
                    txt(e.kind, "mono"),
                    Cell(change, "num"),
                    Cell(took, "num"),
                    txt(e.status),
                    txt(e.subject, "mono"),
                    Cell(e.cause, "error-text"),
                ],
            )
        )
    if total > len(events):
        table.caption = f"The first {len(events)} of {total:,} activities."
    return table


def generic_tables(record: Any, title: str, depth: int = 0) -> list[tuple[str, Table]]:
    """Any JSON record as tables, for summary sections this report does not know in detail (yet).

    A record's scalars, and those of its records of scalars (as ``key.sub``), make one figure/value
    table; a list of records makes one table, a row per record and a column per scalar (again with
    records of scalars flattened); anything nested deeper gets tables of its own, titled by its path.
    """
    if depth > 4:
        return []
    if isinstance(record, list):
        rows = [_flat(r) for r in record if isinstance(r, dict)]
        if not rows:
            return [(title, Table([("value", "")], [("", [txt(fmt(record))])]))] if record else []
        columns = list(dict.fromkeys(k for flat, _ in rows for k in flat))
        table = Table([(c, "") for c in columns])
        for flat, _ in rows:
            table.rows.append(("", [_value_cell(flat.get(c)) for c in columns]))
        out = [(title, table)]
        for i, (flat, nested) in enumerate(rows):
            label = flat.get("name") or flat.get("fault") or str(i + 1)
            for key, value in nested.items():
                out += generic_tables(value, f"{title} · {label} · {key}", depth + 1)
        return out
    if isinstance(record, dict):
        flat, nested = _flat(record)
        out = []
        if flat:
            table = Table([("figure", ""), ("value", "num")], cls="compact")
            for key, value in flat.items():
                table.rows.append(("", [txt(key, "mono"), _value_cell(value)]))
            out.append((title, table))
        for key, value in nested.items():
            out += generic_tables(value, f"{title} · {key}", depth + 1)
        return out
    return [(title, Table([("value", "")], [("", [txt(fmt(record))])]))]


def _flat(record: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scalars, with records of scalars flattened as ``key.sub``; the rest, non-empty)."""
    flat: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict) and value and not any(isinstance(v, dict | list) for v in value.values()):
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        elif isinstance(value, dict | list):
            if value:
                nested[key] = value
        else:
            flat[key] = value
    return flat, nested


def _value_cell(value: Any) -> Cell:
    return num(value) if isinstance(value, int | float) and not isinstance(value, bool) else txt(fmt(value))


# -- run metadata ----------------------------------------------------------------------------------

SECRET_WORDS = ("secret", "token", "password", "passwd", "credential", "authorization", "session_key")
SECRET_KEYS = ("aws_access_key_id", "access_key", "private_key", "api_key", "apikey")


def is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS) or lowered in SECRET_KEYS


def redacted(value: Any) -> Any:
    """``value`` with every entry whose key looks like a credential replaced by ``[redacted]``."""
    if isinstance(value, dict):
        return {k: "[redacted]" if is_secret(str(k)) else redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def meta_rows(meta: dict, summary: dict) -> list[tuple[str, str]]:
    """run.json as (key, text), credentials redacted, versions spelled out; then the load window."""
    rows: list[tuple[str, str]] = []
    for key, value in sorted(redacted(meta).items()):
        if key == "versions" and isinstance(value, dict):
            rows.append((key, ", ".join(f"{k} {v}" for k, v in sorted(value.items()))))
        elif key == "endpoints" and isinstance(value, dict):
            rows.append((key, ", ".join(f"{k}: {v}" for k, v in sorted(value.items()))))
        else:
            rows.append((key, fmt(value)))
    rows.append(("load window", f"{summary.get('load_started', DASH)} → {summary.get('load_ended', DASH)}"))
    rows.append(("summary schema_version", fmt(summary.get("schema_version"))))
    return rows
