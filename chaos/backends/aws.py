"""The AWS backend: the registered actions carried out with boto3 on a real (or emulated) account.

Every action follows the backend interface: ``plan`` reads (never changes) the current state, picks
the target and captures what rollback needs into ``Injection.undo``; ``apply`` makes the change;
``rollback`` restores ``undo`` exactly and may be repeated. The undo record is self-contained (group
or function, previous values, the account and region it was taken in), because after a crash it is
all ``chaoscheck rollback`` has: the journal line and this backend rebuilt from its ``descriptor()``.

Safety, before anything is touched (see ``docs/chaos-aws.md``):

- the caller's account (``sts:GetCallerIdentity``) must be in ``accounts`` and the region in
  ``regions`` when those allow-lists are given (the scenario's ``safety`` section);
- a group or function must carry ``chaoscheck:allowed=true`` (and so must the instances that EC2 is
  called on) unless ``allow_untagged``;
- fleet faults obey ``chaos.blast_radius``: never below the group's ``MinSize`` in service, never more
  than ``max_share`` of the in-service instances at once;
- a rollback refuses to run in another account or region than the injection's.

Each refusal is an ``InjectionError`` with one line; so is every AWS error.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from chaos.actions import (
    ACTIONS,
    LAMBDA_ERRORS,
    LAMBDA_LATENCY,
    SET_CAPACITY,
    STOP_INSTANCE,
    TERMINATE_INSTANCE,
    THROTTLE_LAMBDA,
    ActionParams,
    InstanceCount,
    LambdaErrorsParams,
    LambdaLatencyParams,
    SetCapacityParams,
    StopInstanceParams,
    TerminateInstanceParams,
    ThrottleLambdaParams,
)
from chaos.backends.aws_clients import CLIENT_CONFIG, AwsClients, aws_call, error_code, make_session, one_line
from chaos.backends.aws_fault_parameters import DEFAULT_PREFIX, check_prefix, parameter_name, parameter_value
from chaos.backends.aws_targets import Group, TargetFinder
from chaos.backends.interface import Backend, Injection, InjectionError
from chaos.blast_radius import DEFAULT_MAX_SHARE, choose_instances
from chaos.journal import redact

__all__ = ["AwsBackend", "alarm_state"]

log = logging.getLogger(__name__)

INSTANCE_WAIT_S = 180.0
"""How long a stop-instance rollback waits for instances still ``stopping`` before it starts them."""

_GONE_STATES = frozenset({"shutting-down", "terminated", "missing"})
_RUNNING_STATES = frozenset({"pending", "running"})


class AwsBackend(Backend):
    """Injects the registered faults into an AWS account: an Auto Scaling group and a Lambda function.

    ``session`` (or, without one, ``profile`` and ``region``) says where; ``region`` overrides the
    session's. ``group_name`` and ``function_name`` are the defaults when a fault names no target.
    ``seed`` seeds the choice of instances (pass the scenario's ``seed``). ``accounts`` and ``regions``
    are allow-lists (``None``: any). ``parameter_prefix`` roots the SSM fault parameters.
    ``instance_wait_s`` bounds how long a stop-instance rollback waits for instances still stopping.
    """

    name: ClassVar[str] = "aws"
    actions: ClassVar[frozenset[str]] = frozenset(ACTIONS)

    def __init__(
        self,
        session: boto3.Session | None = None,
        *,
        region: str | None = None,
        profile: str | None = None,
        group_name: str | None = None,
        function_name: str | None = None,
        allow_untagged: bool = False,
        max_share: float = DEFAULT_MAX_SHARE,
        seed: int | None = None,
        accounts: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        parameter_prefix: str = DEFAULT_PREFIX,
        instance_wait_s: float = INSTANCE_WAIT_S,
    ) -> None:
        if not 0 < max_share <= 1:
            raise ValueError(f"expected max_share in (0, 1], got {max_share!r}")
        if instance_wait_s < 0:
            raise ValueError(f"expected instance_wait_s >= 0, got {instance_wait_s!r}")
        self._session = session if session is not None else make_session(profile, region)
        self.profile = profile or _named_profile(self._session)
        self._clients = AwsClients(self._session, region)
        self.group_name = group_name
        self.function_name = function_name
        self.allow_untagged = bool(allow_untagged)
        self.max_share = float(max_share)
        self.seed = seed
        self.accounts = [str(a) for a in accounts] if accounts is not None else None
        self.regions = [str(r) for r in regions] if regions is not None else None
        self.parameter_prefix = check_prefix(parameter_prefix)
        self.instance_wait_s = float(instance_wait_s)
        self.poll_s = 5.0
        self._random = random.Random(seed)
        self._targets = TargetFinder(
            self._clients, group_name=group_name, function_name=function_name, allow_untagged=allow_untagged
        )
        self._planners: dict[str, Callable[[dict[str, Any]], Injection]] = {
            TERMINATE_INSTANCE.name: self._plan_terminate,
            STOP_INSTANCE.name: self._plan_stop,
            SET_CAPACITY.name: self._plan_capacity,
            THROTTLE_LAMBDA.name: self._plan_throttle,
            LAMBDA_LATENCY.name: functools.partial(self._plan_parameter, LAMBDA_LATENCY.name),
            LAMBDA_ERRORS.name: functools.partial(self._plan_parameter, LAMBDA_ERRORS.name),
        }
        self._appliers: dict[str, Callable[[dict[str, Any], Injection], None]] = {
            TERMINATE_INSTANCE.name: self._apply_terminate,
            STOP_INSTANCE.name: self._apply_stop,
            SET_CAPACITY.name: self._apply_capacity,
            THROTTLE_LAMBDA.name: self._apply_throttle,
            LAMBDA_LATENCY.name: functools.partial(self._apply_parameter, LAMBDA_LATENCY.name),
            LAMBDA_ERRORS.name: functools.partial(self._apply_parameter, LAMBDA_ERRORS.name),
        }
        self._rollbacks: dict[str, Callable[[Injection], dict[str, Any]]] = {
            TERMINATE_INSTANCE.name: self._rollback_terminate,
            STOP_INSTANCE.name: self._rollback_stop,
            SET_CAPACITY.name: self._rollback_capacity,
            THROTTLE_LAMBDA.name: self._rollback_throttle,
            LAMBDA_LATENCY.name: self._rollback_parameter,
            LAMBDA_ERRORS.name: self._rollback_parameter,
        }

    # the backend interface ---------------------------------------------------------------------------

    @property
    def region(self) -> str | None:
        return self._clients.region

    def plan(self, action: str, params: dict[str, Any]) -> Injection:
        return self._planners[self._supported(action)](params)

    def apply(self, action: str, params: dict[str, Any], injection: Injection) -> None:
        self._appliers[self._supported(action)](params, injection)

    def rollback(self, action: str, injection: Injection) -> dict[str, Any]:
        return self._rollbacks[self._supported(action)](injection)

    def descriptor(self) -> dict[str, Any]:
        """Where and how: names, region, profile name and limits. Never a credential or a key."""
        return {
            "region": self.region,
            "profile": self.profile,
            "group_name": self.group_name,
            "function_name": self.function_name,
            "allow_untagged": self.allow_untagged,
            "max_share": self.max_share,
            "parameter_prefix": self.parameter_prefix,
            "accounts": self.accounts,
            "regions": self.regions,
            "seed": self.seed,
            "instance_wait_s": self.instance_wait_s,
        }

    @classmethod
    def from_descriptor(cls, config: dict[str, Any]) -> AwsBackend:
        """The backend ``descriptor()`` described; the endpoint and credentials come from the
        environment of the process that calls this (``AWS_ENDPOINT_URL``, the profile's files)."""
        config = config or {}
        return cls(
            region=config.get("region"),
            profile=config.get("profile"),
            group_name=config.get("group_name"),
            function_name=config.get("function_name"),
            allow_untagged=bool(config.get("allow_untagged", False)),
            max_share=float(config.get("max_share", DEFAULT_MAX_SHARE)),
            seed=config.get("seed"),
            accounts=config.get("accounts"),
            regions=config.get("regions"),
            parameter_prefix=config.get("parameter_prefix") or DEFAULT_PREFIX,
            instance_wait_s=float(config.get("instance_wait_s", INSTANCE_WAIT_S)),
        )

    def alarm_state(self, alarm_name: str) -> str:
        """The state of a CloudWatch alarm in this backend's region (see ``alarm_state``)."""
        return alarm_state(self._clients.client("cloudwatch"), alarm_name)

    def _supported(self, action: str) -> str:
        if action not in self.actions:
            raise InjectionError(f"the aws backend has no action {action!r}")
        return action

    # safety ------------------------------------------------------------------------------------------

    def _guard(self) -> dict[str, str]:
        """Check the account and region allow-lists; the place to record in the undo record."""
        region = self.region
        if region is None:
            raise InjectionError(
                "expected an AWS region (--region, AWS_REGION or AWS_DEFAULT_REGION), got none"
            )
        if self.regions is not None and region not in self.regions:
            raise InjectionError(
                f"refused: region {region} is not in the allowed regions {', '.join(self.regions)}"
            )
        account = self._clients.account()
        if self.accounts is not None and account not in self.accounts:
            raise InjectionError(
                f"refused: account {account} is not in the allowed accounts {', '.join(self.accounts)}"
            )
        return {"account": account, "region": region}

    def _same_place(self, undo: dict[str, Any]) -> None:
        """Refuse to restore in another region or account than the one the fault was injected in."""
        region = undo.get("region")
        if region is not None and region != self.region:
            raise InjectionError(
                f"refused: the fault was injected in region {region}, this backend is in {self.region}"
            )
        account = undo.get("account")
        if account is not None and account != self._clients.account():
            raise InjectionError(
                f"refused: the fault was injected in account {account}, the credentials are for "
                f"account {self._clients.account()}"
            )

    def _undo(self, injection: Injection, *keys: str) -> dict[str, Any]:
        undo = injection.undo
        missing = [key for key in keys if undo is None or key not in undo]
        if undo is None or missing:
            raise InjectionError(f"expected {', '.join(missing)} in the undo record, got {undo!r}")
        self._same_place(undo)
        return undo

    def _victims(self, selection: InstanceCount, *, ec2_level: bool) -> tuple[Group, list[str]]:
        """The group and the instances a fleet fault hits, within the blast radius."""
        group = self._targets.group(selection.target)
        in_service = group.in_service()
        if ec2_level:
            self._targets.check_instances_allowed(group, in_service)
        chosen = choose_instances(
            in_service, selection, minimum=group.minimum, max_share=self.max_share, rng=self._random
        )
        return group, chosen

    # terminate-instance: one-shot, the group replaces what was killed --------------------------------

    def _plan_terminate(self, params: dict[str, Any]) -> Injection:
        checked = _validated(TerminateInstanceParams, params)
        self._guard()
        _, chosen = self._victims(checked, ec2_level=checked.mode == "ec2")
        return Injection(target=",".join(chosen), undo=None)

    def _apply_terminate(self, params: dict[str, Any], injection: Injection) -> None:
        checked = _validated(TerminateInstanceParams, params)
        self._guard()
        ids = _ids(injection.target)
        if checked.mode == "ec2":
            with aws_call("ec2 TerminateInstances"):
                self._clients.client("ec2").terminate_instances(InstanceIds=ids)
            return
        asg = self._clients.client("autoscaling")
        for instance_id in ids:
            with aws_call(f"autoscaling TerminateInstanceInAutoScalingGroup {instance_id}"):
                asg.terminate_instance_in_auto_scaling_group(
                    InstanceId=instance_id, ShouldDecrementDesiredCapacity=checked.decrement_desired
                )

    def _rollback_terminate(self, injection: Injection) -> dict[str, Any]:
        return {"restored": None, "reason": "one-shot: the group replaces terminated instances"}

    # stop-instance: stop, then start exactly those instances again ----------------------------------

    def _plan_stop(self, params: dict[str, Any]) -> Injection:
        checked = _validated(StopInstanceParams, params)
        place = self._guard()
        group, chosen = self._victims(checked, ec2_level=True)
        return Injection(target=",".join(chosen), undo={"group": group.name, "instance_ids": chosen, **place})

    def _apply_stop(self, params: dict[str, Any], injection: Injection) -> None:
        self._guard()
        ids = self._undo(injection, "instance_ids")["instance_ids"]
        with aws_call("ec2 StopInstances"):
            self._clients.client("ec2").stop_instances(InstanceIds=list(ids))

    def _rollback_stop(self, injection: Injection) -> dict[str, Any]:
        ids = list(self._undo(injection, "instance_ids")["instance_ids"])
        deadline = time.monotonic() + self.instance_wait_s
        while True:
            states = self._instance_states(ids)
            stopping = [i for i in ids if states[i] == "stopping"]
            remaining = deadline - time.monotonic()
            if not stopping or remaining <= 0:
                break
            time.sleep(min(self.poll_s, remaining))
        if stopping:
            raise InjectionError(
                f"instance(s) {', '.join(stopping)} still stopping after {self.instance_wait_s:g} s; "
                "roll back again once they have stopped"
            )
        to_start = [i for i in ids if states[i] == "stopped"]
        if to_start:
            with aws_call("ec2 StartInstances"):
                self._clients.client("ec2").start_instances(InstanceIds=to_start)
        return {
            "started": to_start,
            "already_running": [i for i in ids if states[i] in _RUNNING_STATES],
            "gone": [i for i in ids if states[i] in _GONE_STATES],
        }

    def _instance_states(self, ids: list[str]) -> dict[str, str]:
        """Each instance's EC2 state name; ``missing`` for one EC2 no longer knows."""
        # A filter rather than InstanceIds: an unknown id then drops out instead of failing the call.
        with aws_call("ec2 DescribeInstances"):
            pages = (
                self._clients.client("ec2")
                .get_paginator("describe_instances")
                .paginate(Filters=[{"Name": "instance-id", "Values": ids}])
            )
            found = {
                instance["InstanceId"]: instance["State"]["Name"]
                for page in pages
                for reservation in page.get("Reservations", [])
                for instance in reservation.get("Instances", [])
            }
        return {i: found.get(i, "missing") for i in ids}

    # set-capacity: hold a desired capacity, then restore the previous one exactly --------------------

    def _plan_capacity(self, params: dict[str, Any]) -> Injection:
        checked = _validated(SetCapacityParams, params)
        place = self._guard()
        group = self._targets.group(checked.target)
        if not group.minimum <= checked.desired <= group.maximum:
            raise InjectionError(
                f"expected desired within group {group.name}'s minimum {group.minimum} and maximum "
                f"{group.maximum}, got {checked.desired}"
            )
        undo = {"group": group.name, "desired": group.desired, "min": group.minimum, "max": group.maximum}
        return Injection(target=group.name, undo={**undo, **place})

    def _apply_capacity(self, params: dict[str, Any], injection: Injection) -> None:
        desired = _validated(SetCapacityParams, params).desired
        self._guard()
        group = self._undo(injection, "group")["group"]
        with aws_call("autoscaling SetDesiredCapacity"):
            self._clients.client("autoscaling").set_desired_capacity(
                AutoScalingGroupName=group, DesiredCapacity=desired, HonorCooldown=False
            )

    def _rollback_capacity(self, injection: Injection) -> dict[str, Any]:
        undo = self._undo(injection, "group", "desired")
        name, previous = undo["group"], int(undo["desired"])
        asg = self._clients.client("autoscaling")
        with aws_call("autoscaling DescribeAutoScalingGroups"):
            found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        if not found:  # deleted meanwhile: nothing is left to restore, and the fault may close
            return {"desired": previous, "replaced": None, "reason": f"group {name} no longer exists"}
        current = int(found[0]["DesiredCapacity"])
        if current != previous:
            with aws_call("autoscaling SetDesiredCapacity"):
                asg.set_desired_capacity(
                    AutoScalingGroupName=name, DesiredCapacity=previous, HonorCooldown=False
                )
        return {"desired": previous, "replaced": current}

    # throttle-lambda: hold a reserved concurrency, then restore the previous one exactly -------------

    def _plan_throttle(self, params: dict[str, Any]) -> Injection:
        checked = _validated(ThrottleLambdaParams, params)
        place = self._guard()
        function = self._targets.function(checked.target)
        previous = self._reserved_concurrency(function.name)
        return Injection(
            target=function.name, undo={"function": function.name, "reserved_concurrency": previous, **place}
        )

    def _apply_throttle(self, params: dict[str, Any], injection: Injection) -> None:
        value = _validated(ThrottleLambdaParams, params).reserved_concurrency
        self._guard()
        undo = self._undo(injection, "function", "reserved_concurrency")
        current = self._reserved_concurrency(undo["function"])
        if current != undo["reserved_concurrency"]:
            # Someone changed it between plan and apply; the journal holds the planned value.
            log.warning(
                "reserved concurrency was %r when throttled, %r when planned",
                current,
                undo["reserved_concurrency"],
            )
        with aws_call("lambda PutFunctionConcurrency"):
            self._clients.client("lambda").put_function_concurrency(
                FunctionName=undo["function"], ReservedConcurrentExecutions=value
            )

    def _rollback_throttle(self, injection: Injection) -> dict[str, Any]:
        undo = self._undo(injection, "function", "reserved_concurrency")
        function, previous = undo["function"], undo["reserved_concurrency"]
        try:
            current = self._reserved_concurrency(function)
        except _FunctionGone:
            return {
                "reserved_concurrency": previous,
                "replaced": None,
                "reason": f"function {function} no longer exists",
            }
        lam = self._clients.client("lambda")
        if previous is None:
            if current is not None:
                with aws_call("lambda DeleteFunctionConcurrency"):
                    lam.delete_function_concurrency(FunctionName=function)
        elif current != previous:
            with aws_call("lambda PutFunctionConcurrency"):
                lam.put_function_concurrency(
                    FunctionName=function, ReservedConcurrentExecutions=int(previous)
                )
        return {"reserved_concurrency": previous, "replaced": current}

    def _reserved_concurrency(self, function: str) -> int | None:
        """The function's reserved concurrency; ``None`` when none is set (``{}`` from AWS)."""
        try:
            data = self._clients.client("lambda").get_function_concurrency(FunctionName=function)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise _FunctionGone(f"expected a Lambda function named {function}, found none") from None
            raise InjectionError(f"lambda GetFunctionConcurrency: {one_line(exc)}") from None
        value = data.get("ReservedConcurrentExecutions")
        return None if value is None else int(value)

    # lambda-latency and lambda-errors: the SSM fault parameter the handler reads ---------------------

    def _plan_parameter(self, kind: str, params: dict[str, Any]) -> Injection:
        model = LambdaLatencyParams if kind == LAMBDA_LATENCY.name else LambdaErrorsParams
        checked = _validated(model, params)
        place = self._guard()
        function = self._targets.function(checked.target)
        name = parameter_name(self.parameter_prefix, function.name, kind)
        previous = self._parameter(name)
        if previous is not None and previous[1] not in ("String", "StringList"):
            raise InjectionError(f"refused: parameter {name} is a {previous[1]}; expected a String or none")
        if previous is not None and redact(previous[0]) != previous[0]:
            raise InjectionError(
                f"refused: parameter {name} holds credential-like text that the journal cannot keep"
            )
        undo = {
            "function": function.name,
            "parameter": name,
            "value": None if previous is None else previous[0],
            "type": None if previous is None else previous[1],
        }
        return Injection(target=function.name, undo={**undo, **place})

    def _apply_parameter(self, kind: str, params: dict[str, Any], injection: Injection) -> None:
        value = parameter_value(kind, params)
        self._guard()
        name = self._undo(injection, "parameter")["parameter"]
        with aws_call("ssm PutParameter"):
            self._clients.client("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    def _rollback_parameter(self, injection: Injection) -> dict[str, Any]:
        undo = self._undo(injection, "parameter", "value")
        name, previous = undo["parameter"], undo["value"]
        current = self._parameter(name)
        ssm = self._clients.client("ssm")
        if previous is None:
            if current is not None:
                try:
                    ssm.delete_parameter(Name=name)
                except (ClientError, BotoCoreError) as exc:
                    if error_code(exc) != "ParameterNotFound":  # deleted meanwhile: just as good
                        raise InjectionError(f"ssm DeleteParameter: {one_line(exc)}") from None
        elif current is None or current[0] != previous:
            with aws_call("ssm PutParameter"):
                ssm.put_parameter(
                    Name=name, Value=previous, Type=undo.get("type") or "String", Overwrite=True
                )
        return {"parameter": name, "value": previous, "replaced": None if current is None else current[0]}

    def _parameter(self, name: str) -> tuple[str, str] | None:
        """The parameter's value and type, or ``None`` when it does not exist."""
        try:
            data = self._clients.client("ssm").get_parameter(Name=name)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise InjectionError(f"ssm GetParameter: {one_line(exc)}") from None
        return str(data["Parameter"]["Value"]), str(data["Parameter"].get("Type", "String"))


class _FunctionGone(InjectionError):
    """The function of an undo record no longer exists (nothing is left to restore)."""


def _validated(model: type[ActionParams], params: dict[str, Any]) -> Any:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "params"
        raise InjectionError(f"{where}: {first['msg']}, got {first.get('input')!r}") from None


def _ids(target: str) -> list[str]:
    return [part for part in target.split(",") if part]


def _named_profile(session: boto3.Session) -> str | None:
    """The session's profile when one was chosen (``AWS_PROFILE`` or by name), not the implicit default."""
    try:
        name = session.profile_name
    except Exception:  # a session without a profile machinery (a stand-in) has none to record
        return None
    return None if name in (None, "default") else str(name)


def alarm_state(source: Any, alarm_name: str) -> str:
    """The state of the CloudWatch alarm ``alarm_name``: ``OK``, ``ALARM`` or ``INSUFFICIENT_DATA``.

    ``source`` is a boto3 session, a CloudWatch client or an ``AwsBackend``. Metric and composite
    alarms both count. ``InjectionError`` (one line) when there is no such alarm or the call fails.
    """
    if isinstance(source, AwsBackend):
        return source.alarm_state(alarm_name)
    client = (
        source if hasattr(source, "describe_alarms") else source.client("cloudwatch", config=CLIENT_CONFIG)
    )
    with aws_call("cloudwatch DescribeAlarms"):
        data = client.describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    alarms = [*data.get("MetricAlarms", []), *data.get("CompositeAlarms", [])]
    if not alarms:
        raise InjectionError(f"expected a CloudWatch alarm named {alarm_name}, found none")
    return str(alarms[0]["StateValue"])
