"""``terminate-instance``: kill in-service instances of the fleet abruptly.

This is the EC2 failure that matters for availability: the process dies without draining, requests in
flight on it fail (502/504 at the balancer), and the balancer keeps routing to it until the health
check has failed ``unhealthy_threshold`` times. The Auto Scaling group then replaces it. The action is
one-shot: there is nothing to undo, the group's own repair is what the run observes during ``settle``.
Instances are chosen at random among those in service, with the backend's seeded generator, so a
run can be reproduced from the scenario's ``seed``.
"""

from __future__ import annotations

from pydantic import Field

from chaos.actions.action import Action, ActionParams
from chaos.actions.registry import register


class TerminateInstanceParams(ActionParams):
    """Parameters of ``terminate-instance``."""

    count: int = Field(1, ge=1, description="how many in-service instances to kill at once")


TERMINATE_INSTANCE = register(
    Action(
        name="terminate-instance",
        params=TerminateInstanceParams,
        takes_duration=False,
        target_kind="fleet",
        summary="kill `count` in-service fleet instances chosen at random; the group replaces them",
        doc=__doc__ or "",
    )
)
