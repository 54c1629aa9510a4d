"""Shared pytest fixtures: the way a scheduled verification job runs a scenario and reads its verdict.

Options (``--host`` is left alone: Locust's pytest plugin owns it):
  --target LOCAL|...   what the verification jobs run against (only ``local`` for now)
  --runs-dir DIR       keep run directories there instead of pytest's temporary directory
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SCENARIOS = ROOT / "scenarios"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaoscheck")
    group.addoption("--target", default="local", choices=["local"], help="target of the verification jobs")
    group.addoption("--runs-dir", default=None, help="where verification runs keep their run directories")


@pytest.fixture(scope="session")
def runs_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = request.config.getoption("--runs-dir")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("runs")


@pytest.fixture
def run_scenario(runs_dir: Path) -> Callable[..., object]:
    """Run a scenario file end to end and return its ``RunResult`` (run_dir, summary, exit_code)."""
    from chaos.scenario import load_scenario
    from chaoscheck import runformat
    from chaoscheck.run import execute, new_run_dir
    from chaoscheck.targets.local import LocalTarget

    def _run(path: Path | str) -> object:
        path = Path(path)
        scenario = load_scenario(path)
        run_dir = new_run_dir(scenario.name, None, runs_dir)
        target = LocalTarget(scenario.stack, log_path=run_dir / runformat.STACK_LOG, seed=scenario.seed)
        result = execute(scenario, path, run_dir, target, log=lambda message: print(message, flush=True))
        print(f"run directory: {result.run_dir}")
        return result

    return _run
