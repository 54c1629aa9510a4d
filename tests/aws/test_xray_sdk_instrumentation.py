"""X-Ray for real: the instance server and the Lambda handler traced with aws-xray-sdk (in child
processes, against moto), their segments sent over UDP to the collector on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from aws_fakes import fake_environment
from awstier import TABLE, http_api_event

from analysis.xray import read_xray
from counter.local.framing import encode, read_frame
from counter.xray import enabled, parse_header, tracing_from_env
from counter.xray_collector import XRayCollector

CHILD = Path(__file__).with_name("xray_child.py")
ROOT = "1-6a1b2c3d-0123456789abcdef01234567"
PARENT = "53995c3f42cd8ad8"
LAMBDA_ROOT = "1-6a1b2c3e-fedcba9876543210fedcba98"


def run_child(mode: str, collector: XRayCollector, headers: list[dict[str, str]], **env: str) -> list[dict]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CHAOSCHECK_"))}
    child_env.update(fake_environment())
    child_env.update(collector.environment())
    child_env.update(CHILD_REQUEST_HEADERS=json.dumps(headers), **env)
    done = subprocess.run(
        [sys.executable, str(CHILD), mode], env=child_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def documents(collector: XRayCollector) -> list[dict[str, Any]]:
    collector.stop()
    return [json.loads(line) for line in collector.path.read_text().splitlines()]


def walk(entity: dict[str, Any]) -> list[dict[str, Any]]:
    found = [entity]
    for child in entity.get("subsegments", []):
        found += walk(child)
    return found


def test_the_instance_server_honours_the_incoming_trace_and_records_the_store_call(tmp_path: Path) -> None:
    collector = XRayCollector(tmp_path / "xray.jsonl").start()
    responses = run_child(
        "fleet",
        collector,
        [
            {"X-Amzn-Trace-Id": f"Root={ROOT};Parent={PARENT};Sampled=1", "Idempotency-Key": "op-1"},
            {"X-Amzn-Trace-Id": "Root=1-6a1b2c3d-00000000000000000000dead;Sampled=0"},  # not sampled
        ],
        CHAOSCHECK_TABLE=TABLE,
        CHAOSCHECK_INSTANCE_ID="i-0123456789abcdef0",
    )
    assert [r["body"]["value"] for r in responses] == [1, 2]
    assert responses[0]["headers"]["x-amzn-trace-id"] == f"Root={ROOT};Sampled=1"
    assert "x-amzn-trace-id" not in responses[1]["headers"]

    (segment,) = documents(collector)  # the unsampled request and the health check send nothing
    assert segment["trace_id"] == ROOT and segment["parent_id"] == PARENT
    assert segment["name"] == "chaoscheck-counter-fleet"
    assert segment["http"]["request"] == {"method": "POST", "url": "/counters/xc/increment"}
    assert segment["http"]["response"]["status"] == 200
    assert segment["annotations"] == {
        "tier": "fleet",
        "served_by": "i-0123456789abcdef0",
        "counter": "xc",
        "op_id": "op-1",
    }
    (store_call,) = segment["subsegments"]
    assert store_call["name"] == "store.increment" and store_call["annotations"] == {"applied": True}
    # the boto3 calls under it: this process's first increment reads the counter, then transacts
    read, write = store_call["subsegments"]
    assert {read["name"], write["name"], read["namespace"], write["namespace"]} == {"dynamodb", "aws"}
    assert read["aws"]["operation"] == "GetItem" and read["aws"]["table_name"] == TABLE
    assert read["aws"]["consistent_read"] is True
    assert write["aws"]["operation"] == "TransactWriteItems" and write["trace_id"] == ROOT
    assert segment["start_time"] <= store_call["start_time"] <= store_call["end_time"] <= segment["end_time"]
    # the analysis reads the collector's file as it is, and joins on the client's trace id
    (row,) = read_xray(collector.path).itertuples()
    assert (row.trace_id, row.name, row.status) == (ROOT, "chaoscheck-counter-fleet", 200)


def test_a_local_lambda_environment_makes_its_own_segment(tmp_path: Path) -> None:
    """The local stack's environments are plain processes: a segment per invocation, as on EC2."""
    collector = XRayCollector(tmp_path / "xray.jsonl").start()
    responses = run_child(
        "lambda",
        collector,
        [{"x-amzn-trace-id": f"Root={ROOT};Sampled=1", "idempotency-key": "k"}],
        CHILD_SQLITE="1",
    )
    assert responses[0]["status"] == 200
    (segment,) = documents(collector)
    assert segment["trace_id"] == ROOT and "parent_id" not in segment
    assert segment["name"] == "chaoscheck-counter-lambda"
    assert segment["annotations"]["tier"] == "lambda" and segment["annotations"]["served_by"] == "env-1"
    assert [s["name"] for s in segment["subsegments"]] == ["store.increment"]


COLD_START_S = 0.05


def invocation(root: str, sampled: int = 1, **extra: Any) -> dict[str, Any]:
    """An event frame as the local stack's pool writes it (``counter.local.framing``)."""
    headers = {"x-amzn-trace-id": f"Root={root};Sampled={sampled}"}
    event = http_api_event("POST", "/counters/xc/increment", headers, function_url=True)
    return {"event": event, "request_id": root, "deadline_ms": int((time.time() + 30) * 1000), **extra}


def run_environment(
    tmp_path: Path, collector: XRayCollector, frames: list[dict[str, Any]], *, tracing: bool = True
) -> tuple[float, float, list[dict[str, Any]]]:
    """A local Lambda environment (``python -m counter.local.runtime``, the process the stack's pool
    starts) given ``frames`` one at a time; returns when it was spawned and when its ``ready`` frame
    arrived (epoch seconds), and its result frames. Killed after 60 s whatever happens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CHAOSCHECK_"))}
    env.update(fake_environment(), **(collector.environment() if tracing else {}))
    env.update(
        CHAOSCHECK_DB=str(tmp_path / "counter.sqlite"),
        CHAOSCHECK_COLD_START=repr(COLD_START_S),
        AWS_LAMBDA_LOG_STREAM_NAME="env-1",
    )
    spawned = time.time()
    command = [sys.executable, "-m", "counter.local.runtime"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    guard = threading.Timer(60, process.kill)
    guard.start()
    try:
        assert process.stdin is not None and process.stdout is not None
        assert "ready" in read_frame(process.stdout)
        ready = time.time()
        results = []
        for frame in frames:
            process.stdin.write(encode(frame))
            process.stdin.flush()
            results.append(read_frame(process.stdout))
        process.stdin.close()  # the environment shuts down
        assert process.wait(timeout=30) == 0
    finally:
        guard.cancel()
        process.kill()
        process.wait()
    return spawned, ready, results


def initializations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in walk(document) if e["name"] == "Initialization"]


def test_a_local_lambda_environment_records_its_init_in_its_first_invocation_only(tmp_path: Path) -> None:
    collector = XRayCollector(tmp_path / "xray.jsonl").start()
    second = "1-6a1b2c3d-0123456789abcdef0123cafe"
    spawned, ready, results = run_environment(tmp_path, collector, [invocation(ROOT), invocation(second)])
    assert [r["result"]["statusCode"] for r in results] == [200, 200]
    first_segment, second_segment = documents(collector)
    assert (first_segment["trace_id"], second_segment["trace_id"]) == (ROOT, second)
    assert initializations(second_segment) == []
    # one subsegment of the first request's segment, before the handler's own store call
    init, store_call = first_segment["subsegments"]
    assert store_call["name"] == "store.increment"
    assert init["name"] == "Initialization" and init["type"] == "subsegment"
    assert init["parent_id"] == first_segment["id"] and init["trace_id"] == ROOT
    assert init["in_progress"] is False and "subsegments" not in init
    # the environment's init: after the process was spawned, the cold_start delay inside it, ready
    # before the pool saw the ready frame, and before the first request began
    assert spawned <= init["start_time"]
    assert init["end_time"] - init["start_time"] >= COLD_START_S
    assert init["end_time"] <= ready and init["end_time"] <= first_segment["start_time"]
    # the analysis reads it as a cold start of the first trace
    frame = read_xray(collector.path).set_index("trace_id")
    assert frame.loc[ROOT, "init_ns"] >= COLD_START_S * 1e9 and frame.loc[second, "init_ns"] == -1


@pytest.mark.parametrize(
    ("first", "tracing", "expected"),
    [
        # handed to an invocation X-Ray does not sample: not recorded, and not handed again (as on AWS)
        (invocation(ROOT, sampled=0), True, []),
        # the errors fault answers without running the handler: the first invocation that runs it has it
        (invocation(ROOT, fault={"status": 500}), True, [LAMBDA_ROOT]),
        # tracing off: nothing is sent at all
        (invocation(ROOT), False, []),
    ],
    ids=["unsampled-first", "injected-error-first", "tracing-off"],
)
def test_the_init_goes_once_to_the_first_invocation_the_handler_traces(
    tmp_path: Path, first: dict[str, Any], tracing: bool, expected: list[str]
) -> None:
    collector = XRayCollector(tmp_path / "xray.jsonl").start()
    _, _, results = run_environment(tmp_path, collector, [first, invocation(LAMBDA_ROOT)], tracing=tracing)
    assert results[1]["result"]["statusCode"] == 200
    segments = documents(collector)
    assert [s["trace_id"] for s in segments if initializations(s)] == expected
    assert [s["trace_id"] for s in segments] == ([LAMBDA_ROOT] if tracing else [])


def test_inside_lambda_the_request_is_a_subsegment_of_the_functions_segment(tmp_path: Path) -> None:
    collector = XRayCollector(tmp_path / "xray.jsonl").start()
    responses = run_child(
        "lambda",
        collector,
        [{"x-amzn-trace-id": f"Root={ROOT};Sampled=1"}],
        CHAOSCHECK_TABLE=TABLE,
        LAMBDA_TASK_ROOT="/var/task",
        _X_AMZN_TRACE_ID=f"Root={LAMBDA_ROOT};Parent={PARENT};Sampled=1",
        AWS_LAMBDA_FUNCTION_NAME="counter",
    )
    assert responses[0]["status"] == 200
    entities = [e for d in documents(collector) for e in walk(d)]
    counter = next(e for e in entities if e["name"] == "counter")
    assert counter["trace_id"] == LAMBDA_ROOT and counter["parent_id"] == PARENT
    assert counter["annotations"]["client_trace_id"] == ROOT  # the client's trace, for the join
    names = {e["name"] for e in entities}
    assert {"counter", "store.increment", "dynamodb"} <= names
    assert all(e.get("trace_id", LAMBDA_ROOT) == LAMBDA_ROOT for e in entities)


def test_tracing_is_off_unless_asked_for() -> None:
    assert not enabled({}) and not enabled({"CHAOSCHECK_XRAY": "0"})
    assert enabled({"CHAOSCHECK_XRAY": "1"}) and enabled({"CHAOSCHECK_XRAY": "true"})
    assert tracing_from_env("svc", "fleet", {}) is None


@pytest.mark.parametrize(
    ("header", "fields"),
    [
        (f"Root={ROOT};Parent={PARENT};Sampled=1", {"Root": ROOT, "Parent": PARENT, "Sampled": "1"}),
        (f"Self=1-67891234-abcdef012345678912345678;Root={ROOT}", {"Root": ROOT}),
        ("garbage", {}),
        (None, {}),
    ],
)
def test_trace_headers_are_parsed_as_the_alb_and_the_load_send_them(header: str | None, fields: dict) -> None:
    assert parse_header(header) == fields
