"""``set-capacity``: change the group's desired capacity for ``duration``, then restore it.

This is how a scenario shrinks the fleet under load (fewer instances, each busier) or grows it. The
previous desired capacity, minimum and maximum are captured and restored exactly at the end. A value
outside the group's minimum and maximum is refused at injection (as ``SetDesiredCapacity`` refuses it
on AWS); going below the minimum needs a change of the minimum, which chaoscheck never makes.
"""

from __future__ import annotations

from pydantic import Field

from chaos.actions.action import Action, ActionParams
from chaos.actions.registry import register
from chaos.actions.selection import TargetSelector


class SetCapacityParams(ActionParams):
    """Parameters of ``set-capacity``."""

    desired: int = Field(ge=0, description="the desired capacity during the fault")
    target: TargetSelector = Field(TargetSelector(), description="the group, by name or tags")


SET_CAPACITY = register(
    Action(
        name="set-capacity",
        params=SetCapacityParams,
        takes_duration=True,
        target_kind="fleet-capacity",
        summary="set the group's desired capacity for `duration`, then restore the previous value",
        doc=__doc__ or "",
        example={"desired": 1},
    )
)
