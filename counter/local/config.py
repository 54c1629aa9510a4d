"""Configuration of the local stack.

Every timer of the local stack is here, with small defaults so that a whole verification run fits in
about a minute while keeping the sequence of states that AWS goes through (see
``shared/reference/aws-semantics.md``: an ALB health check is 30 s there, half a second here).

Durations accept a number of seconds or a string with a unit (``"150ms"``, ``"2s"``, ``"1.5m"``), so
that scenario files read naturally; they are stored as float seconds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Turn ``"150ms"``, ``"2s"``, ``"1m"`` or a plain number into seconds (a non-negative float)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 45s, 150ms or 2m, got a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected a non-negative duration, got {value}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        raise ValueError(f"expected a duration such as 45s, 150ms or 2m, got {value!r}")
    raise ValueError(f"expected a duration such as 45s, 150ms or 2m, got {type(value).__name__}")


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in files as ``45s``, ``150ms``, ``2m`` or a number."""

GROUP_NAME = "fleet"
"""The name of the stack's one Auto Scaling group, as ``GET /state`` shows it and fault targets name it."""
FUNCTION_NAME = "counter"
"""The name of the stack's one Lambda function, as ``GET /state`` shows it and fault targets name it."""
RESOURCE_TAGS = {"chaoscheck:allowed": "true"}
"""The tags of the group and the function: both may be the target of a fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FleetConfig(_Strict):
    """The EC2 Auto Scaling group behind an Application Load Balancer."""

    desired: int = Field(3, ge=0, description="instances the group keeps running")
    min: int = Field(1, ge=0, description="the group never goes below this")
    max: int = Field(6, ge=1, description="the group never goes above this")
    health_interval: Duration = Field(0.5, gt=0, description="time between two health checks of a target")
    health_timeout: Duration = Field(0.4, gt=0, description="a health check slower than this fails")
    unhealthy_threshold: int = Field(2, ge=1, description="consecutive failed checks to leave service")
    healthy_threshold: int = Field(1, ge=1, description="consecutive passed checks to enter service")
    boot_delay: Duration = Field(2.0, ge=0, description="from launch until the instance process starts")
    upstream_timeout: Duration = Field(
        5.0, gt=0, description="the balancer answers 504 when an instance takes longer than this"
    )
    idle_timeout: Duration = Field(
        4.0, gt=0, description="pooled upstream connections idle longer than this are not reused"
    )

    @model_validator(mode="after")
    def _capacity_in_order(self) -> FleetConfig:
        if not self.min <= self.desired <= self.max:
            raise ValueError(f"expected min <= desired <= max, got {self.min}, {self.desired}, {self.max}")
        return self


class LambdaConfig(_Strict):
    """The Lambda function behind a function URL."""

    reserved_concurrency: int | None = Field(
        10, ge=0, description="concurrent executions allowed; null means unreserved (account limit)"
    )
    account_concurrency: int = Field(
        16, ge=1, description="the account's limit, used when no concurrency is reserved"
    )
    cold_start: Duration = Field(0.15, ge=0, description="added to the real module init of a new environment")
    timeout: Duration = Field(3.0, gt=0, description="function timeout; a slower invocation answers 502")
    init_timeout: Duration = Field(
        10.0, gt=0, description="an environment whose init (before cold_start) takes longer is killed (502)"
    )


class StackConfig(_Strict):
    """The whole local stack: one fleet, one function, one store."""

    fleet: FleetConfig = FleetConfig()
    lambda_: LambdaConfig = Field(LambdaConfig(), alias="lambda")
    sample_interval: Duration = Field(0.2, gt=0, description="how often the stack samples its state")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
