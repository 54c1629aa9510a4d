"""The AWS timeline sampler against moto: rows in TIMELINE_SCHEMA's shape, metrics, scaling activities."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_stack import FUNCTION, GROUP, Stack

from chaos.backends.aws_timeline import AwsTimeline
from chaoscheck.runformat import TIMELINE_SCHEMA


def timeline(stack: Stack, **kwargs: Any) -> AwsTimeline:
    return AwsTimeline(stack.session, group_name=GROUP, function_name=FUNCTION, **kwargs)


def test_a_row_has_exactly_the_timeline_columns(counter_stack: Stack) -> None:
    row = timeline(counter_stack).sample_once()
    assert sorted(row) == sorted(TIMELINE_SCHEMA.names)
    assert {k: row[k] for k in TIMELINE_SCHEMA.names if k != "ts_ns"} == {
        "fleet_desired": 3, "fleet_pending": 0, "fleet_in_service": 3, "fleet_unhealthy": 0,
        "fleet_requests": 0, "fleet_errors": 0,
        "lambda_reserved": None, "lambda_active": 0, "lambda_environments": 0, "lambda_requests": 0,
        "lambda_throttles": 0, "lambda_cold_starts": 0,
    }  # fmt: skip
    assert abs(row["ts_ns"] - time.time_ns()) < 5e9


def test_the_sampler_follows_the_faults(counter_stack: Stack) -> None:
    sampler = timeline(counter_stack)
    lam, asg = counter_stack.client("lambda"), counter_stack.client("autoscaling")
    lam.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=0)
    asg.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    sick = counter_stack.in_service()[0]
    asg.set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    row = sampler.sample_once()
    assert row["lambda_reserved"] == 0
    assert (row["fleet_desired"], row["fleet_in_service"], row["fleet_unhealthy"]) == (2, 1, 1)


def test_cloudwatch_figures_are_summed_since_the_start_and_cached(counter_stack: Stack) -> None:
    now = [time.time_ns()]
    sampler = timeline(counter_stack, metrics_interval=60.0, clock=lambda: now[0])
    cloudwatch = counter_stack.client("cloudwatch")

    def put(metric: str, value: float) -> None:
        cloudwatch.put_metric_data(
            Namespace="AWS/Lambda",
            MetricData=[{"MetricName": metric, "Value": value, "Timestamp": datetime.now(UTC),
                         "Dimensions": [{"Name": "FunctionName", "Value": FUNCTION}]}],
        )  # fmt: skip

    put("Throttles", 5)
    put("Throttles", 3)
    put("Invocations", 10)
    put("ConcurrentExecutions", 4)
    row = sampler.sample_once()
    assert (row["lambda_throttles"], row["lambda_requests"], row["lambda_active"]) == (8, 18, 4)
    put("Throttles", 100)
    assert sampler.sample_once()["lambda_throttles"] == 8  # not queried again within metrics_interval
    now[0] += 61 * 1_000_000_000
    assert sampler.sample_once()["lambda_throttles"] == 108


def test_load_balancer_metrics_when_given(counter_stack: Stack) -> None:
    dimension = "app/counter-alb/50dc6c495c0c9188"
    counter_stack.client("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": name, "Value": value, "Timestamp": datetime.now(UTC),
             "Dimensions": [{"Name": "LoadBalancer", "Value": dimension}]}
            for name, value in (("RequestCount", 120), ("HTTPCode_ELB_5XX_Count", 7))
        ],
    )  # fmt: skip
    row = timeline(counter_stack, load_balancer=dimension, metrics_interval=0).sample_once()
    assert (row["fleet_requests"], row["fleet_errors"]) == (120, 7)


def test_target_group_health_counts_what_receives_traffic(counter_stack: Stack) -> None:
    ec2, elbv2 = counter_stack.client("ec2"), counter_stack.client("elbv2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = elbv2.create_target_group(
        Name="counter", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance"
    )
    arn = group["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i} for i in counter_stack.in_service()[:2]])
    states = [
        t["TargetHealth"]["State"]
        for t in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    ]
    assert states == ["healthy", "healthy"]  # moto: running instances are healthy at once
    row = timeline(counter_stack, target_group_arn=arn).sample_once()
    assert row["fleet_in_service"] == states.count("healthy")
    assert row["fleet_pending"] == states.count("initial")
    assert row["fleet_unhealthy"] == states.count("unhealthy")
    assert row["fleet_desired"] == 3


def test_scaling_activities_are_recorded_once_per_status(
    counter_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    sampler = timeline(counter_stack)
    start = datetime.now(UTC)
    answers: list[list[dict[str, Any]]] = [
        [
            {"ActivityId": "new", "StartTime": start + timedelta(seconds=1), "StatusCode": "InProgress",
             "Description": "Launching a new EC2 instance: i-1", "Cause": "an instance left service",
             "Progress": 30, "AutoScalingGroupName": GROUP},
            {"ActivityId": "old", "StartTime": start - timedelta(hours=1),
             "EndTime": start - timedelta(hours=1),
             "StatusCode": "Successful", "Description": "before the run", "Cause": "", "Progress": 100,
             "AutoScalingGroupName": GROUP},
        ],
    ]  # fmt: skip
    answers.append([{**answers[0][0]}, answers[0][1]])
    answers.append([{**answers[0][0], "StatusCode": "Successful", "EndTime": start + timedelta(seconds=40),
                     "Progress": 100}, answers[0][1]])  # fmt: skip
    # moto records no scaling activities, so the answers are AWS-shaped stand-ins (newest first)
    client = counter_stack.session.client("autoscaling")
    sampler._clients._clients["autoscaling"] = client
    monkeypatch.setattr(
        client, "describe_scaling_activities", lambda **kwargs: {"Activities": answers.pop(0)}
    )
    for _ in range(3):
        sampler.sample_once()
    assert [(a["activity_id"], a["status"]) for a in sampler.activities] == [
        ("new", "InProgress"),
        ("new", "Successful"),
    ]
    assert sampler.activities[0]["end_ns"] is None
    assert sampler.activities[1]["end_ns"] == int((start + timedelta(seconds=40)).timestamp() * 1e9)
    assert sampler.activities[1]["description"] == "Launching a new EC2 instance: i-1"


def test_the_thread_samples_on_its_interval_and_stops(counter_stack: Stack) -> None:
    sampler = timeline(counter_stack, interval=0.2)
    sampler.start()
    time.sleep(0.75)
    sampler.stop()
    assert sampler._thread is not None and not sampler._thread.is_alive()
    count = len(sampler.rows)
    assert 2 <= count <= 6
    time.sleep(0.3)
    assert len(sampler.rows) == count  # stopped means stopped
    sampler.stop()  # idempotent
    table = sampler.to_table()
    assert table.schema == TIMELINE_SCHEMA and table.num_rows == count
    assert sampler.since(sampler.rows[0]["ts_ns"]) == list(sampler.rows)[1:]


def test_a_failing_sample_is_a_gap_not_the_end(counter_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = timeline(counter_stack, interval=0.2)
    calls = {"n": 0}
    real = sampler.sample_once

    def flaky() -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("throttled by the API")
        return real()

    monkeypatch.setattr(sampler, "sample_once", flaky)
    sampler.start()
    deadline = time.monotonic() + 3
    while len(sampler.rows) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    sampler.stop()
    assert calls["n"] >= 2 and len(sampler.rows) >= 1


@pytest.mark.parametrize("interval", [0.0, 0.1, 301.0])
def test_the_interval_is_bounded(counter_stack: Stack, interval: float) -> None:
    with pytest.raises(ValueError, match=r"expected an interval from 0\.2 to 300"):
        timeline(counter_stack, interval=interval)
