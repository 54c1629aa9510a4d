"""``junit.xml``: a run's checks as JUnit XML, for CI systems that read test results.

One ``<testsuite>`` per run (``chaoscheck.<scenario>``) with ``<properties>`` scenario, target, run id,
verdict, start time and schema version, and one ``<testcase>`` per check of ``summary.json``: the
check's name as the test's name, its phase as the class (``chaoscheck.<scenario>.<phase>``, or ``run``
for checks of the whole run). A failed check carries a ``<failure>`` whose message names the check,
what was measured and the threshold, and whose text adds the check's note; every test case says the
same in ``<system-out>``. The file comes from ``summary.json`` alone (``build_junit`` is pure), so
``chaoscheck report RUN_DIR`` rebuilds it. Nothing of ``run.json`` but the ids goes in: no endpoint,
no credential.

Strings that came from the network or a file (notes carry error texts) are escaped by the XML
writer, and characters XML 1.0 cannot hold (control characters, lone surrogates) are replaced by
``\\xNN`` escapes, so the file always parses.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from chaoscheck import runformat as rf

JUNIT = "junit.xml"
"""The file name, beside ``report.html`` in the run directory."""

_AT_LEAST = (".min_rps", ".availability")
"""Check names ending so pass when measured >= threshold (``analysis.checks``)."""

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: Any) -> str:
    """``value`` as text that XML 1.0 can hold: illegal characters become ``\\xNN`` / ``\\uNNNN``."""
    text = value if isinstance(value, str) else str(value)
    return _XML_ILLEGAL.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def fmt_value(value: Any) -> str:
    """A measured value or threshold for a message: ``none``, ``true``, 4 significant digits."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}" if abs(value) < 1e15 else f"{value:.6g}"
    return str(value)


def relation(check: dict) -> str:
    """How the check compares measured with threshold: ``=``, ``>=`` or ``<=``."""
    if isinstance(check.get("threshold"), bool):
        return "="
    name = str(check.get("name", ""))
    return ">=" if name.endswith(_AT_LEAST) else "<="


def describe_check(check: dict) -> str:
    """One line: ``NAME [PHASE]: measured M, threshold <= T[; note]`` (the note's lines joined)."""
    phase = check.get("phase")
    where = f" [{phase}]" if phase else ""
    line = (
        f"{check.get('name')}{where}: measured {fmt_value(check.get('measured'))}, "
        f"threshold {relation(check)} {fmt_value(check.get('threshold'))}"
    )
    note = check.get("note")
    if note:
        line += "; " + " ".join(str(note).split())
    return line


def failed_checks(summary: dict) -> list[dict]:
    """The checks that did not pass, in the summary's order."""
    return [c for c in summary.get("checks") or [] if not c.get("passed")]


def build_junit(summary: dict) -> ET.Element:
    """The ``<testsuites>`` element of one run (see the module doc)."""
    scenario = str(summary.get("scenario") or "unknown")
    checks = list(summary.get("checks") or [])
    failures = len(failed_checks(summary))
    duration = summary.get("duration_s")
    seconds = f"{duration:.3f}" if isinstance(duration, int | float) else "0"
    root = ET.Element(
        "testsuites",
        name="chaoscheck",
        tests=str(len(checks)),
        failures=str(failures),
        errors="0",
        time=seconds,
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=xml_text(f"chaoscheck.{scenario}"),
        tests=str(len(checks)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=seconds,
        timestamp=_timestamp(summary.get("started_at")),
    )
    properties = ET.SubElement(suite, "properties")
    for name in ("scenario", "target", "run_id", "verdict", "started_at", "schema_version"):
        value = summary.get(name)
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=xml_text(value))
    ET.SubElement(properties, "property", name="report", value=rf.REPORT)
    for check in checks:
        phase = check.get("phase") or "run"
        case = ET.SubElement(
            suite,
            "testcase",
            classname=xml_text(f"chaoscheck.{scenario}.{phase}"),
            name=xml_text(check.get("name", "?")),
            time="0",
        )
        text = _details(check)
        if not check.get("passed"):
            failure = ET.SubElement(
                case, "failure", message=xml_text(describe_check(check)), type="ThresholdExceeded"
            )
            failure.text = xml_text(text)
        ET.SubElement(case, "system-out").text = xml_text(text)
    return root


def render_junit(summary: dict) -> str:
    """The text of ``junit.xml``: UTF-8 with an XML declaration, indented, final newline."""
    root = build_junit(summary)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(run_dir: str | Path, summary: dict) -> Path:
    """Write ``junit.xml`` beside the report atomically; return its path."""
    from analysis.summary import write_atomic

    path = Path(run_dir) / JUNIT
    write_atomic(path, render_junit(summary))
    return path


def _details(check: dict) -> str:
    lines = [
        f"check: {check.get('name')}",
        f"phase: {check.get('phase') or '-'}",
        f"measured: {fmt_value(check.get('measured'))}",
        f"threshold: {relation(check)} {fmt_value(check.get('threshold'))}",
        f"result: {'pass' if check.get('passed') else 'FAIL'}",
    ]
    if check.get("note"):
        lines.append(f"note: {check['note']}")
    return "\n".join(lines)


def _timestamp(started_at: Any) -> str:
    """JUnit's ``timestamp``: ISO 8601 to the second, no zone (UTC; the Ant schema's pattern)."""
    text = str(started_at or "")
    match = re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", text)
    return match.group() if match else "1970-01-01T00:00:00"
