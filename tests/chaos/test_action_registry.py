"""The action registry: each action defined once, with a local implementation for every one."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from chaos.actions import ACTIONS, Action, ActionParams, get_action, register
from chaos.backends.local import LocalBackend
from chaos.scenario import fault_model


def test_every_action_has_a_local_implementation() -> None:
    assert set(ACTIONS) == set(LocalBackend.actions)


def test_the_built_in_actions_and_their_shape() -> None:
    assert list(ACTIONS) == [
        "terminate-instance",
        "stop-instance",
        "set-capacity",
        "throttle-lambda",
        "lambda-latency",
        "lambda-errors",
    ]
    assert not get_action("terminate-instance").takes_duration
    assert get_action("throttle-lambda").takes_duration
    assert get_action("stop-instance").takes_duration and get_action("set-capacity").takes_duration
    assert get_action("terminate-instance").params().how_many(4) == 1
    assert get_action("throttle-lambda").params().reserved_concurrency == 0


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_each_action_is_documented_and_strict(name: str) -> None:
    action = ACTIONS[name]
    assert action.summary and action.doc.strip() and action.target_kind
    assert issubclass(action.params, ActionParams)
    with pytest.raises(ValidationError):
        action.params.model_validate({"no_such_parameter": 1})
    for field in action.params.model_fields.values():
        assert field.description, f"{name}: every parameter says what it is for"


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_each_action_parameters_go_inline_in_a_fault(name: str) -> None:
    action = ACTIONS[name]
    entry = {"at": 1, "action": name, **action.example}
    entry["duration" if action.takes_duration else "settle"] = 2
    fault = fault_model(name).model_validate(entry)
    assert fault.params() == action.params.model_validate(action.example).model_dump(
        mode="json", exclude_none=True
    )
    assert fault.window_s == 2.0


def test_get_action_names_the_known_ones() -> None:
    with pytest.raises(
        KeyError, match="known actions: terminate-instance, stop-instance, set-capacity, throttle-lambda"
    ):
        get_action("explode")


def test_register_refuses_a_second_action_of_a_name() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(ACTIONS["throttle-lambda"])


def test_register_refuses_parameters_that_shadow_fault_keys() -> None:
    class Shadowing(ActionParams):
        duration: int = Field(1, description="clashes with the fault's own duration")

    with pytest.raises(ValueError, match="reserved fault keys"):
        register(Action("shadowing", Shadowing, takes_duration=True, target_kind="x", summary="x"))
    assert "shadowing" not in ACTIONS
