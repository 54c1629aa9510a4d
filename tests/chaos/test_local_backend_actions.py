"""The local backend's actions against an in-memory control: targets, limits, undo records, exact restores.

The same actions against the real local stack are in ``test_local_backend_faults.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from chaos_fakes import FakeControl

from chaos.actions import ACTIONS
from chaos.backends import Injection, InjectionError
from chaos.backends.local import LocalBackend
from counter.local.client import ControlError


def test_the_backend_implements_every_registered_action() -> None:
    assert LocalBackend.actions == frozenset(ACTIONS)


# terminate-instance --------------------------------------------------------------------------------


def test_plan_terminate_chooses_in_service_instances_and_changes_nothing() -> None:
    control = FakeControl(instances=6)
    control.instances[0]["state"] = "pending"
    control.instances[1]["state"] = "unhealthy"
    injection = LocalBackend(control, seed=1).plan("terminate-instance", {"count": 2})
    assert set(injection.target.split(",")) <= {"i-0003", "i-0004", "i-0005", "i-0006"}
    assert len(injection.target.split(",")) == 2
    assert injection.undo is None
    assert control.changes() == []


def test_terminate_kills_the_planned_instances_with_sigkill() -> None:
    control = FakeControl(instances=3)
    injection = LocalBackend(control, seed=7).inject("terminate-instance", {"count": 1})
    assert control.args_of("signal_instance") == [(injection.target, "KILL")]
    states = {i["id"]: i["state"] for i in control.instances}
    assert states[injection.target] == "terminated"
    assert list(states.values()).count("in_service") == 2


def test_terminate_defaults_to_one_instance() -> None:
    control = FakeControl(instances=4)
    injection = LocalBackend(control, seed=2).inject("terminate-instance", {})
    assert len(injection.target.split(",")) == 1 and len(control.args_of("signal_instance")) == 1


@pytest.mark.parametrize(("percent", "hit"), [(25.0, 1), (50.0, 2), (10.0, 1)])
def test_terminate_by_percent_rounds_down_but_hits_at_least_one(percent: float, hit: int) -> None:
    control = FakeControl(instances=4)
    injection = LocalBackend(control, seed=3).plan("terminate-instance", {"percent": percent})
    assert len(injection.target.split(",")) == hit


def test_terminate_by_ids_hits_exactly_those() -> None:
    control = FakeControl(instances=4)
    backend = LocalBackend(control)
    injection = backend.inject("terminate-instance", {"instance_ids": ["i-0003", "i-0001"]})
    assert injection.target == "i-0003,i-0001"
    assert [args[0] for args in control.args_of("signal_instance")] == ["i-0003", "i-0001"]


def test_terminate_by_ids_refuses_an_instance_not_in_service() -> None:
    control = FakeControl(instances=4)
    control.instances[1]["state"] = "unhealthy"
    with pytest.raises(InjectionError, match="expected instance_ids in service, got i-0002 not in service"):
        LocalBackend(control).plan("terminate-instance", {"instance_ids": ["i-0002"]})


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


@pytest.mark.parametrize(
    ("action", "params", "kwargs", "message"),
    [
        ("terminate-instance", {"count": 3}, {}, r"blast radius: expected at most 50% of the 4 .* got 3"),
        ("terminate-instance", {"percent": 100.0}, {}, "blast radius: expected at most 50%"),
        ("stop-instance", {"count": 3}, {"max_share": 1.0}, "expected at least the group's minimum of 2"),
        ("terminate-instance", {"count": 2}, {"max_share": 0.25}, r"at most 25% of the 4 .*\(1\) at once"),
    ],
)
def test_blast_radius_refusals_change_nothing(
    action: str, params: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    control = FakeControl(instances=4, minimum=2)
    with pytest.raises(InjectionError, match=message):
        LocalBackend(control, **kwargs).inject(action, params)
    assert control.changes() == []
    assert all(i["state"] == "in_service" and not i["stopped"] for i in control.instances)


def test_asg_mode_lets_the_group_terminate_and_replace() -> None:
    control = FakeControl(instances=3)
    injection = LocalBackend(control, seed=1).inject("terminate-instance", {"count": 1, "mode": "asg"})
    assert control.args_of("terminate_instance") == [(injection.target, False)]
    assert control.args_of("signal_instance") == []
    assert control.desired == 3 and len(control.instances) == 4  # a replacement was launched


def test_asg_mode_with_decrement_lowers_desired_by_one_per_instance() -> None:
    control = FakeControl(instances=4, minimum=1)
    params = {"count": 2, "mode": "asg", "decrement_desired": True}
    injection = LocalBackend(control, seed=1).inject("terminate-instance", params)
    assert [args for args in control.args_of("terminate_instance")] == [
        (victim, True) for victim in injection.target.split(",")
    ]
    assert control.desired == 2 and len(control.instances) == 4  # no replacement


def test_asg_decrement_below_the_minimum_is_refused_before_anything_changes() -> None:
    control = FakeControl(instances=4, minimum=2)
    control.desired = 2  # desired already at the minimum (the other two are on their way out)
    params = {"count": 1, "mode": "asg", "decrement_desired": True}
    with pytest.raises(InjectionError, match="desired capacity to stay at or above the group's minimum of 2"):
        LocalBackend(control).plan("terminate-instance", params)
    assert control.changes() == []


def test_decrement_desired_needs_asg_mode() -> None:
    with pytest.raises(ValueError, match="expected mode asg with decrement_desired"):
        LocalBackend(FakeControl()).plan("terminate-instance", {"decrement_desired": True})


def test_terminate_has_nothing_to_roll_back() -> None:
    control = FakeControl()
    backend = LocalBackend(control)
    for _ in range(2):
        result = backend.rollback("terminate-instance", Injection("i-0001", None))
        assert result["restored"] is None
    assert control.calls == []


# stop-instance -------------------------------------------------------------------------------------


def test_stop_freezes_then_resumes_exactly_the_stopped_instances() -> None:
    control = FakeControl(instances=4)
    backend = LocalBackend(control, seed=4)
    injection = backend.plan("stop-instance", {"count": 2})
    victims = injection.target.split(",")
    assert injection.undo == {"instance_ids": victims} and control.changes() == []
    backend.apply("stop-instance", {"count": 2}, injection)
    assert control.args_of("signal_instance") == [(v, "STOP") for v in victims]
    assert {i["id"] for i in control.instances if i["stopped"]} == set(victims)
    assert backend.rollback("stop-instance", injection) == {"resumed": victims, "gone": []}
    assert not any(i["stopped"] for i in control.instances)
    assert backend.rollback("stop-instance", injection) == {"resumed": victims, "gone": []}  # harmless
    assert [args for args in control.args_of("signal_instance") if args[1] == "CONT"] == [
        (v, "CONT") for v in victims * 2
    ]


def test_stop_rollback_skips_an_instance_that_died_meanwhile() -> None:
    control = FakeControl(instances=4)
    backend = LocalBackend(control, seed=4)
    injection = backend.inject("stop-instance", {"instance_ids": ["i-0001", "i-0002"]})
    control.instances[0]["state"] = "terminated"  # the group replaced it while it was frozen
    assert backend.rollback("stop-instance", injection) == {"resumed": ["i-0002"], "gone": ["i-0001"]}


def test_stop_rollback_tries_every_instance_then_reports_a_failure() -> None:
    control = FakeControl(instances=4)
    backend = LocalBackend(control, seed=4)
    injection = backend.inject("stop-instance", {"instance_ids": ["i-0001", "i-0002"]})
    control.fail_next["signal_instance"] = ControlError(0, "control API unreachable")
    with pytest.raises(ControlError, match="unreachable"):
        backend.rollback("stop-instance", injection)
    assert [i["stopped"] for i in control.instances[:2]] == [True, False]  # the second was still resumed
    assert backend.rollback("stop-instance", injection)["resumed"] == ["i-0001", "i-0002"]


def test_stop_rollback_without_an_undo_record_fails_loudly() -> None:
    with pytest.raises(InjectionError, match="stopped instance ids"):
        LocalBackend(FakeControl()).rollback("stop-instance", Injection("i-0001", None))


# set-capacity --------------------------------------------------------------------------------------


def test_set_capacity_captures_then_restores_the_previous_desired() -> None:
    control = FakeControl(instances=3, minimum=1, maximum=6)
    backend = LocalBackend(control)
    injection = backend.plan("set-capacity", {"desired": 5})
    assert injection == Injection(target="fleet", undo={"desired": 3, "min": 1, "max": 6})
    assert control.changes() == []
    backend.apply("set-capacity", {"desired": 5}, injection)
    assert control.desired == 5
    assert backend.rollback("set-capacity", injection) == {"desired": 3, "replaced": 5}
    assert backend.rollback("set-capacity", injection) == {"desired": 3, "replaced": 3}
    assert control.desired == 3


@pytest.mark.parametrize("desired", [0, 7])
def test_set_capacity_outside_min_and_max_is_refused(desired: int) -> None:
    control = FakeControl(instances=3, minimum=1, maximum=6)
    with pytest.raises(InjectionError, match=f"between the group's minimum 1 and maximum 6, got {desired}"):
        LocalBackend(control).inject("set-capacity", {"desired": desired})
    assert control.changes() == [] and control.desired == 3


# throttle-lambda -----------------------------------------------------------------------------------


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


# lambda-latency and lambda-errors ------------------------------------------------------------------

LATENCY = {"delay_s": 0.25, "percent": 40.0}
ERRORS = {"status": 503, "percent": 20.0}


@pytest.mark.parametrize(
    ("action", "params", "kind", "setting"),
    [
        ("lambda-latency", {"delay": "250ms", "percent": 40.0}, "latency", LATENCY),
        ("lambda-errors", {"status": 503, "percent": 20.0}, "errors", ERRORS),
    ],
)
@pytest.mark.parametrize("was_set", [False, True])
def test_lambda_faults_capture_then_restore_the_previous_setting_exactly(
    action: str, params: dict[str, Any], kind: str, setting: dict[str, Any], was_set: bool
) -> None:
    control = FakeControl()
    previous = None
    if was_set:
        previous = {"delay_s": 1.0, "percent": 5.0} if kind == "latency" else {"status": 500, "percent": 5.0}
    control.faults[kind] = previous
    backend = LocalBackend(control)
    injection = backend.plan(action, params)
    assert injection == Injection(target="lambda", undo={kind: previous})
    assert control.changes() == []
    backend.apply(action, params, injection)
    assert control.faults[kind] == setting
    assert backend.rollback(action, injection) == {kind: previous, "replaced": setting}
    assert backend.rollback(action, injection) == {kind: previous, "replaced": previous}
    assert control.faults[kind] == previous


def test_the_two_lambda_faults_are_independent() -> None:
    control = FakeControl()
    backend = LocalBackend(control)
    latency = backend.inject("lambda-latency", {"delay": 0.25, "percent": 40.0})
    errors = backend.inject("lambda-errors", {"status": 503, "percent": 20.0})
    assert errors.undo == {"errors": None} and control.faults == {"latency": LATENCY, "errors": ERRORS}
    backend.rollback("lambda-latency", latency)
    assert control.faults == {"latency": None, "errors": ERRORS}
    backend.rollback("lambda-errors", errors)
    assert control.faults == {"latency": None, "errors": None}


@pytest.mark.parametrize("action", ["lambda-latency", "lambda-errors"])
def test_lambda_fault_rollback_without_an_undo_record_fails_loudly(action: str) -> None:
    with pytest.raises(InjectionError, match=r"expected the previous lambda \w+ fault in the undo record"):
        LocalBackend(FakeControl()).rollback(action, Injection("lambda", {}))


# target selectors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("terminate-instance", {"target": {"name": "fleet"}}),
        ("stop-instance", {"target": {"tags": {"chaoscheck:allowed": "true"}}}),
        ("set-capacity", {"desired": 2, "target": {"name": "fleet", "tags": {"chaoscheck:allowed": "true"}}}),
        ("throttle-lambda", {"target": {"name": "counter"}}),
        ("lambda-latency", {"delay": 0.1, "target": {"tags": {"chaoscheck:allowed": "true"}}}),
        ("lambda-errors", {"target": {"name": "counter"}}),
    ],
)
def test_a_matching_target_selector_is_accepted(action: str, params: dict[str, Any]) -> None:
    LocalBackend(FakeControl(instances=4)).plan(action, params)


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("terminate-instance", {"target": {"name": "web"}}, "expected target group 'web', got the local"),
        ("stop-instance", {"target": {"name": "counter"}}, "expected target group 'counter'"),
        (
            "set-capacity",
            {"desired": 2, "target": {"tags": {"team": "x"}}},
            "expected target group tagged team=x",
        ),
        ("throttle-lambda", {"target": {"name": "fleet"}}, "expected target function 'fleet'"),
        (
            "lambda-latency",
            {"delay": 0.1, "target": {"tags": {"chaoscheck:allowed": "false"}}},
            "got function 'counter' tagged chaoscheck:allowed=true",
        ),
        ("lambda-errors", {"target": {"name": "other"}}, "expected target function 'other'"),
    ],
)
def test_a_selector_that_does_not_match_is_refused(action: str, params: dict[str, Any], message: str) -> None:
    control = FakeControl(instances=4)
    with pytest.raises(InjectionError, match=message) as raised:
        LocalBackend(control).inject(action, params)
    assert "\n" not in str(raised.value)
    assert control.changes() == []


# the rest --------------------------------------------------------------------------------------------


def test_an_unknown_action_is_an_injection_error() -> None:
    backend = LocalBackend(FakeControl())
    with pytest.raises(InjectionError, match="no action 'explode'"):
        backend.plan("explode", {})
    with pytest.raises(InjectionError):
        backend.rollback("explode", Injection("x", {}))


def test_parameters_are_validated_by_the_action_model() -> None:
    with pytest.raises(ValueError):
        LocalBackend(FakeControl()).plan("terminate-instance", {"count": 0})
    with pytest.raises(ValueError):
        LocalBackend(FakeControl()).plan("lambda-errors", {"status": 200})


@pytest.mark.parametrize("max_share", [0, 1.5, -0.1])
def test_max_share_must_be_a_share(max_share: float) -> None:
    with pytest.raises(ValueError, match="max_share"):
        LocalBackend(FakeControl(), max_share=max_share)


def test_without_a_state_file_the_descriptor_is_empty_and_cannot_be_reattached() -> None:
    assert LocalBackend(FakeControl()).descriptor() == {}
    with pytest.raises(InjectionError, match="expected a state_file in the local backend's config, got none"):
        LocalBackend.from_descriptor({})


def test_a_state_file_without_a_stack_is_a_one_line_injection_error(tmp_path: Any) -> None:
    gone = tmp_path / "stack.json"
    backend = LocalBackend(FakeControl(), state_file=gone)
    assert backend.descriptor() == {"state_file": str(gone)}
    with pytest.raises(InjectionError, match="expected a running local stack described by") as raised:
        LocalBackend.from_descriptor(backend.descriptor())
    assert "\n" not in str(raised.value)
    gone.write_text('{"control_url": "http://127.0.0.1:9", "token": "x", "pid": 1}')
    with pytest.raises(InjectionError, match="expected a running local stack"):
        LocalBackend.from_descriptor({"state_file": str(gone)})
