"""docs/run-format.md documents summary.json's schema, junit.xml and summary.md as they are written."""

from __future__ import annotations

import re
from pathlib import Path

from history import applied, final, inc, inject, rollback, write_run

from analysis.summary import write_summary

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-format.md"


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"## `{title}`")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def documented(text: str) -> set[str]:
    """Every name written as code in the first column of a table, or listed in a cell as code."""
    return set(re.findall(r"`([a-z_0-9.<>]+)`", text))


def test_every_field_of_summary_json_is_documented(tmp_path):
    ops = [inc(f"k{i}", i * 100, i * 100 + 5, value=i + 1) for i in range(50)]
    ops.append(final(5_500, 5_501, 50))
    faults = [inject(0, 2_000, 1.0, action="throttle-lambda", target="fn"), rollback(0, 3_000)]
    run_dir = write_run(
        tmp_path, ops, server_ops=[applied(f"k{i}", i + 1, i * 100 + 1) for i in range(50)], faults=faults,
        slo={"baseline": {"p95_ms": 100}}, load_ms=(0, 5_000),
    )  # fmt: skip
    summary = write_summary(run_dir)
    names = documented(section("summary.json"))
    missing = [key for key in summary if key not in names]
    missing += [f"checks[].{key}" for key in summary["checks"][0] if key not in names]
    missing += [f"phases[].{key}" for key in summary["phases"][0] if key not in names]
    missing += [f"faults[].{key}" for key in summary["faults"][0] if key not in names]
    missing += [f"faults[].recovery.{key}" for key in summary["faults"][0]["recovery"] if key not in names]
    missing += [f"consistency.{key}" for key in summary["consistency"] if key not in names]
    assert not missing, f"document these in docs/run-format.md#summaryjson: {missing}"
    assert summary["schema_version"] == 1 and "`schema_version` is `1`" in section("summary.json")


def test_the_junit_and_markdown_sections_exist():
    junit = section("junit.xml")
    for name in ("testsuite", "properties", "testcase", "failure", "system-out"):
        assert f"`{name}`" in junit
    markdown = section("summary.md")
    assert "GITHUB_STEP_SUMMARY" in markdown and "Failed checks" in markdown
    table = DOC.read_text(encoding="utf-8").split("## ", 1)[0]
    assert "| `junit.xml` | reports |" in table and "| `summary.md` | reports |" in table
