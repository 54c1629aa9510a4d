"""``terminate-instance``: kill in-service instances of the fleet.

Mode ``ec2`` (the default) is the failure that matters most for availability: the instance dies
without draining, requests in flight on it fail (502/504 at the balancer), and the balancer keeps
routing to it until the health check has failed ``unhealthy_threshold`` times; then the Auto Scaling
group replaces it. Locally that is a ``SIGKILL``; on AWS ``ec2:TerminateInstances``.

Mode ``asg`` is the group terminating the instance itself (``TerminateInstanceInAutoScalingGroup``):
it is deregistered from the balancer first and, unless ``decrement_desired`` is set, replaced at once.
With ``decrement_desired`` the desired capacity drops by one per instance, never below the minimum.

The action is one-shot: nothing is undone, the group's own repair is what the run observes during
``settle``. Instances are chosen at random among those in service, with the backend's seeded
generator, so a run can be reproduced from the scenario's ``seed``. Safety limits apply (never below
the group's minimum, never more than the run's share of the in-service instances at once).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from chaos.actions.action import Action
from chaos.actions.registry import register
from chaos.actions.selection import InstanceCount, TerminateMode


class TerminateInstanceParams(InstanceCount):
    """Parameters of ``terminate-instance``."""

    mode: TerminateMode = Field("ec2", description="ec2: killed underneath the group; asg: by the group")
    decrement_desired: bool = Field(
        False, description="asg mode only: lower the desired capacity instead of replacing"
    )

    @model_validator(mode="after")
    def _decrement_needs_asg(self) -> TerminateInstanceParams:
        if self.decrement_desired and self.mode != "asg":
            raise ValueError("expected mode asg with decrement_desired (the group decides), got mode ec2")
        return self


TERMINATE_INSTANCE = register(
    Action(
        name="terminate-instance",
        params=TerminateInstanceParams,
        takes_duration=False,
        target_kind="fleet",
        summary="terminate in-service fleet instances (count, percent or ids); the group replaces them",
        doc=__doc__ or "",
        example={"count": 1},
    )
)
