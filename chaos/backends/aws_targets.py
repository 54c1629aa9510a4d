"""Finding what a fault acts on in AWS, and refusing what chaoscheck may not touch.

A fault names its Auto Scaling group or Lambda function by name, by tags, or not at all (the
backend's configured one); see ``chaos.actions.selection``. A selector must resolve to exactly one
resource. Then the allow tag (``chaoscheck:allowed=true``) is checked: on the group or function,
and, for the faults that call EC2 on instances directly, on every in-service instance of the group
(the group's tag reaches them with ``PropagateAtLaunch``). ``allow_untagged`` lifts the tag check,
nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chaos.actions import ALLOW_TAG, TargetSelector
from chaos.backends.aws_clients import AwsClients, aws_call, error_code, one_line
from chaos.backends.interface import InjectionError

IN_SERVICE = "InService"
HEALTHY = "Healthy"


@dataclass(frozen=True)
class Instance:
    """One instance of a group as the group sees it."""

    id: str
    lifecycle: str  # Pending, InService, Terminating, Standby, ...
    health: str  # Healthy | Unhealthy


@dataclass(frozen=True)
class Group:
    """An Auto Scaling group: its capacity bounds, its instances and its tags."""

    name: str
    minimum: int
    maximum: int
    desired: int
    instances: tuple[Instance, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Group:
        return cls(
            name=data["AutoScalingGroupName"],
            minimum=int(data["MinSize"]),
            maximum=int(data["MaxSize"]),
            desired=int(data["DesiredCapacity"]),
            instances=tuple(
                Instance(i["InstanceId"], i.get("LifecycleState", ""), i.get("HealthStatus", ""))
                for i in data.get("Instances", [])
            ),
            tags={t["Key"]: t.get("Value", "") for t in data.get("Tags", [])},
        )

    def in_service(self) -> list[str]:
        """Ids of the instances in service and healthy: the ones taking traffic, and fair game."""
        return sorted(i.id for i in self.instances if i.lifecycle == IN_SERVICE and i.health == HEALTHY)


@dataclass(frozen=True)
class Function:
    """A Lambda function: its name, ARN and tags."""

    name: str
    arn: str
    tags: dict[str, str] = field(default_factory=dict)


def _matches(tags: dict[str, str], wanted: dict[str, str] | None) -> bool:
    return all(tags.get(key) == value for key, value in (wanted or {}).items())


def _show_tags(tags: dict[str, str] | None) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted((tags or {}).items()))


class TargetFinder:
    """Resolves selectors to one group or function and enforces the allow tag."""

    def __init__(
        self,
        clients: AwsClients,
        *,
        group_name: str | None = None,
        function_name: str | None = None,
        allow_untagged: bool = False,
    ) -> None:
        self.clients = clients
        self.group_name = group_name
        self.function_name = function_name
        self.allow_untagged = allow_untagged

    # the allow tag -----------------------------------------------------------------------------------

    def check_allowed(self, kind: str, name: str, tags: dict[str, str]) -> None:
        """Refuse a resource that lacks ``chaoscheck:allowed=true`` unless untagged ones are allowed."""
        key, value = ALLOW_TAG
        if self.allow_untagged or tags.get(key) == value:
            return
        raise InjectionError(
            f"refused: {kind} {name} is not tagged {key}={value} (tag it, or allow untagged targets)"
        )

    def check_instances_allowed(self, group: Group, instance_ids: list[str]) -> None:
        """Refuse when any of ``instance_ids`` lacks the allow tag (EC2 acts on the instance itself)."""
        if self.allow_untagged or not instance_ids:
            return
        key, value = ALLOW_TAG
        with aws_call("ec2 DescribeInstances"):
            pages = (
                self.clients.client("ec2")
                .get_paginator("describe_instances")
                .paginate(InstanceIds=instance_ids)
            )
            tags_of = {
                instance["InstanceId"]: {t["Key"]: t.get("Value", "") for t in instance.get("Tags", [])}
                for page in pages
                for reservation in page.get("Reservations", [])
                for instance in reservation.get("Instances", [])
            }
        untagged = [i for i in instance_ids if tags_of.get(i, {}).get(key) != value]
        if untagged:
            raise InjectionError(
                f"refused: instance(s) {', '.join(untagged)} of group {group.name} are not tagged "
                f"{key}={value} (propagate the group's tag at launch, or allow untagged targets)"
            )

    # the group ---------------------------------------------------------------------------------------

    def group(self, selector: TargetSelector | None = None, *, check: bool = True) -> Group:
        """The one group ``selector`` names (default: the configured one), tag-checked when ``check``."""
        selector = selector or TargetSelector()
        name = selector.name or (None if selector.tags else self.group_name)
        if name is None and not selector.tags:
            raise InjectionError(
                "expected a group: give target.name or target.tags, or configure the backend's group"
            )
        asg = self.clients.client("autoscaling")
        if name is not None:
            with aws_call("autoscaling DescribeAutoScalingGroups"):
                found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
            if not found:
                raise InjectionError(
                    f"expected an Auto Scaling group named {name} in {self.clients.region}, found none"
                )
            group = Group.from_api(found[0])
            if not _matches(group.tags, selector.tags):
                raise InjectionError(
                    f"expected group {name} to carry the tags {_show_tags(selector.tags)}, "
                    f"got {_show_tags(group.tags) or 'no tags'}"
                )
        else:
            with aws_call("autoscaling DescribeAutoScalingGroups"):
                groups = [
                    Group.from_api(data)
                    for page in asg.get_paginator("describe_auto_scaling_groups").paginate()
                    for data in page.get("AutoScalingGroups", [])
                ]
            group = self._one(
                "Auto Scaling group", [g for g in groups if _matches(g.tags, selector.tags)], selector
            )
        if check:
            self.check_allowed("group", group.name, group.tags)
        return group

    # the function ------------------------------------------------------------------------------------

    def function(self, selector: TargetSelector | None = None, *, check: bool = True) -> Function:
        """The one function ``selector`` names (default: the configured one), tag-checked when ``check``."""
        selector = selector or TargetSelector()
        name = selector.name or (None if selector.tags else self.function_name)
        if name is None and not selector.tags:
            raise InjectionError(
                "expected a function: give target.name or target.tags, or configure the backend's function"
            )
        lam = self.clients.client("lambda")
        if name is not None:
            try:
                data = lam.get_function(FunctionName=name)
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    raise InjectionError(
                        f"expected a Lambda function named {name} in {self.clients.region}, found none"
                    ) from None
                raise InjectionError(f"lambda GetFunction: {one_line(exc)}") from None
            config = data["Configuration"]
            function = Function(config["FunctionName"], config["FunctionArn"], dict(data.get("Tags") or {}))
            if not _matches(function.tags, selector.tags):
                raise InjectionError(
                    f"expected function {function.name} to carry the tags {_show_tags(selector.tags)}, "
                    f"got {_show_tags(function.tags) or 'no tags'}"
                )
        else:
            with aws_call("lambda ListFunctions"):
                functions = []
                for page in lam.get_paginator("list_functions").paginate():
                    for config in page.get("Functions", []):
                        tags = lam.list_tags(Resource=config["FunctionArn"]).get("Tags") or {}
                        functions.append(Function(config["FunctionName"], config["FunctionArn"], dict(tags)))
            function = self._one(
                "Lambda function", [f for f in functions if _matches(f.tags, selector.tags)], selector
            )
        if check:
            self.check_allowed("function", function.name, function.tags)
        return function

    def _one(self, kind: str, found: list[Any], selector: TargetSelector) -> Any:
        if len(found) != 1:
            names = ", ".join(sorted(item.name for item in found)) or "none"
            raise InjectionError(
                f"expected one {kind} tagged {_show_tags(selector.tags)} in {self.clients.region}, "
                f"found {len(found)}: {names}"
            )
        return found[0]
