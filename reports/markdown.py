"""``summary.md``: a run in Markdown, short enough for a CI step summary.

GitHub Actions shows what a step appends to ``$GITHUB_STEP_SUMMARY``; GitLab and others show
Markdown artifacts. The page has the verdict, the failed checks first with their figures, a compact
table of every check, the phases, the faults with their recovery, and the consistency counts, then
links to ``report.html`` and ``junit.xml`` beside it. ``render_markdown`` is pure and reads
``summary.json`` alone, so ``chaoscheck report RUN_DIR`` rebuilds it.

Every string that came from the network or a file (notes with error texts, fault targets, the run's
id) goes through ``md_escape``: the punctuation that formats inside a line is backslash-escaped,
``<``, ``>`` and ``&`` become entities (GitHub renders inline HTML), line breaks and control
characters become spaces,
so such a string can neither format the page nor break out of a table cell.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from chaoscheck import runformat as rf
from reports.junit import JUNIT, failed_checks, fmt_value, relation

SUMMARY_MD = "summary.md"
"""The file name, beside ``report.html`` in the run directory."""

MAX_CELL = 200
"""A string from the run is cut to this many characters in a cell."""
MAX_ROWS = 100
"""Tables show at most this many rows (the failed checks always all come first)."""

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")
"""Escaped wherever they are: emphasis, code, links, table cells, strike-through and math. The text
never starts a line, so the line-start markers (``#``, ``-``, ``1.``, ``>``) cannot take effect."""
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def md_escape(value: Any, limit: int = MAX_CELL) -> str:
    """``value`` as inert Markdown text for a table cell or a line (see the module doc)."""
    text = _CONTROL.sub(" ", value if isinstance(value, str) else str(value))
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def render_markdown(summary: dict) -> str:
    """The text of ``summary.md`` for ``summary`` (as ``analysis.summarize`` makes it)."""
    verdict = str(summary.get("verdict") or "?")
    passed = verdict == "pass"
    checks = list(summary.get("checks") or [])
    failed = failed_checks(summary)
    scenario = md_escape(summary.get("scenario") or "?")
    lines = [
        f"## {'✅' if passed else '❌'} chaoscheck {scenario}: {'PASS' if passed else 'FAIL'}",
        "",
        " · ".join(
            [
                f"run {md_escape(summary.get('run_id') or '?')}",
                f"target {md_escape(summary.get('target') or '?')}",
                f"started {md_escape(summary.get('started_at') or '?')}",
                f"load {_num(summary.get('duration_s'))} s",
                f"{len(checks) - len(failed)}/{len(checks)} checks passed",
            ]
        ),
        "",
    ]
    if summary.get("halted"):
        lines += [f"**Halted**: {md_escape((summary['halted'] or {}).get('reason'))}", ""]
    if failed:
        lines += [f"### Failed checks ({len(failed)})", ""]
        lines += [
            f"- **{md_escape(c.get('name'))}**{_phase(c)}: measured **{_fig(c.get('measured'))}**, "
            f"threshold {_rel(c)} {_fig(c.get('threshold'))}"
            + (f" — {md_escape(c['note'], 300)}" if c.get("note") else "")
            for c in failed
        ]
        lines.append("")
    lines += _checks_table(failed, [c for c in checks if c.get("passed")])
    lines += _phases_table(summary.get("phases") or [])
    lines += _faults_table(summary.get("faults") or [])
    lines += _consistency(summary.get("consistency") or {})
    lines += [f"Files: `{rf.REPORT}` (charts), `{JUNIT}`, `{rf.SUMMARY}` in the run directory.", ""]
    return "\n".join(lines)


def write_markdown(run_dir: str | Path, summary: dict) -> Path:
    """Write ``summary.md`` beside the report atomically; return its path."""
    from analysis.summary import write_atomic

    path = Path(run_dir) / SUMMARY_MD
    write_atomic(path, render_markdown(summary))
    return path


def _checks_table(failed: list[dict], passed: list[dict]) -> list[str]:
    rows = [*failed, *passed]
    lines = [
        "### Checks",
        "",
        "| | check | phase | measured | threshold |",
        "|---|---|---|---:|---:|",
    ]
    shown = rows[: max(MAX_ROWS, len(failed))]
    for c in shown:
        lines.append(
            f"| {'✅' if c.get('passed') else '❌'} | {md_escape(c.get('name'))} | "
            f"{md_escape(c.get('phase') or '')} | {_fig(c.get('measured'))} | "
            f"{_rel(c)} {_fig(c.get('threshold'))} |"
        )
    if len(rows) > len(shown):
        lines.append(f"| | … {len(rows) - len(shown)} more passed checks in junit.xml | | | |")
    return [*lines, ""]


def _phases_table(phases: list[dict]) -> list[str]:
    if not phases:
        return []
    lines = [
        "### Phases",
        "",
        "| phase | start s | duration s | requests | ok/s | error rate | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases[:MAX_ROWS]:
        lines.append(
            f"| {md_escape(p.get('name'))} | {_num(p.get('start_s'))} | {_num(p.get('duration_s'))} | "
            f"{_num(p.get('requests'))} | {_num(p.get('ok_rps'))} | {_pct(p.get('error_rate'))} | "
            f"{_num(p.get('p50_ms'))} | {_num(p.get('p95_ms'))} | {_num(p.get('p99_ms'))} | "
            f"{_num(p.get('max_ms'))} |"
        )
    return [*lines, ""]


def _faults_table(faults: list[dict]) -> list[str]:
    if not faults:
        return []
    lines = [
        "### Faults",
        "",
        "| fault | action | target | at s | window s | effective | TTR s | availability |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for f in faults[:MAX_ROWS]:
        recovery = f.get("recovery") or {}
        ttr = _num(recovery.get("ttr_s")) if recovery.get("recovered") else ("never" if recovery else "—")
        cells = [
            md_escape(f.get("name")),
            md_escape(f.get("action")),
            md_escape(f.get("target"), 60),
            _num(f.get("inject_s")),
            _num(f.get("window_s")),
            "yes" if f.get("effective") else "no",
            ttr,
            _pct(recovery.get("availability")),
        ]
        lines.append(f"| {' | '.join(cells)} |")
    return [*lines, ""]


def _consistency(consistency: dict) -> list[str]:
    if not consistency:
        return []
    figures = [
        ("attempted", consistency.get("attempted")),
        ("ok", consistency.get("ok")),
        ("final value", consistency.get("final_value")),
        ("lost", consistency.get("lost")),
        ("duplicated", consistency.get("duplicated")),
        ("read violations", consistency.get("read_violations")),
    ]
    line = ", ".join(f"{name} {_num(value)}" for name, value in figures)
    anomalies = [
        f"{md_escape(name)} {_num(record.get('count'))}"
        for name, record in sorted((consistency.get("anomalies") or {}).items())
        if isinstance(record, dict) and record.get("count")
    ]
    valid = "valid" if consistency.get("valid") else "**not valid**"
    lines = ["### Consistency", "", f"{valid}: {line}."]
    lines.append(f"Anomalies: {', '.join(anomalies)}." if anomalies else "No anomaly.")
    return [*lines, ""]


def _rel(check: dict) -> str:
    return {"<=": "≤", ">=": "≥"}.get(relation(check), "=")


def _fig(value: Any) -> str:
    """A measured value or threshold: numbers as they are, anything else escaped."""
    if value is None or isinstance(value, bool | int | float):
        return fmt_value(value)
    return md_escape(value)


def _phase(check: dict) -> str:
    return f" ({md_escape(check['phase'])})" if check.get("phase") else ""


def _num(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "—"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return md_escape(value)


def _pct(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value * 100:.2f}%"
