"""Phases from the fault journal, and exact per-phase statistics."""

from __future__ import annotations

import numpy as np
import pytest
from history import T0, abort, inc, inject, load, ns, read, rollback

from analysis.phases import fault_windows, phase_stats, phases_from_journal

S = 1_000_000_000


def phases_of(tmp_path, faults, load_ms=(0, 60_000), ops=()):
    run = load(tmp_path, list(ops) or [inc("a", 1, 2)], faults=faults, load_ms=load_ms)
    windows = fault_windows(run.faults)
    return windows, phases_from_journal(windows, run.meta["load_started_ns"], run.meta["load_ended_ns"])


def spans(phases):
    return [(p.name, (p.start_ns - T0) // 1_000_000, (p.end_ns - T0) // 1_000_000) for p in phases]


def test_kill_with_settle_window_throttle_with_rollback_and_an_aborted_fault(tmp_path):
    faults = [
        inject(0, 10_000, 5.0, action="terminate-instance", target="i-1"),
        inject(1, 30_000, 20.0, action="throttle-lambda", target="counter-fn"),
        rollback(1, 40_000),
        inject(2, 50_000, 5.0),
        abort(2, 50_001, error="no instance in service"),
    ]
    windows, phases = phases_of(tmp_path, faults)
    assert spans(phases) == [
        ("baseline", 0, 10_000),
        ("fault-1", 10_000, 15_000),  # inject + window_s: a kill has no rollback line
        ("recovery-1", 15_000, 30_000),
        ("fault-2", 30_000, 40_000),  # inject to rollback, although window_s said 20 s
        ("recovery-2", 40_000, 60_000),  # the aborted fault-3 made no phase
    ]
    assert [(w.fault_id, w.effective, w.rolled_back) for w in windows] == [
        (0, True, False),
        (1, True, True),
        (2, False, False),
    ]
    assert windows[2].error == "no instance in service"
    assert [p.kind for p in phases] == ["baseline", "fault", "recovery", "fault", "recovery"]


def test_no_faults_is_one_baseline_phase(tmp_path):
    _, phases = phases_of(tmp_path, [])
    assert spans(phases) == [("baseline", 0, 60_000)]


def test_overlapping_faults_the_later_fault_takes_over(tmp_path):
    faults = [inject(0, 10_000, 30.0), inject(1, 20_000, 5.0, action="throttle-lambda")]
    _, phases = phases_of(tmp_path, faults)
    assert spans(phases) == [
        ("baseline", 0, 10_000),
        ("fault-1", 10_000, 20_000),
        ("fault-2", 20_000, 25_000),
        ("recovery-2", 25_000, 60_000),
    ]


def test_windows_are_clipped_to_the_load(tmp_path):
    faults = [inject(0, -5_000, 10.0), inject(1, 55_000, 30.0), inject(2, 70_000, 1.0)]
    _, phases = phases_of(tmp_path, faults)
    assert spans(phases) == [
        ("fault-1", 0, 5_000),
        ("recovery-1", 5_000, 55_000),
        ("fault-2", 55_000, 60_000),
    ]


def test_journal_in_fault_id_order_but_injected_out_of_order(tmp_path):
    faults = [inject(1, 30_000, 5.0), inject(0, 10_000, 5.0)]
    _, phases = phases_of(tmp_path, faults)
    assert [p.name for p in phases] == ["baseline", "fault-1", "recovery-1", "fault-2", "recovery-2"]


def test_exact_percentiles_counts_and_endpoints(tmp_path):
    # 100 fleet requests in the baseline with latencies 1..100 ms, 4 lambda ones, one of them failed.
    ops = [inc(f"f{i}", i * 10, i * 10 + i + 1, value=i + 1) for i in range(100)]
    ops += [read(2000 + i, 2000 + i + 10 * (i + 1), 1, endpoint="lambda") for i in range(3)]
    ops.append(read(2100, 2105, None, "fail", endpoint="lambda", status=429, error="throttled"))
    run = load(tmp_path, ops, load_ms=(0, 10_000), faults=[inject(0, 5_000, 1.0)])
    windows = fault_windows(run.faults)
    phases = phase_stats(run.ops, phases_from_journal(windows, ns(0), ns(10_000)), ns(0))
    base = phases[0]
    assert (base["name"], base["start"], base["end"]) == (
        "baseline",
        "2023-11-14T22:13:20.000000Z",
        "2023-11-14T22:13:25.000000Z",
    )
    assert base["requests"] == 104 and (base["ok"], base["fail"], base["info"]) == (103, 1, 0)
    assert base["rps"] == pytest.approx(104 / 5) and base["error_rate"] == round(1 / 104, 6)
    latencies = np.array([i + 1 for i in range(100)] + [10, 20, 30, 5], dtype=float)
    for name, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        assert base[name] == np.percentile(latencies, q, method="inverted_cdf")
    assert base["max_ms"] == 100.0
    assert base["statuses"] == {"200": 103, "429": 1}
    fleet = base["endpoints"]["fleet"]
    assert (fleet["requests"], fleet["p50_ms"], fleet["p95_ms"], fleet["p99_ms"]) == (100, 50.0, 95.0, 99.0)
    lam = base["endpoints"]["lambda"]
    assert (lam["requests"], lam["error_rate"], lam["p50_ms"], lam["max_ms"]) == (4, 0.25, 10.0, 30.0)
    empty = phases[1]
    assert empty["name"] == "fault-1" and empty["requests"] == 0
    assert empty["p95_ms"] is None and empty["error_rate"] is None and empty["rps"] == 0.0
    assert empty["endpoints"]["lambda"]["requests"] == 0


def test_a_request_belongs_to_the_phase_it_started_in(tmp_path):
    ops = [inc("a", 4_999.999, 6_000), inc("b", 5_000, 5_001)]
    run = load(tmp_path, ops, load_ms=(0, 10_000), faults=[inject(0, 5_000, 1.0)])
    phases = phase_stats(run.ops, phases_from_journal(fault_windows(run.faults), ns(0), ns(10_000)), ns(0))
    assert [(p["name"], p["requests"]) for p in phases] == [
        ("baseline", 1),
        ("fault-1", 1),
        ("recovery-1", 0),
    ]
    assert phases[0]["max_ms"] == 1000.001


def test_final_reads_are_not_load(tmp_path):
    from history import final

    run = load(tmp_path, [inc("a", 1, 2), final(9_000, 9_001, 1)], load_ms=(0, 10_000))
    (phase,) = phase_stats(run.ops, phases_from_journal([], ns(0), ns(10_000)), ns(0))
    assert phase["requests"] == 1


def test_rollback_before_abort_keeps_the_fault(tmp_path):
    faults = [inject(0, 10_000, 5.0), rollback(0, 12_000), abort(0, 13_000, error="rollback verify failed")]
    windows, phases = phases_of(tmp_path, faults)
    assert windows[0].effective is True
    assert spans(phases)[1] == ("fault-1", 10_000, 12_000)


def test_journal_frame_keeps_the_fields_phases_need(tmp_path):
    run = load(tmp_path, [inc("a", 1, 2)], faults=[inject(0, 1, 2.5, target="i-9", count=1)])
    row = run.faults.iloc[0]
    assert (row["fault_id"], row["event"], row["target"], row["params"], row["window_s"], row["line"]) == (
        0,
        "inject",
        "i-9",
        {"count": 1},
        2.5,
        1,
    )


def test_omitted_operations_are_bad_events_of_the_phase_they_were_due_in(tmp_path):
    from history import op

    def omitted(due_ms: float, dropped_ms: float, endpoint: str = "fleet") -> dict:
        row = op("omitted", None, dropped_ms, dropped_ms, "fail", endpoint=endpoint, served_by=None)
        return {**row, "intended_ns": ns(due_ms)}

    ops = [inc(f"k{i}", 100 * i, 100 * i + 1) for i in range(8)]  # 8 ok requests, all in the baseline
    ops += [omitted(4_990, 5_400), omitted(4_995, 5_500, "lambda"), omitted(6_000, 6_100)]
    run = load(tmp_path, ops, load_ms=(0, 10_000), faults=[inject(0, 5_000, 2.0)])
    baseline, fault, _ = phase_stats(
        run.ops, phases_from_journal(fault_windows(run.faults), ns(0), ns(10_000)), ns(0)
    )
    assert (baseline["requests"], baseline["omitted"], baseline["error_rate"]) == (8, 2, 0.2)
    assert baseline["endpoints"]["fleet"]["omitted"] == 1 and baseline["endpoints"]["lambda"]["omitted"] == 1
    assert (fault["requests"], fault["omitted"], fault["error_rate"]) == (0, 1, 1.0)


def test_corrected_latency_counts_from_when_the_operation_was_due(tmp_path):
    # ten operations due every 100 ms; the last five were sent 500 ms late (the generator stalled)
    ops = []
    for i in range(10):
        due = 100 * i
        sent = due + (500 if i >= 5 else 0)
        ops.append({**inc(f"k{i}", sent, sent + 2), "intended_ns": ns(due)})
    ops.append(inc("unscheduled", 50, 51))  # a closed-loop row: no due time, raw latency only
    run = load(tmp_path, ops, load_ms=(0, 10_000))
    (phase,) = phase_stats(run.ops, phases_from_journal([], ns(0), ns(10_000)), ns(0))
    assert phase["max_ms"] == 2.0, "raw latency hides the stall"
    assert phase["corrected"]["requests"] == 10
    assert phase["corrected"]["max_ms"] == 502.0
    assert phase["corrected"]["p50_ms"] == 2.0 and phase["corrected"]["p99_ms"] == 502.0


def test_no_corrected_figures_without_due_times(tmp_path):
    run = load(tmp_path, [inc("a", 1, 2)], load_ms=(0, 10_000))
    (phase,) = phase_stats(run.ops, phases_from_journal([], ns(0), ns(10_000)), ns(0))
    assert "corrected" not in phase
