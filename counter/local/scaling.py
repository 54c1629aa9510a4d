"""The group's target tracking scaling policy, as EC2 Auto Scaling runs one, on the local stack's clock.

Every ``period`` (a CloudWatch datapoint: 60 s on AWS, 1 s here) the policy takes one datapoint:

- ``load``: what the instances are asked to carry. For ``requests_per_instance`` it is the requests
  the balancer received in the period, per second; for ``in_flight_per_instance`` the requests in
  flight at the balancer, averaged over ten samples of the period.
- ``metric``: the same per warm instance (in service and past its warm-up, ``Instance.warm``): the
  requests routed to warm instances per second, or their requests in flight, divided by their
  number. Instances in warm-up count neither in the metric nor as capacity, as on AWS. With no warm
  instance the metric is the whole load (every request is over capacity).

Then, like the two alarms AWS creates for a target tracking policy:

- high: ``scale_out_periods`` datapoints in a row above ``target``, and the capacity the load needs at
  the target, ``ceil(load / target)`` within min and max, is above the desired capacity (which counts
  pending and warming instances, so the same breach never launches twice): a ``scale-out`` to it.
  While the breach lasts, each datapoint may scale out again if the load still needs more.
- low: ``scale_in_periods`` datapoints in a row below ``scale_in_ratio * target``, no instance pending
  or warming up, and the load needs fewer instances: a ``scale-in`` of one instance (down to what the
  load needs), and the count starts again, so scaling in is slow on purpose. ``disable_scale_in``
  turns this alarm off.

Each change goes through ``Group.set_desired`` with its cause, so it is a scaling activity.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from counter.local.balancer import Balancer
from counter.local.config import TargetTrackingConfig
from counter.local.fleet import IN_SERVICE, PENDING, Group

log = logging.getLogger(__name__)

SAMPLES_PER_PERIOD = 10
"""In-flight samples averaged into one datapoint of ``in_flight_per_instance``."""


class TargetTracking:
    """Watches the balancer and the group; changes the desired capacity to keep the metric at target."""

    def __init__(self, config: TargetTrackingConfig, group: Group, balancer: Balancer) -> None:
        self.config = config
        self.group = group
        self.balancer = balancer
        self.high = 0  # datapoints in a row above the target
        self.low = 0  # datapoints in a row below the low mark
        self.last: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        period = self.config.period
        requests_then = self.balancer.requests
        routed_then = self._routed()
        started = time.monotonic()
        while True:
            in_flight_total = 0.0
            in_flight_warm = 0.0
            for _ in range(SAMPLES_PER_PERIOD):
                await asyncio.sleep(period / SAMPLES_PER_PERIOD)
                in_flight_total += self.balancer.in_flight
                in_flight_warm += sum(inst.in_flight for inst in self._warm())
            now = time.monotonic()
            elapsed = max(1e-6, now - started)
            started = now
            requests_now = self.balancer.requests
            routed_now = self._routed()
            warm = self._warm()
            if self.config.metric == "requests_per_instance":
                load = (requests_now - requests_then) / elapsed
                warm_load = sum(routed_now.get(i.id, 0) - routed_then.get(i.id, 0) for i in warm) / elapsed
            else:
                load = in_flight_total / SAMPLES_PER_PERIOD
                warm_load = in_flight_warm / SAMPLES_PER_PERIOD
            requests_then, routed_then = requests_now, routed_now
            metric = warm_load / len(warm) if warm else load
            try:
                self.evaluate(load, metric, warming=self._warming())
            except Exception:
                log.exception("scaling policy: datapoint failed")

    def _routed(self) -> dict[str, int]:
        return {inst.id: inst.requests for inst in self.group.rotation}

    def _warm(self) -> list[Any]:
        now = time.time_ns()
        return [inst for inst in self.group.rotation if inst.warm(now)]

    def _warming(self) -> int:
        """Instances launched but not yet warm: pending, or in service within their warm-up."""
        now = time.time_ns()
        return sum(
            1
            for inst in self.group.instances.values()
            if inst.state == PENDING or (inst.state == IN_SERVICE and not inst.warm(now))
        )

    def needed(self, load: float) -> int:
        """The instances that carry ``load`` at the target, within the group's min and max."""
        wanted = math.ceil(load / self.config.target - 1e-9)
        return max(self.group.min, min(self.group.max, wanted))

    def evaluate(self, load: float, metric: float, warming: int = 0) -> dict[str, Any] | None:
        """Take one datapoint; scale out or in when the alarms say so. Returns the change, if any."""
        config = self.config
        target = config.target
        self.high = self.high + 1 if metric > target else 0
        self.low = self.low + 1 if metric < config.scale_in_ratio * target else 0
        desired = self.group.desired
        needed = self.needed(load)
        self.last = {
            "ts_ns": time.time_ns(),
            "load": round(load, 3),
            "metric": round(metric, 3),
            "needed": needed,
            "desired": desired,
            "high": self.high,
            "low": self.low,
            "warming": warming,
        }
        name = config.metric.replace("_", " ")
        if self.high >= config.scale_out_periods and needed > desired:
            cause = (
                f"target tracking: {name} {metric:.1f} above the target {target:g} for {self.high} "
                f"datapoints of {config.period:g}s (load {load:.1f}): desired capacity {desired} -> {needed}"
            )
            self.group.set_desired(needed, cause=cause, metric=metric)
            log.info("scaling policy: %s", cause)
            return {"kind": "scale-out", "from": desired, "to": needed}
        if (
            not config.disable_scale_in
            and self.low >= config.scale_in_periods
            and warming == 0
            and needed < desired
        ):
            new = max(needed, desired - 1)
            cause = (
                f"target tracking: {name} {metric:.1f} below {config.scale_in_ratio:g} x the target "
                f"{target:g} for {self.low} datapoints of {config.period:g}s (load {load:.1f}): "
                f"desired capacity {desired} -> {new}"
            )
            self.low = 0
            self.group.set_desired(new, cause=cause, metric=metric)
            log.info("scaling policy: %s", cause)
            return {"kind": "scale-in", "from": desired, "to": new}
        return None

    def snapshot(self) -> dict[str, Any]:
        """The policy and its last datapoint, for ``GET /state``."""
        return {**self.config.model_dump(mode="json"), "last": self.last}


def policy_for(group: Group, balancer: Balancer) -> TargetTracking | None:
    """The group's policy when its configuration has one."""
    config = group.config.scaling
    return None if config is None else TargetTracking(config, group, balancer)
