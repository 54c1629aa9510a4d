"""``stop-instance``: freeze in-service instances for ``duration``, then let them run again.

A stopped instance is a hung one: its socket still accepts, but nothing answers. The balancer's
upstream timeout turns requests to it into 504s (as an ALB does), the health check times out, and the
instance leaves service; after the duration it resumes and passes health checks again. Locally this is
``SIGSTOP`` then ``SIGCONT``; on AWS ``ec2:StopInstances`` then ``ec2:StartInstances``. The rollback
resumes exactly the instances that were stopped, so it is safe to repeat. Safety limits apply as for
``terminate-instance``.
"""

from __future__ import annotations

from chaos.actions.action import Action
from chaos.actions.registry import register
from chaos.actions.selection import InstanceCount


class StopInstanceParams(InstanceCount):
    """Parameters of ``stop-instance``."""


STOP_INSTANCE = register(
    Action(
        name="stop-instance",
        params=StopInstanceParams,
        takes_duration=True,
        target_kind="fleet",
        summary="freeze in-service fleet instances for `duration` (504s), then resume them",
        doc=__doc__ or "",
        example={"count": 1},
    )
)
