"""Large synthetic run directories, built with numpy (no Python object per row but the keys).

``write_large_run(path, rows, duration_s)`` writes a run of ``rows`` requests spread evenly over
``duration_s`` seconds of load, on two endpoints, open model (every row has ``intended_ns``), with a
throttle of the Lambda from 40% to 50% of the load (429s) and a killed instance at 70% (a few 502s),
their journal lines, a timeline sampled every 0.2 s (capped at 20,000 samples) and a few scaling
activities. The same ``seed`` gives the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from chaoscheck import runformat as rf

T0 = 1_700_000_000_000_000_000
SECOND = 1_000_000_000


def write_large_run(path: Path, rows: int, duration_s: float, *, seed: int = 7) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    span = int(duration_s * SECOND)
    due = T0 + np.sort(rng.integers(0, span, rows, dtype=np.int64))
    start = due + rng.integers(0, 2_000_000, rows, dtype=np.int64)  # sent up to 2 ms late
    latency = (rng.lognormal(np.log(8e6), 0.5, rows)).astype(np.int64)  # ~8 ms median
    lambda_ = rng.random(rows) < 0.5
    status = np.full(rows, 200, dtype=np.int32)
    throttled = lambda_ & (start >= T0 + int(span * 0.4)) & (start < T0 + int(span * 0.5))
    status[throttled] = 429
    killed = ~lambda_ & (start >= T0 + int(span * 0.7)) & (start < T0 + int(span * 0.7) + 2 * SECOND)
    killed &= rng.random(rows) < 0.2
    status[killed] = 502
    outcome = np.where(status == 200, "ok", np.where(status == 429, "fail", "info"))
    read = rng.random(rows) < 0.1
    kind = np.where(read, "read", "increment")
    numbers = pc.cast(pa.array(np.arange(rows, dtype=np.int64)), pa.string())
    op_id = pc.if_else(
        pa.array(read), pa.scalar(None, pa.string()), pc.binary_join_element_wise("c1:w1.", numbers, "")
    )
    error = pc.if_else(
        pa.array(status == 429),
        "429 throttled",
        pc.if_else(pa.array(status == 502), "502 bad gateway", pa.scalar(None, pa.string())),
    )
    ops = pa.table(
        {
            "op_id": op_id,
            "kind": pa.array(kind, pa.string()),
            "endpoint": pa.array(np.where(lambda_, "lambda", "fleet"), pa.string()),
            "counter": pa.array(np.full(rows, "c1"), pa.string()),
            "start_ns": pa.array(start, pa.int64()),
            "end_ns": pa.array(start + latency, pa.int64()),
            "status": pa.array(status, pa.int32()),
            "outcome": pa.array(outcome, pa.string()),
            "value": pa.array(np.where(status == 200, 1, 0), pa.int64()).cast(pa.int64()),
            "error": error,
            "served_by": pa.array(np.full(rows, "i-1"), pa.string()),
            "worker": pa.array(np.full(rows, "host:1"), pa.string()),
            "intended_ns": pa.array(due, pa.int64()),
            "attempt": pa.array(np.zeros(rows, dtype=np.int32), pa.int32()),
            "trace_id": pa.nulls(rows, pa.string()),
        },
        schema=rf.OPS_SCHEMA,
    )
    final = pa.Table.from_pylist(
        [
            {
                "op_id": None,
                "kind": "final",
                "endpoint": "fleet",
                "counter": "c1",
                "start_ns": T0 + span + SECOND,
                "end_ns": T0 + span + SECOND + 5_000_000,
                "status": 200,
                "outcome": "ok",
                "value": int((outcome == "ok").sum() - (read & (outcome == "ok")).sum()),
                "error": None,
                "served_by": "i-1",
                "worker": "host:final",
                "intended_ns": None,
                "attempt": 0,
                "trace_id": None,
            }
        ],
        schema=rf.OPS_SCHEMA,
    )
    pq.write_table(pa.concat_tables([ops, final]), path / rf.OPS)

    _write_meta(path, span)
    _write_journal(path, span)
    _write_timeline(path, span)
    _write_scaling(path, span)
    return path


def _write_meta(path: Path, span: int) -> None:
    meta = {
        "run_id": "large",
        "scenario": "large",
        "target": "local",
        "counter": "c1",
        "started_at": "2023-11-14T22:13:19Z",
        "ended_at": "2023-11-15T22:13:19Z",
        "load_started_ns": T0,
        "load_ended_ns": T0 + span,
        "endpoints": {"fleet": "http://127.0.0.1:8080", "lambda": "http://127.0.0.1:9000"},
        "aborted": False,
        "versions": {"python": "3.11"},
    }
    (path / rf.RUN_META).write_text(json.dumps(meta), encoding="utf-8")
    scenario = {
        "name": "large",
        "load": {"users": 100},
        "slo": {
            "consistency": {"lost": 0},
            "baseline": {"p95_ms": 20, "p99_ms": 40, "error_rate": 0.01},
            "recovery": {"error_rate": 0.02},
        },
    }
    (path / rf.SCENARIO).write_text(yaml.safe_dump(scenario), encoding="utf-8")


def _write_journal(path: Path, span: int) -> None:
    def line(fault_id: int, event: str, at: int, action: str, target: str, **extra) -> str:
        record = {"ts": "", "ts_ns": at, "fault_id": fault_id, "event": event, "action": action}
        return json.dumps({**record, "target": target, "params": {}, **extra}) + "\n"

    with (path / rf.FAULTS).open("w", encoding="utf-8") as journal:
        journal.write(
            line(0, "inject", T0 + int(span * 0.4), "throttle-lambda", "lambda", window_s=span * 0.1e-9)
        )
        journal.write(line(0, "rollback", T0 + int(span * 0.5), "throttle-lambda", "lambda"))
        journal.write(line(1, "inject", T0 + int(span * 0.7), "terminate-instance", "i-1", window_s=10.0))


def _write_timeline(path: Path, span: int) -> None:
    samples = min(20_000, max(2, span // (SECOND // 5)))
    ts = T0 + np.linspace(0, span, samples).astype(np.int64)
    throttled = (ts >= T0 + int(span * 0.4)) & (ts < T0 + int(span * 0.5))
    killed = (ts >= T0 + int(span * 0.7)) & (ts < T0 + int(span * 0.7) + 5 * SECOND)
    n = len(ts)
    table = pa.table(
        {
            "ts_ns": ts,
            "fleet_desired": np.full(n, 3, np.int32),
            "fleet_pending": killed.astype(np.int32),
            "fleet_in_service": (3 - killed).astype(np.int32),
            "fleet_unhealthy": np.zeros(n, np.int32),
            "fleet_requests": np.arange(n, dtype=np.int64) * 10,
            "fleet_errors": np.cumsum(killed).astype(np.int64),
            "lambda_reserved": pa.array(np.where(throttled, 0, 12), pa.int32()),
            "lambda_active": np.where(throttled, 0, 5).astype(np.int32),
            "lambda_environments": np.full(n, 8, np.int32),
            "lambda_requests": np.arange(n, dtype=np.int64) * 10,
            "lambda_throttles": np.cumsum(throttled * 10).astype(np.int64),
            "lambda_cold_starts": np.minimum(np.arange(n), 8).astype(np.int64),
        },
        schema=rf.TIMELINE_SCHEMA,
    )
    pq.write_table(table, path / rf.TIMELINE)


SCALING_SCHEMA = pa.schema(
    [
        ("activity_id", pa.string()),
        ("resource", pa.string()),
        ("kind", pa.string()),
        ("cause", pa.string()),
        ("from_capacity", pa.int32()),
        ("to_capacity", pa.int32()),
        ("start_ns", pa.int64()),
        ("end_ns", pa.int64()),
        ("status", pa.string()),
        ("subject", pa.string()),
        ("replaces", pa.string()),
        ("parent", pa.string()),
        ("metric", pa.float64()),
    ]
)
"""The columns of ``scaling.parquet`` (docs/run-format.md), declared here so that the report tests
do not depend on when ``chaoscheck.runformat`` declares them."""


def scaling_rows(start_s: float, cause: str = "instance i-1 failed 2 health checks") -> list[dict]:
    at = T0 + int(start_s * SECOND)
    common = {"replaces": None, "parent": None, "metric": None, "status": "successful"}
    return [
        {
            **common,
            "activity_id": "fleet-1",
            "resource": "fleet",
            "kind": "terminate",
            "cause": cause,
            "from_capacity": 3,
            "to_capacity": 2,
            "start_ns": at,
            "end_ns": at + 1_000_000,
            "subject": "i-1",
        },
        {
            **common,
            "activity_id": "fleet-2",
            "resource": "fleet",
            "kind": "launch",
            "cause": "replacing instance i-1",
            "from_capacity": 2,
            "to_capacity": 3,
            "start_ns": at + 2_000_000,
            "end_ns": at + 3 * SECOND,
            "subject": "i-2",
            "replaces": "i-1",
        },
        {
            **common,
            "activity_id": "lambda-1",
            "resource": "lambda",
            "kind": "cold-start",
            "cause": "an invocation found no idle environment",
            "from_capacity": 0,
            "to_capacity": 1,
            "start_ns": T0,
            "end_ns": T0 + 150_000_000,
            "subject": "env-1",
        },
    ]


def write_scaling(path: Path, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=SCALING_SCHEMA), path / "scaling.parquet")


def _write_scaling(path: Path, span: int) -> None:
    write_scaling(path, scaling_rows(span * 0.7e-9))
