"""Baseline versus recovery: Mann-Whitney U, Hodges-Lehmann shift, High / Low / Pass on effect size."""

from __future__ import annotations

import numpy as np
import pytest
from history import final, inc, inject, rollback, write_run

from analysis.compare import (
    DEFAULT_ALPHA,
    DEFAULT_TOLERANCE,
    HIGH,
    LOW,
    NODATA,
    PASS,
    compare_recovery,
    hodges_lehmann,
    judge,
)
from analysis.recovery import health_buckets, load_events
from analysis.rundir import load_run
from analysis.summary import summarize
from chaos.scenario import CompareSLO

# per-second p99s around 10 ms: 10.0, 10.1, ..., 10.9 repeated
BASE = 10 + 0.1 * (np.arange(60) % 10)


def test_hodges_lehmann_is_the_median_of_pairwise_differences():
    # differences 4-1 .. 6-3: 3 2 1 / 4 3 2 / 5 4 3 -> median 3
    assert hodges_lehmann(np.array([1.0, 2, 3]), np.array([4.0, 5, 6])) == 3.0
    assert hodges_lehmann(np.array([1.0, 2]), np.array([1.0, 2])) == 0.0
    assert hodges_lehmann(np.array([]), np.array([1.0])) is None


def test_hodges_lehmann_past_the_pair_cap_is_thinned_deterministically():
    x = np.random.default_rng(7).normal(10, 1, 5_000)
    y = x + 2.0  # 25 million pairs, thinned to 1000 x 1000 order statistics
    assert hodges_lehmann(x, y) == pytest.approx(2.0)
    assert hodges_lehmann(x, y) == hodges_lehmann(x[::-1], y)  # order does not matter
    small = hodges_lehmann(x[:300], y[:200] + 1, max_pairs=10_000)
    assert small == pytest.approx(float(np.median(np.subtract.outer(y[:200] + 1, x[:300]))), abs=0.2)


def test_identical_distributions_pass():
    result = judge(BASE, BASE.copy(), "p99_ms", 1.1)
    assert result["classification"] == PASS
    assert result["p_value"] == pytest.approx(1.0) and result["shift"] == 0.0 and result["effect"] == 1.0


def test_a_shift_beyond_the_tolerance_is_high():
    result = judge(BASE, BASE * 1.5, "p99_ms", 1.1)
    assert result["classification"] == HIGH
    assert result["p_value"] < 1e-6 and result["effect"] == pytest.approx(1.5, abs=0.01)


def test_a_small_significant_shift_within_the_tolerance_passes():
    # +0.5 ms on ~10.45 ms: the test is sure (p tiny) but the recovered p99 is within 1.1x
    result = judge(BASE, BASE + 0.5, "p99_ms", 1.1)
    assert result["p_value"] < DEFAULT_ALPHA
    assert result["shift"] == pytest.approx(0.5) and result["effect"] == pytest.approx(1.048, abs=0.001)
    assert result["classification"] == PASS
    # the same data against a tolerance of 1.01 is High: the effect size gates, not the p-value
    assert judge(BASE, BASE + 0.5, "p99_ms", 1.01)["classification"] == HIGH


def test_a_large_shift_that_is_not_significant_passes():
    # three seconds each side, overlapping: p is large whatever the ratio
    result = judge(np.array([10.0, 30, 50]), np.array([12.0, 40, 60]), "p99_ms", 1.1)
    assert result["p_value"] > DEFAULT_ALPHA and result["effect"] > 1.1
    assert result["classification"] == PASS


def test_faster_after_the_fault_is_low():
    assert judge(BASE, BASE * 0.5, "p99_ms", 1.1)["classification"] == LOW


def test_error_rate_is_judged_on_its_absolute_shift():
    zeros = np.zeros(30)
    rates = np.full(30, 0.05)
    result = judge(zeros, rates, "error_rate", 0.01)
    assert result["classification"] == HIGH and result["effect"] == pytest.approx(0.05)
    assert judge(zeros, np.full(30, 0.005), "error_rate", 0.01)["classification"] == PASS
    assert judge(zeros, zeros.copy(), "error_rate", 0.01)["classification"] == PASS


def test_too_few_seconds_is_no_data():
    result = judge(BASE, BASE[:2], "p99_ms", 1.1)
    assert result["classification"] == NODATA and result["effect"] is None and result["n"] == 2


def test_defaults_match_the_scenario_model():
    assert CompareSLO().alpha == DEFAULT_ALPHA
    assert DEFAULT_TOLERANCE == {"p99_ms": 1.1, "error_rate": 0.01}


# -- through the summary -----------------------------------------------------------------------


def history(recovery_latency: float) -> list[dict]:
    """10 requests per second for 30 s; a fault 10-15 s; the p99 of second k is the slowest request
    of that second (rank 10 of 10): 10 + 0.1 * (k % 5) ms before the fault, ``recovery_latency``
    times that after it."""
    rows = []
    for i in range(300):
        t = i * 100.0
        second = i // 10
        latency = 10 + 0.1 * (second % 5) if i % 10 == 9 else 2.0
        if t >= 15_000:
            latency *= recovery_latency
        rows.append(inc(f"k{i}", t, t + latency))
    return [*rows, final(40_000, 40_001, 300)]


def summary_of(tmp_path, recovery_latency, compare):
    faults = [inject(0, 10_000, 5.0, action="throttle"), rollback(0, 15_000)]
    slo = {"resilience": {"compare": compare}}
    run_dir = write_run(tmp_path, history(recovery_latency), faults=faults, slo=slo, load_ms=(0, 30_000))
    return summarize(load_run(run_dir))


def test_comparison_section_and_checks(tmp_path):
    summary = summary_of(tmp_path / "same", 1.0, {"p99_ms": 1.1, "error_rate": 0.01})
    comparison = summary["comparison"]
    assert comparison["baseline"] == "baseline" and comparison["alpha"] == 0.05
    assert comparison["tolerance"] == {"p99_ms": 1.1, "error_rate": 0.01}
    (phase,) = comparison["phases"]
    assert phase["name"] == "recovery-1" and phase["fault_id"] == 0
    p99 = phase["metrics"]["p99_ms"]
    assert (p99["baseline_n"], p99["n"]) == (10, 15)  # whole seconds inside [0, 10) and [15, 30)
    assert p99["classification"] == PASS and p99["baseline_median"] == 10.2
    checks = {c["name"]: c for c in summary["checks"] if c["name"].startswith("compare.")}
    assert list(checks) == ["compare.recovery-1.p99_ms", "compare.recovery-1.error_rate"]
    assert all(c["passed"] for c in checks.values())
    assert checks["compare.recovery-1.p99_ms"]["threshold"] == 1.1
    assert checks["compare.recovery-1.p99_ms"]["note"].startswith("Pass: Mann-Whitney p=")

    slower = summary_of(tmp_path / "slower", 2.0, {"p99_ms": 1.1})
    check = next(c for c in slower["checks"] if c["name"] == "compare.recovery-1.p99_ms")
    assert check["passed"] is False and check["measured"] == pytest.approx(2.0, abs=0.02)
    assert check["note"].startswith("High: ")
    assert slower["verdict"] == "fail"


def test_the_comparison_is_reported_without_checks_by_default(tmp_path):
    summary = summary_of(tmp_path, 2.0, None)
    assert summary["comparison"]["phases"][0]["metrics"]["p99_ms"]["classification"] == HIGH
    assert not [c for c in summary["checks"] if c["name"].startswith("compare.")]


def test_no_recovery_phase_fails_each_compare_check(tmp_path):
    rows = [inc(f"k{i}", i * 100.0, i * 100.0 + 5) for i in range(100)]
    slo = {"resilience": {"compare": {"p99_ms": 1.2}}}
    run_dir = write_run(tmp_path, [*rows, final(20_000, 20_001, 100)], slo=slo, load_ms=(0, 10_000))
    summary = summarize(load_run(run_dir))
    assert summary["comparison"]["phases"] == []
    assert summary["comparison"]["note"] == "no recovery phase in this run"
    check = next(c for c in summary["checks"] if c["name"].startswith("compare."))
    assert (check["name"], check["passed"], check["note"]) == (
        "compare.p99_ms",
        False,
        "no recovery phase in this run",
    )


def test_compare_recovery_uses_whole_seconds_inside_each_phase():
    import pandas as pd

    rows = [inc(f"k{i}", i * 250.0, i * 250.0 + (1 if i < 20 else 3)) for i in range(40)]  # 10 s
    buckets = health_buckets(
        load_events(pd.DataFrame(rows)), rows[0]["start_ns"], rows[0]["start_ns"] + 10**10
    )
    t0 = rows[0]["start_ns"]
    phases = [
        {"name": "baseline", "kind": "baseline", "start_ns": t0, "end_ns": t0 + 5 * 10**9},
        {"name": "fault-1", "kind": "fault", "start_ns": t0 + 5 * 10**9, "end_ns": t0 + 5_500_000_000},
        {"name": "recovery-1", "kind": "recovery", "start_ns": t0 + 5_500_000_000, "end_ns": t0 + 10**10},
    ]
    result = compare_recovery(buckets, phases, {})
    p99 = result["phases"][0]["metrics"]["p99_ms"]
    assert (p99["baseline_n"], p99["n"]) == (5, 4)  # seconds 6..9; second 5 straddles the fault
    assert p99["baseline_median"] == 1.0 and p99["median"] == 3.0 and p99["classification"] == HIGH
