"""Export a scenario's faults as an AWS Fault Injection Service (FIS) experiment template.

For teams that want FIS to carry out the faults (its IAM model, its console, its stop conditions)
while chaoscheck drives the load and judges the run. ``fis_template`` returns the keyword arguments
of ``fis.create_experiment_template`` (without ``clientToken``, which boto3 fills in) and one line per
fault or stop condition that FIS cannot express or only approximates. What maps:

- ``terminate-instance`` (mode ``ec2``, ``count`` or ``percent``): ``aws:ec2:terminate-instances`` on
  instances selected by tag with ``COUNT(n)`` or ``PERCENT(p)``;
- ``stop-instance`` (``count`` or ``percent``): ``aws:ec2:stop-instances`` with
  ``startInstancesAfterDuration`` set to the fault's ``duration``;
- ``lambda-latency``: ``aws:lambda:invocation-add-delay`` (``startupDelayMilliseconds``,
  ``invocationPercentage``);
- ``lambda-errors``: ``aws:lambda:invocation-http-integration-response`` (``statusCode`` = the
  fault's ``status``, ``contentTypeHeader`` ``application/json``, ``preventExecution`` true,
  ``invocationPercentage``): the function answers that status without running, as chaoscheck's
  fault does. (``aws:lambda:invocation-error`` fails the invocation instead, which a function URL
  answers with 502 whatever the status.) Parameters as in the FIS user guide's action reference.

Not mapped (each reported): ``throttle-lambda`` (FIS has no throttle; it is reserved concurrency),
``set-capacity`` (no FIS action sets a group's desired capacity), ``terminate-instance`` in mode
``asg`` (FIS only terminates through EC2) and any fleet fault given by ``instance_ids`` (a template
outlives today's instances; it selects by tag). Each fault starts after an ``aws:fis:wait`` of its
``at`` offset, so the experiment must be started when the load starts. A scenario's ``alarm`` stop
conditions become ``aws:cloudwatch:alarm`` stop conditions (with the ARNs given in ``alarm_arns``);
metric ones (computed from the live ledger) have no FIS form. The Lambda actions need the FIS Lambda
extension layer on the function (see ``docs/chaos-aws.md``).
"""

from __future__ import annotations

import math
from typing import Any

from chaos.actions import (
    ALLOW_TAG,
    LAMBDA_ERRORS,
    LAMBDA_LATENCY,
    SET_CAPACITY,
    STOP_INSTANCE,
    TERMINATE_INSTANCE,
    THROTTLE_LAMBDA,
    InstanceCount,
    LambdaErrorsParams,
    LambdaLatencyParams,
    StopInstanceParams,
    TargetSelector,
    TerminateInstanceParams,
)
from chaos.scenario import Fault, Scenario

__all__ = ["FIS_ACTIONS", "fis_template", "iso_duration"]

FIS_ACTIONS = {
    TERMINATE_INSTANCE.name: "aws:ec2:terminate-instances",
    STOP_INSTANCE.name: "aws:ec2:stop-instances",
    LAMBDA_LATENCY.name: "aws:lambda:invocation-add-delay",
    LAMBDA_ERRORS.name: "aws:lambda:invocation-http-integration-response",
}
"""The FIS action each exportable chaoscheck action becomes."""

WAIT_ACTION = "aws:fis:wait"
EC2_INSTANCE = "aws:ec2:instance"
LAMBDA_FUNCTION = "aws:lambda:function"
GROUP_NAME_TAG = "aws:autoscaling:groupName"
"""The tag EC2 Auto Scaling puts on every instance it launches: how a template picks one group's."""

MAX_STARTUP_DELAY_MS = 900_000
"""``startupDelayMilliseconds`` of ``aws:lambda:invocation-add-delay`` is 0-900,000 (FIS user guide)."""
ERROR_CONTENT_TYPE = "application/json"
"""``contentTypeHeader`` of a ``lambda-errors`` answer: the counter's error bodies are JSON."""

_UNMAPPED = {
    THROTTLE_LAMBDA.name: "FIS has no Lambda throttle action (throttling is reserved concurrency, which "
    "chaoscheck's aws backend sets itself)",
    SET_CAPACITY.name: "FIS has no action that sets an Auto Scaling group's desired capacity",
}


def iso_duration(seconds: float) -> str:
    """``PT1M30S`` for 90 seconds: ISO-8601, whole seconds (FIS takes no fractions), at least ``PT1S``."""
    total = max(1, math.ceil(seconds - 1e-9))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (
        "PT"
        + (f"{hours}H" if hours else "")
        + (f"{minutes}M" if minutes else "")
        + (f"{secs}S" if secs else "")
    )
    return text


def fis_template(
    scenario: Scenario,
    *,
    role_arn: str,
    group_tag: tuple[str, str] = ALLOW_TAG,
    function_arn: str | None = None,
    alarm_arns: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The FIS experiment template for ``scenario`` and the lines about what could not be mapped.

    ``role_arn`` is the role FIS assumes. Instances are selected by ``group_tag`` (the tag chaoscheck
    requires, propagated from the group), plus a fault's ``target.tags`` and, when it names its group,
    ``aws:autoscaling:groupName``. The function is ``function_arn`` when given, else selected by the
    same tags. ``alarm_arns`` maps the scenario's alarm names to ARNs (a name that is already an ARN
    needs no entry). The template is valid for FIS only when it has at least one action; the
    messages then say why there is none.
    """
    builder = _Builder(scenario, group_tag=group_tag, function_arn=function_arn)
    for fault_id, fault in enumerate(scenario.faults):
        builder.add(fault_id, fault)
    stop_conditions, stop_messages = _stop_conditions(scenario, alarm_arns or {})
    messages = builder.messages + stop_messages
    if not builder.actions:
        messages.append(
            "no fault of the scenario could be exported: the template has no action, FIS refuses it"
        )
    description = f"chaoscheck scenario {scenario.name}" + (
        f": {scenario.description}" if scenario.description else ""
    )
    template: dict[str, Any] = {
        "description": description[:512],
        "targets": builder.targets,
        "actions": builder.actions,
        "stopConditions": stop_conditions,
        "roleArn": role_arn,
        "tags": {"Name": f"chaoscheck-{scenario.name}", "chaoscheck:scenario": scenario.name},
        "experimentOptions": {"accountTargeting": "single-account", "emptyTargetResolutionMode": "fail"},
    }
    return template, messages


class _Builder:
    """Accumulates the targets and actions of the template, and the messages about each fault."""

    def __init__(self, scenario: Scenario, *, group_tag: tuple[str, str], function_arn: str | None) -> None:
        self.scenario = scenario
        self.group_tag = group_tag
        self.function_arn = function_arn
        self.targets: dict[str, Any] = {}
        self.actions: dict[str, Any] = {}
        self.messages: list[str] = []

    def add(self, fault_id: int, fault: Fault) -> None:
        label = f"faults[{fault_id}] {fault.action} at {fault.at:g}s"
        if fault.action in _UNMAPPED:
            self.messages.append(f"{label}: not exported: {_UNMAPPED[fault.action]}")
            return
        params = fault.params()
        if fault.action in (TERMINATE_INSTANCE.name, STOP_INSTANCE.name):
            action = self._fleet_action(fault_id, fault, params, label)
        elif fault.action in (LAMBDA_LATENCY.name, LAMBDA_ERRORS.name):
            action = self._function_action(fault_id, fault, params, label)
        else:  # an action registered after this exporter was written
            self.messages.append(f"{label}: not exported: no FIS mapping is known for {fault.action}")
            return
        if action is None:
            return
        action["description"] = f"chaoscheck faults[{fault_id}] {fault.action} at {fault.at:g}s"
        if fault.at > 0:
            wait = f"wait-{fault_id}"
            self.actions[wait] = {
                "actionId": WAIT_ACTION,
                "description": f"until faults[{fault_id}] is due, {fault.at:g}s after the start",
                "parameters": {"duration": iso_duration(fault.at)},
            }
            action["startAfter"] = [wait]
            if fault.at != math.ceil(fault.at):
                self.messages.append(f"{label}: starts at {iso_duration(fault.at)}: FIS waits whole seconds")
        self.actions[f"fault-{fault_id}-{fault.action}"] = action

    # fleet faults ------------------------------------------------------------------------------------

    def _fleet_action(
        self, fault_id: int, fault: Fault, params: dict[str, Any], label: str
    ) -> dict[str, Any] | None:
        model = TerminateInstanceParams if fault.action == TERMINATE_INSTANCE.name else StopInstanceParams
        checked = model.model_validate(params)
        if isinstance(checked, TerminateInstanceParams) and checked.mode == "asg":
            self.messages.append(
                f"{label}: not exported: mode asg (the group terminating its own instance) has no FIS "
                "action; aws:ec2:terminate-instances is mode ec2"
            )
            return None
        selection = self._selection_mode(checked, label)
        if selection is None:
            return None
        target = f"fault-{fault_id}-instances"
        self.targets[target] = {
            "resourceType": EC2_INSTANCE,
            "resourceTags": self._tags(checked.target, group=True),
            "filters": [{"path": "State.Name", "values": ["running"]}],
            "selectionMode": selection,
        }
        action: dict[str, Any] = {"actionId": FIS_ACTIONS[fault.action], "targets": {"Instances": target}}
        if fault.action == STOP_INSTANCE.name:
            assert fault.duration is not None  # a lasting action always has one (the scenario checks)
            action["parameters"] = {
                "startInstancesAfterDuration": iso_duration(fault.duration),
                # the group may replace a stopped instance; that is the group's repair, not a failure
                "completeIfInstancesTerminated": "true",
            }
        return action

    def _selection_mode(self, checked: InstanceCount, label: str) -> str | None:
        if checked.instance_ids is not None:
            self.messages.append(
                f"{label}: not exported: instance_ids name today's instances; a template selects by tag "
                "(use count or percent)"
            )
            return None
        if checked.percent is None:
            return f"COUNT({checked.count if checked.count is not None else 1})"
        max_percent = self.scenario.safety.max_share * 100
        if checked.percent > max_percent + 1e-9:
            self.messages.append(
                f"{label}: not exported: percent {checked.percent:g} is above safety.max_share "
                f"({max_percent:g}%), which FIS would not enforce"
            )
            return None
        whole = max(1, math.floor(checked.percent))
        if whole != checked.percent:
            self.messages.append(
                f"{label}: percent {checked.percent:g} exported as PERCENT({whole}): FIS takes whole percents"
            )
        return f"PERCENT({whole})"

    # function faults ---------------------------------------------------------------------------------

    def _function_action(
        self, fault_id: int, fault: Fault, params: dict[str, Any], label: str
    ) -> dict[str, Any] | None:
        assert fault.duration is not None  # both are lasting actions (the scenario checks)
        parameters = {"duration": iso_duration(fault.duration)}
        if fault.action == LAMBDA_LATENCY.name:
            latency = LambdaLatencyParams.model_validate(params)
            delay_ms = round(latency.delay * 1000)
            if delay_ms > MAX_STARTUP_DELAY_MS:
                self.messages.append(
                    f"{label}: not exported: delay {delay_ms} ms is above FIS's {MAX_STARTUP_DELAY_MS} ms"
                )
                return None
            parameters["startupDelayMilliseconds"] = str(delay_ms)
            selector, percent = latency.target, latency.percent
        else:
            errors = LambdaErrorsParams.model_validate(params)
            parameters["statusCode"] = str(errors.status)
            parameters["contentTypeHeader"] = ERROR_CONTENT_TYPE
            parameters["preventExecution"] = "true"  # like chaoscheck: a failed invocation never applies
            selector, percent = errors.target, errors.percent
        whole = min(100, max(1, round(percent)))
        if whole != percent:
            self.messages.append(
                f"{label}: percent {percent:g} exported as invocationPercentage {whole}: "
                "FIS takes whole percents"
            )
        parameters["invocationPercentage"] = str(whole)
        target = f"fault-{fault_id}-function"
        if self.function_arn is not None:
            self.targets[target] = {
                "resourceType": LAMBDA_FUNCTION,
                "resourceArns": [self.function_arn],
                "selectionMode": "ALL",
            }
        else:
            if selector.name is not None:
                self.messages.append(
                    f"{label}: function {selector.name} selected by tag, not by name: "
                    "pass function_arn to pin it"
                )
            self.targets[target] = {
                "resourceType": LAMBDA_FUNCTION,
                "resourceTags": self._tags(selector, group=False),
                "selectionMode": "ALL",
            }
        return {
            "actionId": FIS_ACTIONS[fault.action],
            "targets": {"Functions": target},
            "parameters": parameters,
        }

    def _tags(self, selector: TargetSelector, *, group: bool) -> dict[str, str]:
        key, value = self.group_tag
        tags = {key: value, **(selector.tags or {})}
        if group and selector.name is not None:
            tags[GROUP_NAME_TAG] = selector.name
        return tags


def _stop_conditions(
    scenario: Scenario, alarm_arns: dict[str, str]
) -> tuple[list[dict[str, str]], list[str]]:
    conditions: list[dict[str, str]] = []
    messages: list[str] = []
    for index, condition in enumerate(scenario.safety.stop_conditions):
        label = f"safety.stop_conditions[{index}]"
        if condition.alarm is not None:
            arn = alarm_arns.get(condition.alarm) or (
                condition.alarm if condition.alarm.startswith("arn:") else None
            )
            if arn is None:
                messages.append(f"{label}: alarm {condition.alarm} not exported: give its ARN in alarm_arns")
                continue
            conditions.append({"source": "aws:cloudwatch:alarm", "value": arn})
        else:
            messages.append(
                f"{label}: {condition.metric} above {condition.above:g} not exported: it is computed from "
                "the live ledger; FIS stops only on CloudWatch alarms"
            )
    return conditions or [{"source": "none"}], messages
