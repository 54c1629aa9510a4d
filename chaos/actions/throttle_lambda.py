"""``throttle-lambda``: set the function's reserved concurrency for a while, then restore it.

AWS has no throttle action in FIS; throttling is done with reserved concurrency, and 0 stops every
invocation with a 429 (``shared/reference/aws-semantics.md``). The previous value is captured before
anything changes and restored exactly at the end, including "no reservation" (``null``), which is
not the same as any number: it means the function draws on the account's unreserved pool.
"""

from __future__ import annotations

from pydantic import Field

from chaos.actions.action import Action, ActionParams
from chaos.actions.registry import register
from chaos.actions.selection import TargetSelector


class ThrottleLambdaParams(ActionParams):
    """Parameters of ``throttle-lambda``."""

    reserved_concurrency: int = Field(
        0, ge=0, description="concurrent executions allowed during the fault; 0 throttles every call"
    )
    target: TargetSelector = Field(TargetSelector(), description="the function, by name or tags")


THROTTLE_LAMBDA = register(
    Action(
        name="throttle-lambda",
        params=ThrottleLambdaParams,
        takes_duration=True,
        target_kind="lambda",
        summary="set the function's reserved concurrency for `duration`, then restore the previous value",
        doc=__doc__ or "",
        example={"reserved_concurrency": 0},
    )
)
