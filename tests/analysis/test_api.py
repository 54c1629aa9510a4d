"""The public API for notebook users: load a run into DataFrames, run one check, get its record."""

from __future__ import annotations

import pytest
from history import applied, final, inc, inject, read, write_run

import analysis


def make(path):
    ops = [inc(f"k{i}", i * 100.0, i * 100.0 + 5 + (i % 7), value=i + 1) for i in range(40)]
    ops += [read(950, 960, 10), final(5_000, 5_001, 40)]
    ledger = [applied(f"k{i}", i + 1, i * 100.0 + 2) for i in range(40)]
    slo = {"consistency": {"lost": 0}, "baseline": {"p95_ms": 100}, "fault": {"error_rate": 0.5}}
    return write_run(
        path, ops, server_ops=ledger, faults=[inject(0, 2_000, 1.0)], slo=slo, load_ms=(0, 4_500)
    )


def test_tables_are_dataframes(tmp_path):
    frames = analysis.tables(make(tmp_path))
    assert set(frames) == {"ops", "faults", "server_ops"}
    assert len(frames["ops"]) == 42 and len(frames["server_ops"]) == 40


def test_one_check_with_its_evidence(tmp_path):
    run = analysis.load_run(make(tmp_path))
    consistency = analysis.check(run, "consistency")
    assert consistency["valid"] is True and consistency["anomalies"]["lost"]["count"] == 0
    p95 = analysis.check(run, "baseline.p95_ms")
    assert p95["passed"] is True and p95["measured"] == p95["evidence"]["p95_ms"] == 11.0
    assert p95["evidence"]["name"] == "baseline" and p95["evidence"]["requests"] == 21
    lost = analysis.check(run, "consistency.lost")
    assert lost["measured"] == 0 and lost["evidence"]["ledger"] is True
    latency = analysis.check(run, "latency")
    assert [p["name"] for p in latency["phases"]] == ["baseline", "fault-1", "recovery-1"]
    assert latency["method"]["corrected"] is None and latency["load"]["requests"] == 41
    assert analysis.check(run, "xray") is None


def test_a_path_works_too_and_an_unknown_check_says_what_there_is(tmp_path):
    path = make(tmp_path)
    assert analysis.check(path, "consistency")["final_value"] == 40
    with pytest.raises(KeyError, match="no check 'p99' in this run; there are: consistency, latency, xray"):
        analysis.check(path, "p99")


def test_checks_agree_with_the_summary(tmp_path):
    run = analysis.load_run(make(tmp_path))
    summary = analysis.summarize(run)
    for record in summary["checks"]:
        got = analysis.check(run, record["name"])
        assert {k: v for k, v in got.items() if k != "evidence"} == record
