"""The load side reads a scenario's load section and says clearly what is wrong with it."""

from __future__ import annotations

import pytest

from loadtests.settings import LoadSettingsError, fresh_counter_name, settings_from_scenario


def test_defaults_without_a_scenario() -> None:
    settings = settings_from_scenario(None, None)
    assert settings.increment_share == pytest.approx(0.9)
    assert settings.endpoint_weights == {"fleet": 1.0, "lambda": 1.0}
    assert settings.counter.startswith("locust-")


def test_resolved_and_raw_scenarios_read_alike(tmp_path) -> None:
    raw = tmp_path / "raw.yaml"
    load = "load: {mix: {increment: 1, read: 1}, endpoints: {fleet: 1, lambda: 0}, timeout: %s}\n"
    raw.write_text("name: s\n" + load % "2s")
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text("name: s\n" + load % "2.0")
    a = settings_from_scenario(raw, "c1")
    b = settings_from_scenario(resolved, "c1")
    assert a == b
    assert a.timeout == 2.0 and a.increment_share == 0.5 and a.endpoint_weights["lambda"] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a mapping at the top level"),
        ("load: [1]", "load: expected a mapping"),
        ("load: {timeout: soon}", "expected a duration"),
        ("load: {mix: {increment: 0, read: 0}}", "load.mix: expected a positive weight"),
        ("load: {", "cannot read the scenario"),
    ],
)
def test_bad_load_sections_give_one_line(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LoadSettingsError) as info:
        settings_from_scenario(path, None)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_counter_name() -> None:
    with pytest.raises(LoadSettingsError, match="--counter"):
        settings_from_scenario(None, "no spaces allowed")


def test_fresh_counter_names_are_valid_and_distinct() -> None:
    names = {fresh_counter_name("smoke test/1") for _ in range(100)}
    assert len(names) == 100
    assert all(len(n) <= 64 and n.replace("-", "").replace("_", "").isalnum() for n in names)
