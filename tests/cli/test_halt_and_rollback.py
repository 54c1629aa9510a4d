"""``chaoscheck halt`` stops a real run in the middle of a fault; ``chaoscheck rollback`` restores
what a journal left open and is harmless when repeated. Real processes on loopback, bounded runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCENARIO = """
name: halted
load: {users: 4, duration: 40s, timeout: 2s, endpoints: {lambda: 1}}
stack:
  fleet: {desired: 1, health_interval: 0.2s, boot_delay: 0.2s}
  lambda: {reserved_concurrency: 4, cold_start: 20ms}
faults:
  - {at: 1s, action: throttle-lambda, reserved_concurrency: 0, duration: 30s}
"""


def _chaoscheck(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaoscheck", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CHAOSCHECK_STATE_DIR": str(tmp_path / "state")}


def test_halt_with_no_run_in_progress_says_so(env: dict[str, str]) -> None:
    done = _chaoscheck("halt", env=env)
    assert done.returncode == 0 and "no run in progress" in done.stdout


@pytest.mark.slow
def test_halt_rolls_back_a_running_fault_and_stops_the_run(tmp_path: Path, env: dict[str, str]) -> None:
    scenario = tmp_path / "halted.yaml"
    scenario.write_text(SCENARIO)
    run_dir = tmp_path / "run"
    journal = run_dir / "faults.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaoscheck", "run", str(scenario), "--out", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (journal.exists() and '"inject"' in journal.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, "the throttle was never injected"
            time.sleep(0.05)
        assert list((tmp_path / "state" / "active").glob("*.json")), "the run registered itself"
        asked = time.monotonic()
        halted = _chaoscheck("halt", env=env)
        took = time.monotonic() - asked
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert halted.returncode == 0, halted.stdout + halted.stderr
    assert "halted by its runner" in halted.stdout and took < 5
    assert proc.returncode == 1 and "Traceback" not in stderr
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [e["event"] for e in events] == ["inject", "rollback", "halt"]
    assert events[1]["result"]["reserved_concurrency"] == 4
    assert events[2]["source"] == "halt"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["aborted"] and summary["halted"]["reason"] == "halted by chaoscheck halt"
    assert not list((tmp_path / "state" / "active").glob("*.json")), "the run unregistered itself"


def test_rollback_needs_a_run_directory_or_all(tmp_path: Path, env: dict[str, str]) -> None:
    done = _chaoscheck("rollback", env=env)
    assert done.returncode == 2 and "expected a RUN_DIR or --all" in done.stderr
    done = _chaoscheck("rollback", str(tmp_path), env=env)
    assert done.returncode == 2 and "no faults.jsonl here" in done.stderr
    assert "Traceback" not in done.stderr


def test_rollback_of_a_finished_run_has_nothing_to_do(tmp_path: Path, env: dict[str, str]) -> None:
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    inject = {"ts": "", "ts_ns": 1, "fault_id": 0, "event": "inject", "action": "throttle-lambda",
              "target": "lambda", "params": {}, "window_s": 5, "undo": {"reserved_concurrency": 4},
              "backend": "local", "backend_config": {}}  # fmt: skip
    done_line = {**inject, "event": "rollback", "ts_ns": 2, "result": {}}
    (run_dir / "faults.jsonl").write_text(json.dumps(inject) + "\n" + json.dumps(done_line) + "\n")
    done = _chaoscheck("rollback", str(run_dir), env=env)
    assert done.returncode == 0 and "nothing open" in done.stdout
    done = _chaoscheck("rollback", "--all", "--runs-dir", str(tmp_path / "runs"), env=env)
    assert done.returncode == 0 and "nothing open" in done.stdout
