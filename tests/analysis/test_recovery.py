"""Recovery per fault: impact, recovery point, TTR, degradation area, depth, availability, checks.

Every history is built by hand at 10 requests per second (one every 100 ms, 5 ms each), so each
expected figure below is counted on the fingers: a bucket is one second, the baseline's median
goodput (expected) is 10 ok per second, and a second of nothing but failures loses 1 request-second.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from history import MS, T0, final, inc, inject, ns, op, rollback, write_run

from analysis.phases import FaultWindow
from analysis.recovery import (
    DEFAULT_STABILITY_WINDOW_S,
    fault_recovery,
    health_buckets,
    health_thresholds,
    healthy,
    load_events,
    window_counts,
)
from analysis.rundir import RunFormatError, load_run
from analysis.summary import summarize, write_summary
from chaos.scenario import SLO, ResilienceSLO, load_scenario
from chaoscheck import runformat as rf

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
_keys = itertools.count()


def steady(start_s: float, end_s: float, outcome: str = "ok", latency_ms: float = 5.0, **kw) -> list[dict]:
    """One increment every 100 ms from start_s (included) to end_s (excluded)."""
    rows = []
    for tenth in range(round(start_s * 10), round(end_s * 10)):
        t = tenth * 100.0
        rows.append(inc(f"k{next(_keys)}", t, t + latency_ms, outcome, **kw))
    return rows


def with_final(rows: list[dict]) -> list[dict]:
    """The rows and a final read equal to the ok increments (so the counter check passes)."""
    ok = sum(r["outcome"] == "ok" and r["kind"] == "increment" for r in rows)
    return [*rows, final(60_000, 60_001, ok)]


def summary_of(tmp_path, rows, *, faults, slo, load_s=30, name="run"):
    run_dir = write_run(tmp_path / name, with_final(rows), faults=faults, slo=slo, load_ms=(0, load_s * 1000))
    return summarize(load_run(run_dir))


def checks_of(summary: dict) -> dict[str, dict]:
    return {c["name"]: c for c in summary["checks"]}


THROTTLE = [inject(0, 10_500, 5.0, action="throttle"), rollback(0, 15_500)]
"""A fault injected at 10.5 s (inside bucket 10) and rolled back at 15.5 s."""


def test_recovery_of_a_fault_counted_by_hand(tmp_path):
    # 10.5 s to 13 s: every request fails. Bucket 10 is half ok (error rate 0.5), 11 and 12 all bad.
    rows = steady(0, 10.5) + steady(10.5, 13, "fail") + steady(13, 30)
    slo = {"baseline": {"error_rate": 0.01}, "resilience": {"stability_window": 5}}
    summary = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo)
    fault = summary["faults"][0]
    recovery = fault["recovery"]
    assert recovery["health"] == {"error_rate": 0.01}
    assert recovery["expected_ok_rps"] == 10.0
    assert recovery["impacted"] is True and recovery["time_to_impact_s"] == 0.0
    assert recovery["recovered"] is True
    assert recovery["recovery_point_s"] == 13.0 and recovery["recovery_point_ns"] == ns(13_000)
    assert recovery["ttr_s"] == 2.5  # 13 - 10.5
    assert recovery["since_fault_end_s"] == -2.5  # healed before the rollback at 15.5 s
    assert recovery["unhealthy_s"] == 3
    # bucket 10: 1 - 5/10, buckets 11 and 12: 1 - 0/10
    assert recovery["degradation_rs"] == 2.5 and recovery["requests_lost"] == 25.0
    assert recovery["depth"] == 0.0
    # fault window [10.5, 15.5): 50 requests, ok from 13 s on: 25
    assert (recovery["events"], recovery["ok"], recovery["availability"]) == (50, 25, 0.5)
    assert recovery["note"] is None
    # nothing in the scenario asks for a resilience check
    assert not [c for c in summary["checks"] if c["name"].startswith(("recovery.", "budget.", "compare."))]


def test_time_to_impact_is_the_first_unhealthy_bucket_after_the_injection(tmp_path):
    # injected at 10.5 s, the service only starts failing at 12 s (goodput 0 for 2 s)
    rows = steady(0, 12) + steady(12, 14, "fail") + steady(14, 30)
    slo = {"resilience": {"stability_window": 3, "health": {"min_rps": 8}}}
    recovery = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo)["faults"][0]["recovery"]
    assert recovery["health"] == {"min_rps": 8}
    assert recovery["time_to_impact_s"] == 1.5  # bucket 12 starts 1.5 s after the injection
    assert recovery["recovery_point_s"] == 14.0 and recovery["ttr_s"] == 3.5
    assert recovery["degradation_rs"] == 2.0 and recovery["depth"] == 0.0


def test_a_fault_without_impact_recovers_at_its_injection(tmp_path):
    rows = steady(0, 30)
    slo = {"baseline": {"error_rate": 0.01}}
    recovery = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo)["faults"][0]["recovery"]
    assert recovery["impacted"] is False and recovery["time_to_impact_s"] is None
    assert recovery["ttr_s"] == 0.0 and recovery["recovery_point_s"] == 10.5
    assert recovery["since_fault_end_s"] == -5.0
    assert recovery["degradation_rs"] == 0.0 and recovery["depth"] == 1.0
    assert recovery["stability_window_s"] == DEFAULT_STABILITY_WINDOW_S
    assert recovery["availability"] == 1.0


def test_never_recovers_ttr_infinite_and_the_check_fails(tmp_path):
    rows = steady(0, 10.5) + steady(10.5, 30, "fail")
    slo = {"baseline": {"error_rate": 0.01}, "resilience": {"ttr_s": 30, "max_degradation_rs": 100}}
    summary = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo)
    recovery = summary["faults"][0]["recovery"]
    assert recovery["recovered"] is False
    assert recovery["ttr_s"] is None and recovery["recovery_point"] is None
    assert recovery["since_fault_end_s"] is None
    # a lower bound: bucket 10 (0.5) and buckets 11..29 (1 each) up to the end of the load
    assert recovery["degradation_rs"] == 19.5 and recovery["unhealthy_s"] == 20
    assert "TTR is infinite" in recovery["note"]
    checks = checks_of(summary)
    ttr = checks["recovery.fault-1.ttr_s"]
    assert ttr["passed"] is False and ttr["measured"] is None and ttr["threshold"] == 30
    assert ttr["phase"] == "fault-1" and "infinite" in ttr["note"]
    area = checks["recovery.fault-1.degradation_rs"]
    assert area["passed"] is False and area["measured"] == 19.5  # under 100, but unbounded
    assert summary["verdict"] == "fail"
    assert json.dumps(summary, allow_nan=False)  # null, not Infinity


def test_without_a_ttr_limit_a_fault_that_never_recovers_adds_no_check(tmp_path):
    rows = steady(0, 10.5) + steady(10.5, 30, "fail")
    summary = summary_of(tmp_path, rows, faults=THROTTLE, slo={"baseline": {"error_rate": 0.6}})
    assert summary["faults"][0]["recovery"]["recovered"] is False
    assert not [c for c in summary["checks"] if c["name"].startswith("recovery.")]


def test_a_healthy_tail_shorter_than_the_window_is_no_recovery(tmp_path):
    # healthy again from 26 s, but the load ends at 30 s: 4 buckets, W = 5
    rows = steady(0, 10.5) + steady(10.5, 26, "fail") + steady(26, 30)
    slo = {"baseline": {"error_rate": 0.01}, "resilience": {"stability_window": 5}}
    recovery = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo)["faults"][0]["recovery"]
    assert recovery["recovered"] is False
    slo["resilience"]["stability_window"] = 4
    recovery = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo, name="w4")["faults"][0]["recovery"]
    assert recovery["recovered"] is True and recovery["recovery_point_s"] == 26.0


def test_recovers_then_relapses_within_the_window_moves_the_recovery_point(tmp_path):
    # bad 10.5-13, good 13-15, bad 15-16, good after
    rows = (
        steady(0, 10.5) + steady(10.5, 13, "fail") + steady(13, 15) + steady(15, 16, "fail") + steady(16, 30)
    )
    slo = {"baseline": {"error_rate": 0.01}, "resilience": {"stability_window": 5}}
    recovery = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo)["faults"][0]["recovery"]
    assert recovery["recovery_point_s"] == 16.0 and recovery["ttr_s"] == 5.5
    assert recovery["since_fault_end_s"] == 0.5
    assert recovery["unhealthy_s"] == 4  # 10, 11, 12, 15
    assert recovery["degradation_rs"] == 3.5  # 0.5 + 1 + 1 + 0 + 0 + 1
    # a window of 2 s is satisfied by 13-15 already
    slo["resilience"]["stability_window"] = 2
    recovery = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo, name="w2")["faults"][0]["recovery"]
    assert recovery["recovery_point_s"] == 13.0 and recovery["ttr_s"] == 2.5


def test_empty_buckets_are_unhealthy(tmp_path):
    # nothing at all is sent from 10.5 s to 12 s (a stalled client): no error, no latency, no request
    rows = steady(0, 10.5) + steady(12, 30)
    slo = {"resilience": {"stability_window": 3}}  # no health threshold at all
    recovery = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo)["faults"][0]["recovery"]
    assert recovery["health"] == {}
    assert "only empty seconds are unhealthy" in recovery["note"]
    assert recovery["time_to_impact_s"] == 0.5  # bucket 11 is the first empty one
    assert recovery["recovery_point_s"] == 12.0 and recovery["ttr_s"] == 1.5
    assert recovery["degradation_rs"] == 1.5  # bucket 10: 1 - 5/10, bucket 11: 1 - 0/10
    assert recovery["availability"] == 1.0  # every request sent in the window was ok


def test_open_model_omitted_rows_are_bad_events_and_buckets_go_by_the_due_time(tmp_path):
    rows = []
    for tenth in range(200):
        due = tenth * 100.0
        if 100 <= tenth < 120 and tenth % 2:
            # due in [10 s, 12 s) and never sent: an omitted operation (outcome fail, status 0)
            row = op("omitted", None, due + 50, due + 50, "fail", status=0, error="omitted")
        else:
            # in the fault every sent request leaves 300 ms late: due at 11.9 s, sent at 12.2 s
            lag = 300 if 100 <= tenth < 120 else 0
            row = inc(f"o{tenth}", due + lag, due + lag + 5)
        rows.append({**row, "intended_ns": ns(due)})
    faults = [inject(0, 10_000, 3.0)]  # a kill observed for 3 s: window [10 s, 13 s)
    slo = {"baseline": {"error_rate": 0.01}, "resilience": {"stability_window": 3, "min_availability": 0.9}}
    summary = summary_of(tmp_path, rows, faults=faults, slo=slo, load_s=20)
    recovery = summary["faults"][0]["recovery"]
    # buckets 10 and 11: 5 ok of 10 events each; bucket 12 holds only what was due in it
    assert recovery["time_to_impact_s"] == 0.0
    assert recovery["recovery_point_s"] == 12.0 and recovery["ttr_s"] == 2.0
    assert recovery["since_fault_end_s"] == -1.0
    assert recovery["degradation_rs"] == 1.0 and recovery["depth"] == 0.5
    assert (recovery["events"], recovery["ok"]) == (30, 20)
    assert recovery["availability"] == pytest.approx(0.666667)
    check = checks_of(summary)["recovery.fault-1.availability"]
    assert check["passed"] is False and check["measured"] == recovery["availability"]
    assert check["threshold"] == 0.9

    events = load_events(load_run(tmp_path / "run").ops)
    buckets = health_buckets(events, T0, ns(20_000))
    assert buckets.loc[11, ["requests", "ok", "omitted", "events"]].tolist() == [5, 5, 5, 10]
    assert buckets.loc[12, "requests"] == 10  # the request sent at 12.1 s was due at 11.8 s: bucket 11


def test_p99_health_from_the_scenario_overrides_the_baseline(tmp_path):
    # 11-13 s: every request takes 300 ms
    rows = steady(0, 11) + steady(11, 13, latency_ms=300) + steady(13, 30)
    faults = [inject(0, 10_000, 5.0, action="throttle"), rollback(0, 15_000)]
    slo = {"baseline": {"p99_ms": 100}, "resilience": {"stability_window": 2}}
    recovery = summary_of(tmp_path, rows, faults=faults, slo=slo)["faults"][0]["recovery"]
    assert recovery["health"] == {"p99_ms": 100}
    assert (recovery["time_to_impact_s"], recovery["ttr_s"]) == (1.0, 3.0)
    assert recovery["degradation_rs"] == 0.0  # slow but every request ok: no goodput lost
    slo["resilience"]["health"] = {"p99_ms": 500}
    recovery = summary_of(tmp_path, rows, faults=faults, slo=slo, name="lax")["faults"][0]["recovery"]
    assert recovery["health"] == {"p99_ms": 500} and recovery["ttr_s"] == 0.0


def test_checks_pass_with_their_measures(tmp_path):
    rows = steady(0, 10.5) + steady(10.5, 13, "fail") + steady(13, 30)
    slo = {
        "baseline": {"error_rate": 0.01},
        "resilience": {"stability_window": 5, "ttr_s": 3, "max_degradation_rs": 2.5, "min_availability": 0.5},
    }
    summary = summary_of(tmp_path, rows, faults=THROTTLE, slo=slo)
    names = [c["name"] for c in summary["checks"]]
    added = ["recovery.fault-1.ttr_s", "recovery.fault-1.degradation_rs", "recovery.fault-1.availability"]
    assert names[-3:] == added
    checks = checks_of(summary)
    assert [(checks[n]["measured"], checks[n]["passed"]) for n in added] == [
        (2.5, True),
        (2.5, True),
        (0.5, True),
    ]
    assert summary["verdict"] == "pass"
    assert summary["slo"]["resilience"] == {
        "stability_window": 5,
        "ttr_s": 3,
        "max_degradation_rs": 2.5,
        "min_availability": 0.5,
        "health": {},
        "compare": {},
    }


def test_resilience_limits_without_a_fault_fail_once_each(tmp_path):
    slo = {"resilience": {"ttr_s": 10, "min_availability": 0.9}}
    summary = summary_of(tmp_path, steady(0, 30), faults=[], slo=slo)
    checks = [c for c in summary["checks"] if c["name"].startswith("recovery.")]
    assert [(c["name"], c["passed"], c["note"]) for c in checks] == [
        ("recovery.ttr_s", False, "no effective fault in this run"),
        ("recovery.availability", False, "no effective fault in this run"),
    ]


def test_an_aborted_fault_has_no_recovery(tmp_path):
    from history import abort

    faults = [inject(0, 10_000, 5.0), abort(0, 10_100)]
    summary = summary_of(tmp_path, steady(0, 30), faults=faults, slo={})
    assert summary["faults"][0]["effective"] is False and summary["faults"][0]["recovery"] is None


def test_every_fault_gets_its_own_record(tmp_path):
    rows = steady(0, 10) + steady(10, 12, "fail") + steady(12, 20) + steady(20, 21, "fail") + steady(21, 40)
    faults = [inject(0, 10_000, 2.0), inject(1, 20_000, 1.0)]
    slo = {"baseline": {"error_rate": 0.01}, "resilience": {"stability_window": 3}}
    summary = summary_of(tmp_path, rows, faults=faults, slo=slo, load_s=40)
    assert [f["recovery"]["ttr_s"] for f in summary["faults"]] == [2.0, 1.0]
    assert [f["recovery"]["since_fault_end_s"] for f in summary["faults"]] == [0.0, 0.0]


def test_the_summary_with_recovery_is_byte_identical(tmp_path):
    rows = steady(0, 10.5) + steady(10.5, 13, "fail") + steady(13, 30)
    slo = {"baseline": {"error_rate": 0.01}, "availability": 0.99, "resilience": {"ttr_s": 3}}
    dirs = [
        write_run(tmp_path / name, with_final(rows), faults=THROTTLE, slo=slo, load_ms=(0, 30_000))
        for name in ("one", "two")
    ]
    for run_dir in dirs:
        write_summary(run_dir)
    assert (dirs[0] / rf.SUMMARY).read_bytes() == (dirs[1] / rf.SUMMARY).read_bytes()


# -- the functions on their own ------------------------------------------------------------------


def test_health_buckets_count_whole_seconds_only():
    import pandas as pd

    rows = [inc("a", 100, 105), inc("b", 1_100, 1_400, "info"), inc("c", 2_500, 2_505)]
    ops = pd.DataFrame(rows)
    buckets = health_buckets(load_events(ops), T0, ns(2_500))  # 2.5 s: buckets 0 and 1
    assert buckets["t_s"].tolist() == [0, 1]
    assert buckets["requests"].tolist() == [1, 1] and buckets["ok"].tolist() == [1, 0]
    assert buckets["error_rate"].tolist() == [0.0, 1.0]
    assert buckets["p99_ms"].tolist() == [5.0, 300.0]


def test_bucket_p99_is_nearest_rank_per_bucket():
    import pandas as pd

    latencies = np.arange(1, 201)  # 200 requests in bucket 0, latency 1..200 ms, shuffled order
    order = np.random.default_rng(3).permutation(200)
    rows = [inc(f"k{i}", i * 4.0, i * 4.0 + float(latencies[j])) for i, j in enumerate(order)]
    buckets = health_buckets(load_events(pd.DataFrame(rows)), T0, ns(1_000))
    assert buckets["p99_ms"].tolist() == [198.0]  # rank ceil(0.99 * 200) = 198


def test_health_thresholds_fall_back_to_the_baseline():
    slo = {
        "baseline": {"p99_ms": 100, "error_rate": 0.01, "p95_ms": 50},
        "resilience": {"health": {"p99_ms": 200}},
    }
    assert health_thresholds(slo) == {"p99_ms": 200, "error_rate": 0.01}
    assert health_thresholds({}) == {}


def test_fault_recovery_on_bare_buckets():
    import pandas as pd

    ok = np.array([10, 10, 0, 10, 0, 10, 10, 10])
    buckets = pd.DataFrame(
        {
            "start_ns": T0 + np.arange(8) * 1_000_000_000,
            "requests": np.full(8, 10),
            "ok": ok,
            "error_rate": 1 - ok / 10,
            "p99_ms": np.full(8, 5.0),
        }
    )
    good = healthy(buckets, {"error_rate": 0})
    assert good.tolist() == [True, True, False, True, False, True, True, True]
    window = FaultWindow(0, "x", "y", {}, T0 + 1_500 * MS, T0 + 3_000 * MS, 1.5, True, True, None)
    record = fault_recovery(
        window, buckets, good, stability_s=2.5, expected=10.0, availability=(3, 4), load_started_ns=T0
    )
    # W = 3 buckets: 5, 6, 7; the injection's bucket is 1
    assert record["recovery_point_ns"] == T0 + 5_000 * MS and record["ttr_s"] == 3.5
    assert record["time_to_impact_s"] == 0.5 and record["unhealthy_s"] == 2
    assert record["degradation_rs"] == 2.0 and record["availability"] == 0.75


def test_window_counts_are_exact_at_the_edges():
    import pandas as pd

    rows = [inc(f"k{i}", i * 100.0, i * 100.0 + 1, "ok" if i % 3 else "fail") for i in range(50)]
    rows.append(op("omitted", None, 1_000, 1_000, "fail", status=0))
    events = load_events(pd.DataFrame(rows))
    counts = window_counts(events, [(ns(1_000), ns(2_000)), (ns(0), ns(5_000)), (ns(1_000), ns(1_000))])
    # [1 s, 2 s): requests 10..19 (fails at 12, 15, 18) + the omitted row
    assert counts == [(7, 11), (33, 51), (0, 0)]


# -- the SLO keys --------------------------------------------------------------------------------


def test_scenario_defaults_match_the_analysis_defaults():
    assert ResilienceSLO().stability_window == DEFAULT_STABILITY_WINDOW_S
    assert SLO().resilience is None and SLO().availability is None


def test_resolved_scenario_leaves_out_what_was_not_given(tmp_path):
    smoke = load_scenario(SMOKE)
    assert set(smoke.resolved()["slo"]) == {"consistency", "baseline", "fault", "recovery"}
    data = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    data["slo"]["resilience"] = {"ttr_s": 20, "stability_window": "5s", "health": {"p99_ms": 250}}
    data["slo"]["availability"] = 0.99
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    scenario = load_scenario(path)
    resolved = scenario.resolved()
    assert resolved["slo"]["availability"] == 0.99
    assert resolved["slo"]["resilience"]["stability_window"] == 5.0
    assert resolved["slo"]["resilience"]["compare"] == {"p99_ms": None, "error_rate": None, "alpha": 0.05}
    path.write_text(yaml.safe_dump(resolved))
    assert load_scenario(path) == scenario
    # the resolved scenario is what the run directory holds: the analysis reads it back
    run_dir = write_run(tmp_path / "run", [], slo=resolved["slo"])
    slo = load_run(run_dir).slo
    assert slo["resilience"] == {
        "stability_window": 5.0,
        "ttr_s": 20.0,
        "health": {"p99_ms": 250.0},
        "compare": {"alpha": 0.05},
    }


@pytest.mark.parametrize(
    ("resilience", "line"),
    [
        ({"ttr_s": -1}, "slo.resilience.ttr_s: expected a value of at least 0, got -1"),
        ({"stability_window": "0s"}, "slo.resilience.stability_window: expected a value above 0, got '0s'"),
        ({"min_availability": 2}, "slo.resilience.min_availability: expected a value of at most 1, got 2"),
        (
            {"compare": {"p99_ms": 0.9}},
            "slo.resilience.compare.p99_ms: expected a value of at least 1, got 0.9",
        ),
        (
            {"health": {"p95_ms": 1}},
            "slo.resilience.health.p95_ms: expected one of the keys p99_ms, error_rate",
        ),
        ({"ttr": 1}, "slo.resilience.ttr: expected one of the keys stability_window, ttr_s"),
    ],
)
def test_bad_resilience_keys_are_one_line_each(tmp_path, resilience, line):
    data = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    data["slo"]["resilience"] = resilience
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(Exception) as caught:
        load_scenario(path)
    assert line in str(caught.value)


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ({"resilience": {"ttr": 1}}, "slo.resilience.ttr: unknown key, expected one of stability_window"),
        ({"resilience": {"stability_window": 0}}, "slo.resilience.stability_window: expected above 0, got 0"),
        (
            {"resilience": {"health": {"error_rate": 2}}},
            "slo.resilience.health.error_rate: expected between 0",
        ),
        (
            {"resilience": {"compare": {"alpha": 1}}},
            "slo.resilience.compare.alpha: expected between 0 and 1, ",
        ),
        ({"resilience": {"compare": {"p99_ms": 0.5}}}, "slo.resilience.compare.p99_ms: expected at least 1"),
        ({"resilience": {"health": 3}}, "slo.resilience.health: expected a mapping of thresholds"),
    ],
)
def test_run_directory_slo_is_checked(tmp_path, slo, message):
    with pytest.raises(RunFormatError, match="^scenario.yaml: " + message.replace(".", r"\.")):
        load_run(write_run(tmp_path, [], slo=slo))
