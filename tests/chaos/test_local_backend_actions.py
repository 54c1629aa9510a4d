"""The local backend's actions against an in-memory control: targets, undo records, exact restores."""

from __future__ import annotations

import pytest
from chaos_fakes import FakeControl

from chaos.backends import Injection, InjectionError
from chaos.backends.local import LocalBackend


def test_plan_terminate_chooses_in_service_instances_and_changes_nothing() -> None:
    control = FakeControl(instances=4)
    control.instances[0]["state"] = "pending"
    control.instances[1]["state"] = "unhealthy"
    injection = LocalBackend(control, seed=1).plan("terminate-instance", {"count": 2})
    assert sorted(injection.target.split(",")) == ["i-0003", "i-0004"]
    assert injection.undo is None
    assert control.args_of("signal_instance") == []


def test_terminate_kills_the_planned_instances_with_sigkill() -> None:
    control = FakeControl(instances=3)
    injection = LocalBackend(control, seed=7).inject("terminate-instance", {"count": 1})
    assert control.args_of("signal_instance") == [(injection.target, "KILL")]
    states = {i["id"]: i["state"] for i in control.instances}
    assert states[injection.target] == "terminated"
    assert list(states.values()).count("in_service") == 2


def test_the_seed_makes_the_choice_reproducible() -> None:
    def victims(seed: int) -> list[str]:
        backend = LocalBackend(FakeControl(instances=6), seed=seed)
        return [backend.plan("terminate-instance", {"count": 2}).target for _ in range(5)]

    assert victims(42) == victims(42)
    assert len({tuple(victims(seed)) for seed in range(5)}) > 1


def test_the_choice_does_not_depend_on_the_listing_order() -> None:
    control = FakeControl(instances=5)
    first = LocalBackend(control, seed=3).plan("terminate-instance", {"count": 1}).target
    control.instances.reverse()
    assert LocalBackend(control, seed=3).plan("terminate-instance", {"count": 1}).target == first


def test_terminate_refuses_when_too_few_are_in_service() -> None:
    control = FakeControl(instances=2)
    control.instances[0]["state"] = "terminated"
    with pytest.raises(InjectionError, match="expected at least 2 in-service instance"):
        LocalBackend(control).plan("terminate-instance", {"count": 2})


def test_terminate_has_nothing_to_roll_back() -> None:
    control = FakeControl()
    result = LocalBackend(control).rollback("terminate-instance", Injection("i-0001", None))
    assert result["restored"] is None
    assert control.calls == []


@pytest.mark.parametrize("previous", [12, 0, None])
def test_throttle_captures_then_restores_the_previous_value_exactly(previous: int | None) -> None:
    control = FakeControl(reserved_concurrency=previous)
    backend = LocalBackend(control)
    injection = backend.plan("throttle-lambda", {"reserved_concurrency": 0})
    assert injection == Injection(target="lambda", undo={"reserved_concurrency": previous})
    assert control.args_of("set_reserved_concurrency") == []  # planning changes nothing
    backend.apply("throttle-lambda", {"reserved_concurrency": 0}, injection)
    assert control.reserved_concurrency == 0
    result = backend.rollback("throttle-lambda", injection)
    assert control.reserved_concurrency == previous
    assert result == {"reserved_concurrency": previous, "replaced": 0}
    backend.rollback("throttle-lambda", injection)  # twice is harmless
    assert control.reserved_concurrency == previous


def test_throttle_rollback_without_an_undo_record_fails_loudly() -> None:
    with pytest.raises(InjectionError, match="previous reserved concurrency"):
        LocalBackend(FakeControl()).rollback("throttle-lambda", Injection("lambda", None))


def test_an_unknown_action_is_an_injection_error() -> None:
    backend = LocalBackend(FakeControl())
    with pytest.raises(InjectionError, match="no action 'explode'"):
        backend.plan("explode", {})
    with pytest.raises(InjectionError):
        backend.rollback("explode", Injection("x", {}))


def test_parameters_are_validated_by_the_action_model() -> None:
    with pytest.raises(ValueError):
        LocalBackend(FakeControl()).plan("terminate-instance", {"count": 0})
