"""``lambda-latency`` and ``lambda-errors``: the function misbehaves for a share of its invocations.

Both work the way failure-lambda and chaos_lambda do on AWS: the counter handler reads a fault
parameter (an SSM parameter, cached for a second or so) on each invocation and, for ``percent`` of
them, sleeps ``delay`` before serving or answers ``status`` without touching the store. Locally the
Lambda pool applies the same fault, set through the control API. An error invocation never applies
the increment, so it is a definite failure; a delayed one is served late (and may time out at the
client, an info outcome). Rollback restores the parameter's previous value exactly (usually "no
fault"). The two actions use separate settings, so they may overlap each other.
"""

from __future__ import annotations

from pydantic import Field

from chaos.actions.action import Action, ActionParams
from chaos.actions.registry import register
from chaos.actions.selection import TargetSelector
from counter.local.config import Duration


class LambdaLatencyParams(ActionParams):
    """Parameters of ``lambda-latency``."""

    delay: Duration = Field(description="added before the handler serves, such as 300ms")
    percent: float = Field(100.0, gt=0, le=100, description="share of invocations delayed, in percent")
    target: TargetSelector = Field(TargetSelector(), description="the function, by name or tags")


class LambdaErrorsParams(ActionParams):
    """Parameters of ``lambda-errors``."""

    status: int = Field(500, ge=400, le=599, description="the HTTP status the failed invocations answer")
    percent: float = Field(100.0, gt=0, le=100, description="share of invocations failed, in percent")
    target: TargetSelector = Field(TargetSelector(), description="the function, by name or tags")


LAMBDA_LATENCY = register(
    Action(
        name="lambda-latency",
        params=LambdaLatencyParams,
        takes_duration=True,
        target_kind="lambda-latency",
        summary="delay `percent` of the function's invocations by `delay` for `duration`",
        doc=__doc__ or "",
        example={"delay": 0.3, "percent": 50.0},
    )
)

LAMBDA_ERRORS = register(
    Action(
        name="lambda-errors",
        params=LambdaErrorsParams,
        takes_duration=True,
        target_kind="lambda-errors",
        summary="fail `percent` of the function's invocations with `status` for `duration`",
        doc=__doc__ or "",
        example={"status": 500, "percent": 20.0},
    )
)
