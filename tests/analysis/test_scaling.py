"""Scaling analysis on hand-made run directories: load steps, reaction, capacity in service, p95
recovery, replacements after a kill, Lambda cold starts and throttles, and the ``scaling.*`` checks.

The history: 30 s of load whose rate steps up at 10 s. The fleet answers in 20 ms, except from the
step until 14 s where every answer takes 500 ms (over the 100 ms target); a scale-out starts at
11.5 s and its two instances are in service at 13.0 and 13.2 s. Each figure below is counted by hand.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from history import ns, op, write_run

from analysis.rundir import RunFormatError, load_run, read_scaling
from analysis.scaling import load_steps, scaling_analysis, scaling_checks
from chaos.scenario import parse_scenario
from chaoscheck import runformat as rf

RATE = [{"duration": 10.0, "rate": 50.0, "to": None}, {"duration": 20.0, "rate": 150.0, "to": None}]
SLO = {
    "stability_window": 5.0,
    "p95_ms": 100.0,
    "reaction_s": 2.0,
    "in_service_s": 5.0,
    "p95_recovered_s": 6.0,
    "replacement_in_service_s": 5.0,
    "replacement_first_2xx_s": 5.0,
    "lambda_cold_starts": 3,
    "lambda_cold_start_ms": 1000.0,
    "lambda_throttle_rate": 0.2,
}


def activity(
    n: int, kind: str, start_ms: float, end_ms: float | None, *, resource: str = "fleet", **fields: Any
) -> dict[str, Any]:
    row = {
        "activity_id": f"{resource}-{n:06d}",
        "resource": resource,
        "kind": kind,
        "cause": f"{kind} for the test",
        "from_capacity": 2,
        "to_capacity": 4,
        "start_ns": ns(start_ms),
        "end_ns": None if end_ms is None else ns(end_ms),
        "status": "successful" if end_ms is not None else "in_progress",
        "subject": None,
        "replaces": None,
        "parent": None,
        "metric": None,
    }
    row.update(fields)
    return row


SCALE_OUT = [
    activity(1, "scale-out", 11_500, 13_200, metric=150.0),
    activity(
        2, "launch", 11_500, 13_000, subject="i-3", parent="fleet-000001", from_capacity=2, to_capacity=3
    ),
    activity(
        3, "launch", 11_500, 13_200, subject="i-4", parent="fleet-000001", from_capacity=3, to_capacity=4
    ),
]


def fleet_ops(slow_until_ms: float = 14_000, served_by: str = "i-1") -> list[dict]:
    rows = []
    t = 0.0
    while t < 30_000:
        latency = 500 if 10_000 <= t < slow_until_ms else 20
        rows.append(op("increment", f"k{t}", t, t + latency, "ok", 1, served_by=served_by))
        t += 100 if t < 10_000 else 50
    return rows


def write(
    tmp_path: Path,
    ops: list[dict],
    *,
    activities: list[dict] | None = SCALE_OUT,
    slo: dict | None = None,
    rate: Any = RATE,
    faults: list[dict] = (),
    timeline: list[dict] | None = None,
) -> Path:
    path = write_run(tmp_path / "run", ops, faults=faults, timeline=timeline, load_ms=(0, 30_000))
    scenario = yaml.safe_load((path / rf.SCENARIO).read_text())
    scenario["load"]["rate"] = rate
    scenario["slo"] = {"scaling": SLO if slo is None else slo}
    (path / rf.SCENARIO).write_text(yaml.safe_dump(scenario))
    if activities is not None:
        table = pa.Table.from_pylist(activities, schema=rf.SCALING_SCHEMA)
        pq.write_table(table, path / rf.SCALING)
    return path


def analyse(path: Path) -> tuple[dict, list[dict]]:
    run = load_run(path)
    section = scaling_analysis(run)
    return section, scaling_checks(section, run.slo)


def by_name(checks: list[dict]) -> dict[str, dict]:
    return {c["name"]: c for c in checks}


# -- load steps --------------------------------------------------------------------------------------


def test_load_steps_are_the_stages_that_start_higher_or_ramp_up() -> None:
    t0, end = ns(0), ns(60_000)
    stages = [
        {"duration": 10, "rate": 100},
        {"duration": 10, "rate": 300},  # a step up
        {"duration": 10, "rate": 100},  # down: not a step
        {"duration": 10, "rate": 100, "to": 400},  # a ramp
        {"rate": 200},  # lower than where the ramp ended
    ]
    steps = load_steps({"rate": stages}, t0, end)
    assert [(s["name"], s["kind"], s["at_s"], s["from_rate"], s["to_rate"]) for s in steps] == [
        ("step-1", "step", 10.0, 100.0, 300.0),
        ("step-2", "ramp", 30.0, 100.0, 400.0),
    ]
    assert [(s["at_ns"], s["until_ns"]) for s in steps] == [
        (ns(10_000), ns(20_000)),
        (ns(30_000), ns(40_000)),
    ]
    assert load_steps({"rate": [{"rate": 200}]}, t0, end) == []
    assert load_steps({"users": 10}, t0, end) == []
    # a step after the load ended is not one
    assert load_steps({"rate": [{"duration": 70, "rate": 1}, {"rate": 5}]}, t0, end) == []


# -- the fleet's reaction to a step --------------------------------------------------------------------


def test_each_link_of_the_scaling_chain_is_measured_from_the_step(tmp_path: Path) -> None:
    section, checks = analyse(write(tmp_path, fleet_ops()))
    (step,) = section["fleet"]["steps"]
    assert step["reaction_s"] == 1.5  # 10 s -> scale-out at 11.5 s
    assert step["in_service_s"] == 3.2  # both launches in service at 13.2 s
    assert (step["capacity_before"], step["capacity_after"], step["scale_outs"]) == (2, 4, 1)
    assert step["p95_before_ms"] == 20.0 and step["p95_worst_ms"] == 500.0
    # buckets 10..13 s are slow, 14 s on are under 100 ms for 5 s in a row: recovered at 14 s
    assert step["p95_recovered_s"] == 4.0 and step["recovered_at_s"] == 14.0
    assert step["p95_after_ms"] == 20.0 and step["unmeasured"] == {}
    assert step["first_scale_out"]["cause"] == "scale-out for the test"
    assert section["fleet"]["scale_outs"] == 1 and section["activities"] == {
        "fleet": {"launch": 2, "scale-out": 1},
        "lambda": {},
    }
    results = by_name(checks)
    for key, measured in (("reaction_s", 1.5), ("in_service_s", 3.2), ("p95_recovered_s", 4.0)):
        assert results[f"scaling.{key}"] == {
            "name": f"scaling.{key}",
            "passed": True,
            "measured": measured,
            "threshold": SLO[key],
            "phase": "step-1",
            "note": None,
        }
    json.dumps(section, allow_nan=False)  # plain data, no NaN
    assert scaling_analysis(load_run(tmp_path / "run")) == section  # deterministic


def test_too_little_capacity_fails_every_fleet_check_with_the_reason(tmp_path: Path) -> None:
    path = write(tmp_path, fleet_ops(slow_until_ms=30_000), activities=[])
    section, checks = analyse(path)
    (step,) = section["fleet"]["steps"]
    assert step["reaction_s"] is None and step["in_service_s"] is None and step["p95_recovered_s"] is None
    results = by_name(checks)
    assert not results["scaling.reaction_s"]["passed"]
    assert results["scaling.reaction_s"]["note"] == "step-1: no scale-out in the step's window"
    assert results["scaling.p95_recovered_s"]["measured"] is None
    assert "never stayed at or under 100 ms for 5 s" in results["scaling.p95_recovered_s"]["note"]


def test_a_recovery_too_slow_for_the_limit_fails(tmp_path: Path) -> None:
    section, checks = analyse(write(tmp_path, fleet_ops(slow_until_ms=19_000)))
    assert section["fleet"]["steps"][0]["p95_recovered_s"] == 9.0
    result = by_name(checks)["scaling.p95_recovered_s"]
    assert not result["passed"] and result["measured"] == 9.0


def test_omitted_operations_count_as_requests_over_the_target(tmp_path: Path) -> None:
    ops = fleet_ops()
    # in the bucket at 14 s, 40 answers in 20 ms and 3 operations never sent: its p95 is over the target
    ops += [op("omitted", None, 14_100 + i, 14_100 + i, "fail", status=0, served_by=None) for i in range(3)]
    for row in ops[-3:]:
        row["intended_ns"] = row["start_ns"]
    path = write(tmp_path, ops)
    section, _ = analyse(path)
    (step,) = section["fleet"]["steps"]
    assert step["omitted"] == 3
    assert step["p95_recovered_s"] == 5.0


def test_a_scale_out_that_did_not_end_well_is_not_capacity_in_service(tmp_path: Path) -> None:
    failed = [dict(SCALE_OUT[0], status="failed")]
    section, checks = analyse(write(tmp_path, fleet_ops(), activities=failed))
    assert section["fleet"]["steps"][0]["in_service_s"] is None
    result = by_name(checks)["scaling.in_service_s"]
    assert not result["passed"] and "ended failed" in result["note"]


def test_without_a_step_or_activities_the_stated_limits_fail(tmp_path: Path) -> None:
    section, checks = analyse(write(tmp_path, fleet_ops(), activities=None, rate=[{"rate": 100.0}]))
    assert section["fleet"]["steps"] == [] and section["activities"] is None
    assert "no scaling.parquet" in section["notes"][0]
    results = by_name(checks)
    assert results["scaling.reaction_s"]["note"] == "no load step in the scenario"
    assert results["scaling.replacement_in_service_s"]["note"] == "no instance killed in this run"
    assert not any(c["passed"] for c in checks if c["name"] != "scaling.lambda_cold_starts")


def test_only_the_limits_the_scenario_states_are_checked(tmp_path: Path) -> None:
    _, checks = analyse(write(tmp_path, fleet_ops(), slo={"p95_ms": 100, "reaction_s": 2}))
    assert [c["name"] for c in checks] == ["scaling.reaction_s"]
    run = load_run(tmp_path / "run")
    assert scaling_checks(scaling_analysis(run), {}) == []


def test_the_p95_target_defaults_to_the_baseline_limit(tmp_path: Path) -> None:
    path = write(tmp_path, fleet_ops(), slo={"p95_recovered_s": 6})
    scenario = yaml.safe_load((path / rf.SCENARIO).read_text())
    scenario["slo"]["baseline"] = {"p95_ms": 100}
    (path / rf.SCENARIO).write_text(yaml.safe_dump(scenario))
    section, checks = analyse(path)
    assert section["fleet"]["p95_target_ms"] == 100 and checks[0]["passed"]


# -- replacements --------------------------------------------------------------------------------------


def kill(at_ms: float, target: str = "i-1", **params: Any) -> dict:
    return {
        "ts": "",
        "ts_ns": ns(at_ms),
        "fault_id": 0,
        "event": "inject",
        "action": "terminate-instance",
        "target": target,
        "params": {"count": 1, "mode": "ec2", **params},
        "window_s": 10.0,
    }


REPLACEMENT = [
    activity(4, "terminate", 13_000, 13_000, subject="i-1", from_capacity=4, to_capacity=3),
    activity(5, "launch", 13_000, 15_500, subject="i-9", replaces="i-1", from_capacity=3, to_capacity=4),
]


def test_a_kill_is_followed_to_its_replacement_in_service_and_its_first_2xx(tmp_path: Path) -> None:
    ops = fleet_ops()
    ops.append(op("increment", "r1", 15_550, 15_600, "ok", 1, served_by="i-9"))
    ops.append(op("read", None, 15_520, 15_530, "fail", status=503, served_by="i-9"))  # not a 2xx
    path = write(tmp_path, ops, activities=SCALE_OUT + REPLACEMENT, faults=[kill(12_000)])
    section, checks = analyse(path)
    (record,) = section["fleet"]["replacements"]
    assert record == {
        "fault": "fault-1",
        "instance": "i-1",
        "kill_ns": ns(12_000),
        "kill_s": 12.0,
        "expected": True,
        "detected_s": 1.0,
        "replacement": "i-9",
        "launched_s": 1.0,
        "in_service_s": 3.5,
        "first_2xx_s": 3.6,
        "note": None,
    }
    results = by_name(checks)
    assert results["scaling.replacement_in_service_s"]["measured"] == 3.5
    assert results["scaling.replacement_first_2xx_s"]["passed"]
    assert results["scaling.replacement_first_2xx_s"]["phase"] == "i-1"


def test_a_kill_never_replaced_fails_and_one_with_decrement_desired_is_not_expected(tmp_path: Path) -> None:
    path = write(tmp_path, fleet_ops(), faults=[kill(12_000)])
    _, checks = analyse(path)
    result = by_name(checks)["scaling.replacement_in_service_s"]
    assert not result["passed"] and result["note"] == "i-1: no launch replaced it"

    path = write(
        tmp_path / "decrement", fleet_ops(), faults=[kill(12_000, mode="asg", decrement_desired=True)]
    )
    section, checks = analyse(path)
    assert section["fleet"]["replacements"][0]["expected"] is False
    assert by_name(checks)["scaling.replacement_in_service_s"]["note"] == "no instance killed in this run"


# -- Lambda ----------------------------------------------------------------------------------------------


def lambda_ops() -> list[dict]:
    rows = []
    for env, first_ms in (("env-1", 1_000), ("env-2", 10_500)):
        rows.append(
            op("increment", f"{env}-0", first_ms, first_ms + 400, "ok", 1, endpoint="lambda", served_by=env)
        )
        for i in range(1, 10):
            t = first_ms + i * 100
            rows.append(op("increment", f"{env}-{i}", t, t + 50, "ok", 1, endpoint="lambda", served_by=env))
    throttle = '429 {"Reason":"FunctionInvocationRateLimitExceeded","Type":"User","message":"Rate Exceeded."}'
    for i in range(4):
        t = 10_200 + i * 10
        rows.append(
            op("increment", f"t{i}", t, t + 2, "fail", endpoint="lambda", status=429, error=throttle,
               served_by="function-url")
        )  # fmt: skip
    return rows


def timeline_row(at_ms: float, active: int, environments: int) -> dict:
    return {
        "ts_ns": ns(at_ms),
        "fleet_desired": 2,
        "fleet_pending": 0,
        "fleet_in_service": 2,
        "fleet_unhealthy": 0,
        "fleet_requests": 0,
        "fleet_errors": 0,
        "lambda_reserved": 10,
        "lambda_active": active,
        "lambda_environments": environments,
        "lambda_requests": 0,
        "lambda_throttles": 0,
        "lambda_cold_starts": environments,
    }


def test_lambda_cold_starts_throttles_and_peak_concurrency_per_phase_and_stage(tmp_path: Path) -> None:
    starts = [
        activity(
            10, "cold-start", 990, 1_300, resource="lambda", subject="env-1", from_capacity=0, to_capacity=1
        ),
        activity(
            11,
            "cold-start",
            10_490,
            10_800,
            resource="lambda",
            subject="env-2",
            from_capacity=1,
            to_capacity=2,
        ),
        activity(
            12, "reclaim", 25_000, 25_000, resource="lambda", subject="env-1", from_capacity=2, to_capacity=1
        ),
    ]
    timeline = [timeline_row(5_000, 1, 1), timeline_row(12_000, 3, 2), timeline_row(26_000, 1, 1)]
    ops = fleet_ops() + lambda_ops()
    path = write(tmp_path, ops, activities=SCALE_OUT + starts, timeline=timeline)
    section, checks = analyse(path)
    lam = section["lambda"]
    assert (lam["requests"], lam["throttles"], lam["burst_throttles"]) == (24, 4, 4)
    assert lam["throttle_rate"] == pytest.approx(4 / 24, abs=1e-6)
    assert (lam["cold_starts"], lam["reclaimed"], lam["peak_concurrency"], lam["peak_environments"]) == (
        2,
        1,
        3,
        2,
    )
    assert lam["init_ms"] == {"p50": 310.0, "p95": 310.0, "max": 310.0}
    assert lam["cold_request_ms"] == {"p50": 400.0, "p95": 400.0, "max": 400.0}
    (phase,) = lam["phases"]  # no fault: one baseline phase
    assert phase["name"] == "baseline" and phase["cold_requests"] == 2
    first, second = lam["stages"]
    assert (first["cold_starts"], first["throttles"], first["peak_concurrency"]) == (1, 0, 1)
    assert (second["cold_starts"], second["throttles"], second["reclaimed"], second["peak_concurrency"]) == (
        1,
        4,
        1,
        3,
    )
    results = by_name(checks)
    assert (
        results["scaling.lambda_cold_starts"]["measured"] == 2
        and results["scaling.lambda_cold_starts"]["passed"]
    )
    assert results["scaling.lambda_cold_start_ms"]["measured"] == 400.0
    assert results["scaling.lambda_throttle_rate"]["passed"]


@pytest.mark.parametrize("dtype", [object, "string"])
def test_the_section_does_not_depend_on_how_the_string_columns_are_held(tmp_path: Path, dtype: Any) -> None:
    # load_run gives categoricals; a notebook's frame may hold plain strings: the served_by and error
    # lookups (replacement's first 2xx, cold requests, burst throttles) must read the same either way
    starts = [activity(10, "cold-start", 990, 1_300, resource="lambda", subject="env-1", to_capacity=1)]
    ops = fleet_ops() + lambda_ops()
    ops.append(op("increment", "r1", 15_550, 15_600, "ok", 1, served_by="i-9"))
    path = write(tmp_path, ops, activities=SCALE_OUT + REPLACEMENT + starts, faults=[kill(12_000)])
    run = load_run(path)
    as_categories = scaling_analysis(run)
    plain = run.ops.assign(**{c: run.ops[c].astype(dtype) for c in ("served_by", "error")})
    assert scaling_analysis(dataclasses.replace(run, ops=plain)) == as_categories
    lam = as_categories["lambda"]
    assert lam["burst_throttles"] == 4 and sum(phase["cold_requests"] for phase in lam["phases"]) == 1
    assert as_categories["fleet"]["replacements"][0]["first_2xx_s"] == 3.6


# -- the run directory's side: slo.scaling and scaling.parquet -----------------------------------------


@pytest.mark.parametrize(
    ("scaling", "message"),
    [
        ({"reaction": 5}, "slo.scaling.reaction: unknown key, expected one of stability_window"),
        ({"reaction_s": -1}, "slo.scaling.reaction_s: expected not negative, got -1"),
        ({"p95_ms": 0}, "slo.scaling.p95_ms: expected above 0, got 0"),
        ({"lambda_throttle_rate": 2}, "slo.scaling.lambda_throttle_rate: expected between 0 and 1, got 2"),
        ("fast", "slo.scaling: expected a mapping of thresholds"),
    ],
)
def test_slo_scaling_is_checked_when_the_run_is_read(tmp_path: Path, scaling: Any, message: str) -> None:
    path = write(tmp_path, fleet_ops(), slo=scaling)
    with pytest.raises(RunFormatError, match=re.escape(message)):
        load_run(path)


def test_scaling_parquet_is_optional_and_checked(tmp_path: Path) -> None:
    path = write(tmp_path, fleet_ops(), activities=None)
    assert read_scaling(path) is None
    rows = [dict(SCALE_OUT[1], resource="ecs")]
    pq.write_table(pa.Table.from_pylist(rows, schema=rf.SCALING_SCHEMA), path / rf.SCALING)
    with pytest.raises(
        RunFormatError, match=r"scaling\.parquet: column 'resource': expected one of fleet, lambda"
    ):
        read_scaling(path)
    pq.write_table(pa.table({"activity_id": ["a"]}), path / rf.SCALING)
    with pytest.raises(RunFormatError, match=r"scaling\.parquet: missing column 'resource'"):
        read_scaling(path)


def test_the_scenario_takes_slo_scaling_and_leaves_it_out_when_not_given() -> None:
    text = """
name: s
load: {users: 1, duration: 10s, rate: [{duration: 5s, rate: 10}, {rate: 30}]}
slo:
  scaling: {stability_window: 5s, p95_ms: 100, reaction_s: 3, lambda_throttle_rate: 0.1}
"""
    resolved = parse_scenario(text).resolved()
    assert resolved["slo"]["scaling"]["stability_window"] == 5.0
    assert (
        resolved["slo"]["scaling"]["reaction_s"] == 3.0 and resolved["slo"]["scaling"]["in_service_s"] is None
    )
    plain = parse_scenario("name: s\nload: {users: 1, duration: 10s}\n").resolved()
    assert "scaling" not in plain["slo"]
