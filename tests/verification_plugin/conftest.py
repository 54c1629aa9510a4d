"""Fixtures of the plugin's tests; the throwaway project is built by ``plugin_project``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helper module sits next to this file; make it importable however pytest was started.
sys.path.insert(0, str(Path(__file__).parent))

from plugin_project import make_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The throwaway project (see ``plugin_project``)."""
    return make_project(tmp_path)
