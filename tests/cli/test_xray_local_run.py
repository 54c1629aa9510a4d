"""``stack: {xray: true}``: the local stack's instances and environments trace every request to a
collector on 127.0.0.1, the run directory gets ``xray.jsonl``, and the analysis joins it by trace id.
Each Lambda environment records its init as an ``Initialization`` subsegment of its first request's
segment, so the X-Ray cold starts are the run's cold starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analysis.rundir import read_scaling

SCENARIO = """
name: traced
load: {users: 4, duration: 6s, timeout: 2s}
stack:
  xray: true
  fleet: {desired: 2, health_interval: 0.2s, boot_delay: 0.2s}
  lambda: {reserved_concurrency: 4, cold_start: 20ms}
"""
COLD_START_S = 0.020
MAX_INIT_S = 10.0  # the pool's init_timeout: an environment slower than that is killed, never ready


def initializations(segment: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in segment.get("subsegments", []) if s["name"] == "Initialization"]


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

    # cold starts: one Initialization per environment the pool started, in its first request's segment,
    # inside the pool's cold-start activity (from the spawn to the ready frame)
    activities = read_scaling(run_dir)
    assert activities is not None
    cold = activities.loc[(activities["resource"] == "lambda") & (activities["kind"] == "cold-start")]
    ready = cold.loc[cold["status"] == "successful"].set_index("subject")
    assert len(ready) > 0
    inits = {}
    for segment in segments:
        for init in initializations(segment):
            assert segment["name"] == "chaoscheck-counter-lambda", segment["name"]
            served_by = segment["annotations"]["served_by"]
            assert served_by not in inits, f"{served_by} initialized twice"
            inits[served_by] = init
    # an environment that became ready as the stack stopped may never have served a request: only
    # those that sent segments are expected to have sent their Initialization
    lambdas = [s for s in segments if s["name"] == "chaoscheck-counter-lambda"]
    served = {s.get("annotations", {}).get("served_by") for s in lambdas}
    expected = set(ready.index) & served
    assert expected and set(inits) == expected, (sorted(inits), sorted(ready.index))
    for served_by, init in inits.items():
        activity = ready.loc[served_by]
        duration = init["end_time"] - init["start_time"]
        assert COLD_START_S <= duration < MAX_INIT_S, duration
        assert activity["start_ns"] / 1e9 <= init["start_time"], (activity["start_ns"], init)
        assert init["end_time"] <= activity["end_ns"] / 1e9 + 1e-3, (activity["end_ns"], init)
    # and the analysis reports them, in the phase in which they started
    assert xray["cold_starts"] == len(inits)
    counted = baseline["cold_starts"]
    assert counted["count"] == len(inits) and counted["p50_ms"] >= COLD_START_S * 1000
    durations = sorted((i["end_time"] - i["start_time"]) * 1000 for i in inits.values())
    assert abs(counted["max_ms"] - durations[-1]) < 0.01
