"""Every action of the local backend against the real local stack: inject, see the effect over HTTP on
127.0.0.1, roll back to exactly the state before (twice, harmlessly), and refusals that change nothing.

One small stack for the module (two instances, min 1, max 3, a function with no reservation), brought
back to that baseline before each test. Every wait is bounded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import Reply, call, process_running, until

from chaos.backends import InjectionError, backend_for
from chaos.backends.local import LocalBackend
from chaos.journal import Journal
from chaos.rollback import rollback_from_journal
from chaos.scheduler import FaultScheduler
from chaoscheck import runformat
from counter.local.client import ControlError, LocalStack, in_service
from counter.local.config import FleetConfig, LambdaConfig, StackConfig

pytestmark = pytest.mark.slow

WAIT_S = 10.0
UPSTREAM_TIMEOUT = 0.3
CONFIG = StackConfig(
    fleet=FleetConfig(
        desired=2,
        min=1,
        max=3,
        health_interval=0.1,
        health_timeout=0.2,
        # A frozen instance stays in service for about 15 x 0.2 s, long enough to see its 504s and
        # resume it; the group's own termination does not wait for health checks.
        unhealthy_threshold=15,
        boot_delay=0.1,
        upstream_timeout=UPSTREAM_TIMEOUT,
    ),
    lambda_=LambdaConfig(reserved_concurrency=None, cold_start=0.0, timeout=2.0),
    sample_interval=0.2,
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    workdir = tmp_path_factory.mktemp("faults")
    with LocalStack.start(
        CONFIG, workdir / "counter.db", log_path=workdir / "stack.log", state_file=workdir / "stack.json"
    ) as running:
        yield running


@pytest.fixture
def fresh_name(request: pytest.FixtureRequest) -> str:
    """A counter name used by this test only."""
    return f"t{time.monotonic_ns()}-{request.node.name[:20]}".replace("[", "-").replace("]", "")


def baseline(stack: LocalStack) -> dict[str, Any]:
    """No fault in force: every instance running, desired 2 of them in service, the function unfaulted."""
    control = stack.control
    for instance in control.state()["fleet"]["instances"]:
        if instance["state"] != "terminated":
            try:
                control.signal_instance(instance["id"], "CONT")
            except ControlError as exc:
                assert exc.status in (404, 409)
    control.set_desired_capacity(2)
    control.set_reserved_concurrency(None)
    for kind in ("latency", "errors"):
        control.set_lambda_fault(kind, None)
    return control.wait_until(
        lambda s: (
            len(in_service(s)) == 2
            and all(i["state"] in ("in_service", "terminated") for i in s["fleet"]["instances"])
        ),
        timeout=WAIT_S,
    )


@pytest.fixture(autouse=True)
def at_baseline(stack: LocalStack) -> Iterator[dict[str, Any]]:
    yield baseline(stack)
    baseline(stack)


def fleet_view(state: dict[str, Any]) -> dict[str, Any]:
    """What a refused fault must leave alone: desired, and each live instance's state and process."""
    live = {
        i["id"]: (i["state"], i["pid"]) for i in state["fleet"]["instances"] if i["state"] != "terminated"
    }
    return {"desired": state["fleet"]["desired"], "live": live}


def process_stopped(pid: int) -> bool:
    """True while ``pid`` is stopped by a signal (``T`` in /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[1].split()[0] == b"T"


def until_stopped(pid: int, stopped: bool = True) -> None:
    """A signal is sent at once but takes effect when the process is next scheduled: wait (bounded)."""
    until(lambda: process_stopped(pid) == stopped, 3, interval=0.01, what=f"pid {pid} stopped={stopped}")


def pid_of(stack: LocalStack, instance_id: str) -> int:
    return next(i["pid"] for i in stack.control.state()["fleet"]["instances"] if i["id"] == instance_id)


def fleet_get(stack: LocalStack, path: str = "/health") -> Reply:
    return call(stack.fleet_url, "GET", path, timeout=5)


def increment(stack: LocalStack, counter: str, key: str) -> Reply:
    return call(stack.lambda_url, "POST", f"/counters/{counter}/increment", {"Idempotency-Key": key})


# stop-instance ---------------------------------------------------------------------------------------


def test_stop_instance_freezes_it_into_504s_and_rollback_resumes_the_same_process(stack: LocalStack) -> None:
    backend = LocalBackend(stack.control, seed=1)
    injection = backend.plan("stop-instance", {"count": 1})
    (victim,) = injection.target.split(",")
    pid = pid_of(stack, victim)
    assert injection.undo == {"instance_ids": [victim]} and not process_stopped(pid)
    backend.apply("stop-instance", {"count": 1}, injection)
    try:
        until_stopped(pid)
        replies = [fleet_get(stack) for _ in range(4)]  # round robin over the two: two reach the victim
    finally:
        result = backend.rollback("stop-instance", injection)
    timeouts = [r for r in replies if r.status != 200]
    assert len(timeouts) == 2, [(r.status, r.headers) for r in replies]
    for reply in timeouts:
        assert reply.status == 504 and reply.headers["x-target"] == victim
        assert UPSTREAM_TIMEOUT - 0.05 <= reply.seconds < UPSTREAM_TIMEOUT + 1.0  # the stack's own clock
    assert result == {"resumed": [victim], "gone": []}
    until_stopped(pid, stopped=False)
    assert pid_of(stack, victim) == pid
    assert victim in in_service(stack.control.state())  # resumed before the health check gave up on it
    until(
        lambda: fleet_get(stack).headers.get("x-served-by") == victim,
        timeout=3,
        interval=0,
        what="the resumed instance to serve again",
    )
    assert backend.rollback("stop-instance", injection) == {"resumed": [victim], "gone": []}  # harmless


def test_stop_instance_rollback_skips_an_instance_that_died_meanwhile(stack: LocalStack) -> None:
    backend = LocalBackend(stack.control, seed=2)
    injection = backend.inject("stop-instance", {"percent": 50.0})
    (victim,) = injection.target.split(",")
    pid = pid_of(stack, victim)
    stack.control.terminate_instance(victim)  # SIGTERM stays pending on a frozen process: the group's
    # SIGKILL after upstream_timeout ends it
    until(lambda: not process_running(pid), WAIT_S, what="the frozen instance to be killed")
    assert backend.rollback("stop-instance", injection) == {"resumed": [], "gone": [victim]}
    assert backend.rollback("stop-instance", injection) == {"resumed": [], "gone": [victim]}


def test_stop_instance_through_the_scheduler_is_resumed_when_its_duration_ends(
    stack: LocalStack, tmp_path: Path
) -> None:
    path = tmp_path / runformat.FAULTS
    scheduler = FaultScheduler([], LocalBackend(stack.control, seed=3), Journal(path))
    scheduler.start(time.time_ns())
    try:
        done = scheduler.inject_now("stop-instance", {"count": 1}, duration=0.4)
        assert done.injected, done.error
        pid = pid_of(stack, done.target)
        until_stopped(pid)
        until_stopped(pid, stopped=False)  # resumed by the scheduler at the end of the duration
    finally:
        scheduler.stop()
        assert scheduler.rollback_all() == []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["inject", "rollback"]
    assert lines[1]["result"] == {"resumed": [done.target], "gone": []}


# terminate-instance, mode asg --------------------------------------------------------------------------


def test_asg_terminate_deregisters_then_replaces(stack: LocalStack, at_baseline: dict[str, Any]) -> None:
    before = set(in_service(at_baseline))
    errors_before = at_baseline["fleet"]["errors"]
    backend = LocalBackend(stack.control, seed=4)
    injection = backend.inject("terminate-instance", {"count": 1, "mode": "asg"})
    victim = injection.target
    state = stack.control.state()
    assert next(i for i in state["fleet"]["instances"] if i["id"] == victim)["state"] == "terminated"
    replies = [fleet_get(stack) for _ in range(6)]  # not routed to the victim any more: nothing fails
    assert all(r.status == 200 and r.headers["x-served-by"] != victim for r in replies)
    state = stack.control.wait_until(
        lambda s: len(in_service(s)) == 2 and victim not in in_service(s), WAIT_S
    )
    assert len(set(in_service(state)) - before) == 1 and state["fleet"]["desired"] == 2
    assert state["fleet"]["errors"] == errors_before
    for _ in range(2):
        assert backend.rollback("terminate-instance", injection)["restored"] is None
    assert fleet_view(stack.control.state()) == fleet_view(state)


def test_asg_terminate_with_decrement_lowers_desired_and_launches_nothing(stack: LocalStack) -> None:
    backend = LocalBackend(stack.control, seed=5)
    params = {"count": 1, "mode": "asg", "decrement_desired": True}
    injection = backend.inject("terminate-instance", params)
    time.sleep(0.4)  # four passes of the group
    state = stack.control.state()
    assert state["fleet"]["desired"] == 1
    assert [i["id"] for i in state["fleet"]["instances"] if i["state"] != "terminated"] == in_service(state)
    assert len(in_service(state)) == 1 and injection.target not in in_service(state)
    # At the minimum now: another one would take the group below it (and over the share).
    with pytest.raises(InjectionError, match="blast radius"):
        LocalBackend(stack.control, max_share=1.0).plan("terminate-instance", params)
    assert fleet_view(stack.control.state()) == fleet_view(state)


# blast radius and target selectors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "params", "max_share", "message"),
    [
        ("terminate-instance", {"count": 2}, 0.5, r"expected at most 50% of the 2 in-service instance\(s\)"),
        ("stop-instance", {"percent": 100.0}, 0.5, "expected at most 50%"),
        (
            "terminate-instance",
            {"count": 2, "mode": "asg"},
            1.0,
            "expected at least the group's minimum of 1",
        ),
        ("stop-instance", {"instance_ids": ["i-00000000000000000"]}, 0.5, "expected instance_ids in service"),
        ("stop-instance", {"count": 1, "target": {"name": "web"}}, 0.5, "expected target group 'web'"),
        ("set-capacity", {"desired": 4}, 0.5, "between the group's minimum 1 and maximum 3, got 4"),
        ("set-capacity", {"desired": 0}, 0.5, "between the group's minimum 1 and maximum 3, got 0"),
        (
            "lambda-errors",
            {"target": {"tags": {"chaoscheck:allowed": "no"}}},
            0.5,
            "expected target function",
        ),
    ],
)
def test_refusals_change_nothing(
    stack: LocalStack, at_baseline: dict[str, Any], action: str, params: dict, max_share: float, message: str
) -> None:
    before = fleet_view(at_baseline)
    with pytest.raises(InjectionError, match=message) as refused:
        LocalBackend(stack.control, max_share=max_share).inject(action, params)
    assert "\n" not in str(refused.value)
    state = stack.control.state()
    assert fleet_view(state) == before
    assert not any(process_stopped(pid) for _, pid in before["live"].values())
    assert state["lambda"]["faults"] == {"latency": None, "errors": None}


def test_selectors_naming_the_stacks_own_group_and_function_are_accepted(stack: LocalStack) -> None:
    tags = {"chaoscheck:allowed": "true"}
    backend = LocalBackend(stack.control)
    capacity = backend.plan("set-capacity", {"desired": 2, "target": {"name": "fleet", "tags": tags}})
    assert capacity.target == "fleet"
    throttle = backend.plan("throttle-lambda", {"target": {"name": "counter", "tags": tags}})
    assert throttle.undo == {"reserved_concurrency": None}


# set-capacity ----------------------------------------------------------------------------------------


def test_set_capacity_launches_then_rollback_restores_the_previous_desired(
    stack: LocalStack, at_baseline: dict[str, Any]
) -> None:
    before = set(in_service(at_baseline))
    backend = LocalBackend(stack.control)
    injection = backend.plan("set-capacity", {"desired": 3})
    assert injection.undo == {"desired": 2, "min": 1, "max": 3}
    backend.apply("set-capacity", {"desired": 3}, injection)
    grown = stack.control.wait_until(lambda s: len(in_service(s)) == 3, WAIT_S)
    (launched,) = set(in_service(grown)) - before
    assert grown["fleet"]["desired"] == 3
    assert backend.rollback("set-capacity", injection) == {"desired": 2, "replaced": 3}
    shrunk = stack.control.wait_until(lambda s: len(in_service(s)) == 2, WAIT_S)
    assert shrunk["fleet"]["desired"] == 2 and set(in_service(shrunk)) == before  # the newest went
    assert backend.rollback("set-capacity", injection) == {"desired": 2, "replaced": 2}
    assert stack.control.state()["fleet"]["desired"] == 2
    assert launched not in in_service(stack.control.state())


# throttle-lambda, lambda-latency, lambda-errors ------------------------------------------------------


@pytest.mark.parametrize("previous", [None, {"status": 500, "percent": 1.0}])
def test_lambda_errors_fail_about_their_share_and_rollback_restores_exactly(
    stack: LocalStack, fresh_name: str, previous: dict[str, Any] | None
) -> None:
    stack.control.set_lambda_fault("errors", previous)
    backend = LocalBackend(stack.control)
    params = {"status": 503, "percent": 50.0}
    injection = backend.inject("lambda-errors", params)
    assert injection.undo == {"errors": previous}
    replies = [increment(stack, fresh_name, f"k{n}") for n in range(60)]
    failed = [r for r in replies if r.status == 503]
    assert 15 <= len(failed) <= 45, len(failed)  # binomial(60, 0.5): fails about once in 10,000 runs
    assert all(r.body["fault"] == "lambda-errors" for r in failed)
    assert all(r.status == 200 for r in replies if r not in failed)
    assert backend.rollback("lambda-errors", injection) == {
        "errors": previous,
        "replaced": {"status": 503, "percent": 50.0},
    }
    assert stack.control.state()["lambda"]["faults"] == {"latency": None, "errors": previous}
    backend.rollback("lambda-errors", injection)  # twice is harmless
    assert stack.control.state()["lambda"]["faults"] == {"latency": None, "errors": previous}
    stack.control.set_lambda_fault("errors", None)
    value = call(stack.lambda_url, "GET", f"/counters/{fresh_name}").body["value"]
    assert value == 60 - len(failed)  # a failed invocation never reached the store


def test_lambda_latency_adds_its_delay_holds_concurrency_and_rolls_back(
    stack: LocalStack, fresh_name: str
) -> None:
    increment(stack, fresh_name, "warm")
    backend = LocalBackend(stack.control)
    latency = backend.inject("lambda-latency", {"delay": "300ms"})
    assert latency.undo == {"latency": None}
    slow = [increment(stack, fresh_name, f"slow{n}") for n in range(2)]
    assert all(r.status == 200 and r.seconds >= 0.3 for r in slow), [r.seconds for r in slow]
    # A delayed invocation holds its environment: with one execution allowed, a second call is throttled.
    throttle = backend.inject("throttle-lambda", {"reserved_concurrency": 1})
    replies: list[Reply] = []
    held = threading.Thread(target=lambda: replies.append(increment(stack, fresh_name, "held")))
    held.start()
    stack.control.wait_until(lambda s: s["lambda"]["active"] == 1, timeout=2, interval=0.01)
    assert increment(stack, fresh_name, "throttled").status == 429
    held.join(timeout=5)
    assert [r.status for r in replies] == [200]
    assert backend.rollback("throttle-lambda", throttle) == {"reserved_concurrency": None, "replaced": 1}
    assert backend.rollback("lambda-latency", latency)["latency"] is None
    backend.rollback("lambda-latency", latency)  # twice is harmless
    lam = stack.control.state()["lambda"]
    assert lam["faults"] == {"latency": None, "errors": None} and lam["reserved_concurrency"] is None
    assert increment(stack, fresh_name, "fast").seconds < 0.3


def test_lambda_latency_delays_about_its_share(stack: LocalStack, fresh_name: str) -> None:
    increment(stack, fresh_name, "warm")
    backend = LocalBackend(stack.control)
    before = stack.control.state()["lambda"]["fault_delays"]
    injection = backend.inject("lambda-latency", {"delay": 0.05, "percent": 50.0})
    try:
        seconds = [increment(stack, fresh_name, f"k{n}").seconds for n in range(40)]
    finally:
        backend.rollback("lambda-latency", injection)
    delayed = stack.control.state()["lambda"]["fault_delays"] - before
    assert 8 <= delayed <= 32, delayed  # binomial(40, 0.5)
    assert sum(s >= 0.05 for s in seconds) >= delayed


# crash recovery through the descriptor -----------------------------------------------------------------


def test_the_descriptor_reattaches_and_a_crashed_run_is_restored_from_its_journal(
    stack: LocalStack, tmp_path: Path
) -> None:
    assert stack.state_file is not None
    backend = LocalBackend(stack.control, seed=6, state_file=stack.state_file)
    assert backend.descriptor() == {"state_file": str(stack.state_file)}
    path = tmp_path / runformat.FAULTS
    scheduler = FaultScheduler([], backend, Journal(path))
    scheduler.start(time.time_ns())
    scheduler.inject_now("lambda-errors", {"status": 502, "percent": 100.0})
    stopped = scheduler.inject_now("stop-instance", {"count": 1})
    assert stopped.injected
    until_stopped(pid_of(stack, stopped.target))
    scheduler.stop()  # the runner "dies" here: no rollback_all
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert {line["backend_config"]["state_file"] for line in lines} == {str(stack.state_file)}
    rebuilt = backend_for(lines[0]["backend"], lines[0]["backend_config"])
    outcomes = rollback_from_journal(path, rebuilt)
    assert [(o.action, o.ok) for o in outcomes] == [("stop-instance", True), ("lambda-errors", True)]
    until_stopped(pid_of(stack, stopped.target), stopped=False)
    assert stack.control.state()["lambda"]["faults"]["errors"] is None
    assert rollback_from_journal(path, rebuilt) == []
