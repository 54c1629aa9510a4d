"""Fixtures for the counter and local-stack tests (helpers live in ``stack_helpers``, a module name
that no other test folder shares, unlike ``conftest``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_helpers import stack_config

from counter.local.client import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One stack per test module, with the fast configuration."""
    workdir = tmp_path_factory.mktemp("stack")
    with LocalStack.start(stack_config(), workdir / "counter.db", log_path=workdir / "stack.log") as running:
        yield running


@pytest.fixture
def fresh_name(request: pytest.FixtureRequest) -> str:
    """A counter name used by this test only."""
    return f"t{time.monotonic_ns()}-{request.node.name[:20]}".replace("[", "-").replace("]", "")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
