"""The blast radius: which instances a fleet fault may hit, and the limits no fault may cross.

Two rules, the same on every backend: a fault never takes the group below its minimum of in-service
instances, and never hits more than ``max_share`` of the in-service instances at once (default half,
like a cautious FIS template). A fault that would cross either limit is refused before anything
changes, with a one-line reason, rather than shrunk silently: a run that tested less than its scenario
says must not pass quietly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from chaos.actions.selection import InstanceCount
from chaos.backends.interface import InjectionError

DEFAULT_MAX_SHARE = 0.5


def choose_instances(
    in_service: Sequence[str],
    selection: InstanceCount,
    *,
    minimum: int,
    max_share: float = DEFAULT_MAX_SHARE,
    rng: random.Random,
) -> list[str]:
    """The instance ids to hit among ``in_service``, or ``InjectionError`` when the limits forbid it.

    Sorted before sampling, so the choice depends on the seed and the fleet, not on listing order.
    """
    pool = sorted(set(in_service))
    if selection.instance_ids is not None:
        missing = [i for i in selection.instance_ids if i not in pool]
        if missing:
            raise InjectionError(
                f"expected instance_ids in service, got {', '.join(missing)} not in service "
                f"(in service: {', '.join(pool) or 'none'})"
            )
        chosen = list(dict.fromkeys(selection.instance_ids))
    else:
        wanted = selection.how_many(len(pool))
        if wanted > len(pool):
            raise InjectionError(f"expected at least {wanted} in-service instance(s), found {len(pool)}")
        chosen = rng.sample(pool, wanted)
    check_limits(len(pool), len(chosen), minimum=minimum, max_share=max_share)
    return chosen


def check_limits(in_service: int, hit: int, *, minimum: int, max_share: float) -> None:
    """Refuse to hit ``hit`` of ``in_service`` instances when it crosses the minimum or the share."""
    allowed_by_share = math.floor(in_service * max_share + 1e-9)
    if hit > allowed_by_share:
        raise InjectionError(
            f"blast radius: expected at most {max_share:.0%} of the {in_service} in-service instance(s) "
            f"({allowed_by_share}) at once, got {hit}"
        )
    if in_service - hit < minimum:
        raise InjectionError(
            f"blast radius: expected at least the group's minimum of {minimum} in service, got "
            f"{in_service} - {hit} = {in_service - hit}"
        )
