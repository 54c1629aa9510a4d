"""``chaoscheck run scenarios/scale-out.yaml`` for real: the fleet scales out on the load step, each link
of the chain is measured and the latency target is met after scaling; the same scenario with the
group's maximum too low to carry the step fails the ``scaling.*`` checks.

Real processes on 127.0.0.1; each run is 40 s of load (about 50 s in all), bounded by a timeout.
The checks are computed with ``analysis.scaling`` on the run directory the run wrote, and the summary's
verdict (which carries the same ``scaling.*`` checks) is asserted as well.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.rundir import load_run
from analysis.scaling import scaling_analysis, scaling_checks
from chaoscheck import runformat as rf

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "scale-out.yaml"
FLEET_CHECKS = ("scaling.reaction_s", "scaling.in_service_s", "scaling.p95_recovered_s")

pytestmark = pytest.mark.slow


def run(scenario: Path, run_dir: Path) -> tuple[subprocess.CompletedProcess[str], dict, list[dict]]:
    proc = subprocess.run(
        [sys.executable, "-m", "chaoscheck", "run", str(scenario), "--out", str(run_dir)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert (run_dir / rf.SCALING).is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    loaded = load_run(run_dir)
    section = scaling_analysis(loaded)
    return proc, section, scaling_checks(section, loaded.slo)


def summary_checks(run_dir: Path) -> dict[str, dict]:
    summary = json.loads((run_dir / rf.SUMMARY).read_text())
    return {c["name"]: c for c in summary["checks"]}


def describe(checks: list[dict]) -> str:
    return "; ".join(
        f"{c['name']} measured {c['measured']} limit {c['threshold']} ({c['note']})" for c in checks
    )


def test_the_fleet_scales_out_on_the_step_and_latency_comes_back_under_its_target(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc, section, checks = run(SCENARIO, run_dir)
    assert all(c["passed"] for c in checks), describe(checks)
    assert [c["name"] for c in checks][:3] == list(FLEET_CHECKS)

    (step,) = section["fleet"]["steps"]
    assert step["at_s"] == 10.0 and (step["from_rate"], step["to_rate"]) == (200.0, 600.0)
    # every link of the chain, in order: the decision, the capacity in service, the latency back
    assert 0 < step["reaction_s"] < step["in_service_s"] <= step["p95_recovered_s"] + 1
    assert step["capacity_before"] == 2 and step["capacity_after"] >= 5
    assert step["p95_worst_ms"] > 150 >= step["p95_after_ms"], step  # it did hurt, and it healed
    assert section["fleet"]["peak_in_service"] >= 5

    lam = section["lambda"]
    assert lam["cold_starts"] >= 4 and lam["burst_throttles"] > 0
    before, during, _ = lam["stages"]
    assert during["peak_concurrency"] > before["peak_concurrency"]

    activities = pd.read_parquet(run_dir / rf.SCALING)
    out = activities.loc[activities["kind"] == "scale-out"].iloc[0]
    launches = activities.loc[activities["parent"] == out["activity_id"]]
    assert len(launches) == out["to_capacity"] - out["from_capacity"]
    assert (launches["status"] == "successful").all() and out["end_ns"] == launches["end_ns"].max()

    assert proc.returncode == 0, proc.stdout[-3000:]
    found = summary_checks(run_dir)
    for name in FLEET_CHECKS:
        assert found[name]["passed"], found[name]


def test_the_same_scenario_with_too_low_a_maximum_fails_the_scaling_checks(tmp_path: Path) -> None:
    text = SCENARIO.read_text()
    assert "    max: 6\n" in text
    scenario = tmp_path / "scale-out-max-2.yaml"
    scenario.write_text(text.replace("    max: 6\n", "    max: 2\n"))
    run_dir = tmp_path / "run"
    proc, section, checks = run(scenario, run_dir)

    results = {c["name"]: c for c in checks}
    for name in FLEET_CHECKS:
        assert not results[name]["passed"] and results[name]["measured"] is None, results[name]
    assert results["scaling.reaction_s"]["note"] == "step-1: no scale-out in the step's window"
    (step,) = section["fleet"]["steps"]
    assert step["p95_worst_ms"] > 150 and section["fleet"]["peak_in_service"] == 2

    found = summary_checks(run_dir)  # the summary carries the scaling checks: the verdict fails on them
    assert proc.returncode == 1
    assert all(not found[name]["passed"] for name in FLEET_CHECKS)
