"""docs/chaos.md lists every registered action with every one of its parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.actions import ACTIONS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "chaos.md").read_text()


@pytest.mark.parametrize("name", list(ACTIONS))
def test_every_action_and_parameter_is_documented(name: str) -> None:
    row = next((line for line in DOC.splitlines() if line.startswith(f"| `{name}` |")), None)
    assert row is not None, f"docs/chaos.md has no row for {name}"
    for param in ACTIONS[name].params.model_fields:
        if param == "target":
            assert "`target: {name: ..., tags: {...}}`" in DOC
            continue
        assert f"`{param}`" in row, f"docs/chaos.md: {name} row does not mention {param}"
