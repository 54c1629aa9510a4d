"""A throwaway pytest project, run in a subprocess with chaoscheck's plugin and a fake run.

The project has its own ``scenarios/`` (``quick`` 2 s, ``long`` 30 s that fails its p95 check,
``faulty`` with a fault) and a conftest that replaces ``chaoscheck.run.execute`` by a fake writing
the report files of a made-up summary, so the plugin's options, parametrization, assertions and
attachments are tested in seconds, without a stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """\
version: 1
name: {name}
load: {{users: 2, duration: {duration}, timeout: 1s}}
faults: {faults}
"""

FAKE_CONFTEST = """
import json

import pytest

import chaoscheck.run as run_module
from chaoscheck.run import RunResult
from reports.junit import write_junit
from reports.markdown import write_markdown


def fake_execute(scenario, scenario_file, run_dir, target, **kwargs):
    slow = scenario.name == "long"
    checks = [
        {"name": "run.aborted", "passed": True, "measured": 0, "threshold": 0, "phase": None, "note": None},
        {"name": "baseline.p95_ms", "passed": not slow, "measured": 212.4 if slow else 9.5, "threshold": 150,
         "phase": "baseline", "note": "slower than <b>usual</b>" if slow else None},
        {"name": "consistency.lost", "passed": not slow, "measured": 3 if slow else 0, "threshold": 0,
         "phase": None, "note": None},
    ]
    summary = {"schema_version": 1, "scenario": scenario.name, "run_id": run_dir.name, "target": target.name,
               "verdict": "fail" if slow else "pass", "checks": checks,
               "failed_checks": [c["name"] for c in checks if not c["passed"]]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "report.html").write_text("<html></html>")
    write_junit(run_dir, summary)
    write_markdown(run_dir, summary)
    print(f"fake run of {scenario.name} on {target.name}")
    return RunResult(run_dir, summary)


@pytest.fixture(autouse=True)
def _fake_runs(monkeypatch):
    monkeypatch.setattr(run_module, "execute", fake_execute)
"""

TEST_FILE = """
from chaoscheck.pytest_plugin import assert_checks


def test_scenario(scenario_run, summary):
    assert_checks(summary)
"""


def make_project(tmp_path: Path) -> Path:
    """The throwaway project (see the module doc)."""
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    fault = "[{at: 0.5s, action: throttle-lambda, duration: 0.5s}]"
    for name, duration, faults in (("quick", "2s", "[]"), ("long", "30s", "[]"), ("faulty", "2s", fault)):
        (scenarios / f"{name}.yaml").write_text(SCENARIO.format(name=name, duration=duration, faults=faults))
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (tmp_path / "conftest.py").write_text(FAKE_CONFTEST)
    (tmp_path / "test_verify.py").write_text(textwrap.dedent(TEST_FILE))
    return tmp_path


def run_pytest(
    cwd: Path, *args: str, autoload: bool = False, plugin: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in ``cwd``; by default with entry points off and the plugin by -p,
    so that the result does not depend on whether chaoscheck is installed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_ADDOPTS", None)
    if autoload:
        env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    else:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    extra = ["-p", "chaoscheck.pytest_plugin"] if plugin and not autoload else []
    return subprocess.run(
        [sys.executable, "-m", "pytest", *extra, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
