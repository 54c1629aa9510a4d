"""``--processes 2``: two workers, one master, one complete ledger (Locust's own engine)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from locust_helpers import run_locust

from counter.local.client import LocalStack
from counter.local.config import StackConfig
from counter.sqlite_store import SQLiteStore

FAST = StackConfig.model_validate(
    {
        "fleet": {"desired": 2, "health_interval": 0.2, "boot_delay": 0.3},
        "lambda": {"reserved_concurrency": 8},
    }
)


@pytest.mark.slow
def test_two_processes_write_every_request_exactly_once(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: dist\nload: {users: 8, duration: 4s, mix: {increment: 4, read: 1}}\n")
    run_dir = tmp_path / "run"
    with LocalStack.start(FAST, db_path=tmp_path / "db.sqlite") as stack:
        urls = {"fleet": stack.fleet_url, "lambda": stack.lambda_url}
        done, _ = run_locust(run_dir, scenario, urls, "--processes", "2", "--counter", "dist", users=8)
        assert (run_dir / "ops.parquet").exists(), done.stderr[-3000:]
        state = stack.control.state()
        received = state["fleet"]["requests"] + state["lambda"]["requests"]
        store = SQLiteStore(tmp_path / "db.sqlite")
        applied = store.applied_ops("dist")
        store.close()

    ops = pd.read_parquet(run_dir / "ops.parquet")
    assert ops.worker.nunique() == 2, "both workers' rows reached the master"
    assert len(ops) == received > 200, "every request the stack received is in the ledger, once"
    increments = ops[ops.kind == "increment"]
    assert increments.op_id.is_unique
    ok = increments[increments.outcome == "ok"]
    failed = increments[increments.outcome == "fail"]
    assert len(ok) + len(failed) == len(increments), "no unknown outcome on a healthy stack"
    assert {row[0] for row in applied} == set(ok.op_id)
    assert len(applied) == len(increments) - len(failed)
