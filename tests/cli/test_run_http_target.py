"""``--target http``: any deployment that speaks the contract, including one that hangs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from counter.local.client import LocalStack
from counter.local.config import StackConfig


def chaoscheck(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoscheck", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_a_run_against_urls_is_judged_without_a_server_ledger(tmp_path: Path) -> None:
    scenario = tmp_path / "ext.yaml"
    scenario.write_text(
        "name: external\nload: {users: 4, duration: 3s, retries: 1}\n"
        "slo: {consistency: {lost: 0, duplicated: 0, unexpected: 0, read_violations: 0}}\n"
    )
    config = StackConfig.model_validate({"fleet": {"desired": 1, "min": 1, "boot_delay": 0.2}})
    with LocalStack.start(config, db_path=tmp_path / "db.sqlite") as stack:
        done = chaoscheck(
            "run", str(scenario), "--target", "http", "--out", str(tmp_path / "run"),
            "--fleet-url", stack.fleet_url, "--lambda-url", stack.lambda_url + "/",
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = tmp_path / "run"
    assert not (run_dir / "server_ops.parquet").exists() and not (run_dir / "timeline.parquet").exists()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["target"] == "http" and set(meta["endpoints"]) == {"fleet", "lambda"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "pass"
    assert summary["consistency"]["ledger"] is False
    assert summary["consistency"]["final_value"] == summary["consistency"]["ok"] > 0


@pytest.mark.slow
def test_a_hung_target_makes_unknown_rows_not_a_hung_run(tmp_path: Path) -> None:
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)  # connections complete in the backlog; nothing ever answers
    url = f"http://127.0.0.1:{hung.getsockname()[1]}"
    scenario = tmp_path / "hung.yaml"
    scenario.write_text(
        "name: hung\nload: {users: 3, duration: 2s, timeout: 1s, endpoints: {fleet: 1, lambda: 0}}\n"
    )
    began = time.monotonic()
    try:
        done = chaoscheck(
            "run", str(scenario), "--target", "http", "--fleet-url", url, "--out", str(tmp_path / "run")
        )
    finally:
        hung.close()
    assert time.monotonic() - began < 60
    assert done.returncode == 1, done.stdout + done.stderr
    ops = pd.read_parquet(tmp_path / "run" / "ops.parquet")
    load = ops[ops.kind != "final"]
    assert len(load) >= 3
    assert (load.status == 0).all() and (load.outcome == "info").all()
    assert load.error.str.contains("timed out", regex=False).all(), load.error.unique()


def test_bad_urls_are_one_line_errors(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nload: {users: 1, duration: 1s}\n")
    for args, fragment in [
        (["--target", "http"], "--fleet-url"),
        (["--target", "http", "--fleet-url", "ftp://x"], "--fleet-url: expected a base URL"),
        (["--target", "http", "--lambda-url", "http://127.0.0.1:1/api"], "without a path"),
        (["--fleet-url", "http://127.0.0.1:1"], "only with --target http"),
    ]:
        done = chaoscheck("run", str(scenario), *args, "--out", str(tmp_path / "never"))
        assert done.returncode == 2 and fragment in done.stderr and "Traceback" not in done.stderr, (
            done.stderr
        )
    assert not (tmp_path / "never").exists()


def test_faults_need_a_target_with_a_chaos_backend(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: s\nload: {users: 1, duration: 20s}\nfaults: [{at: 1s, action: terminate-instance}]\n"
    )
    done = chaoscheck("run", str(scenario), "--target", "http", "--fleet-url", "http://127.0.0.1:1")
    assert done.returncode == 2 and "no chaos backend" in done.stderr, done.stderr
