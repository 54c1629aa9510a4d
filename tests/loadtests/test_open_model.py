"""The open model: operations leave on schedule whatever the answers, and late ones are counted.

Also retries: an increment whose answer is unknown is retried with the same key, and the store
applies it once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from locust_helpers import run_locust

from counter.local.client import LocalStack, in_service
from counter.local.config import StackConfig
from counter.sqlite_store import SQLiteStore

ONE_INSTANCE = StackConfig.model_validate(
    {
        "fleet": {"desired": 1, "min": 1, "health_interval": 0.2, "health_timeout": 5.0,
                  "unhealthy_threshold": 50, "boot_delay": 0.3, "upstream_timeout": 1.0},
    }
)  # fmt: skip


@pytest.mark.slow
def test_operations_leave_on_schedule(tmp_path: Path) -> None:
    scenario = tmp_path / "open.yaml"
    scenario.write_text(
        "name: open\nload: {users: 10, duration: 4s, rate: 200, endpoints: {fleet: 1, lambda: 0}}\n"
    )
    with LocalStack.start(ONE_INSTANCE, db_path=tmp_path / "db.sqlite") as stack:
        _, counted = run_locust(tmp_path / "run", scenario, {"fleet": stack.fleet_url}, users=10)
    ops = pd.read_parquet(tmp_path / "run" / "ops.parquet")
    sent = ops[ops.kind != "omitted"]
    assert len(sent) == counted
    assert sent.intended_ns.notna().all()
    assert 0.85 * 800 <= len(sent) <= 1.1 * 800, len(sent)  # 200/s for 4 s
    lateness_ms = (sent.start_ns - sent.intended_ns) / 1e6
    assert lateness_ms.median() < 5, "a healthy target gets its operations on time"
    gaps = np.diff(np.sort(sent.intended_ns.to_numpy())) / 1e6
    assert abs(np.median(gaps) - 5.0) < 0.5, "due every 5 ms"
    assert set(ops.attempt) == {0}
    assert ops.trace_id.str.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}").all()


@pytest.mark.slow
def test_a_stall_shows_as_omitted_operations_and_retried_keys(tmp_path: Path) -> None:
    scenario = tmp_path / "stall.yaml"
    scenario.write_text(
        "name: stall\nload: {users: 4, duration: 5s, rate: 100, max_lag: 300ms, retries: 2, timeout: 5s,\n"
        "  mix: {increment: 1, read: 0}, endpoints: {fleet: 1, lambda: 0}}\n"
    )
    with LocalStack.start(ONE_INSTANCE, db_path=tmp_path / "db.sqlite") as stack:
        victim = in_service(stack.control.state())[0]

        def freeze() -> None:
            time.sleep(1.5)
            stack.control.signal_instance(victim, "STOP")
            time.sleep(1.5)
            stack.control.signal_instance(victim, "CONT")

        freezer = threading.Thread(target=freeze)
        freezer.start()
        run_locust(tmp_path / "run", scenario, {"fleet": stack.fleet_url}, "--counter", "stall", users=4)
        freezer.join()
        store = SQLiteStore(tmp_path / "db.sqlite")
        applied = store.applied_ops("stall")
        store.close()

    ops = pd.read_parquet(tmp_path / "run" / "ops.parquet")
    omitted = ops[ops.kind == "omitted"]
    assert len(omitted) > 30, "while 4 users hang for a second and more, the schedule goes on"
    assert (omitted.outcome == "fail").all() and omitted.op_id.isna().all()
    assert ((omitted.start_ns - omitted.intended_ns) > 300e6).all()

    increments = ops[ops.kind == "increment"]
    timed_out = increments[increments.status == 504]
    assert len(timed_out) > 0, "the frozen instance made the balancer answer 504"
    retried = increments[increments.attempt > 0]
    assert set(retried.op_id) <= set(timed_out.op_id)
    assert len(retried) > 0
    assert increments.groupby("op_id").attempt.max().max() <= 2
    keys = {row[0] for row in applied}
    assert len(keys) == len(applied), "a key retried is applied once"
    ok_keys = set(increments.loc[increments.outcome == "ok", "op_id"])
    assert ok_keys <= keys
