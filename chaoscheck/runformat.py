"""The run directory: its file names and the schema of every table in it, declared once.

This is a public contract (``docs/run-format.md`` explains each column for users). The writers
(``loadtests`` for the ledger, ``chaos`` for the journal, the orchestrator for the rest) and the one
reader (``analysis.rundir``) all take names and types from here, so they cannot drift apart.
This module is a leaf: it imports nothing of the project, so any layer may use it.
"""

from __future__ import annotations

import math

import pyarrow as pa

SCENARIO = "scenario.yaml"
RUN_META = "run.json"
OPS = "ops.parquet"
FAULTS = "faults.jsonl"
XRAY = "xray.jsonl"  # X-Ray segments, one document per line, when the target traces (optional)
TIMELINE = "timeline.parquet"
SERVER_OPS = "server_ops.parquet"
SUMMARY = "summary.json"
REPORT = "report.html"
LOCUST_LOG = "locust.log"
STACK_LOG = "stack.log"
LOAD = "load.json"
SCALING = "scaling.parquet"

# Outcomes of an operation, as Jepsen names them (shared/reference/verification.md).
OK, FAIL, INFO = "ok", "fail", "info"
OUTCOMES = (OK, FAIL, INFO)
KINDS = ("increment", "read", "final", "omitted")
"""``omitted``: an operation the open model scheduled but could not send (all users busy)."""
ENDPOINTS = ("fleet", "lambda")

OPS_SCHEMA = pa.schema(
    [
        pa.field("op_id", pa.string(), nullable=True),  # the idempotency key; null for reads
        pa.field("kind", pa.string(), nullable=False),  # increment | read | final
        pa.field("endpoint", pa.string(), nullable=False),  # fleet | lambda
        pa.field("counter", pa.string(), nullable=False),  # counter name, fresh per run
        pa.field("start_ns", pa.int64(), nullable=False),  # epoch ns, just before the request was sent
        pa.field("end_ns", pa.int64(), nullable=False),  # epoch ns, when the response (or error) came
        pa.field("status", pa.int32(), nullable=False),  # HTTP status; 0 when no response came
        pa.field("outcome", pa.string(), nullable=False),  # ok | fail | info
        pa.field("value", pa.int64(), nullable=True),  # the counter value the response carried
        pa.field("error", pa.string(), nullable=True),  # error text (client error or response body)
        pa.field("served_by", pa.string(), nullable=True),  # X-Served-By: instance or environment id
        pa.field("worker", pa.string(), nullable=False),  # the load process (and user) that sent it
        pa.field("intended_ns", pa.int64(), nullable=True),  # epoch ns when it was due (open model, pacing)
        pa.field("attempt", pa.int32(), nullable=False),  # 0 for the first try of a key, then 1, 2, ...
        pa.field("trace_id", pa.string(), nullable=True),  # the X-Ray Root sent in X-Amzn-Trace-Id
    ]
)

SERVER_OPS_SCHEMA = pa.schema(
    [
        pa.field("op_id", pa.string(), nullable=False),  # the idempotency key the store applied
        pa.field("counter", pa.string(), nullable=False),
        pa.field("value_after", pa.int64(), nullable=False),  # the counter value right after it
        pa.field("applied_ns", pa.int64(), nullable=False),  # epoch ns of the store transaction
    ]
)

TIMELINE_SCHEMA = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),  # epoch ns of the sample
        pa.field("fleet_desired", pa.int32(), nullable=False),  # the group's desired capacity
        pa.field("fleet_pending", pa.int32(), nullable=False),  # launched, not yet in service
        pa.field("fleet_in_service", pa.int32(), nullable=False),  # receiving traffic
        pa.field("fleet_unhealthy", pa.int32(), nullable=False),  # failed the health check, not yet gone
        pa.field("fleet_requests", pa.int64(), nullable=False),  # cumulative requests at the balancer
        pa.field("fleet_errors", pa.int64(), nullable=False),  # cumulative 5xx made by the balancer
        pa.field("lambda_reserved", pa.int32(), nullable=True),  # reserved concurrency; null = unreserved
        pa.field("lambda_active", pa.int32(), nullable=False),  # executions running now
        pa.field("lambda_environments", pa.int32(), nullable=False),  # environments alive (warm or busy)
        pa.field("lambda_requests", pa.int64(), nullable=False),  # cumulative invocations asked for
        pa.field("lambda_throttles", pa.int64(), nullable=False),  # cumulative 429 throttles
        pa.field("lambda_cold_starts", pa.int64(), nullable=False),  # cumulative environments started
    ]
)

SCALING_RESOURCES = ("fleet", "lambda")
SCALING_KINDS = {
    "fleet": ("scale-out", "scale-in", "launch", "terminate"),
    "lambda": ("cold-start", "reclaim", "terminate"),
}
"""Kinds of scaling activity per resource; docs/run-format.md says what each means."""
SCALING_STATUSES = ("in_progress", "successful", "failed", "cancelled")

SCALING_SCHEMA = pa.schema(
    [
        pa.field("activity_id", pa.string(), nullable=False),  # unique within the run
        pa.field("resource", pa.string(), nullable=False),  # fleet | lambda
        pa.field("kind", pa.string(), nullable=False),  # one of SCALING_KINDS[resource]
        pa.field("cause", pa.string(), nullable=False),  # why, in words (like AWS's Cause)
        pa.field("from_capacity", pa.int32(), nullable=False),  # desired, instances or environments before
        pa.field("to_capacity", pa.int32(), nullable=False),  # ... and after
        pa.field("start_ns", pa.int64(), nullable=False),  # epoch ns when it started
        pa.field("end_ns", pa.int64(), nullable=True),  # epoch ns when it ended; null while in progress
        pa.field("status", pa.string(), nullable=False),  # one of SCALING_STATUSES
        pa.field("subject", pa.string(), nullable=True),  # the instance or environment id it is about
        pa.field("replaces", pa.string(), nullable=True),  # launch: the instance it replaces
        pa.field("parent", pa.string(), nullable=True),  # launch/terminate: the scale-out/in it serves
        pa.field("metric", pa.float64(), nullable=True),  # scale-out/in by a policy: the metric's value
    ]
)
"""``scaling.parquet``: every scaling activity of the target during the run, in start order."""

JOURNAL_EVENTS = ("inject", "rollback", "abort", "halt")
"""Values of ``event`` in ``faults.jsonl``; see docs/run-format.md for the fields of a line."""
HALT_FAULT_ID = -1
"""``fault_id`` of a ``halt`` line: it stops the whole run, not one fault."""


# -- live/: the load's last minute, for the stop conditions -------------------------------------------

LIVE_DIR = "live"
"""Directory of the run where each load process keeps ``<worker>.json``: per-second aggregates of its
last minute of operations, replaced atomically about four times a second while stop conditions that
watch a metric are set. Transient by nature; the analysis never reads it (the ledger is the record)."""

_LINEAR_MS = 10.0
_LINEAR_STEP_MS = 0.1
_LOG_GROWTH = 1.02


def latency_bucket(ms: float) -> int:
    """The live histogram's bucket of a latency: 0.1 ms wide below 10 ms, then 2 % wide."""
    if ms < _LINEAR_MS:
        return max(0, int(ms / _LINEAR_STEP_MS))
    return int(_LINEAR_MS / _LINEAR_STEP_MS) + int(math.log(ms / _LINEAR_MS) / math.log(_LOG_GROWTH))


def bucket_upper_ms(bucket: int) -> float:
    """The upper edge of a bucket: a percentile read from the histogram errs high by at most 2 %."""
    linear = int(_LINEAR_MS / _LINEAR_STEP_MS)
    if bucket < linear:
        return (bucket + 1) * _LINEAR_STEP_MS
    return _LINEAR_MS * _LOG_GROWTH ** (bucket - linear + 1)
