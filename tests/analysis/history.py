"""Hand-made histories: build a run directory from Python lists, for the analysis and report tests.

Times are given in milliseconds after ``T0`` (load start); rows are dicts in the schemas of
``chaoscheck.runformat``. ``write_run`` writes every file of a run directory and returns its path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from chaoscheck import runformat as rf

T0 = 1_700_000_000_000_000_000
"""Load start (epoch ns): 2023-11-14T22:13:20Z."""
MS = 1_000_000

_STATUS = {"ok": 200, "fail": 429, "info": 0}


def ns(ms: float) -> int:
    return T0 + round(ms * MS)


def op(
    kind: str,
    op_id: str | None,
    start_ms: float,
    end_ms: float,
    outcome: str = "ok",
    value: int | None = None,
    *,
    endpoint: str = "fleet",
    status: int | None = None,
    error: str | None = None,
    served_by: str | None = "i-1",
    worker: str = "w1",
    counter: str = "c1",
) -> dict[str, Any]:
    return {
        "op_id": op_id,
        "kind": kind,
        "endpoint": endpoint,
        "counter": counter,
        "start_ns": ns(start_ms),
        "end_ns": ns(end_ms),
        "status": _STATUS.get(outcome, 0) if status is None else status,
        "outcome": outcome,
        "value": value,
        "error": error,
        "served_by": served_by,
        "worker": worker,
    }


def inc(
    op_id: str, start_ms: float, end_ms: float, outcome: str = "ok", value: int | None = None, **kw
) -> dict:
    return op("increment", op_id, start_ms, end_ms, outcome, value, **kw)


def read(start_ms: float, end_ms: float, value: int | None, outcome: str = "ok", **kw) -> dict:
    return op("read", None, start_ms, end_ms, outcome, value, **kw)


def final(start_ms: float, end_ms: float, value: int | None, outcome: str = "ok", **kw) -> dict:
    return op("final", None, start_ms, end_ms, outcome, value, **kw)


def applied(op_id: str, value_after: int, at_ms: float, counter: str = "c1") -> dict:
    return {"op_id": op_id, "counter": counter, "value_after": value_after, "applied_ns": ns(at_ms)}


def inject(
    fault_id: int,
    at_ms: float,
    window_s: float,
    action: str = "kill_instance",
    target: str = "fleet-1",
    **params,
) -> dict:
    return {
        "ts": "",
        "ts_ns": ns(at_ms),
        "fault_id": fault_id,
        "event": "inject",
        "action": action,
        "target": target,
        "params": params,
        "window_s": window_s,
    }


def rollback(fault_id: int, at_ms: float, action: str = "throttle", target: str = "lambda") -> dict:
    return {
        "ts": "",
        "ts_ns": ns(at_ms),
        "fault_id": fault_id,
        "event": "rollback",
        "action": action,
        "target": target,
        "params": {},
    }


def abort(
    fault_id: int,
    at_ms: float,
    error: str = "action failed",
    action: str = "kill_instance",
    target: str = "fleet-1",
) -> dict:
    return {
        "ts": "",
        "ts_ns": ns(at_ms),
        "fault_id": fault_id,
        "event": "abort",
        "action": action,
        "target": target,
        "params": {},
        "error": error,
    }


def write_run(
    path: Path,
    ops: list[dict],
    *,
    faults: list[dict] = (),
    server_ops: list[dict] | None = None,
    timeline: list[dict] | None = None,
    slo: dict | None = None,
    reads: str | None = None,
    load_ms: tuple[float, float] = (0, 10_000),
    meta: dict | None = None,
) -> Path:
    """Write a run directory at ``path`` (created) and return it."""
    path.mkdir(parents=True, exist_ok=True)
    run_meta = {
        "run_id": "run-test",
        "scenario": "unit",
        "target": "local",
        "counter": "c1",
        "started_at": "2023-11-14T22:13:19Z",
        "ended_at": "2023-11-14T22:14:00Z",
        "load_started_ns": ns(load_ms[0]),
        "load_ended_ns": ns(load_ms[1]),
        "endpoints": {"fleet": "http://127.0.0.1:8080", "lambda": "http://127.0.0.1:9000"},
        "aborted": False,
    }
    run_meta.update(meta or {})
    (path / rf.RUN_META).write_text(json.dumps(run_meta), encoding="utf-8")
    scenario: dict[str, Any] = {"name": "unit", "load": {"users": 1}}
    if slo is not None:
        scenario["slo"] = slo
    if reads is not None:
        scenario["reads"] = reads
    (path / rf.SCENARIO).write_text(yaml.safe_dump(scenario), encoding="utf-8")
    rows = [{"attempt": 0, **op} for op in ops]
    pq.write_table(pa.Table.from_pylist(rows, schema=rf.OPS_SCHEMA), path / rf.OPS)
    with (path / rf.FAULTS).open("w", encoding="utf-8") as journal:
        for line in faults:
            journal.write(json.dumps(line) + "\n")
    if server_ops is not None:
        pq.write_table(
            pa.Table.from_pylist(list(server_ops), schema=rf.SERVER_OPS_SCHEMA), path / rf.SERVER_OPS
        )
    if timeline is not None:
        pq.write_table(pa.Table.from_pylist(list(timeline), schema=rf.TIMELINE_SCHEMA), path / rf.TIMELINE)
    return path


def load(path: Path, ops: list[dict], **kw: Any):
    """Write a run directory and read it back with ``analysis.load_run``."""
    from analysis.rundir import load_run

    return load_run(write_run(path, ops, **kw))


def definition_rank(values, permille):
    """The smallest sample with at least permille/1000 of the samples at or below it: the definition,
    in integer arithmetic. (numpy's ``inverted_cdf`` takes q = 99.9 / 100 as a float a hair above
    0.999, so at n = 68,000, where 0.999 n is a whole number, it picks the next sample.)"""
    ordered = sorted(values)
    return next(x for i, x in enumerate(ordered) if (i + 1) * 1000 >= permille * len(ordered))
