"""SLO checks: names, order, pass and fail, measured null when nothing was measured."""

from __future__ import annotations

from history import abort, applied, final, inc, inject, load, read, rollback

from analysis.summary import summarize


def by_name(summary):
    return {c["name"]: c for c in summary["checks"]}


def history():
    # baseline [0, 10 s): 10 requests of 20 ms; fault-1 [10, 15 s): 4 requests, 2 failed, 200 ms;
    # recovery-1 [15, 20 s): 5 requests of 30 ms; fault-2 [20, 25 s) empty; recovery-2 [25, 30 s) empty.
    ops = [inc(f"b{i}", i * 1000, i * 1000 + 20, value=i + 1) for i in range(10)]
    ops += [read(10_000 + i * 1000, 10_200 + i * 1000, 10) for i in range(2)]
    ops += [read(12_000 + i * 1000, 12_200 + i * 1000, None, "fail", endpoint="lambda") for i in range(2)]
    ops += [read(15_000 + i * 1000, 15_030 + i * 1000, 10) for i in range(5)]
    ops.append(final(31_000, 31_001, 10))
    ledger = [applied(f"b{i}", i + 1, i * 1000 + 10) for i in range(10)]
    faults = [inject(0, 10_000, 5.0), inject(1, 20_000, 60.0, action="throttle"), rollback(1, 25_000)]
    return ops, ledger, faults


def test_checks_pass_and_fail(tmp_path):
    ops, ledger, faults = history()
    slo = {
        "consistency": {"lost": 0, "read_violations": 0},
        "baseline": {"p95_ms": 25, "error_rate": 0.0, "min_rps": 1.0},
        "fault": {"error_rate": 0.4, "p99_ms": 250},
        "recovery": {"p99_ms": 25},
    }
    summary = summarize(load(tmp_path, ops, server_ops=ledger, faults=faults, slo=slo, load_ms=(0, 30_000)))
    checks = by_name(summary)
    assert [c["name"] for c in summary["checks"]] == [
        "run.aborted",
        "faults.aborted",
        "consistency.valid",
        "consistency.lost",
        "consistency.read_violations",
        "baseline.p95_ms",
        "baseline.error_rate",
        "baseline.min_rps",
        "fault-1.p99_ms",
        "fault-1.error_rate",
        "recovery-1.p99_ms",
        "fault-2.p99_ms",
        "fault-2.error_rate",
        "recovery-2.p99_ms",
    ]
    assert checks["baseline.p95_ms"] == {
        "name": "baseline.p95_ms",
        "passed": True,
        "measured": 20.0,
        "threshold": 25,
        "phase": "baseline",
        "note": None,
    }
    assert checks["baseline.min_rps"]["measured"] == 1.0 and checks["baseline.min_rps"]["passed"] is True
    assert checks["fault-1.error_rate"]["measured"] == 0.5 and checks["fault-1.error_rate"]["passed"] is False
    assert checks["fault-1.p99_ms"]["passed"] is True
    assert checks["recovery-1.p99_ms"]["measured"] == 30.0 and checks["recovery-1.p99_ms"]["passed"] is False
    empty = checks["fault-2.p99_ms"]
    assert (empty["measured"], empty["passed"], empty["note"]) == (None, False, "no requests in this phase")
    assert checks["consistency.valid"]["passed"] is True and checks["consistency.lost"]["measured"] == 0
    assert summary["verdict"] == "fail"
    assert summary["failed_checks"] == [
        "fault-1.error_rate",
        "recovery-1.p99_ms",
        "fault-2.p99_ms",
        "fault-2.error_rate",
        "recovery-2.p99_ms",
    ]


def test_all_checks_pass_gives_a_pass_verdict(tmp_path):
    ops, ledger, _ = history()
    slo = {"consistency": {"lost": 0, "duplicated": 0, "unexpected": 0}, "baseline": {"p99_ms": 300}}
    summary = summarize(load(tmp_path, ops, server_ops=ledger, slo=slo, load_ms=(0, 30_000)))
    assert summary["verdict"] == "pass" and summary["failed_checks"] == []
    assert len(summary["checks"]) == 7


def test_min_rps_fails_below_the_threshold(tmp_path):
    ops, ledger, _ = history()
    summary = summarize(
        load(tmp_path, ops, server_ops=ledger, slo={"baseline": {"min_rps": 2}}, load_ms=(0, 30_000))
    )
    check = by_name(summary)["baseline.min_rps"]
    assert (check["measured"], check["passed"]) == (0.567, False)  # 17 ok of 19 requests in 30 s


def test_slo_section_without_a_phase_fails(tmp_path):
    ops, ledger, _ = history()
    faults = [inject(0, 10_000, 5.0), {**inject(0, 10_001, 1.0), "event": "abort", "error": "boom"}]
    summary = summarize(
        load(tmp_path, ops, server_ops=ledger, faults=faults, slo={"fault": {"error_rate": 0.5}})
    )
    checks = by_name(summary)
    assert checks["fault.error_rate"] == {
        "name": "fault.error_rate",
        "passed": False,
        "measured": None,
        "threshold": 0.5,
        "phase": "fault",
        "note": "no fault phase in this run",
    }
    assert checks["faults.aborted"]["measured"] == 1 and checks["faults.aborted"]["passed"] is False


def test_fault_that_failed_before_injecting_anything_fails_the_run(tmp_path):
    ops, ledger, _ = history()
    faults = [abort(0, 10_000, error="asked for 5 instances, 3 in service")]
    summary = summarize(load(tmp_path, ops, server_ops=ledger, faults=faults))
    check = by_name(summary)["faults.aborted"]
    assert (check["measured"], check["passed"]) == (1, False)
    assert summary["verdict"] == "fail"
    assert [f["fault_id"] for f in summary["faults"]] == [0]
    assert [p["name"] for p in summary["phases"]] == ["baseline"]


def test_consistency_checks_without_a_ledger_use_the_bounds(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=2), final(100, 101, 1)]
    slo = {"consistency": {"lost": 0, "duplicated": 0, "unexpected": 0}}
    checks = by_name(summarize(load(tmp_path, ops, slo=slo)))
    assert (checks["consistency.lost"]["measured"], checks["consistency.lost"]["passed"]) == (1, False)
    assert checks["consistency.lost"]["note"].startswith("no server ledger")
    assert (checks["consistency.duplicated"]["measured"], checks["consistency.duplicated"]["passed"]) == (
        0,
        True,
    )
    unexpected = checks["consistency.unexpected"]
    assert (unexpected["measured"], unexpected["passed"]) == (0, True)
    assert unexpected["note"].startswith("no server ledger")
    assert checks["consistency.valid"]["passed"] is False


def test_aborted_run_fails(tmp_path):
    ops, ledger, _ = history()
    summary = summarize(load(tmp_path, ops, server_ops=ledger, meta={"aborted": True}))
    assert by_name(summary)["run.aborted"]["passed"] is False and summary["verdict"] == "fail"
