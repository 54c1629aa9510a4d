"""``chaoscheck run --dry-run``: the timeline and every fault's resolved target, nothing changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCENARIO = """
name: dry
load: {users: 2, duration: 30s}
stack:
  fleet: {desired: 3, min: 1, health_interval: 0.2s, boot_delay: 0.1s}
  lambda: {reserved_concurrency: 7, cold_start: 10ms}
faults:
  - {at: 5s, action: terminate-instance, count: 1}
  - {at: 10s, action: throttle-lambda, reserved_concurrency: 0, duration: 5s}
  - {at: 20s, action: stop-instance, count: 2, duration: 3s}
safety:
  stop_conditions:
    - {metric: error_rate, above: 0.5}
"""


def test_dry_run_prints_targets_and_refusals_and_changes_nothing(tmp_path: Path) -> None:
    scenario = tmp_path / "dry.yaml"
    scenario.write_text(SCENARIO)
    command = ["run", str(scenario), "--dry-run", "--runs-dir", str(tmp_path / "r")]
    done = subprocess.run(
        [sys.executable, "-m", "chaoscheck", *command], capture_output=True, text=True, timeout=120
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 1, done.stdout + done.stderr  # one fault would be refused
    assert lines[0] == "scenario dry on target local: 30 s of load (2 users, closed model)"
    kill = next(line for line in lines if "terminate-instance" in line)
    assert "would hit i-" in kill and "nothing to restore (one-shot)" in kill
    throttle = next(line for line in lines if "throttle-lambda" in line)
    assert "reserved_concurrency=0" in throttle and "restores {'reserved_concurrency': 7}" in throttle
    stop = next(line for line in lines if "stop-instance" in line)
    assert "WOULD BE REFUSED: blast radius" in stop and "at most 50%" in stop
    assert lines[-1] == "guard: halt when error_rate > 0.5 over 5 s"
    assert not (tmp_path / "r").exists(), "a dry run writes no run directory"
    assert "Traceback" not in done.stderr
