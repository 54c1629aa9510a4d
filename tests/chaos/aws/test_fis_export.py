"""The FIS export: the mapping of each fault, the messages for the rest, and a template FIS (moto) takes."""

from __future__ import annotations

import pytest
from aws_stack import Stack

from chaos.fis_export import fis_template, iso_duration
from chaos.scenario import parse_scenario

ROLE = "arn:aws:iam::123456789012:role/chaoscheck-fis"
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:counter-5xx"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:counter"

SCENARIO = """
version: 1
name: fis-mix
description: every action once
load: {users: 5, duration: 120s}
faults:
  - {at: 12s, action: terminate-instance, count: 1, settle: 10s}
  - {at: 30s, action: stop-instance, percent: 50, duration: 90s, target: {name: counter-fleet}}
  - {at: 0s, action: lambda-latency, delay: 300ms, percent: 50, duration: 20s}
  - {at: 45.5s, action: lambda-errors, status: 502, percent: 20, duration: 1m, target: {tags: {app: counter}}}
  - {at: 40s, action: throttle-lambda, reserved_concurrency: 0, duration: 5s}
  - {at: 50s, action: set-capacity, desired: 1, duration: 10s}
  - {at: 60s, action: terminate-instance, mode: asg, count: 1, settle: 10s}
  - {at: 80s, action: terminate-instance, instance_ids: [i-0123456789abcdef0], settle: 10s}
safety:
  max_share: 0.5
  stop_conditions:
    - {alarm: counter-5xx}
    - {alarm: not-mapped}
    - {alarm: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:by-arn"}
    - {metric: error_rate, above: 0.2}
"""


@pytest.fixture
def exported() -> tuple[dict, list[str]]:
    return fis_template(parse_scenario(SCENARIO), role_arn=ROLE, alarm_arns={"counter-5xx": ALARM_ARN})


def test_the_faults_fis_can_run_are_mapped(exported: tuple[dict, list[str]]) -> None:
    template, _ = exported
    actions, targets = template["actions"], template["targets"]
    assert sorted(actions) == [
        "fault-0-terminate-instance", "fault-1-stop-instance", "fault-2-lambda-latency",
        "fault-3-lambda-errors", "wait-0", "wait-1", "wait-3",
    ]  # fmt: skip
    assert actions["wait-0"] == {
        "actionId": "aws:fis:wait",
        "description": "until faults[0] is due, 12s after the start",
        "parameters": {"duration": "PT12S"},
    }
    assert actions["fault-0-terminate-instance"] == {
        "actionId": "aws:ec2:terminate-instances",
        "targets": {"Instances": "fault-0-instances"},
        "startAfter": ["wait-0"],
        "description": "chaoscheck faults[0] terminate-instance at 12s",
    }
    assert targets["fault-0-instances"] == {
        "resourceType": "aws:ec2:instance",
        "resourceTags": {"chaoscheck:allowed": "true"},
        "filters": [{"path": "State.Name", "values": ["running"]}],
        "selectionMode": "COUNT(1)",
    }
    stop = actions["fault-1-stop-instance"]
    assert stop["actionId"] == "aws:ec2:stop-instances" and stop["startAfter"] == ["wait-1"]
    assert stop["parameters"] == {
        "startInstancesAfterDuration": "PT1M30S",
        "completeIfInstancesTerminated": "true",
    }
    assert targets["fault-1-instances"]["selectionMode"] == "PERCENT(50)"
    assert targets["fault-1-instances"]["resourceTags"] == {
        "chaoscheck:allowed": "true", "aws:autoscaling:groupName": "counter-fleet",
    }  # fmt: skip
    latency = actions["fault-2-lambda-latency"]
    assert "startAfter" not in latency  # at 0s: starts with the experiment
    assert latency["actionId"] == "aws:lambda:invocation-add-delay"
    assert latency["targets"] == {"Functions": "fault-2-function"}
    assert latency["parameters"] == {
        "duration": "PT20S",
        "startupDelayMilliseconds": "300",
        "invocationPercentage": "50",
    }
    errors = actions["fault-3-lambda-errors"]
    assert errors["actionId"] == "aws:lambda:invocation-http-integration-response"
    assert errors["parameters"] == {
        "duration": "PT1M",
        "statusCode": "502",
        "contentTypeHeader": "application/json",
        "preventExecution": "true",
        "invocationPercentage": "20",
    }
    assert actions["wait-3"]["parameters"] == {"duration": "PT46S"}
    assert targets["fault-3-function"] == {
        "resourceType": "aws:lambda:function",
        "resourceTags": {"chaoscheck:allowed": "true", "app": "counter"},
        "selectionMode": "ALL",
    }


def test_stop_conditions_roles_and_tags(exported: tuple[dict, list[str]]) -> None:
    template, _ = exported
    assert template["stopConditions"] == [
        {"source": "aws:cloudwatch:alarm", "value": ALARM_ARN},
        {"source": "aws:cloudwatch:alarm", "value": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:by-arn"},
    ]
    assert template["roleArn"] == ROLE
    assert template["tags"] == {"Name": "chaoscheck-fis-mix", "chaoscheck:scenario": "fis-mix"}
    assert template["description"] == "chaoscheck scenario fis-mix: every action once"


def test_what_cannot_be_mapped_is_named_one_line_each(exported: tuple[dict, list[str]]) -> None:
    _, messages = exported
    assert messages == [
        "faults[3] lambda-errors at 45.5s: starts at PT46S: FIS waits whole seconds",
        "faults[4] throttle-lambda at 40s: not exported: FIS has no Lambda throttle action (throttling is "
        "reserved concurrency, which chaoscheck's aws backend sets itself)",
        "faults[5] set-capacity at 50s: not exported: FIS has no action that sets an Auto Scaling group's "
        "desired capacity",
        "faults[6] terminate-instance at 60s: not exported: mode asg (the group terminating its own "
        "instance) has no FIS action; aws:ec2:terminate-instances is mode ec2",
        "faults[7] terminate-instance at 80s: not exported: instance_ids name today's instances; a template "
        "selects by tag (use count or percent)",
        "safety.stop_conditions[1]: alarm not-mapped not exported: give its ARN in alarm_arns",
        "safety.stop_conditions[3]: error_rate above 0.2 not exported: it is computed from the live ledger; "
        "FIS stops only on CloudWatch alarms",
    ]
    assert all("\n" not in message for message in messages)


def test_fis_takes_the_template_and_gives_it_back(stack: Stack, exported: tuple[dict, list[str]]) -> None:
    template, _ = exported
    fis = stack.client("fis")
    created = fis.create_experiment_template(**template)["experimentTemplate"]
    stored = fis.get_experiment_template(id=created["id"])["experimentTemplate"]
    for key in (
        "description",
        "targets",
        "actions",
        "stopConditions",
        "roleArn",
        "tags",
        "experimentOptions",
    ):
        assert stored[key] == template[key], key


def test_a_function_arn_pins_the_function_and_approximations_are_reported() -> None:
    scenario = parse_scenario("""
version: 1
name: fis-lambda
load: {users: 1, duration: 60s}
faults:
  - {at: 1s, action: lambda-errors, status: 503, percent: 12.5, duration: 10s, target: {name: counter}}
  - {at: 20s, action: lambda-latency, delay: 2s, duration: 10s, target: {name: counter}}
  - {at: 5s, action: stop-instance, percent: 33.3, duration: 10s}
""")  # fmt: skip
    template, messages = fis_template(
        scenario, role_arn=ROLE, function_arn=FUNCTION_ARN, group_tag=("team", "counter")
    )
    assert template["targets"]["fault-0-function"] == {
        "resourceType": "aws:lambda:function", "resourceArns": [FUNCTION_ARN], "selectionMode": "ALL",
    }  # fmt: skip
    assert template["targets"]["fault-2-instances"]["resourceTags"] == {"team": "counter"}
    assert template["targets"]["fault-2-instances"]["selectionMode"] == "PERCENT(33)"
    assert template["actions"]["fault-0-lambda-errors"]["parameters"]["invocationPercentage"] == "12"
    assert template["stopConditions"] == [{"source": "none"}]
    assert template["actions"]["fault-0-lambda-errors"]["parameters"]["statusCode"] == "503"
    assert messages == [
        "faults[0] lambda-errors at 1s: percent 12.5 exported as invocationPercentage 12: "
        "FIS takes whole percents",
        "faults[2] stop-instance at 5s: percent 33.3 exported as PERCENT(33): FIS takes whole percents",
    ]
    by_tag, messages = fis_template(scenario, role_arn=ROLE)
    assert by_tag["targets"]["fault-1-function"]["resourceTags"] == {"chaoscheck:allowed": "true"}
    assert (
        "faults[1] lambda-latency at 20s: function counter selected by tag, not by name: "
        "pass function_arn to pin it" in messages
    )


def test_beyond_the_safety_share_or_nothing_at_all() -> None:
    scenario = parse_scenario("""
version: 1
name: fis-none
load: {users: 1, duration: 60s}
safety: {max_share: 0.25}
faults:
  - {at: 1s, action: terminate-instance, percent: 50, settle: 10s}
  - {at: 1s, action: throttle-lambda, duration: 10s}
""")  # fmt: skip
    template, messages = fis_template(scenario, role_arn=ROLE)
    assert template["actions"] == {} and template["targets"] == {}
    assert messages[0] == (
        "faults[0] terminate-instance at 1s: not exported: percent 50 is above safety.max_share (25%), "
        "which FIS would not enforce"
    )
    assert (
        messages[-1]
        == "no fault of the scenario could be exported: the template has no action, FIS refuses it"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "PT1S"), (1, "PT1S"), (5, "PT5S"), (45.5, "PT46S"), (60, "PT1M"), (90, "PT1M30S"), (3600, "PT1H"),
     (3725, "PT1H2M5S")],
)  # fmt: skip
def test_iso_durations(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text
