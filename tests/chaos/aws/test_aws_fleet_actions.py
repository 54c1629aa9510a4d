"""The AWS backend's fleet actions against moto: terminate-instance, stop-instance, set-capacity."""

from __future__ import annotations

import pytest
from aws_stack import GROUP, Stack

from chaos.backends import Injection, InjectionError
from chaos.backends.aws import AwsBackend

# terminate-instance ----------------------------------------------------------------------------------


def test_plan_terminate_picks_an_in_service_instance_and_changes_nothing(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    before = counter_stack.in_service()
    injection = backend.plan("terminate-instance", {"count": 1})
    assert injection.undo is None  # one-shot: nothing to restore
    assert injection.target in before
    assert counter_stack.in_service() == before
    assert set(counter_stack.instance_states(before).values()) == {"running"}


def test_terminate_ec2_kills_the_planned_instance_and_the_group_replaces_it(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    before = counter_stack.in_service()
    injection = backend.inject("terminate-instance", {"count": 1})
    assert counter_stack.instance_states([injection.target]) == {injection.target: "terminated"}
    after = counter_stack.in_service()
    assert injection.target not in after
    assert len(after) == 3  # moto replaces at once; AWS does after its health check
    assert counter_stack.group_state()["DesiredCapacity"] == 3
    assert set(before) - {injection.target} <= set(after)


def test_terminate_asg_mode_with_decrement_lowers_the_desired_capacity(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    params = {"count": 1, "mode": "asg", "decrement_desired": True}
    injection = backend.inject("terminate-instance", params)
    group = counter_stack.group_state()
    assert group["DesiredCapacity"] == 2
    assert injection.target not in counter_stack.in_service()


def test_terminate_asg_mode_without_decrement_keeps_the_desired_capacity(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    injection = backend.inject("terminate-instance", {"count": 1, "mode": "asg"})
    assert counter_stack.group_state()["DesiredCapacity"] == 3
    assert injection.target not in counter_stack.in_service()
    assert len(counter_stack.in_service()) == 3


def test_terminate_by_ids_and_by_percent(stack: Stack) -> None:
    stack.group(desired=6, maximum=10)
    backend = AwsBackend(stack.session, group_name=GROUP, seed=1)
    ids = stack.in_service()
    assert backend.plan("terminate-instance", {"instance_ids": ids[:2]}).target == ",".join(ids[:2])
    assert len(backend.plan("terminate-instance", {"percent": 50.0}).target.split(",")) == 3
    assert len(backend.plan("terminate-instance", {"percent": 1.0}).target.split(",")) == 1  # at least one


def test_the_seed_makes_the_choice_reproducible(stack: Stack) -> None:
    stack.group(desired=6, maximum=10)

    def victims(seed: int) -> list[str]:
        backend = AwsBackend(stack.session, group_name=GROUP, seed=seed)
        return [backend.plan("terminate-instance", {"count": 2}).target for _ in range(4)]

    assert victims(42) == victims(42)
    assert len({tuple(victims(seed)) for seed in range(5)}) > 1


def test_terminate_rollback_is_a_note_and_harmless_twice(counter_stack: Stack, backend: AwsBackend) -> None:
    injection = backend.inject("terminate-instance", {"count": 1})
    before = counter_stack.in_service()
    for _ in range(2):
        result = backend.rollback("terminate-instance", injection)
        assert result == {"restored": None, "reason": "one-shot: the group replaces terminated instances"}
    assert counter_stack.in_service() == before


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"count": 2},
            r"blast radius: expected at most 50% of the 3 in-service instance\(s\) \(1\) at once, got 2",
        ),
        ({"percent": 100.0}, r"blast radius: expected at most 50%"),
        ({"count": 4}, r"expected at least 4 in-service instance\(s\), found 3"),
        ({"instance_ids": ["i-nothere"]}, r"expected instance_ids in service, got i-nothere not in service"),
    ],
)
def test_blast_radius_refusals_change_nothing(
    counter_stack: Stack, backend: AwsBackend, params: dict, message: str
) -> None:
    before = counter_stack.in_service()
    with pytest.raises(InjectionError, match=message):
        backend.plan("terminate-instance", params)
    assert counter_stack.in_service() == before


def test_never_below_the_group_minimum(stack: Stack) -> None:
    stack.group(desired=3, minimum=3)
    backend = AwsBackend(stack.session, group_name=GROUP, max_share=1.0)
    with pytest.raises(InjectionError, match="expected at least the group's minimum of 3 in service"):
        backend.plan("stop-instance", {"count": 1})


def test_max_share_is_the_backends(stack: Stack) -> None:
    stack.group(desired=4, maximum=6)
    assert len(AwsBackend(stack.session, group_name=GROUP, max_share=0.75).plan(
        "terminate-instance", {"count": 3}).target.split(",")) == 3  # fmt: skip
    with pytest.raises(InjectionError, match="at most 25%"):
        AwsBackend(stack.session, group_name=GROUP, max_share=0.25).plan("terminate-instance", {"count": 2})


# stop-instance ---------------------------------------------------------------------------------------


def test_stop_then_rollback_starts_exactly_those_instances(counter_stack: Stack, backend: AwsBackend) -> None:
    ids = counter_stack.in_service()
    injection = backend.plan("stop-instance", {"count": 1})
    (victim,) = injection.target.split(",")
    assert injection.undo is not None
    assert injection.undo["instance_ids"] == [victim] and injection.undo["group"] == GROUP
    assert set(counter_stack.instance_states(ids).values()) == {"running"}  # plan changed nothing
    backend.apply("stop-instance", {"count": 1}, injection)
    assert counter_stack.instance_states(ids) == {i: "stopped" if i == victim else "running" for i in ids}
    assert backend.rollback("stop-instance", injection) == {
        "started": [victim],
        "already_running": [],
        "gone": [],
    }
    assert set(counter_stack.instance_states(ids).values()) == {"running"}
    # twice is harmless: nothing left to start
    assert backend.rollback("stop-instance", injection) == {
        "started": [],
        "already_running": [victim],
        "gone": [],
    }
    assert set(counter_stack.instance_states(ids).values()) == {"running"}


def test_stop_rollback_reports_an_instance_the_group_replaced(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    injection = backend.inject("stop-instance", {"count": 1})
    counter_stack.client("ec2").terminate_instances(InstanceIds=[injection.target])  # the group gave up on it
    assert backend.rollback("stop-instance", injection) == {
        "started": [],
        "already_running": [],
        "gone": [injection.target],
    }


def test_stop_rollback_waits_for_stopping_instances_bounded(
    counter_stack: Stack, backend: AwsBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    injection = backend.inject("stop-instance", {"count": 1})
    victim = injection.target
    real = backend._instance_states
    answers = iter(["stopping", "stopping"])

    def states(ids: list[str]) -> dict[str, str]:
        state = next(answers, None)  # AWS takes a while to stop an instance; moto does not
        return {victim: state} if state else real(ids)

    monkeypatch.setattr(backend, "_instance_states", states)
    backend.poll_s = 0.01
    assert backend.rollback("stop-instance", injection)["started"] == [victim]
    assert counter_stack.instance_states([victim]) == {victim: "running"}

    monkeypatch.setattr(backend, "_instance_states", lambda ids: dict.fromkeys(ids, "stopping"))
    backend.instance_wait_s = 0.05
    with pytest.raises(InjectionError, match=f"instance\\(s\\) {victim} still stopping after 0.05 s"):
        backend.rollback("stop-instance", injection)


# set-capacity ----------------------------------------------------------------------------------------


def test_set_capacity_3_to_1_then_back_to_3(counter_stack: Stack, backend: AwsBackend) -> None:
    injection = backend.plan("set-capacity", {"desired": 1})
    assert injection.target == GROUP
    assert injection.undo is not None
    assert {k: injection.undo[k] for k in ("group", "desired", "min", "max")} == {
        "group": GROUP, "desired": 3, "min": 1, "max": 6,
    }  # fmt: skip
    assert counter_stack.group_state()["DesiredCapacity"] == 3  # plan changed nothing
    backend.apply("set-capacity", {"desired": 1}, injection)
    assert counter_stack.group_state()["DesiredCapacity"] == 1
    assert backend.rollback("set-capacity", injection) == {"desired": 3, "replaced": 1}
    assert counter_stack.group_state()["DesiredCapacity"] == 3
    assert backend.rollback("set-capacity", injection) == {"desired": 3, "replaced": 3}  # twice: harmless
    assert counter_stack.group_state()["DesiredCapacity"] == 3


@pytest.mark.parametrize("desired", [0, 7])
def test_set_capacity_outside_min_and_max_is_refused(
    counter_stack: Stack, backend: AwsBackend, desired: int
) -> None:
    with pytest.raises(
        InjectionError,
        match=f"expected desired within group {GROUP}'s minimum 1 and maximum 6, got {desired}",
    ):
        backend.plan("set-capacity", {"desired": desired})
    assert counter_stack.group_state()["DesiredCapacity"] == 3


def test_rollback_without_an_undo_record_fails_loudly(backend: AwsBackend) -> None:
    with pytest.raises(InjectionError, match="expected group, desired in the undo record, got None"):
        backend.rollback("set-capacity", Injection(GROUP, None))


def test_set_capacity_rollback_when_the_group_is_gone_closes_the_fault(
    counter_stack: Stack, backend: AwsBackend
) -> None:
    injection = backend.inject("set-capacity", {"desired": 2})
    counter_stack.client("autoscaling").delete_auto_scaling_group(
        AutoScalingGroupName=GROUP, ForceDelete=True
    )
    assert backend.rollback("set-capacity", injection) == {
        "desired": 3, "replaced": None, "reason": f"group {GROUP} no longer exists",
    }  # fmt: skip
