"""The AWS backend's function actions against moto: throttle-lambda, lambda-latency, lambda-errors."""

from __future__ import annotations

import json

import pytest
from aws_stack import ACCOUNT, FUNCTION, REGION, Stack

from chaos.backends import Injection, InjectionError
from chaos.backends.aws import AwsBackend
from chaos.backends.aws_fault_parameters import parameter_name, read_value

LATENCY = "/chaoscheck/counter/lambda-latency"
ERRORS = "/chaoscheck/counter/lambda-errors"

# throttle-lambda -------------------------------------------------------------------------------------


@pytest.mark.parametrize("previous", [None, 7, 0])
def test_throttle_restores_the_previous_reserved_concurrency_exactly(
    counter_stack: Stack, backend: AwsBackend, previous: int | None
) -> None:
    lam = counter_stack.client("lambda")
    if previous is not None:
        lam.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=previous)
    injection = backend.plan("throttle-lambda", {"reserved_concurrency": 0})
    assert injection == Injection(
        target=FUNCTION,
        undo={"function": FUNCTION, "reserved_concurrency": previous, "account": ACCOUNT, "region": REGION},
    )
    assert counter_stack.reserved() == previous  # planning changes nothing
    backend.apply("throttle-lambda", {"reserved_concurrency": 0}, injection)
    assert counter_stack.reserved() == 0
    assert backend.rollback("throttle-lambda", injection) == {"reserved_concurrency": previous, "replaced": 0}
    assert counter_stack.reserved() == previous
    # twice is harmless, and a None previous is restored by deleting the reservation, not by a number
    assert backend.rollback("throttle-lambda", injection) == {
        "reserved_concurrency": previous,
        "replaced": previous,
    }
    assert counter_stack.reserved() == previous
    if previous is None:  # no reservation at all, which no number means
        assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=FUNCTION)


def test_throttle_to_a_number(counter_stack: Stack, backend: AwsBackend) -> None:
    injection = backend.inject("throttle-lambda", {"reserved_concurrency": 3})
    assert counter_stack.reserved() == 3
    backend.rollback("throttle-lambda", injection)
    assert counter_stack.reserved() is None


def test_throttle_rollback_when_the_function_is_gone_closes_the_fault(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    injection = backend.inject("throttle-lambda", {"reserved_concurrency": 0})
    counter_stack.client("lambda").delete_function(FunctionName=FUNCTION)
    result = backend.rollback("throttle-lambda", injection)
    assert result["reason"] == f"function {FUNCTION} no longer exists"


def test_a_function_by_tags_or_by_name(stack: Stack) -> None:
    stack.function("blue", tags={"chaoscheck:allowed": "true", "colour": "blue"})
    stack.function("green", tags={"chaoscheck:allowed": "true", "colour": "green"})
    backend = AwsBackend(stack.session)
    assert backend.plan("throttle-lambda", {"target": {"tags": {"colour": "green"}}}).target == "green"
    assert backend.plan("throttle-lambda", {"target": {"name": "blue"}}).target == "blue"
    with pytest.raises(InjectionError, match="expected one Lambda function tagged chaoscheck:allowed=true in "
                       "us-east-1, found 2: blue, green"):  # fmt: skip
        backend.plan("throttle-lambda", {"target": {"tags": {"chaoscheck:allowed": "true"}}})
    with pytest.raises(InjectionError, match="expected function blue to carry the tags colour=green"):
        backend.plan("throttle-lambda", {"target": {"name": "blue", "tags": {"colour": "green"}}})
    with pytest.raises(InjectionError, match="expected a Lambda function named red in us-east-1, found none"):
        backend.plan("throttle-lambda", {"target": {"name": "red"}})
    with pytest.raises(InjectionError, match=r"expected a function: give target\.name or target\.tags"):
        backend.plan("throttle-lambda", {})


# lambda-latency and lambda-errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "params", "name", "value"),
    [
        ("lambda-latency", {"delay": 0.3, "percent": 50.0}, LATENCY, {"delay_ms": 300, "percent": 50.0}),
        ("lambda-latency", {"delay": 1.25}, LATENCY, {"delay_ms": 1250, "percent": 100.0}),
        ("lambda-errors", {"status": 503, "percent": 20.0}, ERRORS, {"status": 503, "percent": 20.0}),
        ("lambda-errors", {}, ERRORS, {"status": 500, "percent": 100.0}),
    ],
)
def test_fault_parameter_absent_then_set_then_absent(
    counter_stack: Stack, backend: AwsBackend, action: str, params: dict, name: str, value: dict
) -> None:
    injection = backend.plan(action, params)
    assert injection.target == FUNCTION
    assert injection.undo == {
        "function": FUNCTION, "parameter": name, "value": None, "type": None,
        "account": ACCOUNT, "region": REGION,
    }  # fmt: skip
    assert counter_stack.parameter(name) is None  # planning changes nothing
    backend.apply(action, params, injection)
    stored = counter_stack.parameter(name)
    assert stored is not None and json.loads(stored) == value
    assert read_value(action, stored) == value  # what the handler will make of it
    assert backend.rollback(action, injection) == {"parameter": name, "value": None, "replaced": stored}
    assert counter_stack.parameter(name) is None
    assert backend.rollback(action, injection) == {"parameter": name, "value": None, "replaced": None}
    assert counter_stack.parameter(name) is None


def test_fault_parameter_previous_value_is_restored_exactly(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    previous = '{"delay_ms": 5, "percent": 1.0, "note": "left by hand"}'
    counter_stack.client("ssm").put_parameter(Name=LATENCY, Value=previous, Type="String")
    injection = backend.inject("lambda-latency", {"delay": 2.0})
    assert injection.undo is not None and injection.undo["value"] == previous
    assert json.loads(counter_stack.parameter(LATENCY) or "") == {"delay_ms": 2000, "percent": 100.0}
    backend.rollback("lambda-latency", injection)
    assert counter_stack.parameter(LATENCY) == previous
    backend.rollback("lambda-latency", injection)
    assert counter_stack.parameter(LATENCY) == previous


def test_the_two_fault_kinds_are_separate_parameters(counter_stack: Stack, backend: AwsBackend) -> None:
    latency = backend.inject("lambda-latency", {"delay": 0.1})
    errors = backend.inject("lambda-errors", {"status": 502})
    assert counter_stack.parameter(LATENCY) and counter_stack.parameter(ERRORS)
    backend.rollback("lambda-latency", latency)
    assert counter_stack.parameter(LATENCY) is None and counter_stack.parameter(ERRORS)
    backend.rollback("lambda-errors", errors)
    assert counter_stack.parameter(ERRORS) is None


def test_a_secure_string_is_never_captured(counter_stack: Stack, backend: AwsBackend) -> None:
    counter_stack.client("ssm").put_parameter(Name=ERRORS, Value="hunter2", Type="SecureString")
    with pytest.raises(InjectionError, match=f"refused: parameter {ERRORS} is a SecureString"):
        backend.plan("lambda-errors", {})


def test_credential_like_text_is_never_captured(counter_stack: Stack, backend: AwsBackend) -> None:
    counter_stack.client("ssm").put_parameter(Name=ERRORS, Value="password=hunter2", Type="String")
    with pytest.raises(InjectionError, match="holds credential-like text"):
        backend.plan("lambda-errors", {})


def test_the_parameter_prefix_is_configurable(counter_stack: Stack) -> None:
    backend = AwsBackend(counter_stack.session, function_name=FUNCTION, parameter_prefix="/team/chaos")
    injection = backend.inject("lambda-errors", {"status": 500})
    assert counter_stack.parameter("/team/chaos/counter/lambda-errors") is not None
    backend.rollback("lambda-errors", injection)
    assert counter_stack.parameter("/team/chaos/counter/lambda-errors") is None
    with pytest.raises(ValueError, match="expected a parameter prefix such as /chaoscheck"):
        AwsBackend(counter_stack.session, parameter_prefix="chaos")


def test_parameter_names_and_a_lenient_reader() -> None:
    assert parameter_name("/chaoscheck", "counter", "lambda-errors") == ERRORS
    with pytest.raises(ValueError, match="expected one of lambda-latency, lambda-errors"):
        parameter_name("/chaoscheck", "counter", "throttle-lambda")
    assert read_value("lambda-errors", None) is None
    assert read_value("lambda-errors", "not json") is None
    assert read_value("lambda-errors", '{"status": 503, "percent": 0}') is None
    assert read_value("lambda-errors", '{"percent": 10}') is None
    assert read_value("lambda-latency", '{"delay_ms": 10, "extra": true}') == {
        "delay_ms": 10,
        "percent": 100.0,
    }
