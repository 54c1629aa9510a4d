"""The function URL and its execution environments: cold starts, throttles, timeouts, crashes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_helpers import Reply, call, process_running, stack_config, until

from counter.local.client import ControlError, LocalStack

COLD_START = 0.6
THROTTLE_BODY = {
    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
    "Type": "User",
    "message": "Rate Exceeded.",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Fleet of 1; Lambda with a long cold start (so concurrent first calls overlap) and a 1 s timeout."""
    workdir: Path = tmp_path_factory.mktemp("lambda")
    config = stack_config(
        fleet={"desired": 1},
        **{"lambda": {"reserved_concurrency": 4, "cold_start": COLD_START, "timeout": 1.0}},
    )
    with LocalStack.start(config, workdir / "counter.db", log_path=workdir / "stack.log") as running:
        yield running


def crash_all_environments(stack: LocalStack) -> None:
    """Kill every environment until none is left: one still starting (no process yet, 409) when
    first seen is killed on a later pass, once its process exists."""

    def none_left(state: dict) -> bool:
        for env in state["lambda"]["environments"]:
            try:
                stack.control.signal_environment(env["id"], "KILL")
            except ControlError as exc:
                assert exc.status in (404, 409)  # gone meanwhile, or not started yet
        return not state["lambda"]["environments"]

    stack.control.wait_until(none_left, timeout=10, interval=0.2)


@pytest.fixture(autouse=True)
def reserved_four(stack: LocalStack) -> Iterator[None]:
    """Every test starts and ends with reserved concurrency 4."""
    stack.control.set_reserved_concurrency(4)
    yield
    stack.control.set_reserved_concurrency(4)


@pytest.fixture
def no_environments(stack: LocalStack) -> LocalStack:
    """Crash every environment, so that the next invocations all start cold."""
    crash_all_environments(stack)
    return stack


def concurrently(count: int, fn) -> list[Reply]:
    replies: list[Reply | None] = [None] * count
    barrier = threading.Barrier(count)

    def run(n: int) -> None:
        barrier.wait(timeout=5)
        replies[n] = fn(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert all(r is not None for r in replies)
    return replies  # type: ignore[return-value]


def test_nothing_is_prewarmed_and_the_first_invocation_pays_a_cold_start(
    stack: LocalStack, fresh_name: str
) -> None:
    crash_all_environments(stack)
    cold_starts = stack.control.state()["lambda"]["cold_starts"]
    first = call(stack.lambda_url, "POST", f"/counters/{fresh_name}/increment")
    second = call(stack.lambda_url, "POST", f"/counters/{fresh_name}/increment")
    assert first.status == second.status == 200
    assert first.headers["x-served-by"] == second.headers["x-served-by"]  # the warm environment is reused
    assert first.seconds >= COLD_START
    assert second.seconds < first.seconds / 2
    after = stack.control.state()["lambda"]
    assert after["cold_starts"] == cold_starts + 1
    assert [e["state"] for e in after["environments"]] == ["idle"]


def test_fresh_stack_prewarms_nothing(tmp_path: Path) -> None:
    config = stack_config(fleet={"desired": 1})
    with LocalStack.start(config, tmp_path / "c.db") as fresh:
        lam = fresh.control.state()["lambda"]
        assert (lam["environments"], lam["cold_starts"], lam["requests"]) == ([], 0, 0)


def test_reserved_zero_throttles_and_the_handler_never_runs(stack: LocalStack, fresh_name: str) -> None:
    assert call(stack.lambda_url, "POST", f"/counters/{fresh_name}/increment").status == 200
    before = stack.control.state()["lambda"]
    previous = stack.control.set_reserved_concurrency(0)
    try:
        assert previous == 4
        for n in range(5):
            reply = call(
                stack.lambda_url, "POST", f"/counters/{fresh_name}/increment", {"Idempotency-Key": f"t{n}"}
            )
            assert (reply.status, reply.body) == (429, THROTTLE_BODY)
            assert reply.headers["x-amzn-errortype"] == "TooManyRequestsException"
        assert call(stack.lambda_url, "GET", f"/counters/{fresh_name}").status == 429
        time.sleep(0.25)  # let the timeline (every 0.1 s) see the reservation
    finally:
        assert stack.control.set_reserved_concurrency(4) == 0
    after = stack.control.state()["lambda"]
    assert after["requests"] == before["requests"] + 6
    assert after["throttles"] == before["throttles"] + 6
    # the store never saw them: the counter did not move (read through the other tier)
    assert call(stack.fleet_url, "GET", f"/counters/{fresh_name}").body["value"] == 1
    timeline = stack.control.timeline()
    assert any(row["lambda_reserved"] == 0 for row in timeline)


def test_reserved_n_with_more_concurrent_slow_calls_throttles_the_rest(
    no_environments: LocalStack, fresh_name: str
) -> None:
    stack = no_environments
    stack.control.set_reserved_concurrency(3)
    before = stack.control.state()["lambda"]
    # every call needs a cold start (0.6 s): 3 start environments, the other 2 find none available
    replies = concurrently(
        5,
        lambda n: call(
            stack.lambda_url, "POST", f"/counters/{fresh_name}/increment", {"Idempotency-Key": f"c{n}"}
        ),
    )
    statuses = sorted(r.status for r in replies)
    assert statuses == [200, 200, 200, 429, 429], statuses
    assert all(r.body == THROTTLE_BODY for r in replies if r.status == 429)
    assert all(r.seconds < COLD_START for r in replies if r.status == 429)
    assert len({r.headers["x-served-by"] for r in replies if r.status == 200}) == 3
    after = stack.control.state()["lambda"]
    assert after["throttles"] == before["throttles"] + 2
    assert after["cold_starts"] == before["cold_starts"] + 3
    assert call(stack.fleet_url, "GET", f"/counters/{fresh_name}").body["value"] == 3


def test_unreserved_uses_the_account_limit(stack: LocalStack) -> None:
    assert stack.control.set_reserved_concurrency(None) == 4
    try:
        assert stack.control.state()["lambda"]["reserved_concurrency"] is None
        assert call(stack.lambda_url, "GET", "/health").status == 200
        with pytest.raises(ControlError) as refused:
            stack.control.set_reserved_concurrency(17)  # more than the account's 16
        assert refused.value.status == 400
    finally:
        stack.control.set_reserved_concurrency(4)


def test_an_invocation_over_the_timeout_kills_its_environment_and_answers_502(
    no_environments: LocalStack, fresh_name: str
) -> None:
    stack = no_environments
    warm = call(stack.lambda_url, "GET", "/health")
    assert warm.status == 200
    (env,) = stack.control.state()["lambda"]["environments"]
    stack.control.signal_environment(env["id"], "STOP")  # frozen: the invocation cannot finish
    reply = call(stack.lambda_url, "POST", f"/counters/{fresh_name}/increment", timeout=10)
    assert reply.status == 502 and reply.headers["x-target"] == env["id"]
    assert "timed out" in reply.body["error"]
    assert 1.0 - 0.005 <= reply.seconds < 2.5  # uvloop's millisecond timers may fire a hair early
    until(lambda: not process_running(env["pid"]), 5, what="the timed-out environment to be killed")
    assert env["id"] not in {e["id"] for e in stack.control.state()["lambda"]["environments"]}
    again = call(stack.lambda_url, "POST", f"/counters/{fresh_name}/increment")
    assert again.status == 200 and again.headers["x-served-by"] != env["id"]
    assert stack.control.state()["lambda"]["active"] == 0


def test_a_crashed_environment_fails_its_invocation_and_is_replaced_on_demand(
    no_environments: LocalStack, fresh_name: str
) -> None:
    stack = no_environments
    assert call(stack.lambda_url, "GET", "/health").status == 200
    (env,) = stack.control.state()["lambda"]["environments"]
    stack.control.signal_environment(env["id"], "STOP")
    result: list[Reply] = []
    worker = threading.Thread(
        target=lambda: result.append(call(stack.lambda_url, "POST", f"/counters/{fresh_name}/increment"))
    )
    worker.start()
    stack.control.wait_until(
        lambda s: any(e["state"] == "busy" for e in s["lambda"]["environments"]), timeout=2, interval=0.01
    )
    stack.control.signal_environment(env["id"], "KILL")
    worker.join(timeout=5)
    (reply,) = result
    # At once when the process dies, not at the function timeout (3 s); loose for a busy 2-core machine.
    assert reply.status == 502 and reply.seconds < 2.0 and "exited" in reply.body["error"]
    cold_starts = stack.control.state()["lambda"]["cold_starts"]
    again = call(stack.lambda_url, "GET", f"/counters/{fresh_name}")
    assert again.status == 200 and again.headers["x-served-by"] != env["id"]
    assert stack.control.state()["lambda"]["cold_starts"] == cold_starts + 1
