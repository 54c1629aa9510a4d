"""What the AWS backend refuses to touch: untagged resources, other accounts and regions."""

from __future__ import annotations

import boto3
import pytest
from aws_stack import ACCOUNT, FUNCTION, GROUP, REGION, Stack

from chaos.backends import Injection, InjectionError
from chaos.backends.aws import AwsBackend, alarm_state

FLEET_FAULTS = [
    ("terminate-instance", {"count": 1}),
    ("stop-instance", {"count": 1}),
    ("set-capacity", {"desired": 2}),
]
FUNCTION_FAULTS = [
    ("throttle-lambda", {"reserved_concurrency": 0}),
    ("lambda-latency", {"delay": 0.2}),
    ("lambda-errors", {"status": 500}),
]

# the allow tag ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "params"), FLEET_FAULTS)
def test_an_untagged_group_is_refused_unless_allowed(stack: Stack, action: str, params: dict) -> None:
    stack.group(tags={"team": "counter"})
    before = stack.in_service()
    with pytest.raises(InjectionError, match=f"refused: group {GROUP} is not tagged chaoscheck:allowed=true"):
        AwsBackend(stack.session, group_name=GROUP).plan(action, params)
    assert stack.in_service() == before and stack.group_state()["DesiredCapacity"] == 3
    AwsBackend(stack.session, group_name=GROUP, allow_untagged=True).inject(action, params)


@pytest.mark.parametrize(("action", "params"), FUNCTION_FAULTS)
def test_an_untagged_function_is_refused_unless_allowed(stack: Stack, action: str, params: dict) -> None:
    stack.function(tags={"chaoscheck:allowed": "false"})
    with pytest.raises(
        InjectionError, match=f"refused: function {FUNCTION} is not tagged chaoscheck:allowed=true"
    ):
        AwsBackend(stack.session, function_name=FUNCTION).plan(action, params)
    assert stack.reserved() is None
    AwsBackend(stack.session, function_name=FUNCTION, allow_untagged=True).inject(action, params)


def test_instances_must_carry_the_tag_when_ec2_acts_on_them(stack: Stack) -> None:
    stack.group(propagate=False)  # the group is tagged, its instances are not
    backend = AwsBackend(stack.session, group_name=GROUP, seed=1)
    for action in ("stop-instance", "terminate-instance"):
        with pytest.raises(
            InjectionError, match=f"refused: instance\\(s\\) i-.* of group {GROUP} are not tagged"
        ):
            backend.plan(action, {"count": 1})
    # the group terminates its own instances, and sets its own capacity: the group's tag is what counts
    backend.plan("terminate-instance", {"count": 1, "mode": "asg"})
    backend.plan("set-capacity", {"desired": 1})


def test_a_group_by_tags(stack: Stack) -> None:
    stack.group("blue", tags={"chaoscheck:allowed": "true", "colour": "blue"})
    stack.group("green", tags={"chaoscheck:allowed": "true", "colour": "green"}, desired=2)
    backend = AwsBackend(stack.session)
    assert (
        backend.plan("set-capacity", {"desired": 1, "target": {"tags": {"colour": "green"}}}).target
        == "green"
    )
    with pytest.raises(
        InjectionError, match="expected one Auto Scaling group tagged colour=red in us-east-1, found 0"
    ):
        backend.plan("set-capacity", {"desired": 1, "target": {"tags": {"colour": "red"}}})
    with pytest.raises(
        InjectionError, match="expected an Auto Scaling group named red in us-east-1, found none"
    ):
        backend.plan("set-capacity", {"desired": 1, "target": {"name": "red"}})
    with pytest.raises(InjectionError, match=r"expected a group: give target\.name or target\.tags"):
        backend.plan("set-capacity", {"desired": 1})


# account and region allow-lists ----------------------------------------------------------------------


def test_the_account_allow_list(counter_stack: Stack) -> None:
    allowed = AwsBackend(counter_stack.session, function_name=FUNCTION, accounts=[ACCOUNT, "111111111111"])
    allowed.rollback("throttle-lambda", allowed.inject("throttle-lambda", {}))
    refused = AwsBackend(counter_stack.session, function_name=FUNCTION, accounts=["111111111111"])
    with pytest.raises(
        InjectionError, match=f"^refused: account {ACCOUNT} is not in the allowed accounts 111111111111$"
    ):
        refused.plan("throttle-lambda", {})
    assert counter_stack.reserved() is None


def test_the_region_allow_list(counter_stack: Stack) -> None:
    refused = AwsBackend(counter_stack.session, function_name=FUNCTION, regions=["eu-west-1", "eu-central-1"])
    with pytest.raises(
        InjectionError,
        match=r"^refused: region us-east-1 is not in the allowed regions eu-west-1, eu-central-1$",
    ):
        refused.plan("throttle-lambda", {})
    AwsBackend(counter_stack.session, function_name=FUNCTION, regions=[REGION]).plan("throttle-lambda", {})


def test_a_rollback_never_restores_in_another_region_or_account(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    injection = backend.inject("throttle-lambda", {"reserved_concurrency": 0})
    elsewhere = AwsBackend(counter_stack.session, region="eu-west-1", function_name=FUNCTION)
    with pytest.raises(
        InjectionError,
        match="refused: the fault was injected in region us-east-1, this backend is in eu-west-1",
    ):
        elsewhere.rollback("throttle-lambda", injection)
    other_account = Injection(injection.target, {**(injection.undo or {}), "account": "999999999999"})
    message = (
        f"refused: the fault was injected in account 999999999999, the credentials are for account {ACCOUNT}"
    )
    with pytest.raises(InjectionError, match=message):
        backend.rollback("throttle-lambda", other_account)
    assert counter_stack.reserved() == 0  # neither touched anything
    backend.rollback("throttle-lambda", injection)
    assert counter_stack.reserved() is None


def test_no_region_is_refused_with_one_line(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    backend = AwsBackend(function_name=FUNCTION)
    with pytest.raises(
        InjectionError,
        match=r"^expected an AWS region \(--region, AWS_REGION or AWS_DEFAULT_REGION\), got none$",
    ):
        backend.plan("throttle-lambda", {})


def test_unknown_actions_and_bad_parameters_are_one_line(backend: AwsBackend) -> None:
    with pytest.raises(InjectionError, match="the aws backend has no action 'reboot'"):
        backend.plan("reboot", {})
    with pytest.raises(
        InjectionError, match=r"^reserved_concurrency: Input should be greater than or equal to 0, got -1$"
    ):
        backend.plan("throttle-lambda", {"reserved_concurrency": -1})


def test_the_backend_carries_out_every_registered_action() -> None:
    from chaos.actions import ACTIONS

    assert AwsBackend.actions == frozenset(ACTIONS) and len(ACTIONS) == 6
    assert AwsBackend.name == "aws"


# stop conditions: CloudWatch alarms ------------------------------------------------------------------


def test_alarm_state_from_a_session_a_client_or_the_backend(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    cloudwatch = counter_stack.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="counter-errors", MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="counter-errors", StateValue="OK", StateReason="test")
    assert alarm_state(counter_stack.session, "counter-errors") == "OK"
    cloudwatch.set_alarm_state(AlarmName="counter-errors", StateValue="ALARM", StateReason="test")
    assert alarm_state(cloudwatch, "counter-errors") == "ALARM"
    assert alarm_state(backend, "counter-errors") == "ALARM"
    assert backend.alarm_state("counter-errors") == "ALARM"
    with pytest.raises(InjectionError, match="expected a CloudWatch alarm named nope, found none"):
        alarm_state(boto3.Session(region_name=REGION), "nope")
