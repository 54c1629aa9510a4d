"""summary.md: the verdict, failed checks first with figures, compact tables, inert strings."""

from __future__ import annotations

import re

import pytest
from history import applied, final, inc, inject, rollback, write_run

from analysis.summary import write_summary
from reports.markdown import SUMMARY_MD, md_escape, render_markdown, write_markdown

XSS = "<script>alert(1)</script>"
SECRET = "s3cr3t-token-value"


def make_run(path, *, slow: bool):
    ops = [
        inc(f"k{i}", i * 100, i * 100 + (40 if slow else 5), value=i + 1, endpoint=("fleet", "lambda")[i % 2])
        for i in range(100)
    ]
    ops.append(inc("x", 5_500, 5_510, "fail", status=429, endpoint="lambda", error=f"throttled {XSS} | *x*"))
    ops += [final(10_500, 10_501, 100), final(10_500, 10_502, 100, endpoint="lambda")]
    ledger = [applied(f"k{i}", i + 1, i * 100 + 3) for i in range(100)]
    faults = [inject(0, 5_000, 2.0, action="throttle-lambda", target=f"fn{XSS}"), rollback(0, 7_000)]
    slo = {"consistency": {"lost": 0}, "baseline": {"p95_ms": 20}, "recovery": {"error_rate": 0.5}}
    meta = {"run_id": "r_1", "endpoints": {"fleet": f"http://u:{SECRET}@127.0.0.1:1"}, "token": SECRET}
    return write_run(path, ops, server_ops=ledger, faults=faults, slo=slo, meta=meta)


@pytest.fixture
def failing(tmp_path):
    return write_summary(make_run(tmp_path / "fail", slow=True))


@pytest.fixture
def passing(tmp_path):
    return write_summary(make_run(tmp_path / "pass", slow=False))


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the table under ``### heading`` (split on unescaped pipes)."""
    block = text.split(f"### {heading}\n\n", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def test_failed_checks_come_first_with_their_figures(failing):
    text = render_markdown(failing)
    assert text.startswith("## ❌ chaoscheck unit: FAIL\n")
    p95 = next(c for c in failing["checks"] if c["name"] == "baseline.p95_ms")
    assert f"- **baseline.p95\\_ms** (baseline): measured **{p95['measured']:.4g}**, threshold ≤ 20" in text
    assert text.index("### Failed checks (1)") < text.index("### Checks") < text.index("### Phases")
    rows = table_rows(text, "Checks")
    assert rows[0][:2] == ["❌", "baseline.p95\\_ms"]
    assert len(rows) == len(failing["checks"]) and all(len(r) == 5 for r in rows)
    assert {r[0] for r in rows[1:]} == {"✅"}
    assert f"{len(failing['checks']) - 1}/{len(failing['checks'])} checks passed" in text


def test_phases_faults_and_consistency(failing):
    text = render_markdown(failing)
    phases = table_rows(text, "Phases")
    assert [r[0] for r in phases] == ["baseline", "fault-1", "recovery-1"]
    assert all(len(r) == 10 for r in phases)
    faults = table_rows(text, "Faults")
    assert len(faults) == 1 and faults[0][0] == "fault-1" and faults[0][1] == "throttle-lambda"
    assert "### Consistency\n\nvalid: attempted 101, ok 100, final value 100, lost 0, duplicated 0" in text
    assert "`report.html`" in text and "`junit.xml`" in text


def test_a_passing_run_says_so_without_a_failed_section(passing):
    text = render_markdown(passing)
    assert text.startswith("## ✅ chaoscheck unit: PASS\n")
    assert "Failed checks" not in text


def test_strings_from_the_run_are_inert(failing):
    failing = {**failing, "run_id": f"r|{XSS}\n# heading"}
    failing["checks"][0] = {
        **failing["checks"][0],
        "passed": False,
        "note": f"boom {XSS} | `code` *b* [l](x) $m$",
    }
    text = render_markdown(failing)
    assert "<script" not in text and XSS not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "\n# heading" not in text
    assert "\\| \\`code\\` \\*b\\* \\[l\\](x) \\$m\\$" in text
    assert SECRET not in text and "127.0.0.1" not in text
    rows = table_rows(text, "Faults")
    assert rows[0][2] == "fn&lt;script&gt;alert(1)&lt;/script&gt;"


def test_rendered_by_a_markdown_parser_nothing_executes(failing):
    markdown_it = pytest.importorskip("markdown_it")
    failing = {**failing}
    failing["checks"][0] = {
        **failing["checks"][0],
        "passed": False,
        "note": f"{XSS} | <img src=x onerror=alert(1)>",
    }
    html = (
        markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(render_markdown(failing))
    )
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    # the checks table keeps its five columns on every row despite the pipes in the strings
    checks = html.split("<h3>Checks</h3>", 1)[1].split("</table>", 1)[0]
    for row in re.findall(r"<tr>(.*?)</tr>", checks, re.S):
        assert len(re.findall(r"<t[hd][ >]", row)) == 5


def test_md_escape():
    assert md_escape("a_b*c`d|e[f]g~h$i\\j") == "a\\_b\\*c\\`d\\|e\\[f\\]g\\~h\\$i\\\\j"
    assert md_escape("<b>&</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"
    assert md_escape("line\nbreak\r\n\tand\x00control") == "line break and control"
    assert md_escape("x" * 500, limit=10) == "x" * 9 + "…"
    assert md_escape(12.5) == "12.5"


def test_many_checks_are_cut_but_failures_never(failing):
    checks = [{"name": f"c{i}", "passed": i % 50 != 0, "measured": i, "threshold": 1, "phase": None,
               "note": None} for i in range(300)]  # fmt: skip
    text = render_markdown({**failing, "checks": checks})
    rows = table_rows(text, "Checks")
    assert len(rows) == 101 and rows[-1][1].startswith("… 200 more passed checks")
    assert [r[1] for r in rows[:6]] == ["c0", "c50", "c100", "c150", "c200", "c250"]


def test_write_markdown(failing, tmp_path):
    path = write_markdown(tmp_path, failing)
    assert path == tmp_path / SUMMARY_MD
    assert path.read_text(encoding="utf-8") == render_markdown(failing)
