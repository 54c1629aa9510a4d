"""summary.json: its keys, determinism (byte-identical), atomic writing."""

from __future__ import annotations

import json

from history import applied, final, inc, inject, read, rollback, write_run

from analysis import analyze, write_summary
from analysis.rundir import load_run
from analysis.summary import summarize
from chaoscheck import runformat as rf


def make(path):
    ops = [inc(f"k{i}", i * 97.3, i * 97.3 + 12.345678, value=i + 1, error=None) for i in range(40)]
    ops += [read(500 + i * 311.1, 520 + i * 311.1, None, "info", status=0, error="timeout") for i in range(5)]
    ops += [final(20_000, 20_001, 40), final(20_000, 20_002, 40, endpoint="lambda")]
    ledger = [applied(f"k{i}", i + 1, i * 97.3 + 5) for i in range(40)]
    faults = [
        inject(0, 1_000, 0.5),
        inject(1, 2_000, 5.0, action="throttle", target="fn"),
        rollback(1, 3_000),
    ]
    slo = {"consistency": {"lost": 0}, "baseline": {"p95_ms": 100}, "fault": {"error_rate": 0.5}}
    return write_run(path, ops, server_ops=ledger, faults=faults, slo=slo, load_ms=(0, 4_000))


def test_summary_keys(tmp_path):
    summary = write_summary(make(tmp_path))
    for key in (
        "run_id",
        "scenario",
        "target",
        "started_at",
        "ended_at",
        "verdict",
        "checks",
        "consistency",
        "phases",
    ):
        assert key in summary
    assert summary["schema_version"] == 1
    consistency = summary["consistency"]
    for key in (
        "attempted",
        "ok",
        "failed",
        "indeterminate",
        "final_value",
        "lost",
        "duplicated",
        "unexpected",
    ):
        assert key in consistency
    assert {"recovered", "read_violations", "bounds", "anomalies"} <= set(consistency)
    assert consistency["attempted"] == 40 and consistency["final_value"] == 40
    phase = summary["phases"][0]
    for key in (
        "name",
        "start",
        "end",
        "requests",
        "rps",
        "error_rate",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "endpoints",
    ):
        assert key in phase
    assert [p["name"] for p in summary["phases"]] == [
        "baseline",
        "fault-1",
        "recovery-1",
        "fault-2",
        "recovery-2",
    ]
    assert summary["errors"][0]["error"] == "timeout" and summary["errors"][0]["count"] == 5


def test_summary_is_byte_identical_across_runs_and_directories(tmp_path):
    first, second = make(tmp_path / "one"), make(tmp_path / "two")
    write_summary(first)
    write_summary(second)
    write_summary(first)
    assert (first / rf.SUMMARY).read_bytes() == (second / rf.SUMMARY).read_bytes()
    text = (first / rf.SUMMARY).read_text()
    assert str(tmp_path) not in text
    assert json.loads(text) == summarize(load_run(first))


def test_written_atomically_without_leftovers(tmp_path):
    run_dir = make(tmp_path)
    analysis = analyze(run_dir)
    assert json.loads((run_dir / rf.SUMMARY).read_text()) == analysis.summary
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []
    assert len(analysis.series) == 4


def test_an_empty_run_is_summarized_and_fails(tmp_path):
    run_dir = write_run(tmp_path, [], server_ops=[], slo={"baseline": {"p95_ms": 100}})
    summary = analyze(run_dir).summary
    assert summary["verdict"] == "fail"
    assert summary["consistency"]["anomalies"]["final_missing"]["count"] == 1
    assert summary["phases"][0]["requests"] == 0
    assert {c["name"]: c["measured"] for c in summary["checks"]}["baseline.p95_ms"] is None


def test_files_get_the_usual_permissions(tmp_path):
    run_dir = make(tmp_path)
    write_summary(run_dir)
    assert (run_dir / rf.SUMMARY).stat().st_mode == (run_dir / rf.RUN_META).stat().st_mode


def test_a_halt_line_marks_the_run_aborted_with_its_reason_and_is_not_a_fault(tmp_path):
    ops = [inc(f"k{i}", i * 50.0, i * 50.0 + 5, value=i + 1, error=None) for i in range(40)]
    ops += [final(3_000, 3_001, 40)]
    halt = {
        "ts": "2026-01-01T00:00:02.000000Z",
        "fault_id": rf.HALT_FAULT_ID,
        "event": "halt",
        "action": "",
        "target": "",
        "params": {},
        "error": "stop condition: error_rate 0.62 > 0.5 over 5s",
        "source": "stop-condition",
    }
    halt["ts_ns"] = inject(0, 1_500, 2.0)["ts_ns"]
    faults = [inject(0, 1_000, 2.0, action="throttle", target="fn"), rollback(0, 1_400), halt]
    summary = summarize(load_run(write_run(tmp_path, ops, faults=faults, load_ms=(0, 3_000))))
    assert summary["aborted"] is True
    assert summary["halted"]["reason"] == "stop condition: error_rate 0.62 > 0.5 over 5s"
    check = next(c for c in summary["checks"] if c["name"] == "run.aborted")
    assert not check["passed"] and check["note"] == summary["halted"]["reason"]
    assert summary["verdict"] == "fail"
    assert {p.get("fault_id") for p in summary["phases"]} - {None} == {0}


def test_without_a_halt_line_the_run_is_not_halted(tmp_path):
    summary = summarize(load_run(make(tmp_path)))
    assert summary["halted"] is None and summary["aborted"] is False
