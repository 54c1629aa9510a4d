"""The fleet under faults, as aws-semantics.md describes an ALB + Auto Scaling group: real processes,
real signals sent through the control API."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_helpers import Reply, call, process_running, stack_config, until

from counter.local.client import ControlError, LocalStack, in_service


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The fast stack, with a generous upstream timeout so that a held request outlives a slow machine."""
    workdir: Path = tmp_path_factory.mktemp("fleet")
    config = stack_config(fleet={"upstream_timeout": 3.0})
    with LocalStack.start(config, workdir / "counter.db", log_path=workdir / "stack.log") as running:
        yield running


def instances(stack: LocalStack) -> dict[str, dict]:
    return {i["id"]: i for i in stack.control.state()["fleet"]["instances"]}


def test_sigkill_fails_its_share_until_unhealthy_then_a_replacement_serves(
    stack: LocalStack, fresh_name: str
) -> None:
    before = instances(stack)
    serving = in_service(stack.control.state())
    assert len(serving) == 3
    victim = serving[0]
    victim_pid = before[victim]["pid"]
    stack.control.signal_instance(victim, "KILL")
    until(lambda: not process_running(victim_pid), 5, what="the killed instance to exit")

    # Until the health check has failed twice in a row (~0.4 s), the victim keeps its share: 502s.
    statuses: list[tuple[int, str]] = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(statuses) < 300:
        reply = call(stack.fleet_url, "POST", f"/counters/{fresh_name}/increment")
        target = reply.headers.get("x-target") or reply.headers["x-served-by"]
        statuses.append((reply.status, target))
        if instances(stack)[victim]["state"] != "in_service":
            break
    failures = [(status, target) for status, target in statuses if status != 200]
    assert failures, "no request failed while the killed instance was still in service"
    assert all(status == 502 and target == victim for status, target in failures), failures
    assert all(target != victim for status, target in statuses if status == 200)

    # It leaves service (unhealthy, then terminated by the group) ...
    state = stack.control.wait_until(
        lambda s: (
            next(i for i in s["fleet"]["instances"] if i["id"] == victim)["state"]
            in ("unhealthy", "terminated")
        ),
        timeout=3,
    )
    gone = next(i for i in state["fleet"]["instances"] if i["id"] == victim)
    assert gone["unhealthy_ns"] is not None
    # ... after which no request fails any more (the other two serve everything).
    for _ in range(12):
        reply = call(stack.fleet_url, "POST", f"/counters/{fresh_name}/increment")
        assert reply.status == 200 and reply.headers["x-served-by"] != victim

    # The group launches a replacement that boots, passes a health check and gets traffic.
    state = stack.control.wait_until(
        lambda s: len(set(in_service(s)) - set(before)) == 1 and len(in_service(s)) == 3, timeout=6
    )
    (replacement,) = set(in_service(state)) - set(before)
    terminated = next(i for i in state["fleet"]["instances"] if i["id"] == victim)
    assert terminated["state"] == "terminated" and terminated["terminated_ns"] >= terminated["unhealthy_ns"]
    new = next(i for i in state["fleet"]["instances"] if i["id"] == replacement)
    assert new["launched_ns"] >= terminated["unhealthy_ns"] and new["in_service_ns"] > new["launched_ns"]
    served = until(
        lambda: call(stack.fleet_url, "GET", f"/counters/{fresh_name}").headers["x-served-by"] == replacement,
        timeout=3,
        interval=0,
        what="a response served by the replacement",
    )
    assert served
    value = call(stack.fleet_url, "GET", f"/counters/{fresh_name}").body["value"]
    assert value == sum(1 for status, _ in statuses if status == 200) + 12

    timeline = stack.control.timeline()
    assert any(row["fleet_unhealthy"] == 1 or row["fleet_in_service"] == 2 for row in timeline)
    assert timeline[-1]["fleet_errors"] >= len(failures)


def test_sigkill_fails_the_requests_in_flight_with_502(stack: LocalStack, fresh_name: str) -> None:
    stack.control.wait_until(lambda s: len(in_service(s)) == 3, timeout=6)
    victim = in_service(stack.control.state())[0]
    stack.control.signal_instance(victim, "STOP")  # hold its request in flight
    replies: list[Reply] = []
    threads = [
        threading.Thread(
            target=lambda: replies.append(call(stack.fleet_url, "GET", f"/counters/{fresh_name}"))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    stack.control.wait_until(lambda s: s["fleet"]["in_flight"] == 1, timeout=2.5, interval=0.01)
    try:
        stack.control.signal_instance(victim, "KILL")
    except ControlError as exc:  # on a very slow machine the group may have replaced it first (also a kill)
        assert exc.status == 409
    for thread in threads:
        thread.join(timeout=5)
    failed = [r for r in replies if r.status != 200]
    assert len(replies) == 3 and len(failed) == 1, [(r.status, r.body) for r in replies]
    assert failed[0].status == 502 and failed[0].headers["x-target"] == victim
    assert failed[0].seconds < 3.0  # not a 504: the reset is noticed at once
    stack.control.wait_until(lambda s: len(in_service(s)) == 3 and victim not in in_service(s), timeout=6)


def test_capacity_changes_scale_out_and_in(stack: LocalStack) -> None:
    assert stack.control.set_desired_capacity(4) == 3
    state = stack.control.wait_until(lambda s: len(in_service(s)) == 4, timeout=5)
    assert state["fleet"]["desired"] == 4
    assert stack.control.set_desired_capacity(2) == 4
    state = stack.control.wait_until(lambda s: len(in_service(s)) == 2, timeout=5)
    stopped = [i for i in state["fleet"]["instances"] if i["state"] == "terminated"]
    until(lambda: not any(process_running(i["pid"]) for i in stopped if i["pid"]), 5, what="scaled-in exits")
    for _ in range(6):
        assert call(stack.fleet_url, "GET", "/health").status == 200
    stack.control.set_desired_capacity(3)
    stack.control.wait_until(lambda s: len(in_service(s)) == 3, timeout=5)


def test_capacity_outside_min_max_is_refused(stack: LocalStack) -> None:
    with pytest.raises(ControlError) as refused:
        stack.control.set_desired_capacity(7)
    assert refused.value.status == 400


@pytest.fixture(scope="module")
def patient_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack whose health check tolerates a frozen instance for 10 s: only the balancer times out."""
    workdir: Path = tmp_path_factory.mktemp("patient")
    config = stack_config(fleet={"unhealthy_threshold": 50, "upstream_timeout": 0.5, "desired": 2})
    with LocalStack.start(config, workdir / "counter.db", log_path=workdir / "stack.log") as running:
        yield running


def test_sigstop_gives_504_within_upstream_timeout_and_sigcont_brings_it_back(
    patient_stack: LocalStack, fresh_name: str
) -> None:
    stack = patient_stack
    victim, other = in_service(stack.control.state())
    stack.control.signal_instance(victim, "STOP")
    try:
        replies = [
            call(stack.fleet_url, "POST", f"/counters/{fresh_name}/increment", timeout=5) for _ in range(4)
        ]
    finally:
        stack.control.signal_instance(victim, "CONT")
    timeouts = [r for r in replies if r.status == 504]
    assert len(timeouts) == 2, [(r.status, r.headers) for r in replies]
    for reply in timeouts:
        assert reply.headers["x-target"] == victim and reply.headers["x-served-by"] == "balancer"
        assert 0.45 <= reply.seconds < 1.5, reply.seconds
        assert "error" in reply.body
    assert all(r.status == 200 and r.headers["x-served-by"] == other for r in replies if r.status != 504)
    assert in_service(stack.control.state()) == [victim, other]
    back = until(
        lambda: call(stack.fleet_url, "GET", "/health").headers["x-served-by"] == victim,
        timeout=3,
        interval=0,
        what="the resumed instance to serve again",
    )
    assert back
    assert stack.control.state()["fleet"]["errors"] == 2


def test_sigterm_stops_the_instance_and_refused_connections_give_502(patient_stack: LocalStack) -> None:
    stack = patient_stack
    victim = in_service(stack.control.state())[0]
    pid = next(i["pid"] for i in stack.control.state()["fleet"]["instances"] if i["id"] == victim)
    stack.control.signal_instance(victim, "TERM")
    until(lambda: not process_running(pid), 5, what="the instance to stop after SIGTERM")
    # unhealthy threshold 50 x 0.2 s: the stopped instance stays in service for 10 s, failing its share
    replies = [call(stack.fleet_url, "GET", "/health") for _ in range(4)]
    failed = [r for r in replies if r.status == 502]
    assert len(failed) == 2 and all(r.headers["x-target"] == victim for r in failed)
    assert "connect" in failed[0].body["error"]


def test_no_instance_in_service_answers_503(stack: LocalStack) -> None:
    for instance_id in in_service(stack.control.state()):
        stack.control.signal_instance(instance_id, "KILL")
    reply = until(
        lambda: (r := call(stack.fleet_url, "GET", "/health")).status == 503 and r,
        timeout=4,
        interval=0.02,
        what="a 503 while no instance is in service",
    )
    assert reply.headers["x-served-by"] == "balancer" and "error" in reply.body
    stack.control.wait_until(lambda s: len(in_service(s)) == 3, timeout=6)
    assert call(stack.fleet_url, "GET", "/health").status == 200


def test_the_group_terminating_an_instance_deregisters_it_first_and_replaces_it(
    stack: LocalStack, fresh_name: str
) -> None:
    state = stack.control.wait_until(lambda s: len(in_service(s)) == 3, timeout=6)
    before = instances(stack)
    errors_before = state["fleet"]["errors"]
    victim = in_service(state)[0]
    answer = stack.control.terminate_instance(victim)
    assert answer == {
        "id": victim,
        "pid": before[victim]["pid"],
        "state": "terminated",
        "decrement_desired": False,
        "desired": 3,
        "previous_desired": 3,
    }
    # Deregistered before it was stopped: from now on no request reaches it, and none fails.
    replies = [call(stack.fleet_url, "POST", f"/counters/{fresh_name}/increment") for _ in range(9)]
    assert all(r.status == 200 and r.headers["x-served-by"] != victim for r in replies)
    until(lambda: not process_running(before[victim]["pid"]), 5, what="the terminated instance to exit")
    # Replaced at once (not after failed health checks), desired unchanged.
    state = stack.control.wait_until(lambda s: len(in_service(s)) == 3, timeout=6)
    assert len(set(in_service(state)) - set(before)) == 1 and state["fleet"]["desired"] == 3
    gone = next(i for i in state["fleet"]["instances"] if i["id"] == victim)
    assert gone["state"] == "terminated" and gone["unhealthy_ns"] is None
    assert state["fleet"]["errors"] == errors_before


def test_terminating_with_decrement_lowers_desired_but_never_below_the_minimum(stack: LocalStack) -> None:
    first, second, third = in_service(stack.control.wait_until(lambda s: len(in_service(s)) == 3, timeout=6))
    try:
        assert stack.control.terminate_instance(first, decrement_desired=True)["desired"] == 2
        answer = stack.control.terminate_instance(second, decrement_desired=True)
        assert (answer["desired"], answer["previous_desired"]) == (1, 2)
        with pytest.raises(ControlError, match="at or above the minimum 1") as below_min:
            stack.control.terminate_instance(third, decrement_desired=True)
        assert below_min.value.status == 400
        with pytest.raises(ControlError) as again:
            stack.control.terminate_instance(first)
        assert again.value.status == 409
        with pytest.raises(ControlError) as unknown:
            stack.control.terminate_instance("i-00000000000000000")
        assert unknown.value.status == 404
        with pytest.raises(ControlError, match="decrement_desired must be true or false") as bad:
            stack.control._call("POST", f"/fleet/instances/{third}/terminate", {"decrement_desired": "yes"})
        assert bad.value.status == 400
        time.sleep(0.6)  # three passes of the group: nothing is launched in their place
        state = stack.control.state()
        assert state["fleet"]["desired"] == 1 and in_service(state) == [third]
        assert [i["id"] for i in state["fleet"]["instances"] if i["state"] != "terminated"] == [third]
    finally:
        stack.control.set_desired_capacity(3)
    stack.control.wait_until(lambda s: len(in_service(s)) == 3, timeout=6)
