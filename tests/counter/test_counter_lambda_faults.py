"""The function's injected faults (``PUT /lambda/faults/{latency,errors}``), applied per invocation
inside real environments: errors answer their status without touching the store, delays hold the
environment (so they count against concurrency and against the function's timeout)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_helpers import Reply, call, stack_config

from counter.local.client import ControlError, LocalStack

TIMEOUT = 1.0
TIMER_SLACK_S = 0.005
"""How early a uvloop timer may fire against the client's clock (millisecond timers, cached loop time)."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Fleet of 1; Lambda without cold-start padding and with a 1 s timeout."""
    workdir: Path = tmp_path_factory.mktemp("lambda-faults")
    config = stack_config(
        fleet={"desired": 1}, **{"lambda": {"reserved_concurrency": 4, "cold_start": 0.0, "timeout": TIMEOUT}}
    )
    with LocalStack.start(config, workdir / "counter.db", log_path=workdir / "stack.log") as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults(stack: LocalStack) -> Iterator[None]:
    """Every test starts and ends with no fault and reserved concurrency 4."""
    for kind in ("latency", "errors"):
        stack.control.set_lambda_fault(kind, None)
    stack.control.set_reserved_concurrency(4)
    yield
    for kind in ("latency", "errors"):
        stack.control.set_lambda_fault(kind, None)
    stack.control.set_reserved_concurrency(4)


def increment(stack: LocalStack, counter: str, key: str) -> Reply:
    return call(stack.lambda_url, "POST", f"/counters/{counter}/increment", {"Idempotency-Key": key})


def value(stack: LocalStack, counter: str) -> int:
    reply = call(stack.lambda_url, "GET", f"/counters/{counter}")
    assert reply.status == 200, reply
    return reply.body["value"]


def test_errors_at_100_percent_answer_the_status_and_never_touch_the_store(
    stack: LocalStack, fresh_name: str
) -> None:
    assert increment(stack, fresh_name, "before").status == 200
    before = stack.control.state()["lambda"]
    assert stack.control.set_lambda_fault("errors", {"status": 503, "percent": 100}) is None
    replies = [increment(stack, fresh_name, f"k{n}") for n in range(5)]
    assert [r.status for r in replies] == [503] * 5
    for reply in replies:
        assert reply.body == {"error": "injected fault", "fault": "lambda-errors", "status": 503}
        assert reply.headers["x-served-by"].startswith(tuple("0123456789"))  # an environment answered
    after = stack.control.state()["lambda"]
    assert after["faults"] == {"latency": None, "errors": {"status": 503, "percent": 100.0}}
    assert after["fault_errors"] - before["fault_errors"] == 5
    assert after["errors"] == before["errors"]  # not function errors: the invocation itself succeeded
    assert stack.control.set_lambda_fault("errors", None) == {"status": 503, "percent": 100.0}
    assert value(stack, fresh_name) == 1  # none of the five was applied


def test_errors_at_a_percent_fail_about_that_share(stack: LocalStack, fresh_name: str) -> None:
    stack.control.set_lambda_fault("errors", {"status": 500, "percent": 50})
    statuses = [increment(stack, fresh_name, f"k{n}").status for n in range(60)]
    stack.control.set_lambda_fault("errors", None)
    assert set(statuses) <= {200, 500}
    failed = statuses.count(500)
    assert 15 <= failed <= 45, failed  # binomial(60, 0.5): this fails about once in 10,000 runs
    assert value(stack, fresh_name) == statuses.count(200)


def test_latency_delays_the_invocation_inside_its_environment(stack: LocalStack, fresh_name: str) -> None:
    increment(stack, fresh_name, "warm")
    baseline = min(increment(stack, fresh_name, f"b{n}").seconds for n in range(3))
    stack.control.set_lambda_fault("latency", {"delay_s": 0.3})
    slow = [increment(stack, fresh_name, f"s{n}") for n in range(3)]
    assert all(r.status == 200 and r.seconds >= 0.3 for r in slow), [r.seconds for r in slow]
    assert min(r.seconds for r in slow) >= baseline + 0.25
    assert stack.control.state()["lambda"]["faults"]["latency"] == {"delay_s": 0.3, "percent": 100.0}
    stack.control.set_lambda_fault("latency", None)
    assert increment(stack, fresh_name, "fast").seconds < 0.3
    assert value(stack, fresh_name) == 1 + 3 + 3 + 1  # delayed, not lost


def test_a_delay_holds_the_environment_so_it_counts_against_concurrency(
    stack: LocalStack, fresh_name: str
) -> None:
    increment(stack, fresh_name, "warm")
    stack.control.set_reserved_concurrency(1)
    stack.control.set_lambda_fault("latency", {"delay_s": 0.6, "percent": 100})
    before = stack.control.state()["lambda"]
    replies: list[Reply] = []
    first = threading.Thread(target=lambda: replies.append(increment(stack, fresh_name, "held")))
    first.start()
    stack.control.wait_until(lambda s: s["lambda"]["active"] == 1, timeout=2, interval=0.01)
    throttled = increment(stack, fresh_name, "throttled")
    first.join(timeout=5)
    assert throttled.status == 429 and throttled.seconds < 0.3
    assert [r.status for r in replies] == [200] and replies[0].seconds >= 0.6
    after = stack.control.state()["lambda"]
    assert after["fault_delays"] - before["fault_delays"] == 1  # a throttled invocation never runs
    assert after["throttles"] - before["throttles"] == 1


def test_a_delay_longer_than_the_timeout_is_a_timeout(stack: LocalStack, fresh_name: str) -> None:
    stack.control.set_lambda_fault("latency", {"delay_s": TIMEOUT + 0.5, "percent": 100})
    reply = increment(stack, fresh_name, "late")
    assert reply.status == 502 and "timed out" in reply.body["error"]
    # uvloop's timers count whole milliseconds from the loop's cached clock, so the timeout may fire a
    # fraction of a millisecond before the client's own clock says a second has passed (0.99985 s once)
    assert TIMEOUT - TIMER_SLACK_S <= reply.seconds < TIMEOUT + 0.5
    stack.control.set_lambda_fault("latency", None)
    assert increment(stack, fresh_name, "after").status == 200


def test_latency_and_errors_are_independent_and_combine(stack: LocalStack, fresh_name: str) -> None:
    stack.control.set_lambda_fault("latency", {"delay_s": 0.2, "percent": 100})
    stack.control.set_lambda_fault("errors", {"status": 504, "percent": 100})
    reply = increment(stack, fresh_name, "both")
    assert reply.status == 504 and reply.seconds >= 0.2  # delayed, then failed
    assert stack.control.set_lambda_fault("latency", None) == {"delay_s": 0.2, "percent": 100.0}
    assert stack.control.state()["lambda"]["faults"] == {
        "latency": None,
        "errors": {"status": 504, "percent": 100.0},
    }
    reply = increment(stack, fresh_name, "errors only")
    assert reply.status == 504 and reply.seconds < 0.2


@pytest.mark.parametrize(
    ("kind", "setting", "message"),
    [
        ("latency", {"delay_s": -1}, "expected delay_s, a number of seconds >= 0, got -1"),
        ("latency", {"delay_s": "1s"}, "expected delay_s"),
        ("latency", {"delay_s": 0.1, "percent": 0}, "expected percent above 0 and at most 100, got 0"),
        ("latency", {"delay_s": 0.1, "percent": 101}, "expected percent above 0"),
        ("errors", {"status": 200}, "expected status, an HTTP error status from 400 to 599, got 200"),
        ("errors", {"status": True}, "expected status"),
        ("errors", {"status": 500, "delay_s": 1}, "expected only status and percent"),
        ("errors", [500], "expected a JSON object or null"),
    ],
)
def test_bad_fault_settings_are_refused_and_change_nothing(
    stack: LocalStack, kind: str, setting: object, message: str
) -> None:
    with pytest.raises(ControlError, match=message) as refused:
        stack.control._call("PUT", f"/lambda/faults/{kind}", setting)
    assert refused.value.status == 400
    assert stack.control.state()["lambda"]["faults"] == {"latency": None, "errors": None}


def test_the_fault_endpoints(stack: LocalStack) -> None:
    control = stack.control
    with pytest.raises(ControlError, match="or null to clear it") as empty:
        control._call("PUT", "/lambda/faults/errors")  # no body: an error, not "off"
    assert empty.value.status == 400
    with pytest.raises(ControlError) as unknown:
        control._call("PUT", "/lambda/faults/other", None, send_null=True)
    assert unknown.value.status == 404
    assert call(stack.control_url, "PUT", "/lambda/faults/errors", {}, b"null").status == 401
    answer = control._call("PUT", "/lambda/faults/errors", {"status": 429})
    assert answer == {"errors": {"status": 429, "percent": 100.0}, "previous": None}
    assert control._call("GET", "/lambda/faults") == {
        "latency": None,
        "errors": {"status": 429, "percent": 100.0},
    }
    with pytest.raises(ValueError, match="latency or errors"):
        control.set_lambda_fault("throttle", None)
    assert control.set_lambda_fault("errors", None) == {"status": 429, "percent": 100.0}
