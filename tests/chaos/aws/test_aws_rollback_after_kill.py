"""A runner killed -9 while a Lambda throttle is in force on moto's server (127.0.0.1): the throttle
stays, and ``chaoscheck rollback RUN_DIR`` restores the previous reserved concurrency from the journal
alone; a second rollback finds nothing open."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from aws_stack import FUNCTION, REGION, Stack

RUNNER = """
import sys, time
from pathlib import Path
from chaos.backends.aws import AwsBackend
from chaos.journal import Journal
from chaos.scenario import parse_scenario
from chaos.scheduler import FaultScheduler

scenario = parse_scenario(
    "name: killed\\nload: {users: 1, duration: 120s}\\n"
    "faults:\\n  - {at: 0s, action: throttle-lambda, reserved_concurrency: 0, duration: 100s}\\n"
)
journal = Journal(Path(sys.argv[1]) / "faults.jsonl")
backend = AwsBackend(region="us-east-1", function_name="counter")
FaultScheduler(scenario.faults, backend, journal).start(time.time_ns())
time.sleep(110)  # killed long before
"""


@pytest.mark.slow
def test_rollback_restores_a_throttle_left_by_a_runner_killed_with_sigkill(
    moto_server: str, tmp_path: Path
) -> None:
    stack = Stack(boto3.Session(region_name=REGION))
    stack.function()
    stack.client("lambda").put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=7)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    journal = run_dir / "faults.jsonl"
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(run_dir)], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 30
        while stack.reserved() != 0:
            assert time.monotonic() < deadline and runner.poll() is None, "the throttle never came"
            time.sleep(0.05)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(10)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert stack.reserved() == 0, "killed -9: nothing rolled the throttle back"
    assert [json.loads(line)["event"] for line in journal.read_text().splitlines()] == ["inject"]

    command = [sys.executable, "-m", "chaoscheck", "rollback", str(run_dir)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "fault 0 (throttle-lambda on counter): restored" in first.stdout
    assert stack.reserved() == 7
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["inject", "rollback"]
    assert "testing" not in journal.read_text()  # the fake credentials never reach the journal

    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and "nothing open" in second.stdout
    assert stack.reserved() == 7
