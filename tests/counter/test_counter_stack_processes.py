"""The local stack leaves no process behind, whoever stops it and however; its control API is private."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from stack_helpers import FAST, call, process_running, stack_config, stack_pids, until

from chaoscheck.runformat import TIMELINE_SCHEMA
from counter.local.client import ControlClient, ControlError, LocalStack, StackError

REPO = Path(__file__).resolve().parents[2]


def warm_lambda(stack: LocalStack) -> None:
    assert call(stack.lambda_url, "GET", "/health").status == 200


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    stack = LocalStack.start(stack_config(), tmp_path / "c.db", log_path=tmp_path / "stack.log")
    warm_lambda(stack)
    pids = stack_pids(stack)
    assert len(pids) == 1 + 3 + 1
    assert all(process_running(pid) for pid in pids)
    token = stack.control._token
    for pid in pids[1:]:  # children do not inherit the control token
        assert b"CHAOSCHECK_CONTROL_TOKEN" not in Path(f"/proc/{pid}/environ").read_bytes()
    stack.stop()
    stack.stop()  # idempotent
    assert not any(process_running(pid) for pid in pids)
    assert not stack.running
    log = (tmp_path / "stack.log").read_text()
    assert "stack stopped: every child reaped" in log and token not in log


def test_processes_are_isolated_from_the_terminal(stack: LocalStack) -> None:
    warm_lambda(stack)
    for pid in stack_pids(stack):
        assert os.getsid(pid) == pid  # each leads its own session: a terminal's Ctrl-C reaches none of them
    assert os.getsid(stack.pid) != os.getsid(0)


def test_sigterm_to_the_stack_stops_every_child(tmp_path: Path) -> None:
    stack = LocalStack.start(stack_config(), tmp_path / "c.db")
    warm_lambda(stack)
    pids = stack_pids(stack)
    os.kill(stack.pid, signal.SIGTERM)
    until(lambda: not any(process_running(pid) for pid in pids), 5, what="every process to exit")
    assert stack._process is not None and stack._process.wait(timeout=5) == 0
    stack.stop()


def test_a_sigkilled_stack_takes_its_children_with_it(tmp_path: Path) -> None:
    stack = LocalStack.start(stack_config(), tmp_path / "c.db")
    warm_lambda(stack)
    pids = stack_pids(stack)
    os.kill(stack.pid, signal.SIGKILL)
    until(lambda: not any(process_running(pid) for pid in pids), 5, what="children to die with the stack")
    stack.stop()


HELPER = textwrap.dedent(
    """
    import json, sys, time, http.client
    from pathlib import Path
    from counter.local.client import LocalStack
    from counter.local.config import StackConfig

    config = StackConfig.model_validate(json.loads(sys.argv[1]))
    stack = LocalStack.start(config, Path(sys.argv[2]))
    port = int(stack.lambda_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/health")
    conn.getresponse().read()
    state = stack.control.state()
    pids = [stack.pid] + [i["pid"] for i in state["fleet"]["instances"]]
    pids += [e["pid"] for e in state["lambda"]["environments"]]
    print(json.dumps(pids), flush=True)
    time.sleep(60)
    """
)


def test_when_the_starting_process_is_sigkilled_the_whole_stack_goes(tmp_path: Path) -> None:
    helper = subprocess.Popen(
        [sys.executable, "-c", HELPER, json.dumps(FAST), str(tmp_path / "c.db")],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert helper.stdout is not None
        line = helper.stdout.readline()  # bounded: the helper's LocalStack.start times out after 30 s
        pids = json.loads(line)
        assert len(pids) == 5 and all(process_running(pid) for pid in pids)
        helper.kill()
        helper.wait(timeout=5)
        until(lambda: not any(process_running(pid) for pid in pids), 5, what="the orphaned stack to die")
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait(timeout=5)


def test_state_file_is_private_and_lets_another_process_attach_and_stop(tmp_path: Path) -> None:
    state_file = tmp_path / "stack.json"
    owner = LocalStack.start(stack_config(), tmp_path / "c.db", state_file=state_file)
    try:
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        content = json.loads(state_file.read_text())
        assert set(content) == {"pid", "db", "fleet_url", "lambda_url", "control_url", "token"}
        attached = LocalStack.from_state_file(state_file)
        assert (attached.fleet_url, attached.lambda_url, attached.pid) == (
            owner.fleet_url,
            owner.lambda_url,
            owner.pid,
        )
        assert content["token"] not in repr(attached.control) + repr(attached)
        pids = stack_pids(attached)
        attached.stop()
        until(lambda: not any(process_running(pid) for pid in pids), 5, what="the attached stack to stop")
        assert not state_file.exists()
    finally:
        owner.stop()


def test_control_api_requires_the_token(stack: LocalStack) -> None:
    assert call(stack.control_url, "GET", "/state").status == 401
    assert call(stack.control_url, "GET", "/state", {"Authorization": "Bearer wrong"}).status == 401
    with pytest.raises(ControlError) as refused:
        ControlClient(stack.control_url, "wrong").state()
    assert refused.value.status == 401
    assert "Bearer" not in repr(stack.control)


def test_control_api_errors(stack: LocalStack) -> None:
    with pytest.raises(ControlError) as unknown:
        stack.control.signal_instance("i-00000000000000000", "KILL")
    assert unknown.value.status == 404
    instance_id = stack.control.state()["fleet"]["instances"][0]["id"]
    with pytest.raises(ControlError) as bad_signal:
        stack.control.signal_instance(instance_id, "HUP")
    assert bad_signal.value.status == 400
    with pytest.raises(ControlError) as negative:
        stack.control.set_reserved_concurrency(-1)
    assert negative.value.status == 400


def test_state_shape(stack: LocalStack) -> None:
    warm_lambda(stack)
    state = stack.control.state()
    assert set(state) == {"fleet", "lambda"}
    assert {"desired", "min", "max", "requests", "errors", "in_flight", "instances"} <= set(state["fleet"])
    assert state["fleet"]["name"] == "fleet" and state["lambda"]["name"] == "counter"
    assert state["fleet"]["tags"] == state["lambda"]["tags"] == {"chaoscheck:allowed": "true"}
    assert state["lambda"]["faults"] == {"latency": None, "errors": None}
    assert state["lambda"]["fault_delays"] == state["lambda"]["fault_errors"] == 0
    for instance in state["fleet"]["instances"]:
        assert {"id", "state", "pid", "port", "launched_ns", "in_service_ns", "terminated_ns"} <= set(
            instance
        )
        assert instance["state"] in ("pending", "in_service", "unhealthy", "terminated")
    lam = state["lambda"]
    assert {"reserved_concurrency", "active", "requests", "throttles", "cold_starts", "environments"} <= set(
        lam
    )
    for env in lam["environments"]:
        assert {"id", "state", "pid"} <= set(env) and env["state"] in ("initializing", "idle", "busy")


def test_timeline_rows_have_exactly_the_schema_columns(stack: LocalStack) -> None:
    first = stack.control.timeline()
    until(lambda: len(stack.control.timeline()) >= len(first) + 3, 3, what="three more samples")
    rows = stack.control.timeline()
    assert all(list(row) == TIMELINE_SCHEMA.names for row in rows)
    for row in rows:
        for field in TIMELINE_SCHEMA:
            value = row[field.name]
            assert isinstance(value, int) or (value is None and field.nullable), (field.name, value)
    stamps = [row["ts_ns"] for row in rows]
    assert stamps == sorted(stamps)
    later = stack.control.timeline(since_ns=stamps[-2])
    assert later and all(row["ts_ns"] > stamps[-2] for row in later)
    assert rows[-1]["fleet_in_service"] == 3 and rows[-1]["fleet_desired"] == 3


def test_a_stack_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(StackError) as failed:
        LocalStack.start(stack_config(), tmp_path / "no" / "such" / "dir" / "c.db", ready_timeout=15)
    assert "exited with code" in str(failed.value)
    assert "unable to open database" in str(failed.value)
