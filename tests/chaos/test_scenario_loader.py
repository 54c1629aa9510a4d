"""Scenario files: valid ones load, every malformed one fails with one line at the right line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaos.scenario import Scenario, ScenarioError, load_scenario
from counter.local.config import FleetConfig

ROOT = Path(__file__).resolve().parents[2]

# A valid scenario; each case below replaces one numbered line, so expected line numbers are exact.
BASE = """\
version: 1
name: case
description: a scenario to break
reads: strong
load:
  users: 5
  spawn_rate: 5
  duration: 30s
  mix: {increment: 9, read: 1}
  endpoints: {fleet: 1, lambda: 1}
  timeout: 2s
stack:
  fleet: {desired: 3, min: 1}
  lambda: {reserved_concurrency: 4}
faults:
  - {at: 5s, action: terminate-instance, count: 1, settle: 5s}
  - {at: 15s, action: throttle-lambda, reserved_concurrency: 0, duration: 5s}
slo:
  consistency: {lost: 0}
  baseline: {p95_ms: 100, error_rate: 0.01}
"""

ALL_ACTIONS = (
    "terminate-instance, stop-instance, set-capacity, throttle-lambda, lambda-latency, lambda-errors"
)
KILL_ONE = {"count": 1, "target": {}, "mode": "ec2", "decrement_desired": False}
"""A fault's parameters as the journal gets them: every default filled in, nothing left unset as null."""
THROTTLE_ALL = {"reserved_concurrency": 0, "target": {}}


def _with_line(number: int, text: str) -> str:
    lines = BASE.splitlines()
    lines[number - 1] = text
    return "\n".join(lines) + "\n"


def _problems(tmp_path: Path, text: str) -> tuple[str, list[str]]:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    problems = caught.value.problems
    assert str(caught.value) == "\n".join(problems)
    assert all("\n" not in problem for problem in problems)
    return str(path), problems


# (id, line to replace, replacement, expected line, expected field path, expected message after the path)
LINE_CASES = [
    ("users-not-int", 6, "  users: many", 6, "load.users", "expected an integer, got 'many'"),
    ("users-quoted-number", 6, "  users: '5'", 6, "load.users", "expected an integer, got '5'"),
    ("users-zero", 6, "  users: 0", 6, "load.users", "expected a value of at least 1, got 0"),
    ("spawn-rate-bool", 7, "  spawn_rate: yes", 7, "load.spawn_rate", "expected a number, got true"),
    ("spawn-rate-zero", 7, "  spawn_rate: 0", 7, "load.spawn_rate", "expected a value above 0, got 0"),
    (
        "negative-duration",
        8,
        "  duration: -5s",
        8,
        "load.duration",
        "expected a duration such as 45s, 150ms or 2m, got '-5s'",
    ),
    ("zero-duration", 8, "  duration: 0s", 8, "load.duration", "expected a value above 0, got '0s'"),
    (
        "duration-bad-unit",
        8,
        "  duration: 5 sec",
        8,
        "load.duration",
        "expected a duration such as 45s, 150ms or 2m, got '5 sec'",
    ),
    (
        "missing-duration",
        8,
        "  # no duration",
        5,
        "load.duration",
        "expected a value (required), got nothing",
    ),
    (
        "mix-all-zero",
        9,
        "  mix: {increment: 0, read: 0}",
        9,
        "load.mix",
        "expected at least one weight above 0, got increment 0 and read 0",
    ),
    (
        "mix-unknown-key",
        9,
        "  mix: {increment: 9, write: 1}",
        9,
        "load.mix.write",
        "expected one of the keys increment, read, got unknown key 'write'",
    ),
    ("endpoints-list", 10, "  endpoints: [fleet]", 10, "load.endpoints", "expected a mapping, got a list"),
    (
        "endpoints-all-zero",
        10,
        "  endpoints: {fleet: 0}",
        10,
        "load.endpoints",
        "expected at least one weight above 0, got fleet 0 and lambda 0",
    ),
    (
        "load-unknown-key",
        11,
        "  timeot: 2s",
        11,
        "load.timeot",
        "expected one of the keys users, spawn_rate, duration, mix, endpoints, timeout, rate, pacing, "
        "max_lag, retries, "
        "got unknown key 'timeot'",
    ),
    (
        "top-unknown-key",
        3,
        "colour: blue",
        3,
        "colour",
        "expected one of the keys version, name, description, reads, seed, load, stack, faults, safety, slo, "
        "got unknown key 'colour'",
    ),
    ("wrong-version", 1, "version: 2", 1, "version", "expected 1, got 2"),
    ("version-as-string", 1, "version: '1'", 1, "version", "expected 1, got '1'"),
    (
        "bad-name",
        2,
        "name: has space",
        2,
        "name",
        "expected 1-64 characters of A-Z, a-z, 0-9, _ and -, got 'has space'",
    ),
    (
        "long-name",
        2,
        "name: " + "a" * 65,
        2,
        "name",
        f"expected 1-64 characters of A-Z, a-z, 0-9, _ and -, got '{'a' * 65}'",
    ),
    ("missing-name", 2, "# no name", 1, "name", "expected a value (required), got nothing"),
    ("bad-reads", 4, "reads: weak", 4, "reads", "expected 'strong' or 'eventual', got 'weak'"),
    (
        "min-above-desired",
        13,
        "  fleet: {desired: 2, min: 3}",
        13,
        "stack.fleet",
        "expected min <= desired <= max, got 3, 2, 6",
    ),
    (
        "stack-unknown-key",
        13,
        "  fleet: {desired: 3, mn: 1}",
        13,
        "stack.fleet.mn",
        # The stack's keys belong to counter.local.config, which may grow: name them from there.
        f"expected one of the keys {', '.join(FleetConfig.model_fields)}, got unknown key 'mn'",
    ),
    (
        "stack-negative-concurrency",
        14,
        "  lambda: {reserved_concurrency: -1}",
        14,
        "stack.lambda.reserved_concurrency",
        "expected a value of at least 0, got -1",
    ),
    (
        "fault-at-not-a-duration",
        16,
        "  - {at: soon, action: terminate-instance}",
        16,
        "faults[0].at",
        "expected a duration such as 45s, 150ms or 2m, got 'soon'",
    ),
    (
        "fault-at-negative",
        16,
        "  - {at: -1, action: terminate-instance}",
        16,
        "faults[0].at",
        "expected a non-negative duration, got -1",
    ),
    (
        "unknown-action",
        17,
        "  - {at: 15s, action: explode, duration: 5s}",
        17,
        "faults[1].action",
        f"expected one of the actions {ALL_ACTIONS}, got 'explode'",
    ),
    (
        "missing-action",
        16,
        "  - {at: 5s, count: 1}",
        16,
        "faults[0].action",
        f"expected one of the actions {ALL_ACTIONS}, got nothing",
    ),
    (
        "unknown-action-parameter",
        16,
        "  - {at: 5s, action: terminate-instance, cuont: 2}",
        16,
        "faults[0].cuont",
        "expected one of the keys at, action, duration, settle, count, percent, instance_ids, target, mode, "
        "decrement_desired, got unknown key 'cuont'",
    ),
    (
        "bad-action-parameter",
        16,
        "  - {at: 5s, action: terminate-instance, count: 0}",
        16,
        "faults[0].count",
        "expected a value of at least 1, got 0",
    ),
    (
        "throttle-negative-concurrency",
        17,
        "  - {at: 15s, action: throttle-lambda, reserved_concurrency: -2, duration: 5s}",
        17,
        "faults[1].reserved_concurrency",
        "expected a value of at least 0, got -2",
    ),
    (
        "fault-not-a-mapping",
        16,
        "  - kill",
        16,
        "faults[0]",
        "expected a mapping with at and action, got 'kill'",
    ),
    (
        "fault-starts-after-load",
        17,
        "  - {at: 30s, action: throttle-lambda, duration: 5s}",
        17,
        "faults[1].at",
        "expected a time before the end of the load (30s), got 30s",
    ),
    (
        "fault-ends-after-load",
        17,
        "  - {at: 28s, action: throttle-lambda, duration: 5s}",
        17,
        "faults[1].duration",
        "expected the fault to end by the end of the load (30s), got 28s + 5s = 33s",
    ),
    (
        "kill-settle-after-load",
        16,
        "  - {at: 27s, action: terminate-instance, settle: 5s}",
        16,
        "faults[0].settle",
        "expected the fault to end by the end of the load (30s), got 27s + 5s = 32s",
    ),
    (
        "throttle-without-duration",
        17,
        "  - {at: 15s, action: throttle-lambda, reserved_concurrency: 0}",
        17,
        "faults[1].duration",
        "expected a duration such as 5s: throttle-lambda holds its effect for a time and is undone at the "
        "end, got nothing",
    ),
    (
        "kill-with-duration",
        16,
        "  - {at: 5s, action: terminate-instance, duration: 5s}",
        16,
        "faults[0].duration",
        "expected no duration: terminate-instance is one-shot (use settle for the time to observe it), "
        "got 5s",
    ),
    (
        "throttle-with-settle",
        17,
        "  - {at: 15s, action: throttle-lambda, duration: 5s, settle: 2s}",
        17,
        "faults[1].settle",
        "expected no settle: the window of throttle-lambda is its duration, got 2s",
    ),
    (
        "overlapping-throttles",
        16,
        "  - {at: 12s, action: throttle-lambda, duration: 5s}",
        17,
        "faults[1].at",
        "expected no overlap with faults[0] (throttle-lambda on lambda, 12s-17s), got 15s-20s",
    ),
    (
        "overlapping-kills",
        17,
        "  - {at: 8s, action: terminate-instance}",
        17,
        "faults[1].at",
        "expected no overlap with faults[0] (terminate-instance on fleet, 5s-10s), got 8s-18s",
    ),
    (
        "slo-unknown-key",
        20,
        "  baseline: {p95: 100}",
        20,
        "slo.baseline.p95",
        "expected one of the keys p50_ms, p95_ms, p99_ms, error_rate, max_ms, min_rps, got unknown key 'p95'",
    ),
    (
        "slo-error-rate-above-1",
        20,
        "  baseline: {error_rate: 2}",
        20,
        "slo.baseline.error_rate",
        "expected a value of at most 1, got 2",
    ),
    (
        "slo-negative-count",
        19,
        "  consistency: {lost: -1}",
        19,
        "slo.consistency.lost",
        "expected a value of at least 0, got -1",
    ),
    (
        "duplicate-key",
        3,
        "name: again",
        3,
        "name",
        "expected each key once, got 'name' again (first on line 2)",
    ),
    (
        "bad-yaml",
        7,
        "  spawn_rate: 5: 6",
        7,
        "scenario",
        "expected valid YAML, got mapping values are not allowed here",
    ),
]


@pytest.mark.parametrize(
    ("line", "replacement", "expected_line", "field", "message"),
    [case[1:] for case in LINE_CASES],
    ids=[case[0] for case in LINE_CASES],
)
def test_a_malformed_scenario_is_one_line_at_the_right_place(
    tmp_path: Path, line: int, replacement: str, expected_line: int, field: str, message: str
) -> None:
    path, problems = _problems(tmp_path, _with_line(line, replacement))
    assert problems == [f"{path}:{expected_line}: {field}: {message}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "scenario: expected a mapping of scenario keys, got an empty file"),
        ("# only a comment\n", "scenario: expected a mapping of scenario keys, got an empty file"),
        ("- a\n- b\n", "scenario: expected a mapping of scenario keys, got a list"),
        ("just text\n", "scenario: expected a mapping of scenario keys, got 'just text'"),
    ],
    ids=["empty", "comments-only", "top-level-list", "top-level-scalar"],
)
def test_a_file_without_a_mapping_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path, problems = _problems(tmp_path, text)
    assert problems == [f"{path}:1: {message}"]


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.problems == [f"{path}:1: scenario: expected an existing file, got no such file"]


def test_a_missing_section_points_at_the_top(tmp_path: Path) -> None:
    path, problems = _problems(tmp_path, "name: x\n")
    assert problems == [f"{path}:1: load: expected a value (required), got nothing"]


def test_faults_that_are_not_a_list(tmp_path: Path) -> None:
    text = BASE.split("faults:")[0] + "faults: 3\n"
    path, problems = _problems(tmp_path, text)
    assert problems == [f"{path}:15: faults: expected a list, got 3"]


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    text = _with_line(16, "  - {at: soon, action: terminate-instance}")
    text = text.replace("  users: 5", "  users: many").replace("version: 1", "version: 3")
    path, problems = _problems(tmp_path, text)
    assert problems == [
        f"{path}:1: version: expected 1, got 3",
        f"{path}:6: load.users: expected an integer, got 'many'",
        f"{path}:16: faults[0].at: expected a duration such as 45s, 150ms or 2m, got 'soon'",
    ]


def test_a_block_style_fault_points_at_the_key(tmp_path: Path) -> None:
    text = BASE.split("faults:")[0] + (
        "faults:\n"  # line 15
        "  - at: 5s\n"  # 16
        "    action: terminate-instance\n"  # 17
        "    count: nope\n"  # 18
    )
    path, problems = _problems(tmp_path, text)
    assert problems == [f"{path}:18: faults[0].count: expected an integer, got 'nope'"]


# --- valid scenarios ------------------------------------------------------------------------------


def test_the_base_scenario_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(BASE)
    scenario = load_scenario(path)
    kill, throttle = scenario.faults
    assert (kill.at, kill.window_s, kill.params()) == (5.0, 5.0, KILL_ONE)
    assert (throttle.at, throttle.duration, throttle.params()) == (15.0, 5.0, THROTTLE_ALL)


def test_faults_may_touch_and_different_actions_may_overlap(tmp_path: Path) -> None:
    text = BASE.split("faults:")[0] + (
        "faults:\n"
        "  - {at: 5s, action: throttle-lambda, duration: 5s}\n"
        "  - {at: 10s, action: throttle-lambda, duration: 5s}\n"
        "  - {at: 6s, action: terminate-instance, settle: 4s}\n"
        "  - {at: 20s, action: terminate-instance}\n"  # default settle 10s: ends with the load
    )
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    assert len(load_scenario(path).faults) == 4


def test_the_smoke_scenario_is_the_documented_one() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    assert scenario.name == "smoke" and scenario.reads == "strong"
    load = scenario.load
    assert (load.users, load.spawn_rate, load.duration, load.timeout) == (20, 20.0, 45.0, 5.0)
    assert load.mix.as_dict() == {"increment": 9, "read": 1}
    assert load.endpoints.as_dict() == {"fleet": 1, "lambda": 1}
    assert scenario.stack.fleet.desired == 3 and scenario.stack.lambda_.reserved_concurrency == 12
    assert scenario.stack.lambda_.cold_start == pytest.approx(0.15)
    kill, throttle = scenario.faults
    assert (kill.action, kill.at, kill.settle, kill.params()) == (
        "terminate-instance",
        12.0,
        10.0,
        KILL_ONE,
    )
    assert (throttle.action, throttle.at, throttle.duration, throttle.params()) == (
        "throttle-lambda",
        28.0,
        5.0,
        THROTTLE_ALL,
    )
    slo = scenario.slo
    assert slo.consistency.model_dump() == {"lost": 0, "duplicated": 0, "unexpected": 0, "read_violations": 0}
    assert slo.baseline is not None and (slo.baseline.p95_ms, slo.baseline.error_rate) == (150.0, 0.01)
    assert slo.recovery is not None and slo.recovery.error_rate == 0.02


def test_the_baseline_scenario_has_no_faults() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    assert scenario.faults == [] and scenario.load.duration == 20.0


@pytest.mark.parametrize("name", ["smoke.yaml", "baseline.yaml"])
def test_resolved_is_plain_data_that_loads_back_to_the_same_scenario(tmp_path: Path, name: str) -> None:
    scenario = load_scenario(ROOT / "scenarios" / name)
    resolved = scenario.resolved()
    text = yaml.safe_dump(resolved, sort_keys=False)  # raises on anything that is not plain data
    assert resolved["load"]["duration"] == scenario.load.duration
    assert set(resolved["slo"]) == {"consistency", "baseline", "fault", "recovery"}
    assert resolved["reads"] == "strong"
    assert resolved["stack"]["lambda"]["reserved_concurrency"] == 12
    copy = tmp_path / "scenario.yaml"
    copy.write_text(text)
    assert load_scenario(copy) == scenario


def test_resolved_faults_keep_their_parameters_inline() -> None:
    resolved = load_scenario(ROOT / "scenarios" / "smoke.yaml").resolved()
    assert resolved["faults"] == [
        {"at": 12.0, "action": "terminate-instance", "settle": 10.0, **KILL_ONE},
        {"at": 28.0, "action": "throttle-lambda", "duration": 5.0, **THROTTLE_ALL},
    ]
    assert resolved["slo"]["baseline"] == {
        "p50_ms": None,
        "p95_ms": 150.0,
        "p99_ms": None,
        "error_rate": 0.01,
        "max_ms": None,
        "min_rps": None,
    }


def test_defaults_fill_in() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "x",
            "load": {
                "users": 1,
                "spawn_rate": 1,
                "duration": "10s",
                "mix": {"read": 1},
                "endpoints": {"lambda": 1},
            },
        }
    )
    assert (scenario.version, scenario.reads, scenario.seed, scenario.faults) == (1, "strong", None, [])
    assert scenario.load.timeout == 5.0 and scenario.load.endpoints.get("fleet") == 0
    assert scenario.slo.consistency.lost == 0 and scenario.slo.fault is None
