"""The handler's side of the SSM fault parameters: the format of docs/chaos-aws.md, read at most once a
second, and every failure meaning "no fault"."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import pytest
from awstier import REGION

from chaos.backends.aws_fault_parameters import KINDS, parameter_name, parameter_value, read_value
from counter.fault_setting import ERRORS, LATENCY, NO_FAULT, Decision, FaultSetting, from_env, parse

# (text, what lambda-latency makes of it, what lambda-errors makes of it)
TEXTS = [
    (None, None, None),
    ("", None, None),
    ("not json", None, None),
    ("[1, 2]", None, None),
    ("{}", None, None),
    ('{"percent": 50}', None, None),
    ('{"delay_ms": 300, "percent": 50.0}', {"delay_ms": 300, "percent": 50.0}, None),
    ('{"delay_ms": "300"}', {"delay_ms": 300, "percent": 100.0}, None),
    ('{"delay_ms": 300, "percent": 0}', None, None),
    ('{"delay_ms": null, "percent": 10}', None, None),
    ('{"status": 503, "percent": 20.0, "future": true}', None, {"status": 503, "percent": 20.0}),
    ('{"status": "x", "percent": 20.0}', None, None),
    ('{"status": 500}', None, {"status": 500, "percent": 100.0}),
    ('{"status": 502, "percent": "abc"}', None, None),
    # infinite numbers: int() raises OverflowError, which must mean "no fault", not a failed invocation
    ('{"delay_ms": 1e400}', None, None),
    ('{"status": Infinity}', None, None),
    ('{"delay_ms": -Infinity, "status": NaN}', None, None),
    # a status the writer never writes (it takes 400-599): a 200 would acknowledge an unapplied increment
    ('{"status": 200, "percent": 50}', None, None),
    ('{"status": 600}', None, None),
    ('{"status": 399.9}', None, None),
    ('{"status": 400}', None, {"status": 400, "percent": 100.0}),
    ('{"status": 599}', None, {"status": 599, "percent": 100.0}),
]


@pytest.mark.parametrize(("text", "latency", "errors"), TEXTS)
def test_parsing_is_lenient(text: str | None, latency: Any, errors: Any) -> None:
    assert parse(LATENCY, text) == latency
    assert parse(ERRORS, text) == errors
    assert parse("other-kind", text) is None


def test_the_chaos_backend_reads_with_the_handlers_parser() -> None:
    assert (LATENCY, ERRORS) == KINDS  # the same kind names on both sides
    for text, latency, errors in TEXTS:
        assert read_value(LATENCY, text) == latency and read_value(ERRORS, text) == errors, text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ssm(aws: None) -> Any:
    return boto3.client("ssm", region_name=REGION)


def test_the_backends_parameters_are_read_and_cached_for_a_second(ssm: Any) -> None:
    clock = Clock()
    setting = FaultSetting("counter", client=ssm, clock=clock, rng=lambda: 0.5)
    assert setting.names == {
        LATENCY: parameter_name("/chaoscheck", "counter", LATENCY),
        ERRORS: parameter_name("/chaoscheck", "counter", ERRORS),
    }
    assert setting.decide() == NO_FAULT  # absent parameters: no fault
    ssm.put_parameter(
        Name=setting.names[ERRORS],
        Value=parameter_value(ERRORS, {"status": 503, "percent": 60}),
        Type="String",
    )
    ssm.put_parameter(
        Name=setting.names[LATENCY],
        Value=parameter_value(LATENCY, {"delay": 0.3, "percent": 40}),
        Type="String",
    )
    assert setting.decide() == NO_FAULT  # still the cached "none"
    assert setting.reads == 1
    clock.now += 1.0
    # rng 0.5 -> 50: under 60 % (errors), not under 40 % (latency)
    assert setting.decide() == Decision(0.0, 503)
    assert setting.current() == {
        LATENCY: {"delay_ms": 300, "percent": 40.0},
        ERRORS: {"status": 503, "percent": 60.0},
    }
    for _ in range(50):
        setting.decide()
    assert setting.reads == 2  # one GetParameters for both, once per second
    ssm.delete_parameter(Name=setting.names[ERRORS])
    clock.now += 1.5
    assert setting.decide() == NO_FAULT
    lucky = FaultSetting("counter", client=ssm, clock=clock, rng=lambda: 0.1)
    assert lucky.decide() == Decision(0.3, None)


def test_a_custom_prefix_and_an_unreadable_value(ssm: Any) -> None:
    setting = FaultSetting("fn", "/team/chaos", client=ssm, rng=lambda: 0.0)
    ssm.put_parameter(Name="/team/chaos/fn/lambda-errors", Value="{broken", Type="String")
    ssm.put_parameter(Name="/team/chaos/fn/lambda-latency", Value='{"delay_ms": 20}', Type="String")
    assert setting.decide() == Decision(0.02, None)  # percent defaults to 100


def test_a_failed_read_means_no_fault_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def get_parameters(self, **kwargs: Any) -> Any:
            raise RuntimeError("AccessDeniedException: not allowed")

    setting = FaultSetting("counter", client=Broken())
    with caplog.at_level(logging.WARNING, logger="counter.fault_setting"):
        assert setting.decide() == NO_FAULT
    assert "unreadable, assuming none" in caplog.text and "AccessDenied" in caplog.text


def test_only_configured_functions_read_faults() -> None:
    assert from_env({}) is None  # the local stack: its pool injects the faults itself
    assert from_env({"AWS_LAMBDA_FUNCTION_NAME": "chaoscheck-counter"}) is None
    setting = from_env({"CHAOSCHECK_FAULT_PREFIX": "/chaoscheck", "AWS_LAMBDA_FUNCTION_NAME": "f"})
    assert setting is not None and setting.names[ERRORS] == "/chaoscheck/f/lambda-errors"
    with pytest.raises(RuntimeError, match="AWS_LAMBDA_FUNCTION_NAME"):
        from_env({"CHAOSCHECK_FAULT_PREFIX": "/chaoscheck"})
    with pytest.raises(ValueError, match="prefix"):
        FaultSetting("f", "chaoscheck")
