"""How a fault names what it acts on: the group or function by name or by tags, and how many instances.

The same parameters mean the same thing on both backends. On the local stack there is one group (the
fleet) and one function, so a name or tags, when given, must match the stack's own (``fleet`` and
``counter``); on AWS they select among the account's resources, and only those tagged
``chaoscheck:allowed=true`` unless the run allows untagged targets. Leaving both out means "the group
(or function) of the target under test", which a backend knows from its configuration.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from chaos.actions.action import ActionParams

ALLOW_TAG = ("chaoscheck:allowed", "true")
"""The tag a resource must carry before the AWS backend touches it (unless ``--allow-untagged``)."""


class TargetSelector(ActionParams):
    """A resource by name, by tags, or both (both must then match); empty means the default one."""

    name: str | None = Field(None, min_length=1, description="the group or function name")
    tags: dict[str, str] | None = Field(None, description="tags the resource must all carry")


class InstanceCount(ActionParams):
    """How many in-service instances a fleet fault hits: a count, a percent, or explicit ids.

    At most one of the three; none means one instance. Percent rounds down but hits at least one,
    as FIS's ``PERCENT`` selection mode does.
    """

    count: int | None = Field(None, ge=1, description="how many in-service instances, chosen at random")
    percent: float | None = Field(
        None, gt=0, le=100, description="share of the in-service instances, in percent, at least one"
    )
    instance_ids: list[str] | None = Field(
        None, min_length=1, description="exactly these instances (each must be in service)"
    )
    target: TargetSelector = Field(TargetSelector(), description="the group, by name or tags")

    @model_validator(mode="after")
    def _one_way_to_count(self) -> InstanceCount:
        given = [key for key in ("count", "percent", "instance_ids") if getattr(self, key) is not None]
        if len(given) > 1:
            raise ValueError(f"expected one of count, percent and instance_ids, got {' and '.join(given)}")
        return self

    def how_many(self, in_service: int) -> int:
        """Instances to hit out of ``in_service`` (before any safety limit is applied)."""
        if self.instance_ids is not None:
            return len(self.instance_ids)
        if self.percent is not None:
            return max(1, int(in_service * self.percent / 100.0))
        return self.count if self.count is not None else 1


TerminateMode = Literal["ec2", "asg"]
"""``ec2``: the instance dies underneath the group, which learns it from the health check;
``asg``: the group itself terminates it (``TerminateInstanceInAutoScalingGroup``)."""
