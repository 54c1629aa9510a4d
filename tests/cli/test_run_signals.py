"""Ctrl-C or SIGTERM in the middle of a fault: the fault is rolled back, what was recorded is kept,
and no process of the run is left behind. Real processes, real signals, loopback only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCENARIO = """
name: interrupted
load: {users: 4, duration: 30s, timeout: 2s}
stack:
  fleet: {desired: 2, health_interval: 0.2s, boot_delay: 0.3s}
  lambda: {reserved_concurrency: 4, cold_start: 20ms}
faults:
  - {at: 1s, action: throttle-lambda, reserved_concurrency: 0, duration: 25s}
slo:
  baseline: {error_rate: 0.5}
"""


def _descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid``, with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in found:
                cmdline = _cmdline(child)
                if cmdline is None:
                    continue
                found[child] = cmdline
                frontier.append(child)
    return found


def _cmdline(pid: int) -> str | None:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def _alive(pid: int, cmdline: str) -> bool:
    return _cmdline(pid) == cmdline


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_a_throttle_rolls_it_back(tmp_path: Path, signum: int) -> None:
    scenario = tmp_path / "interrupted.yaml"
    scenario.write_text(SCENARIO)
    run_dir = tmp_path / "run"
    journal = run_dir / "faults.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaoscheck", "run", str(scenario), "--out", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: journal.exists() and '"inject"' in journal.read_text(), 60, "the throttle")
        time.sleep(0.5)
        family = _descendants(proc.pid)
        assert any("counter.local" in c for c in family.values()), family
        assert any("locust" in c for c in family.values()), family
        os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [e["event"] for e in events] == ["inject", "rollback"]
    assert events[1]["result"]["reserved_concurrency"] == 4

    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["aborted"] is True
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "fail"
    assert any(c["name"] == "run.aborted" and not c["passed"] for c in summary["checks"])
    assert (run_dir / "ops.parquet").exists() and (run_dir / "report.html").exists()

    _wait_for(lambda: not any(_alive(p, c) for p, c in family.items()), 10, "the run's processes to go")
