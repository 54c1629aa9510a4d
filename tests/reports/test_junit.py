"""junit.xml: one test case per check, failures with their figures, valid XML whatever the strings."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from history import applied, final, inc, inject, rollback, write_run

from analysis.summary import write_summary
from reports.junit import JUNIT, build_junit, describe_check, render_junit, write_junit, xml_text

XSS = "<script>alert(1)</script>"
HOSTILE = f"{XSS} ]]> & \"q\" 'a' \x00\x07\x1b[31m \ud800 é 日本"
SECRET = "s3cr3t-token-value"


def make_run(path, *, slow: bool = True):
    """A 10 s run: 100 increments, a throttle fault from 5 s to 7 s, a p95 SLO that fails if slow."""
    ops = [
        inc(f"k{i}", i * 100, i * 100 + (40 if slow else 5), value=i + 1, endpoint=("fleet", "lambda")[i % 2])
        for i in range(100)
    ]
    ops += [final(10_500, 10_501, 100), final(10_500, 10_502, 100, endpoint="lambda")]
    ledger = [applied(f"k{i}", i + 1, i * 100 + 3) for i in range(100)]
    faults = [inject(0, 5_000, 2.0, action="throttle-lambda", target="fn"), rollback(0, 7_000)]
    slo = {"consistency": {"lost": 0, "duplicated": 0}, "baseline": {"p95_ms": 20, "error_rate": 0.01}}
    meta = {
        "run_id": "20261129T000000Z-unit",
        "scenario": "unit",
        "endpoints": {"fleet": f"http://user:{SECRET}@127.0.0.1:8080"},
        "control_token": SECRET,
    }
    return write_run(path, ops, server_ops=ledger, faults=faults, slo=slo, meta=meta)


@pytest.fixture
def summary(tmp_path):
    return write_summary(make_run(tmp_path / "run"))


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def test_one_test_case_per_check_and_failures_with_figures(summary):
    root = parse(render_junit(summary))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c["name"] for c in summary["checks"]]
    failed = [c for c in summary["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["baseline.p95_ms"]
    assert (
        suite.get("tests") == str(len(cases)) and suite.get("failures") == "1" and suite.get("errors") == "0"
    )
    assert root.get("tests") == str(len(cases)) and root.get("failures") == "1"

    failure_cases = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failure_cases] == ["baseline.p95_ms"]
    failure = failure_cases[0].find("failure")
    check = failed[0]
    assert failure.get("message") == (
        f"baseline.p95_ms [baseline]: measured {check['measured']:.4g}, threshold <= 20"
    )
    assert f"measured: {check['measured']:.4g}" in failure.text and "threshold: <= 20" in failure.text
    assert failure_cases[0].get("classname") == "chaoscheck.unit.baseline"
    run_case = next(c for c in cases if c.get("name") == "run.aborted")
    assert run_case.get("classname") == "chaoscheck.unit.run" and run_case.find("failure") is None
    assert "result: pass" in run_case.find("system-out").text


def test_properties_name_the_run_and_nothing_secret(summary, tmp_path):
    text = render_junit(summary)
    suite = parse(text).find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["scenario"] == "unit"
    assert props["target"] == "local"
    assert props["run_id"] == "20261129T000000Z-unit"
    assert props["verdict"] == "fail"
    assert props["schema_version"] == "1"
    assert suite.get("name") == "chaoscheck.unit"
    assert suite.get("timestamp") == "2023-11-14T22:13:19"
    assert float(suite.get("time")) == pytest.approx(10.0)
    assert SECRET not in text and "127.0.0.1" not in text


def test_the_note_and_the_at_least_relation_reach_the_failure():
    check = {
        "name": "recovery.fault-1.availability",
        "passed": False,
        "measured": 0.412345,
        "threshold": 0.9,
        "phase": "fault-1",
        "note": "half the\nrequests failed",
    }
    line = describe_check(check)
    assert line == (
        "recovery.fault-1.availability [fault-1]: measured 0.4123, threshold >= 0.9; half the requests failed"
    )
    unmeasured = {**check, "name": "recovery.ttr_s", "measured": None, "phase": None, "note": "no fault"}
    assert describe_check(unmeasured) == "recovery.ttr_s: measured none, threshold <= 0.9; no fault"
    boolean = {**check, "name": "consistency.valid", "measured": False, "threshold": True, "note": None}
    assert describe_check(boolean) == "consistency.valid [fault-1]: measured false, threshold = true"


def test_hostile_strings_are_escaped_and_the_file_still_parses():
    summary = {
        "schema_version": 1,
        "scenario": f"s{XSS}",
        "run_id": HOSTILE,
        "target": "local",
        "verdict": "fail",
        "started_at": "2026-11-29T00:00:00.5Z",
        "duration_s": 1.0,
        "checks": [
            {"name": f"run.aborted{XSS}", "passed": False, "measured": 1, "threshold": 0, "phase": None,
             "note": HOSTILE},
            {"name": "x", "passed": True, "measured": "weird\x01", "threshold": 0, "phase": HOSTILE,
             "note": None},
        ],
    }  # fmt: skip
    text = render_junit(summary)
    assert "<script" not in text and "\x00" not in text and "\x1b" not in text
    root = parse(text)
    failure = root.find("testsuite/testcase/failure")
    assert XSS in failure.get("message") and "\\x00\\x07\\x1b[31m \\ud800 é 日本" in failure.get("message")
    assert "]]>" in failure.text
    props = {p.get("name"): p.get("value") for p in root.find("testsuite/properties")}
    assert props["run_id"].startswith(XSS)
    assert xml_text("a\x0bb\ufffe") == "a\\x0bb\\ufffe"


def test_an_empty_summary_still_makes_a_valid_file():
    root = parse(render_junit({"scenario": None, "checks": []}))
    suite = root.find("testsuite")
    assert suite.get("tests") == "0" and suite.get("name") == "chaoscheck.unknown"
    assert suite.get("timestamp") == "1970-01-01T00:00:00"


def test_junitparser_reads_it(summary, tmp_path):
    junitparser = pytest.importorskip("junitparser")
    path = write_junit(tmp_path, summary)
    assert path == tmp_path / JUNIT
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name == "chaoscheck.unit" and suite.tests == len(summary["checks"]) and suite.failures == 1
    cases = list(suite)
    assert len(cases) == len(summary["checks"])
    failing = [c for c in cases if not c.is_passed]
    assert [c.name for c in failing] == ["baseline.p95_ms"]
    assert "threshold <= 20" in failing[0].result[0].message
    assert {p.name: p.value for p in suite.properties()}["scenario"] == "unit"


def test_write_is_atomic_and_leaves_no_temporary_file(summary, tmp_path):
    write_junit(tmp_path, summary)
    write_junit(tmp_path, summary)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [JUNIT]
    assert build_junit(summary).tag == "testsuites"
