"""A stop condition halts a real run: faults rolled back within 2 s of the breach, the load stopped,
the journal and the summary saying why. Real processes on loopback; the run is bounded (30 s of load
at most, halted after a few)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCENARIO = """
name: guarded
load: {users: 4, duration: 30s, timeout: 2s, endpoints: {lambda: 1}}
stack:
  fleet: {desired: 1, health_interval: 0.2s, boot_delay: 0.2s}
  lambda: {reserved_concurrency: 4, cold_start: 20ms}
faults:
  - {at: 3s, action: throttle-lambda, reserved_concurrency: 0, duration: 20s}
safety:
  stop_conditions:
    - {metric: error_rate, above: 0.5, window: 2s, min_ops: 20}
slo:
  baseline: {error_rate: 0.5}
"""


@pytest.mark.slow
def test_a_breached_stop_condition_halts_the_run_and_rolls_back_within_two_seconds(tmp_path: Path) -> None:
    scenario = tmp_path / "guarded.yaml"
    scenario.write_text(SCENARIO)
    run_dir = tmp_path / "run"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "chaoscheck", "run", str(scenario), "--out", str(run_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr

    events = [json.loads(line) for line in (run_dir / "faults.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["inject", "rollback", "halt"]
    inject, rollback, halt = events
    assert halt["source"] == "stop-condition" and "error_rate" in halt["error"]
    assert rollback["result"]["reserved_concurrency"] == 4
    # Detected after the throttle began, well before it would have ended by itself (20 s).
    assert 0 < halt["detected_ns"] - inject["ts_ns"] < 6e9
    assert rollback["ts_ns"] - halt["detected_ns"] < 2e9, "rolled back within 2 s of the breach"

    load = json.loads((run_dir / "load.json").read_text())
    assert load["stopped_ns"] - halt["detected_ns"] < 5e9, "the load stopped soon after the halt"
    assert elapsed < 60

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["aborted"] is True and summary["halted"]["reason"] == halt["error"]
    check = next(c for c in summary["checks"] if c["name"] == "run.aborted")
    assert not check["passed"] and "error_rate" in check["note"]
    assert (run_dir / "report.html").exists()
