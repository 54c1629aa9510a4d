"""Configuration of the local stack.

Every timer of the local stack is here, with small defaults so that a whole verification run fits in
about a minute while keeping the sequence of states that AWS goes through (see
``shared/reference/aws-semantics.md``: an ALB health check is 30 s there, half a second here).

Durations accept a number of seconds or a string with a unit (``"150ms"``, ``"2s"``, ``"1.5m"``), so
that scenario files read naturally; they are stored as float seconds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

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


class TargetTrackingConfig(_Strict):
    """The group's target tracking scaling policy (``fleet.scaling``), as EC2 Auto Scaling runs one.

    Every ``period`` the policy measures the load at the balancer and the metric: requests per second
    (``requests_per_instance``, like ``ALBRequestCountPerTarget``) or requests in flight
    (``in_flight_per_instance``) per in-service instance whose warm-up is over. After
    ``scale_out_periods`` periods in a row above ``target`` it sets the desired capacity to the
    instances the load needs at the target (``ceil(load / target)``, within min and max) if that is
    more than the desired capacity already is; after ``scale_in_periods`` periods in a row below
    ``scale_in_ratio * target``, with no instance pending or warming up, it removes one instance (or
    more, down to what the load needs). See docs/scaling.md.
    """

    metric: Literal["requests_per_instance", "in_flight_per_instance"] = Field(
        "requests_per_instance", description="what is tracked, per in-service instance out of warm-up"
    )
    target: float = Field(gt=0, description="the metric's target: requests/s or requests in flight")
    period: Duration = Field(1.0, gt=0, description="one datapoint of the metric (60 s on AWS)")
    scale_out_periods: int = Field(2, ge=1, description="periods in a row above target to scale out")
    scale_in_periods: int = Field(10, ge=1, description="periods in a row below the low mark to scale in")
    scale_in_ratio: float = Field(
        0.9, gt=0, le=1, description="the low mark, as a share of the target (AWS: 90 %)"
    )
    warmup: Duration = Field(
        3.0, ge=0, description="after entering service, an instance counts neither in the metric nor as warm"
    )
    disable_scale_in: bool = Field(False, description="never scale in (AWS's DisableScaleIn)")


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
    instance_concurrency: int | None = Field(
        None, ge=1, description="requests one instance serves at once, the others queue; null: no limit"
    )
    service_time: Duration = Field(
        0.0, ge=0, description="waited by each request while it holds one of the instance's slots"
    )
    scaling: TargetTrackingConfig | None = Field(
        None, description="the target tracking policy; null: the desired capacity changes only when asked"
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
    service_time: Duration = Field(
        0.0, ge=0, description="waited in the environment by each invocation before the handler's own work"
    )
    burst_limit: int | None = Field(
        None, ge=1, description="new environments per burst_interval (AWS: 1,000 per 10 s); null: no limit"
    )
    burst_interval: Duration = Field(10.0, gt=0, description="the window over which burst_limit refills")
    idle_timeout: Duration | None = Field(
        None, gt=0, description="an environment idle this long is reclaimed; null: kept until the stack stops"
    )


class StackConfig(_Strict):
    """The whole local stack: one fleet, one function, one store."""

    fleet: FleetConfig = FleetConfig()
    lambda_: LambdaConfig = Field(LambdaConfig(), alias="lambda")
    sample_interval: Duration = Field(0.2, gt=0, description="how often the stack samples its state")
    xray: bool = Field(
        False,
        description="trace every request with the X-Ray SDK into the run's xray.jsonl "
        "(about 0.6 ms of CPU per request, so off by default)",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
