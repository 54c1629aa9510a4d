"""Verification jobs: every shipped scenario (``scenarios/*.yaml``) run end to end against the target.

The ``scenario_file`` fixture of chaoscheck's pytest plugin parametrizes the test over the scenario
files (or those chosen with ``--scenario``) and marks each ``verification`` and ``slow``. A test
asserts every check of its run, with one line per failed check naming its figures, then that the
run directory holds every report file, then the scenario's own facts on the local target
(``scenario_facts.py``).

    pytest verification/ --target local --runs-dir runs/verify --junitxml runs/verify/pytest.xml
"""

from __future__ import annotations

import pytest
from scenario_facts import FACTS

from chaoscheck import runformat
from chaoscheck.pytest_plugin import assert_checks
from reports.junit import JUNIT
from reports.markdown import SUMMARY_MD

pytestmark = pytest.mark.verification

REPORT_FILES = (runformat.SCENARIO, runformat.RUN_META, runformat.OPS, runformat.FAULTS,
                runformat.SUMMARY, runformat.REPORT, JUNIT, SUMMARY_MD)  # fmt: skip


def test_scenario(scenario_run, summary, chaoscheck_target) -> None:
    assert_checks(summary)
    assert scenario_run.exit_code == 0, (
        f"exit code {scenario_run.exit_code} with verdict {summary['verdict']}"
    )

    consistency = summary["consistency"]
    assert consistency["valid"], f"consistency: {consistency}"
    assert consistency["ok"] > 0, f"no increment succeeded: {consistency}"

    run_dir = scenario_run.run_dir
    missing = [name for name in REPORT_FILES if not (run_dir / name).is_file()]
    assert not missing, f"{', '.join(missing)} missing from {run_dir}"

    facts = FACTS.get(summary["scenario"])
    if facts is not None and chaoscheck_target.name == "local":
        facts(scenario_run)
