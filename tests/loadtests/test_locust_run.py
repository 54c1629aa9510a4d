"""A real headless Locust run against the real local stack: the ledger misses nothing.

Every request Locust counted is a ledger row, and every acknowledged increment in the ledger is an
applied key in the store's own ledger (and nothing else is).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from chaoscheck.locust_process import LOCUSTFILE
from counter.local.client import LocalStack
from counter.local.config import StackConfig
from counter.sqlite_store import SQLiteStore

FAST = StackConfig.model_validate(
    {
        "fleet": {"desired": 2, "health_interval": 0.2, "boot_delay": 0.3},
        "lambda": {"reserved_concurrency": 6, "cold_start": 0.02},
    }
)


@pytest.mark.slow
def test_ledger_holds_every_request_exactly_once(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with LocalStack.start(FAST, db_path=tmp_path / "db.sqlite") as stack:
        cmd = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--users", "6", "--spawn-rate", "6", "--run-time", "4s", "--stop-timeout", "5",
            "--fleet-url", stack.fleet_url, "--lambda-url", stack.lambda_url,
            "--run-dir", str(run_dir), "--counter", "ledger-test", "--json",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert (run_dir / "ops.parquet").exists(), done.stderr[-2000:]
        applied = SQLiteStore(tmp_path / "db.sqlite").applied_ops("ledger-test")

    ops = pd.read_parquet(run_dir / "ops.parquet")
    locust_counted = sum(entry["num_requests"] for entry in json.loads(done.stdout))
    assert len(ops) == locust_counted > 100

    assert set(ops.kind) == {"increment", "read"}
    assert set(ops.endpoint) == {"fleet", "lambda"}
    assert (ops.end_ns >= ops.start_ns).all()
    assert ops.loc[ops.kind == "increment", "op_id"].is_unique
    assert ops.loc[ops.kind == "read", "op_id"].isna().all()
    assert (ops.outcome == "ok").all(), ops[ops.outcome != "ok"].head()
    assert ops.served_by.notna().all()

    increments = ops[ops.kind == "increment"]
    applied_keys = {row[0] for row in applied}
    assert applied_keys == set(increments.op_id)
    assert sorted(increments.value) == sorted(row[2] for row in applied)

    load = json.loads((run_dir / "load.json").read_text())
    assert load["started_ns"] < load["stopped_ns"] <= load["ended_ns"]
    assert load["rows"] == len(ops)
