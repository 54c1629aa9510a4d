"""Scaling in the local stack: finite instance capacity, target tracking, activities, Lambda bursts.

Real stacks and processes on 127.0.0.1, with timers scaled down; every load loop here is bounded in
requests and in time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from stack_helpers import call, stack_config, until

from chaoscheck.runformat import SCALING_KINDS, SCALING_SCHEMA, SCALING_STATUSES
from counter.local.capacity import InstanceCapacity, environment, from_environment
from counter.local.client import LocalStack
from counter.local.config import StackConfig, TargetTrackingConfig
from counter.local.scaling import TargetTracking


def burst(
    url: str, count: int, path: str = "/counters/scaling/increment", timeout: float = 10.0
) -> list[Any]:
    """``count`` requests at once, one thread each; their replies in order (bounded by ``timeout``)."""
    replies: list[Any] = [None] * count

    def one(i: int) -> None:
        replies[i] = call(
            url, "POST", path, {"Idempotency-Key": f"k{time.monotonic_ns()}-{i}"}, timeout=timeout
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 2)
    return replies


def drive(url: str, rate: float, seconds: float, workers: int = 8) -> int:
    """About ``rate`` requests/s for ``seconds`` from ``workers`` threads; returns how many were sent."""
    sent = [0] * workers
    stop_at = time.monotonic() + seconds

    def loop(i: int) -> None:
        interval = workers / rate
        next_at = time.monotonic() + i * interval / workers
        while next_at < stop_at:
            time.sleep(max(0.0, next_at - time.monotonic()))
            call(
                url, "POST", "/counters/scaling/increment", {"Idempotency-Key": f"d{i}-{sent[i]}"}, timeout=5
            )
            sent[i] += 1
            next_at += interval

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 10)
    return sum(sent)


def activities(stack: LocalStack, **match: Any) -> list[dict[str, Any]]:
    return [a for a in stack.control.activities() if all(a.get(k) == v for k, v in match.items())]


# -- instance capacity --------------------------------------------------------------------------------


def test_capacity_middleware_serves_at_most_concurrency_requests_at_once() -> None:
    running = 0
    peak = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1

    limited = InstanceCapacity(app, concurrency=2, service_time=0.05)

    async def main() -> float:
        started = time.monotonic()
        await asyncio.gather(
            *(limited({"type": "http", "path": "/counters/x"}, None, None) for _ in range(6))
        )
        await limited({"type": "http", "path": "/health"}, None, None)  # never queued
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    assert peak <= 2
    assert 0.14 <= elapsed < 0.5  # 6 requests, 2 at a time, 50 ms each: three rounds


def test_capacity_comes_from_the_environment_only_when_asked() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    assert from_environment(app, {}) is app
    wrapped = from_environment(app, environment(3, 0.02))
    assert isinstance(wrapped, InstanceCapacity)
    assert (wrapped.concurrency, wrapped.service_time) == (3, 0.02)
    assert environment(None, 0.0) == {}


def test_latency_rises_with_load_per_instance_and_a_second_instance_adds_capacity(tmp_path: Path) -> None:
    config = stack_config(
        fleet={"desired": 1, "min": 1, "max": 2, "instance_concurrency": 2, "service_time": 0.1}
    )
    with LocalStack.start(config, tmp_path / "c.db", log_path=tmp_path / "stack.log") as stack:
        assert call(stack.fleet_url, "GET", "/health").status == 200
        started = time.monotonic()
        replies = burst(stack.fleet_url, 12)
        one_instance = time.monotonic() - started
        assert [r.status for r in replies] == [200] * 12
        stack.control.set_desired_capacity(2)
        stack.control.wait_until(
            lambda s: sum(i["state"] == "in_service" for i in s["fleet"]["instances"]) == 2, 10
        )
        started = time.monotonic()
        replies = burst(stack.fleet_url, 12)
        two_instances = time.monotonic() - started
        assert [r.status for r in replies] == [200] * 12
    # 12 requests, 2 at a time per instance, 100 ms each: ~0.6 s on one instance, ~0.3 s on two
    assert one_instance >= 0.55
    assert two_instances < one_instance * 0.8


# -- the target tracking policy, unit ------------------------------------------------------------------


class FakeGroup:
    def __init__(self, desired: int, minimum: int = 1, maximum: int = 5) -> None:
        self.desired, self.min, self.max = desired, minimum, maximum
        self.changes: list[tuple[int, str]] = []

    def set_desired(self, desired: int, cause: str | None = None, metric: float | None = None) -> None:
        self.changes.append((desired, cause or ""))
        self.desired = desired


def policy(group: FakeGroup, **config: Any) -> TargetTracking:
    settings = {"target": 100, "scale_out_periods": 2, "scale_in_periods": 3, **config}
    return TargetTracking(TargetTrackingConfig.model_validate(settings), group, None)  # type: ignore[arg-type]


def test_the_policy_scales_out_after_consecutive_breaches_to_what_the_load_needs() -> None:
    group = FakeGroup(2)
    tracking = policy(group)
    assert tracking.evaluate(load=300, metric=150) is None  # one breach is not enough
    assert tracking.evaluate(load=250, metric=90) is None  # the streak is broken
    assert tracking.evaluate(load=300, metric=150) is None
    assert tracking.evaluate(load=430, metric=215) == {"kind": "scale-out", "from": 2, "to": 5}
    assert "above the target 100 for 2 datapoints" in group.changes[-1][1]
    # still breaching while the new instances warm up: no second launch for the same load
    assert tracking.evaluate(load=430, metric=215, warming=3) is None
    # more load than the maximum can carry: capped at max
    group.desired = 2
    assert tracking.evaluate(load=5000, metric=2500) == {"kind": "scale-out", "from": 2, "to": 5}


def test_the_policy_scales_in_slowly_one_instance_at_a_time_and_not_while_warming() -> None:
    group = FakeGroup(4)
    tracking = policy(group)
    for _ in range(5):
        assert tracking.evaluate(load=100, metric=25, warming=1) is None  # warming: never scale in
    assert tracking.evaluate(load=100, metric=25) == {"kind": "scale-in", "from": 4, "to": 3}
    assert tracking.evaluate(load=100, metric=33) is None  # the count starts again
    assert tracking.evaluate(load=100, metric=33) is None
    assert tracking.evaluate(load=100, metric=33) == {"kind": "scale-in", "from": 3, "to": 2}
    for _ in range(4):
        tracking.evaluate(load=100, metric=50)
    assert group.desired == 1  # never below what the load needs (ceil(100 / 100)) nor the minimum
    for _ in range(4):
        assert tracking.evaluate(load=10, metric=10) is None


def test_the_policy_never_scales_in_with_scale_in_disabled() -> None:
    group = FakeGroup(4)
    tracking = policy(group, disable_scale_in=True)
    for _ in range(10):
        assert tracking.evaluate(load=10, metric=2) is None
    assert group.desired == 4


def test_the_in_flight_metric_sizes_the_group_by_requests_in_flight() -> None:
    group = FakeGroup(1)
    tracking = policy(group, metric="in_flight_per_instance", target=4, scale_out_periods=1)
    assert tracking.evaluate(load=10, metric=10) == {"kind": "scale-out", "from": 1, "to": 3}


# -- the policy and the group, for real ---------------------------------------------------------------


def test_the_group_scales_out_on_load_and_records_each_activity(tmp_path: Path) -> None:
    scaling = {"target": 20, "period": 0.5, "scale_out_periods": 2, "scale_in_periods": 2, "warmup": 0.5}
    config = stack_config(fleet={"desired": 1, "min": 1, "max": 3, "scaling": scaling})
    with LocalStack.start(config, tmp_path / "c.db", log_path=tmp_path / "stack.log") as stack:
        started = time.time_ns()
        sent = drive(stack.fleet_url, rate=60, seconds=3.0)
        assert sent > 100
        state = stack.control.wait_until(lambda s: s["fleet"]["desired"] == 3, 3)
        assert state["fleet"]["scaling"]["target"] == 20 and state["fleet"]["scaling"]["last"] is not None
        (out,) = activities(stack, resource="fleet", kind="scale-out")
        assert (out["from_capacity"], out["to_capacity"]) == (1, 3)
        assert out["start_ns"] > started and out["metric"] > 20
        assert "target tracking: requests per instance" in out["cause"]
        launches = activities(stack, resource="fleet", kind="launch", parent=out["activity_id"])
        assert len(launches) == 2
        until(
            lambda: all(a["status"] == "successful" for a in activities(stack, parent=out["activity_id"])), 10
        )
        (out,) = activities(stack, resource="fleet", kind="scale-out")
        assert out["status"] == "successful"
        assert out["end_ns"] == max(a["end_ns"] for a in activities(stack, parent=out["activity_id"]))
        instances = {i["id"]: i for i in stack.control.state()["fleet"]["instances"]}
        for launch in activities(stack, parent=out["activity_id"]):
            instance = instances[launch["subject"]]
            assert launch["end_ns"] == instance["in_service_ns"]
            assert instance["warm_ns"] == instance["in_service_ns"] + 500_000_000
        # no load: after two low datapoints per step, one instance at a time, down to the minimum
        state = stack.control.wait_until(lambda s: s["fleet"]["desired"] == 1, 10)
        ins = activities(stack, resource="fleet", kind="scale-in")
        assert [(a["from_capacity"], a["to_capacity"]) for a in ins] == [(3, 2), (2, 1)]
        for scale_in in ins:
            (gone,) = activities(stack, kind="terminate", parent=scale_in["activity_id"])
            assert "desired capacity lowered" in gone["cause"]
        until(lambda: all(a["status"] == "successful" for a in activities(stack, resource="fleet")), 5)
        for row in stack.control.activities():
            assert set(row) == set(SCALING_SCHEMA.names)
            assert row["kind"] in SCALING_KINDS[row["resource"]] and row["status"] in SCALING_STATUSES


def test_a_killed_instance_is_terminated_and_replaced_with_activities(stack: LocalStack) -> None:
    victim = next(i for i in stack.control.state()["fleet"]["instances"] if i["state"] == "in_service")
    killed_at = time.time_ns()
    stack.control.signal_instance(victim["id"], "KILL")
    replacement = until(
        lambda: next(
            iter(activities(stack, kind="launch", replaces=victim["id"], status="successful")), None
        ),
        10,
        what="the replacement in service",
    )
    (gone,) = activities(stack, kind="terminate", subject=victim["id"])
    assert killed_at < gone["start_ns"] <= replacement["start_ns"] < replacement["end_ns"]
    assert "failed 2 health checks" in gone["cause"] and gone["status"] == "successful"
    assert (
        replacement["cause"]
        == f"launching instance {replacement['subject']}: replacing instance {victim['id']}"
    )
    assert replacement["parent"] is None


def test_desired_capacity_set_through_the_control_api_is_an_activity(stack: LocalStack) -> None:
    before = time.time_ns()
    assert stack.control.set_desired_capacity(4) == 3
    (out,) = activities(stack, resource="fleet", kind="scale-out")
    assert "through the control API" in out["cause"] and (out["from_capacity"], out["to_capacity"]) == (3, 4)
    until(
        lambda: activities(stack, activity_id=out["activity_id"], status="successful"), 10, what="scale-out"
    )
    stack.control.set_desired_capacity(3)
    until(lambda: activities(stack, kind="scale-in", status="successful"), 10, what="the scale-in")
    assert all(a["start_ns"] > before or a["end_ns"] > before for a in stack.control.activities(before))
    token = {"Authorization": f"Bearer {stack.control._token}"}
    assert call(stack.control_url, "GET", "/activities?since_ns=soon", token).status == 400


# -- Lambda: burst limit, cold starts, idle reclaim ----------------------------------------------------


def test_the_function_bursts_at_its_scaling_rate_and_reclaims_idle_environments(tmp_path: Path) -> None:
    config = stack_config(
        **{"lambda": {"service_time": 0.4, "burst_limit": 2, "burst_interval": 1.0, "idle_timeout": 0.6}}
    )
    with LocalStack.start(config, tmp_path / "c.db", log_path=tmp_path / "stack.log") as stack:
        replies = burst(stack.lambda_url, 5)
        statuses = sorted(r.status for r in replies)
        assert statuses == [200, 200, 429, 429, 429], statuses
        throttled = [r for r in replies if r.status == 429]
        assert all(r.body["Reason"] == "FunctionInvocationRateLimitExceeded" for r in throttled)
        state = stack.control.state()["lambda"]
        assert state["burst_throttles"] == 3 and state["cold_starts"] == 2
        starts = activities(stack, resource="lambda", kind="cold-start")
        assert len(starts) == 2 and all(a["status"] == "successful" and a["end_ns"] for a in starts)
        assert sorted((a["from_capacity"], a["to_capacity"]) for a in starts) == [(0, 1), (1, 2)]
        # idle for 0.6 s: both reclaimed; the next call is a cold start again
        until(lambda: len(activities(stack, kind="reclaim")) == 2, 5, what="idle environments reclaimed")
        assert stack.control.state()["lambda"]["environments"] == []
        assert call(stack.lambda_url, "GET", "/health").status == 200
        assert len(activities(stack, resource="lambda", kind="cold-start")) == 3


def test_defaults_keep_the_stack_as_it_was() -> None:
    config = StackConfig()
    assert config.fleet.instance_concurrency is None and config.fleet.service_time == 0
    assert config.fleet.scaling is None
    assert config.lambda_.burst_limit is None and config.lambda_.idle_timeout is None
    assert config.lambda_.service_time == 0
