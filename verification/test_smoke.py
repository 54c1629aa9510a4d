"""Nightly verification: the smoke scenario keeps every count exact through a kill and a throttle."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from chaoscheck import runformat

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _failed_checks(summary: dict) -> str:
    return "; ".join(
        f"{c['name']} measured {c['measured']} threshold {c['threshold']} ({c['phase']})"
        for c in summary["checks"]
        if not c["passed"]
    )


@pytest.mark.verification
@pytest.mark.slow
def test_smoke_survives_a_kill_and_a_throttle(run_scenario) -> None:
    result = run_scenario(SCENARIOS / "smoke.yaml")
    summary = result.summary
    assert summary is not None, f"no summary in {result.run_dir}"
    assert summary["verdict"] == "pass", _failed_checks(summary)
    assert result.exit_code == 0

    consistency = summary["consistency"]
    assert consistency["lost"] == 0 and consistency["duplicated"] == 0, consistency
    assert consistency["final_value"] >= consistency["ok"] > 0, consistency

    run_dir = result.run_dir
    for name in (runformat.SCENARIO, runformat.OPS, runformat.FAULTS, runformat.TIMELINE,
                 runformat.SERVER_OPS, runformat.SUMMARY, runformat.REPORT):  # fmt: skip
        assert (run_dir / name).is_file(), f"{name} missing from {run_dir}"

    ops = pd.read_parquet(run_dir / runformat.OPS)
    journal = [json.loads(line) for line in (run_dir / runformat.FAULTS).read_text().splitlines()]
    kill = next(e for e in journal if e["event"] == "inject" and e["action"] == "terminate-instance")
    throttle = next(e for e in journal if e["event"] == "inject" and e["action"] == "throttle-lambda")
    restore = next(e for e in journal if e["event"] == "rollback" and e["action"] == "throttle-lambda")

    after_kill = ops[(ops.start_ns >= kill["ts_ns"]) & (ops.start_ns < kill["ts_ns"] + 5_000_000_000)]
    assert (after_kill.status == 502).any(), "no 502 from the fleet in the 5 s after the kill"
    # the inject line is written just before the change, the rollback line just after the restore
    margin = 200_000_000
    during = ops[(ops.start_ns >= throttle["ts_ns"] + margin) & (ops.end_ns <= restore["ts_ns"] - margin)]
    lambda_during = during[during.endpoint == "lambda"]
    assert len(lambda_during) > 0 and (lambda_during.status == 429).all(), "the throttle let requests through"
