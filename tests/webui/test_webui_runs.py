"""The web UI's runs without Locust: the run a form describes, its checks, and what the tab shows."""

from __future__ import annotations

import json
import os
from argparse import Namespace
from pathlib import Path

import pytest

from chaos.actions import ACTIONS
from chaos.scenario import load_scenario
from chaoscheck.errors import UserError
from chaoscheck.targets.local import LocalTarget
from chaoscheck.webui.options import DEFAULT_STACK_STATE, UNTIL_STOPPED_S, RunChoice
from chaoscheck.webui.webrun import FINISHED, RUNNING, WebRun, action_catalogue, timeline_rows

FLEET_ONLY = """\
version: 1
name: fleet-only
load: {users: 3, duration: 20s, endpoints: {fleet: 1, lambda: 0}}
"""
WITH_FAULT = """\
version: 1
name: with-fault
load: {users: 5, spawn_rate: 1, duration: 20s}
faults:
  - {at: 10s, action: throttle-lambda, duration: 5s}
"""


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    (tmp_path / "fleet.yaml").write_text(FLEET_ONLY)
    (tmp_path / "fault.yaml").write_text(WITH_FAULT)
    (tmp_path / "bad.yaml").write_text("version: 1\nname: bad name\nload: {users: 0, duration: 1s}\n")
    return tmp_path


def test_the_choice_is_the_options_with_the_form_over_them() -> None:
    options = Namespace(
        scenario="a.yaml", target="local", stack_state="", fleet_url="", lambda_url="", runs_dir=""
    )
    choice = RunChoice.from_options(
        options, {"scenario": " b.yaml ", "target": "http", "fleet_url": "http://x"}
    )
    assert choice == RunChoice(
        scenario="b.yaml",
        target="http",
        stack_state=DEFAULT_STACK_STATE,
        fleet_url="http://x",
        runs_dir="runs",
    )
    assert RunChoice.from_options(Namespace()) == RunChoice()


def test_without_a_scenario_the_run_has_the_built_in_one() -> None:
    scenario = RunChoice().load(users=7, spawn_rate=2.0)
    assert scenario.name == "webui" and scenario.faults == []
    assert (scenario.load.users, scenario.load.spawn_rate, scenario.load.duration) == (
        7,
        2.0,
        UNTIL_STOPPED_S,
    )
    assert RunChoice().load(users=7, run_time=90).load.duration == 90.0


def test_the_form_s_load_replaces_the_scenario_s_unless_it_cuts_a_fault_short(scenarios: Path) -> None:
    choice = RunChoice(scenario=str(scenarios / "fault.yaml"))
    scenario = choice.load(users=8, spawn_rate=4.0, run_time=16)
    assert (scenario.load.users, scenario.load.spawn_rate, scenario.load.duration) == (8, 4.0, 16.0)
    assert choice.load(users=8, run_time=12).load.duration == 20.0  # the throttle ends at 15 s
    assert choice.load(users=0).load.users == 5
    assert choice.load().faults == load_scenario(scenarios / "fault.yaml").faults


def test_a_bad_scenario_is_one_line(scenarios: Path) -> None:
    with pytest.raises(UserError) as raised:
        RunChoice(scenario=str(scenarios / "bad.yaml")).load()
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{scenarios / 'bad.yaml'}:2: name: expected")
    assert message.endswith("(and 1 more)")


def test_targets_and_their_checks(tmp_path: Path, scenarios: Path) -> None:
    with pytest.raises(
        UserError, match=r"--stack-state .*gone\.json: no local stack answers .*chaoscheck stack up"
    ):
        RunChoice(stack_state=str(tmp_path / "gone.json")).check()
    assert isinstance(RunChoice().make_target(RunChoice().load()), LocalTarget)
    with pytest.raises(UserError, match="--target: expected one of local, http, got 'aws'"):
        RunChoice(target="aws").make_target(RunChoice().load())
    with pytest.raises(UserError, match="give --fleet-url and/or --lambda-url"):
        RunChoice(target="http").check()
    with pytest.raises(UserError, match="faults: target 'http' has no chaos backend"):
        RunChoice(
            scenario=str(scenarios / "fault.yaml"), target="http", fleet_url="http://127.0.0.1:9"
        ).check()
    with pytest.raises(UserError, match="uses fleet and lambda; give --lambda-url too"):
        RunChoice(target="http", fleet_url="http://127.0.0.1:9").check()
    fleet_only = RunChoice(
        scenario=str(scenarios / "fleet.yaml"), target="http", fleet_url="http://127.0.0.1:9/"
    )
    assert fleet_only.check() == {"fleet": "http://127.0.0.1:9"}


def test_a_run_on_a_target_without_chaos_has_a_run_directory_but_no_injection(tmp_path: Path) -> None:
    choice = RunChoice(
        target="http", fleet_url="http://127.0.0.1:9", lambda_url="http://127.0.0.1:8", runs_dir=str(tmp_path)
    )
    run = WebRun.begin(choice, 1_000, users=2, spawn_rate=2.0, log=lambda _m: None)
    assert run.status == RUNNING and run.run_dir.parent == tmp_path and run.id.endswith("-webui")
    assert sorted(os.listdir(run.run_dir)) == ["faults.jsonl", "locust.log", "scenario.yaml"]
    assert run.load_options() == {
        "run_dir": str(run.run_dir),
        "counter": run.session.counter,
        "fleet_url": "http://127.0.0.1:9",
        "lambda_url": "http://127.0.0.1:8",
    }
    assert run.stop_timeout_s == 6  # timeout 5 s, no retries, one more second
    with pytest.raises(UserError, match="target 'http' has no chaos backend"):
        run.inject("throttle-lambda", {})
    assert run.rollback_all() == []
    snapshot = run.snapshot({"ok": 3})
    assert snapshot | {"can_inject": False, "report": None, "timeline": [], "open": []} == snapshot
    run.stop_faults()
    run.finish()  # no ledger was written: run.json, and no summary
    assert run.status == FINISHED and run.verdict is None and "no ops.parquet" in (run.error or "")
    assert json.loads((run.run_dir / "run.json").read_text())["target"] == "http"


def test_the_timeline_rows_say_what_each_journal_line_did() -> None:
    t0 = 1_000_000_000_000
    entries = [
        {"ts": "2026-11-28T21:30:12.004211Z", "ts_ns": t0 + 2_000_000_000, "fault_id": 0, "event": "inject",
         "action": "throttle-lambda", "target": "lambda", "params": {"reserved_concurrency": 0},
         "window_s": 5},
        {"ts": "2026-11-28T21:30:14.5Z", "ts_ns": t0 + 4_500_000_000, "fault_id": 1, "event": "inject",
         "action": "throttle-lambda", "target": "lambda", "params": {}, "window_s": 0, "manual": True},
        {"ts": "2026-11-28T21:30:15.0Z", "ts_ns": t0 + 5_000_000_000, "fault_id": 1, "event": "rollback",
         "action": "throttle-lambda", "target": "lambda", "params": {},
         "result": {"reserved_concurrency": None}},
        {"ts": "2026-11-28T21:30:16.0Z", "ts_ns": t0 + 6_000_000_000, "fault_id": 2, "event": "abort",
         "action": "terminate-instance", "target": "fleet", "params": {"count": 9}, "error": "<b>no</b>"},
    ]  # fmt: skip
    rows = timeline_rows(entries, t0, scheduled=1)
    assert [(r["time"], r["at"], r["event"], r["fault"], r["origin"]) for r in rows] == [
        ("21:30:12.004", 2.0, "inject", 0, "scheduled"),
        ("21:30:14.5Z", 4.5, "inject", 1, "manual"),
        ("21:30:15.0Z", 5.0, "rollback", 1, "manual"),
        ("21:30:16.0Z", 6.0, "abort", 2, "manual"),
    ]
    assert [r["details"] for r in rows] == [
        "reserved_concurrency=0; window 5 s",
        "until rolled back",
        "reserved_concurrency=None",
        "<b>no</b>",  # plain text: the page sets it as text, never as markup
    ]


def test_the_actions_offered_are_the_scenario_s_with_their_parameters(scenarios: Path) -> None:
    (throttle,) = action_catalogue(RunChoice(scenario=str(scenarios / "fault.yaml")).load())
    assert throttle["name"] == "throttle-lambda" and throttle["lasting"] and throttle["target"] == "lambda"
    assert throttle["params"] == [
        {
            "name": "reserved_concurrency",
            "type": "integer",
            "default": 0,
            "minimum": 0,
            "maximum": None,
            "description": "concurrent executions allowed during the fault; 0 throttles every call",
        }
    ]
    every = action_catalogue(RunChoice().load())
    assert [a["name"] for a in every] == list(ACTIONS)
    assert every[0]["lasting"] is False and every[0]["params"][0]["name"] == "count"
    kill = {p["name"]: p for p in every[0]["params"]}
    # Nested selectors stay out of the form; optional numbers and booleans keep their types.
    assert "target" not in kill and "instance_ids" not in kill
    assert (kill["count"]["type"], kill["count"]["minimum"], kill["decrement_desired"]["type"]) == (
        "integer",
        1,
        "boolean",
    )
