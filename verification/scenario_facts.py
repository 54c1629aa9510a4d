"""Facts beyond the checks that a verification test asserts for some scenarios on the local stack.

Each function takes the ``RunResult`` and asserts what the scenario's own checks cannot say: that
the fault did what it claims (502s from the fleet after a kill, nothing through a throttle to 0).
They read the run directory's files (``docs/run-format.md``) and run on the local target only,
where the stack's behaviour is known exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from chaoscheck import runformat


def _journal(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / runformat.FAULTS).read_text().splitlines() if line]


def smoke(result: Any) -> None:
    """The kill shows as 502s from the fleet; during the throttle every Lambda request got a 429."""
    run_dir = result.run_dir
    ops = pd.read_parquet(run_dir / runformat.OPS)
    journal = _journal(run_dir)
    kill = next(e for e in journal if e["event"] == "inject" and e["action"] == "terminate-instance")
    throttle = next(e for e in journal if e["event"] == "inject" and e["action"] == "throttle-lambda")
    restore = next(e for e in journal if e["event"] == "rollback" and e["action"] == "throttle-lambda")

    after_kill = ops[(ops.start_ns >= kill["ts_ns"]) & (ops.start_ns < kill["ts_ns"] + 5_000_000_000)]
    assert (after_kill.status == 502).any(), f"no 502 from the fleet in the 5 s after the kill ({run_dir})"
    # the inject line is written just before the change, the rollback line just after the restore
    margin = 200_000_000
    during = ops[(ops.start_ns >= throttle["ts_ns"] + margin) & (ops.end_ns <= restore["ts_ns"] - margin)]
    lambda_during = during[during.endpoint == "lambda"]
    assert len(lambda_during) > 0, f"no Lambda request inside the throttle window ({run_dir})"
    assert (lambda_during.status == 429).all(), (
        f"the throttle let {int((lambda_during.status != 429).sum())} Lambda requests through ({run_dir})"
    )


FACTS: dict[str, Callable[[Any], None]] = {"smoke": smoke}
"""Scenario name -> its extra facts on the local target."""
