"""Fixtures for the web UI tests: one real local stack for the session, Locust processes per test.

The helpers (``LocustUI`` and the waits) are in ``webui_helpers``; the browser driver is
``tests/helpers/headless_chromium.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from webui_helpers import SCENARIO, STACK, LocustUI

# The browser driver (headless_chromium.py) is a test helper shared with tests/reports.
sys.path.insert(0, str(Path(__file__).parents[1] / "helpers"))

from counter.local.client import LocalStack
from counter.local.config import StackConfig


@pytest.fixture(scope="session")
def webui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local stack as ``chaoscheck stack up`` leaves it: described by a state file."""
    workdir = tmp_path_factory.mktemp("webui-stack")
    stack = LocalStack.start(
        StackConfig.model_validate(STACK),
        db_path=workdir / "counter.sqlite",
        log_path=workdir / "stack.log",
        state_file=workdir / "stack.json",
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "small.yaml").write_text(SCENARIO)
    return tmp_path


@pytest.fixture
def start_locust(workdir: Path) -> Iterator[Callable[..., LocustUI]]:
    started: list[LocustUI] = []

    def start(*args: str) -> LocustUI:
        ui = LocustUI(workdir, *args)
        started.append(ui)
        return ui

    try:
        yield start
    finally:
        for ui in started:
            ui.stop()
