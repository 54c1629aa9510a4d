"""The AWS target resolved from a CloudFormation stack in moto: endpoints, chaos backend, alarms,
timeline, the table's ledger and the run's X-Ray traces."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from awstier import REGION, STACK, TEMPLATE, create_stack

from analysis.xray import read_xray
from chaos.backends.interface import InjectionError
from chaoscheck import runformat
from chaoscheck.errors import UserError
from chaoscheck.runformat import OPS_SCHEMA, SCALING_SCHEMA, SERVER_OPS_SCHEMA, TIMELINE_SCHEMA
from chaoscheck.targets.aws import XRAY_FILE, AwsTarget, StackOutputs
from counter.dynamodb_store import DynamoDBStore


@pytest.fixture
def session(aws: None, shared_session: Any) -> Any:
    return shared_session


@pytest.fixture
def outputs(session: Any) -> dict[str, str]:
    return create_stack(session=session)


@pytest.fixture
def target(aws: None, shared_session: Any) -> Iterator[Callable[..., AwsTarget]]:
    """Targets on the test's moto account, sharing one boto3 session (its models parsed once).

    Every target made is stopped before the moto mock ends: a started target samples the stack on a
    thread, and one left running after the mock would send its calls to the real AWS endpoints.
    """
    made: list[AwsTarget] = []

    def make(stack: str = STACK, **kwargs: Any) -> AwsTarget:
        kwargs.setdefault("session", shared_session)
        kwargs.setdefault("xray_settle_s", 0)
        made.append(AwsTarget(stack, region=REGION, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.run_dir = None  # nothing more to fetch: only the sampling thread is stopped here
        each.stop()


def test_the_stack_outputs_give_endpoints_and_resources(
    outputs: dict[str, str], target: Callable[..., AwsTarget]
) -> None:
    aws = target()
    resolved = aws.resolve()
    assert resolved.group_name == outputs["GroupName"] and resolved.function_name == outputs["FunctionName"]
    assert resolved.table_name == outputs["TableName"] and resolved.status == "CREATE_COMPLETE"
    assert aws.endpoints() == {"fleet": "http://127.0.0.1:9", "lambda": "http://127.0.0.2:9"}
    assert target(lambda_endpoint="http-api").start().endpoints()["lambda"] == "http://127.0.0.3:9"
    lines = aws.describe()
    assert lines[0] == f"stack {STACK} in {REGION} (CREATE_COMPLETE)"
    assert any(outputs["GroupName"] in line and outputs["TableName"] in line for line in lines)
    assert aws.wait_quiet(1.0) is True and aws.log_paths() == []


def test_the_chaos_backend_targets_the_stacks_group_and_function(
    outputs: dict[str, str], target: Callable[..., AwsTarget]
) -> None:
    aws = target(seed=7, max_share=0.34, accounts=["123456789012"], regions=[REGION]).start()
    try:
        backend = aws.chaos_backend()
        assert backend is aws.chaos_backend()
        descriptor = backend.descriptor()
        assert descriptor["group_name"] == outputs["GroupName"]
        assert descriptor["function_name"] == outputs["FunctionName"]
        assert (descriptor["seed"], descriptor["max_share"], descriptor["parameter_prefix"]) == (
            7,
            0.34,
            "/chaoscheck",
        )
        assert (descriptor["accounts"], descriptor["regions"], descriptor["allow_untagged"]) == (
            ["123456789012"],
            [REGION],
            False,
        )
        kill = backend.plan("terminate-instance", {"count": 1})
        assert kill.target.startswith("i-")
        throttle = backend.plan("throttle-lambda", {"reserved_concurrency": 0})
        assert throttle.target == outputs["FunctionName"] and throttle.undo["reserved_concurrency"] is None
        with pytest.raises(InjectionError, match="at most 34%"):
            backend.plan("terminate-instance", {"count": 2})
    finally:
        aws.stop()
    elsewhere = target(accounts=["111111111111"]).start()
    with pytest.raises(InjectionError, match="not in the allowed accounts"):
        elsewhere.chaos_backend().plan("terminate-instance", {"count": 1})
    elsewhere.stop()


def test_alarm_states_for_stop_conditions(outputs: dict[str, str], target: Callable[..., AwsTarget]) -> None:
    boto3.client("cloudwatch", region_name=REGION).put_metric_alarm(
        AlarmName="counter-5xx", MetricName="HTTPCode_ELB_5XX_Count", Namespace="AWS/ApplicationELB",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip
    aws = target()
    assert aws.alarm_state("counter-5xx") in ("OK", "INSUFFICIENT_DATA")
    boto3.client("cloudwatch", region_name=REGION).set_alarm_state(
        AlarmName="counter-5xx", StateValue="ALARM", StateReason="test"
    )
    assert aws.alarm_state("counter-5xx") == "ALARM"
    with pytest.raises(InjectionError, match="no-such-alarm"):
        aws.alarm_state("no-such-alarm")


def test_the_timeline_samples_from_start_to_stop(
    outputs: dict[str, str], target: Callable[..., AwsTarget]
) -> None:
    aws = target(timeline_interval=0.2, metrics_interval=0)
    assert aws.timeline(0) is None  # not started
    started_ns = time.time_ns()
    aws.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(aws._timeline.rows) < 2:  # type: ignore[union-attr]
        time.sleep(0.05)
    aws.stop()
    table = aws.timeline(started_ns)
    assert table is not None and table.schema == TIMELINE_SCHEMA and table.num_rows >= 2
    assert set(table.column("fleet_desired").to_pylist()) == {3}
    assert aws.timeline(time.time_ns() + 10**9).num_rows == 0  # type: ignore[union-attr]


def test_server_ops_are_the_tables_applied_keys_of_the_counter(
    outputs: dict[str, str], target: Callable[..., AwsTarget]
) -> None:
    store = DynamoDBStore(outputs["TableName"], boto3.client("dynamodb", region_name=REGION))
    for key in ("a", "b", "c"):
        store.increment("run-counter", key)
    store.increment("other", "z")
    ops = target().start().server_ops("run-counter")
    assert ops is not None and ops.schema == SERVER_OPS_SCHEMA
    assert ops.column("op_id").to_pylist() == ["a", "b", "c"]
    assert ops.column("value_after").to_pylist() == [1, 2, 3]
    assert set(ops.column("counter").to_pylist()) == {"run-counter"}
    assert target().start().server_ops("never-used").num_rows == 0  # type: ignore[union-attr]


def _ops_table(trace_ids: list[str | None], outcomes: list[str]) -> pa.Table:
    n = len(trace_ids)
    columns: dict[str, list] = {name: [None] * n for name in OPS_SCHEMA.names}
    columns.update(
        op_id=[f"k{i}" for i in range(n)], kind=["increment"] * n, endpoint=["fleet"] * n, counter=["c"] * n,
        start_ns=[i for i in range(n)], end_ns=[i + 1 for i in range(n)], status=[200] * n, outcome=outcomes,
        worker=["w"] * n, attempt=[0] * n, trace_id=trace_ids,
    )  # fmt: skip
    return pa.Table.from_pydict(columns, schema=OPS_SCHEMA)


def test_stop_fetches_the_runs_traces_into_xray_jsonl(
    outputs: dict[str, str], tmp_path: Path, target: Callable[..., AwsTarget]
) -> None:
    now = time.time()
    ids = [f"1-{int(now):08x}-{i:024x}" for i in range(7)]
    xray = boto3.client("xray", region_name=REGION)
    documents = [
        {"name": "chaoscheck-counter-fleet", "id": f"{i:016x}", "trace_id": trace_id, "start_time": now,
         "end_time": now + 0.01, "http": {"response": {"status": 200}}}
        for i, trace_id in enumerate(ids[:6])
    ]  # fmt: skip
    xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in documents])
    pq.write_table(_ops_table([*ids, None], ["ok"] * 7 + ["fail"]), tmp_path / runformat.OPS)

    aws = target(run_dir=tmp_path).start()
    aws.stop()
    aws.stop()  # once only
    lines = (tmp_path / XRAY_FILE).read_text().splitlines()
    assert sorted(json.loads(line)["trace_id"] for line in lines) == sorted(ids[:6])  # ids[6] was not sampled
    assert json.loads(lines[0]) in documents
    assert len(read_xray(tmp_path / XRAY_FILE)) == 6  # what the analysis joins, as for a local run


def test_a_run_without_ops_or_traces_writes_no_xray_file(
    outputs: dict[str, str], tmp_path: Path, target: Callable[..., AwsTarget]
) -> None:
    aws = target(run_dir=tmp_path).start()
    aws.stop()
    assert not (tmp_path / XRAY_FILE).exists()
    pq.write_table(_ops_table([None], ["ok"]), tmp_path / runformat.OPS)
    assert target().start().collect_xray(tmp_path, settle_s=0) is None


def test_problems_finding_the_stack_are_one_line_user_errors(
    session: Any, target: Callable[..., AwsTarget]
) -> None:
    with pytest.raises(
        UserError, match=f"--stack nope: expected a CloudFormation stack of that name in {REGION}"
    ):
        target("nope").start()
    create_stack(
        TEMPLATE.split("Outputs:")[0] + "Outputs:\n  FleetUrl: {Value: http://127.0.0.1:9}\n",
        "partial",
        session,
    )
    with pytest.raises(UserError, match="missing LambdaUrl, GroupName, FunctionName, TableName"):
        target("partial").resolve()
    with pytest.raises(UserError, match="got status ROLLBACK_COMPLETE"):
        StackOutputs.from_stack({"StackName": "s", "StackStatus": "ROLLBACK_COMPLETE"}, REGION)
    with pytest.raises(UserError, match="--stack"):
        AwsTarget("", region=REGION)
    with pytest.raises(UserError, match="--profile"):
        AwsTarget(STACK, profile="no-such-profile")
    target("nope").stop()  # never started: nothing to stop


def test_scaling_activities_seen_by_the_timeline(
    outputs: dict[str, str], target: Callable[..., AwsTarget]
) -> None:
    """moto records no scaling activities: the timeline's entries are given in AWS's words."""
    aws = target(timeline_interval=300)
    assert aws.activities(0) is None  # not started
    aws.start()
    aws.stop()
    cause = (
        "At 2026-01-01T10:00:00Z a user request update of AutoScalingGroup constraints to min: 1, max: 6, "
        "desired: 4 changing the desired capacity from 3 to 4."
    )
    aws._timeline.activities = [  # type: ignore[union-attr]
        {"ts_ns": 2_000, "end_ns": None, "seen_ns": 2_100, "activity_id": "a1", "status": "InProgress",
         "description": "Launching a new EC2 instance: i-0123456789abcdef0", "cause": cause, "progress": 30},
        {"ts_ns": 1_000, "end_ns": 1_500, "seen_ns": 1_600, "activity_id": "a0", "status": "Successful",
         "description": "Terminating EC2 instance: i-0fedcba9876543210",
         "cause": "an instance was taken out of service in response to an ELB system health check failure.",
         "progress": 100},
        {"ts_ns": 2_000, "end_ns": 9_000, "seen_ns": 9_100, "activity_id": "a1", "status": "Successful",
         "description": "Launching a new EC2 instance: i-0123456789abcdef0", "cause": cause, "progress": 100},
    ]  # fmt: skip
    table = aws.activities(0)
    assert table is not None and table.schema == SCALING_SCHEMA
    rows = table.to_pylist()
    assert [(r["activity_id"], r["kind"], r["status"], r["subject"]) for r in rows] == [
        ("a0", "terminate", "successful", "i-0fedcba9876543210"),
        ("a1", "launch", "successful", "i-0123456789abcdef0"),
    ]
    assert (rows[1]["from_capacity"], rows[1]["to_capacity"], rows[1]["end_ns"]) == (3, 4, 9_000)
    assert (rows[0]["from_capacity"], rows[0]["to_capacity"]) == (0, 0)
    assert [r["activity_id"] for r in aws.activities(5_000).to_pylist()] == ["a1"]  # type: ignore[union-attr]
