"""``stack: {xray: true}``: the local stack's instances and environments trace every request to a
collector on 127.0.0.1, the run directory gets ``xray.jsonl``, and the analysis joins it by trace id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO = """
name: traced
load: {users: 4, duration: 6s, timeout: 2s}
stack:
  xray: true
  fleet: {desired: 2, health_interval: 0.2s, boot_delay: 0.2s}
  lambda: {reserved_concurrency: 4, cold_start: 20ms}
"""


@pytest.mark.slow
def test_a_traced_local_run_writes_segments_that_join_the_ledger(tmp_path: Path) -> None:
    scenario = tmp_path / "traced.yaml"
    scenario.write_text(SCENARIO)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "chaoscheck", "run", str(scenario), "--out", str(run_dir)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    segments = [json.loads(line) for line in (run_dir / "xray.jsonl").read_text().splitlines()]
    assert len(segments) > 100
    assert {s["trace_id"][:2] for s in segments} == {"1-"}
    xray = json.loads((run_dir / "summary.json").read_text())["xray"]
    assert xray["coverage"] > 0.95, xray["coverage"]
    (baseline,) = [p for p in xray["phases"] if p["name"] == "baseline"]
    for endpoint in ("fleet", "lambda"):
        part = baseline["endpoints"][endpoint]
        assert part["joined"] > 0 and part["server"]["p50_ms"] <= part["client"]["p50_ms"]
