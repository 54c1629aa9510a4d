"""The error budget per phase and over the load, burn rates over 5 s and 30 s, budget checks.

The history: 20 s of load at 10 requests per second; a fault from 10 s to 12 s fails every other
request; in the recovery two requests fail at 13 s and one operation due at 19 s is omitted.

    phase       events  bad  budget (T = 0.99)  consumed
    baseline      100     0        1.00             0
    fault-1        20    10        0.20            50
    recovery-1     81     3        0.81         3.703704
    load          201    13        2.01         6.467662
"""

from __future__ import annotations

import pytest
from history import final, inc, inject, ns, op, rollback, write_run

from analysis.budget import BURN_WINDOWS_S, error_budget
from analysis.recovery import load_events
from analysis.rundir import RunFormatError, load_run
from analysis.summary import summarize
from chaos.scenario import SLO


def history() -> list[dict]:
    rows = []
    for i in range(200):
        t = i * 100.0
        failing = (100 <= i < 120 and i % 2) or i in (130, 131)
        rows.append(inc(f"k{i}", t, t + 5, "fail" if failing else "ok"))
    rows.append(op("omitted", None, 19_050, 19_050, "fail", status=0, error="omitted"))
    ok = sum(r["outcome"] == "ok" for r in rows if r["kind"] == "increment")
    return [*rows, final(30_000, 30_001, ok)]


def summary_of(tmp_path, slo):
    faults = [inject(0, 10_000, 2.0, action="throttle"), rollback(0, 12_000)]
    return summarize(load_run(write_run(tmp_path, history(), faults=faults, slo=slo, load_ms=(0, 20_000))))


def test_budget_per_phase_counted_by_hand(tmp_path):
    summary = summary_of(tmp_path, {"availability": 0.99})
    budget = summary["budget"]
    assert budget["target"] == 0.99 and budget["windows_s"] == list(BURN_WINDOWS_S) == [5, 30]
    table = {p["name"]: p for p in budget["phases"]}
    assert list(table) == ["baseline", "fault-1", "recovery-1"]
    got = {name: (p["events"], p["good"], p["bad"], p["budget"], p["consumed"]) for name, p in table.items()}
    assert got == {
        "baseline": (100, 100, 0, 1.0, 0.0),
        "fault-1": (20, 10, 10, 0.2, 50.0),
        "recovery-1": (81, 78, 3, 0.81, 3.703704),
    }
    load = budget["load"]
    assert (load["events"], load["bad"], load["budget"], load["consumed"]) == (201, 13, 2.01, 6.467662)
    assert load["sli"] == 0.935323  # 188 / 201
    # each phase's share of the run's budget; together they are the run's consumption
    assert [table[n]["run_share"] for n in table] == [0.0, 4.975124, 1.492537]
    assert sum(p["run_share"] for p in table.values()) == pytest.approx(load["consumed"], abs=1e-5)
    # SLI = 1 - the phase's error rate, counted the same way as the phase table
    for phase in summary["phases"]:
        assert table[phase["name"]]["sli"] == pytest.approx(1 - phase["error_rate"], abs=1e-6)
        assert table[phase["name"]]["events"] == phase["requests"] + phase["omitted"]


def test_worst_burn_rate_over_sliding_windows(tmp_path):
    table = {p["name"]: p for p in summary_of(tmp_path, {"availability": 0.99})["budget"]["phases"]}
    # the fault phase is 2 s: shorter than both windows, so each window is the whole phase
    assert table["fault-1"]["max_error_ratio"] == {"5s": 0.5, "30s": 0.5}
    assert table["fault-1"]["max_burn_rate"] == {"5s": 50.0, "30s": 50.0}
    # recovery [12 s, 20 s): 5 s windows from 12, 13, 14, 15 s; the worst holds the two fails at 13 s:
    # 2 bad of 50 events. 30 s: the whole phase, 3 of 81.
    recovery = table["recovery-1"]
    assert recovery["max_error_ratio"] == {"5s": 0.04, "30s": 0.037037}
    assert recovery["max_burn_rate"] == {"5s": 4.0, "30s": 3.703704}
    assert table["baseline"]["max_burn_rate"] == {"5s": 0.0, "30s": 0.0}


def test_burn_rate_over_the_whole_load(tmp_path):
    load = summary_of(tmp_path, {"availability": 0.99})["budget"]["load"]
    # worst 5 s: [9 s, 14 s) or [10 s, 15 s): the fault's 10 fails and the 2 at 13 s, of 50 events
    assert load["max_error_ratio"] == {"5s": 0.24, "30s": 0.064677}
    assert load["max_burn_rate"] == {"5s": 24.0, "30s": 6.467662}


def test_checks_judge_the_steady_phases_only(tmp_path):
    summary = summary_of(tmp_path, {"availability": 0.99})
    checks = [c for c in summary["checks"] if c["name"].startswith("budget.")]
    assert [(c["name"], c["measured"], c["threshold"], c["passed"]) for c in checks] == [
        ("budget.baseline.consumed", 0.0, 1, True),
        ("budget.recovery-1.consumed", 3.703704, 1, False),
    ]
    assert summary["verdict"] == "fail"
    lax = summary_of(tmp_path / "lax", {"availability": 0.95})
    assert [c["passed"] for c in lax["checks"] if c["name"].startswith("budget.")] == [True, True]


def test_without_a_target_no_budget_and_no_check(tmp_path):
    summary = summary_of(tmp_path, {})
    budget = summary["budget"]
    assert budget["target"] is None
    recovery = budget["phases"][2]
    assert (recovery["sli"], recovery["budget"], recovery["consumed"], recovery["run_share"]) == (
        0.962963,
        None,
        None,
        None,
    )
    assert recovery["max_error_ratio"]["5s"] == 0.04 and recovery["max_burn_rate"] == {
        "5s": None,
        "30s": None,
    }
    assert not [c for c in summary["checks"] if c["name"].startswith("budget.")]


def test_a_phase_without_events_fails_its_check():
    import pandas as pd

    rows = [inc("a", 100, 105)]
    events = load_events(pd.DataFrame(rows))
    phases = [
        {"name": "baseline", "kind": "baseline", "start_ns": ns(0), "end_ns": ns(1_000)},
        {"name": "recovery-1", "kind": "recovery", "start_ns": ns(1_000), "end_ns": ns(3_000)},
    ]
    budget = error_budget(events, phases, 0.9, ns(0), ns(3_000))
    assert budget["phases"][1]["events"] == 0 and budget["phases"][1]["consumed"] is None
    assert budget["phases"][1]["max_error_ratio"] == {"5s": None, "30s": None}
    from analysis.checks import _budget_checks

    check = _budget_checks(budget)[1]
    assert check["name"] == "budget.recovery-1.consumed" and check["passed"] is False
    assert check["note"] == "no events in this phase"


def test_an_empty_load_has_an_empty_budget():
    import pandas as pd

    events = load_events(pd.DataFrame([inc("a", 100, 105)]).iloc[0:0])
    budget = error_budget(events, [], 0.99, ns(0), ns(0))
    assert budget["phases"] == [] and budget["load"]["events"] == 0 and budget["load"]["sli"] is None


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, True, "high"])
def test_the_target_is_a_share_strictly_between_0_and_1(tmp_path, value):
    with pytest.raises(RunFormatError, match=r"^scenario\.yaml: slo\.availability: expected "):
        load_run(write_run(tmp_path, [], slo={"availability": value}))
    with pytest.raises(ValueError, match="availability"):
        SLO.model_validate({"availability": value}, strict=True)
