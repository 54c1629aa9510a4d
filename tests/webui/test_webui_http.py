"""The web UI driven over HTTP, as a browser would: real Locust, real local stack, 127.0.0.1 only.

A test started from the start form is a whole chaoscheck run: the scenario's faults on the test's
clock, faults injected and rolled back from the Chaos tab through the same journal, every fault
rolled back when the test stops or Locust quits, and a run directory written exactly as
``chaoscheck run`` writes it, whose report the tab serves.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from webui_helpers import RESERVED, LocustUI, free_port, require_load_plugin, reserved_concurrency, wait_for

from chaos.actions import ACTIONS
from chaoscheck.locust_process import LOCUSTFILE

pytestmark = pytest.mark.slow

RUN_FILES = {
    "scenario.yaml", "run.json", "load.json", "ops.parquet", "faults.jsonl", "timeline.parquet",
    "server_ops.parquet", "summary.json", "report.html", "locust.log",
}  # fmt: skip


def journal(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "faults.jsonl").read_text().splitlines()]


def template_args(page: str) -> dict:
    match = re.search(r"window\.templateArgs = (\{.*?\})\s*</script>", page, re.S)
    assert match, page[:2000]
    return json.loads(match.group(1))


def local_args(stack) -> list[str]:
    return ["--target", "local", "--stack-state", str(stack.state_file)]


def test_the_start_form_has_the_chaoscheck_fields_and_refuses_a_run_that_cannot_start(
    webui_stack, workdir, start_locust
) -> None:
    require_load_plugin()
    ui: LocustUI = start_locust("--scenario", "small.yaml", *local_args(webui_stack))
    page = ui.get("/").body.decode()
    args = template_args(page)
    extra = args["extra_options"]
    assert {"scenario", "target", "stack_state", "fleet_url", "lambda_url"} <= set(extra)
    assert not {"run_dir", "counter", "runs_dir"} & set(extra)
    assert extra["target"]["choices"] == ["local", "http"]
    assert extra["scenario"]["default_value"] == "small.yaml"
    assert (args["num_users"], args["spawn_rate"], args["run_time"]) == (4, 4.0, 30)  # the scenario's load
    assert args["extended_tabs"] == [{"title": "Chaos", "key": "chaos"}]
    assert [c["key"] for c in args["extended_tables"][0]["structure"]][:4] == ["time", "at", "event", "fault"]
    assert '<script src="./chaos/static/chaos-tab.js" defer></script>' in page
    script = ui.get("/chaos/static/chaos-tab.js")
    assert script.status == 200 and "textContent" in script.body.decode()
    assert "innerHTML" not in script.body.decode()
    assert ui.get("/chaos/static/..%2Fwebrun.py").status == 404

    state = webui_stack.state_file
    refusals = {
        "nope.yaml:1: scenario: expected an existing file": dict(scenario="nope.yaml", stack_state=state),
        "--stack-state gone.json: no local stack answers": dict(
            scenario="small.yaml", stack_state="gone.json"
        ),
        "small.yaml: faults: target 'http' has no chaos backend": dict(
            scenario="small.yaml", target="http", fleet_url=webui_stack.fleet_url
        ),
        "--target http: give --fleet-url and/or --lambda-url": dict(scenario="", target="http"),
    }
    for expected, fields in refusals.items():
        answer = ui.swarm(**{"target": "local", **fields}).json()
        assert answer["success"] is False and expected in answer["message"], (expected, answer)
        assert "\n" not in answer["message"]
    assert ui.state()["run"] is None and ui.state()["runner"] == "ready"
    assert not (workdir / "runs").exists()


def test_a_test_from_the_web_ui_is_a_whole_run_with_faults_by_hand(
    webui_stack, workdir, start_locust
) -> None:
    require_load_plugin()
    ui: LocustUI = start_locust("--scenario", "small.yaml", *local_args(webui_stack))
    form = {"scenario": "small.yaml", "target": "local", "stack_state": str(webui_stack.state_file)}
    assert ui.swarm(**form).json()["success"] is True

    run = ui.wait_run(
        lambda r: [(row["fault"], row["event"]) for row in r["timeline"]] == [(0, "inject"), (0, "rollback")],
        15,
        "the scenario's throttle, injected at 1 s and rolled back at 2 s",
    )
    assert run["status"] == "running" and run["can_inject"] and run["counts"]["ok"] > 0
    assert run["scenario"] == "webui-test" and run["target"] == "local"
    assert set(run["endpoints"]) == {"fleet", "lambda"}
    assert [a["name"] for a in ui.state()["actions"]] == ["throttle-lambda"]  # the scenario's actions

    injected = ui.inject("throttle-lambda", reserved_concurrency=1)
    assert injected.status == 200, injected.body
    assert injected.json() | {"ok": True, "fault": 1, "target": "lambda", "window_s": 0.0} == injected.json()
    assert reserved_concurrency(webui_stack) == 1
    assert ui.state()["run"]["open"] == [{"fault": 1, "action": "throttle-lambda", "target": "lambda"}]

    refused = ui.inject("terminate-instance")
    assert refused.status == 400 and "this scenario allows (throttle-lambda)" in refused.json()["error"]
    twice = ui.inject("throttle-lambda", reserved_concurrency=3)
    assert twice.status == 400 and "got fault 1 still in force" in twice.json()["error"]
    elsewhere = ui.post_json("/chaos/rollback", {}, headers={"Origin": "http://elsewhere.example"})
    assert elsewhere.status == 403 and reserved_concurrency(webui_stack) == 1

    table = wait_for(
        lambda: ui.get("/stats/requests").json()["extended_stats"][0], 5, "the tab's table in the stats"
    )
    assert table["key"] == "chaos"
    rows = [(row["fault"], row["event"], row["origin"]) for row in table["data"]]
    assert rows == [(0, "inject", "scheduled"), (0, "rollback", "scheduled"), (1, "inject", "manual")]

    rolled = ui.post_json("/chaos/rollback", {})
    assert rolled.status == 200 and rolled.json() == {
        "ok": True,
        "outcomes": [
            {"fault": 1, "action": "throttle-lambda", "target": "lambda", "ok": True, "error": None}
        ],
    }
    assert reserved_concurrency(webui_stack) == RESERVED
    assert ui.state()["run"]["open"] == []

    assert ui.post_form("/stop", {}).json()["success"] is True
    run = ui.wait_run(lambda r: r["status"] in ("finished", "failed"), 60, "the run to be finished")
    assert run["status"] == "finished" and not run["aborted"], run
    assert run["verdict"] == "pass", json.loads((workdir / "runs" / run["id"] / "summary.json").read_text())
    assert not run["can_inject"] and run["counts"]["ok"] > 0

    run_dir = workdir / "runs" / run["id"]
    assert re.fullmatch(r"\d{8}T\d{6}Z-webui-test", run["id"])
    assert set(os.listdir(run_dir)) >= RUN_FILES
    assert [(line["fault_id"], line["event"], line.get("manual", False)) for line in journal(run_dir)] == [
        (0, "inject", False),
        (0, "rollback", False),
        (1, "inject", True),
        (1, "rollback", False),
    ]
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["run_id"] == run["id"] and meta["counter"] == run["counter"] and meta["aborted"] is False
    assert meta["scenario"] == "webui-test" and meta["target"] == "local"
    assert meta["load_started_ns"] < meta["load_ended_ns"]
    load = yaml.safe_load((run_dir / "scenario.yaml").read_text())["load"]
    assert (load["users"], load["spawn_rate"], load["duration"]) == (4, 4.0, 30.0)
    ops = pd.read_parquet(run_dir / "ops.parquet")
    assert {"increment", "read", "final"} <= set(ops.kind) and set(ops.counter) == {run["counter"]}
    assert not pd.read_parquet(run_dir / "server_ops.parquet").empty
    assert not pd.read_parquet(run_dir / "timeline.parquet").empty
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "pass" and [f["fault_id"] for f in summary["faults"]] == [0, 1]

    report = ui.get("/" + run["report"])
    assert report.status == 200 and report.headers["Content-Type"].startswith("text/html")
    assert report.body == (run_dir / "report.html").read_bytes()
    assert ui.get("/" + run["summary"]).json()["verdict"] == "pass"
    (workdir / "runs" / "secret.txt").write_text("outside the run directory")
    for path in (
        f"/chaos/runs/{run['id']}/..%2Fsecret.txt",
        f"/chaos/runs/{run['id']}/%2E%2E",
        f"/chaos/runs/{run['id']}/nothing.html",
        "/chaos/runs/..%2F..%2Fsmall.yaml/report.html",
        "/chaos/runs/20200101T000000Z-other/report.html",
    ):
        assert ui.get(path).status == 404, path

    # A new start is a new run, in a directory of its own.
    assert ui.swarm(**form).json()["success"] is True
    second = ui.wait_run(lambda r: r["id"] != run["id"] and r["counts"]["ok"] > 0, 15, "a second run")
    assert second["status"] == "running" and all(row["fault"] == 0 for row in second["timeline"])
    ui.post_form("/stop", {})
    second = ui.wait_run(lambda r: r["status"] in ("finished", "failed"), 60, "the second run to be finished")
    state = ui.state()
    assert state["previous"][0]["id"] == run["id"] and state["previous"][0]["report"] == run["report"]
    assert sorted(p.name for p in (workdir / "runs").iterdir() if p.is_dir()) == sorted(
        [run["id"], second["id"]]
    )
    assert reserved_concurrency(webui_stack) == RESERVED


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_faults_are_rolled_back_before_locust_exits(webui_stack, workdir, start_locust, signum) -> None:
    """No scenario: the built-in one, every registered action allowed."""
    require_load_plugin()
    ui: LocustUI = start_locust(*local_args(webui_stack))
    assert ui.swarm(target="local", stack_state=str(webui_stack.state_file)).json()["success"] is True
    run = ui.wait_run(lambda r: r["counts"]["ok"] > 0, 15, "ok operations")
    assert run["scenario"] == "webui" and run["scenario_file"] is None
    assert {a["name"] for a in ui.state()["actions"]} == set(ACTIONS)
    injected = ui.inject("throttle-lambda", reserved_concurrency=2)
    assert injected.json()["ok"] and reserved_concurrency(webui_stack) == 2

    ui.signal(signum)
    ui.wait_exit(60)
    assert reserved_concurrency(webui_stack) == RESERVED, ui.log()
    run_dir = workdir / "runs" / run["id"]
    assert [(line["fault_id"], line["event"]) for line in journal(run_dir)] == [
        (0, "inject"),
        (0, "rollback"),
    ]
    assert json.loads((run_dir / "run.json").read_text())["aborted"] is True
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "fail" and "run.aborted" in summary["failed_checks"]
    assert (run_dir / "report.html").is_file()


def test_headless_without_run_dir_is_a_whole_run_too(webui_stack, workdir) -> None:
    require_load_plugin()
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--run-time", "3s",
        "--scenario", "small.yaml", *local_args(webui_stack),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=90)
    (run_dir,) = (workdir / "runs").iterdir()
    assert done.returncode == 0, done.stderr[-3000:]  # the verdict's exit status, as chaoscheck run's
    assert set(os.listdir(run_dir)) >= RUN_FILES
    assert [(line["fault_id"], line["event"]) for line in journal(run_dir)] == [
        (0, "inject"),
        (0, "rollback"),
    ]
    assert yaml.safe_load((run_dir / "scenario.yaml").read_text())["load"]["duration"] == 3.0
    assert reserved_concurrency(webui_stack) == RESERVED


def test_with_run_dir_given_the_orchestrator_owns_the_run(webui_stack, workdir) -> None:
    """``chaoscheck run`` passes --run-dir: then no session, no faults, no Chaos tab here."""
    given = workdir / "given"
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--run-time", "2s",
        "--users", "2", "--spawn-rate", "2", "--stop-timeout", "3", "--run-dir", str(given),
        "--fleet-url", webui_stack.fleet_url, "--lambda-url", webui_stack.lambda_url,
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=90)
    assert (given / "ops.parquet").is_file(), done.stderr[-3000:]
    assert set(os.listdir(given)) == {"ops.parquet", "load.json"}
    assert not (workdir / "runs").exists()


def test_with_processes_the_master_runs_the_session_and_the_workers_load(
    webui_stack, workdir, start_locust
) -> None:
    """Locust sends the master's options (run directory, counter, URLs) to the workers."""
    require_load_plugin()
    # A port of its own: workers of another Locust on this machine must not join this master.
    port = str(free_port())
    master = ["--processes", "2", "--master-bind-port", port, "--master-port", port]
    ui: LocustUI = start_locust(*master, "--scenario", "small.yaml", *local_args(webui_stack))
    form = {"scenario": "small.yaml", "target": "local", "stack_state": str(webui_stack.state_file)}
    wait_for(lambda: ui.get("/worker-count").json()["worker_count"] == 2, 30, "two workers")
    assert ui.swarm(**form).json()["success"] is True
    ui.wait_run(lambda r: len(r["timeline"]) == 2 and r["counts"]["ok"] > 0, 15, "load and the throttle")
    ui.post_form("/stop", {})
    run = ui.wait_run(lambda r: r["status"] in ("finished", "failed"), 90, "the run to be finished")
    assert run["status"] == "finished" and run["verdict"] == "pass", run
    ops = pd.read_parquet(workdir / "runs" / run["id"] / "ops.parquet")
    assert ops.loc[ops.kind != "final", "worker"].nunique() == 2
    assert set(ops.counter) == {run["counter"]}
    ui.stop()  # at once: the workers have not rejoined the master yet (--stop-timeout)
    assert ui.left_behind == 0, "workers were left running after Locust quit"


def test_a_run_that_cannot_start_stops_the_test_and_the_web_ui_stays(
    webui_stack, workdir, start_locust
) -> None:
    require_load_plugin()
    (workdir / "taken").write_text("a file where the runs directory should be")
    ui: LocustUI = start_locust(*local_args(webui_stack), "--runs-dir", "taken")
    assert ui.swarm(target="local", stack_state=str(webui_stack.state_file)).json()["success"] is True

    def stopped_with_error() -> dict | None:
        state = ui.state()
        return state if state["error"] and state["runner"] == "stopped" else None

    state = wait_for(stopped_with_error, 15, "the test to be stopped with the reason")
    assert "Not a directory" in state["error"] and state["run"] is None
    assert ui.get("/stats/requests").json()["user_count"] == 0
    assert list(workdir.rglob("ops.parquet")) == []  # no load without a run
    assert ui.get("/").status == 200
