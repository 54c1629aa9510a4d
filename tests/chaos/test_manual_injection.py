"""Faults injected by hand (``FaultScheduler.inject_now``): journaled first, checked, undone like the rest."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from chaos_fakes import FakeControl

from chaos.actions import get_action
from chaos.backends.local import LocalBackend
from chaos.journal import Journal
from chaos.rollback import rollback_from_journal
from chaos.scenario import DEFAULT_SETTLE_S, Fault, fault_model
from chaos.scheduler import FaultScheduler
from chaoscheck import runformat

MS = 1_000_000
TOLERANCE_MS = 100


def throttle(at: float, duration: float, value: int = 0) -> Fault:
    return fault_model("throttle-lambda")(
        at=at, action="throttle-lambda", duration=duration, reserved_concurrency=value
    )


def same_params(action: str, got: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Equal once checked by the action's model (defaults filled in, however they were written)."""
    model = get_action(action).params
    return model.model_validate(got) == model.model_validate(expected)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def events(path: Path) -> list[tuple[int, str]]:
    return [(line["fault_id"], line["event"]) for line in lines(path)]


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / runformat.FAULTS


def started(control: FakeControl, path: Path, faults: list[Fault] | None = None) -> FaultScheduler:
    scheduler = FaultScheduler(faults or [], LocalBackend(control, seed=1), Journal(path))
    scheduler.start(time.time_ns() - 2_000 * MS)  # the load started two seconds ago
    return scheduler


def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_an_open_ended_throttle_is_journaled_first_and_undone_by_rollback_all(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=12)
    seen: list[list[dict]] = []
    control.on_call["set_reserved_concurrency"] = lambda *_: seen.append(lines(journal_path))
    scheduler = started(control, journal_path)

    done = scheduler.inject_now("throttle-lambda", {"reserved_concurrency": 0})

    assert done.injected and done.error is None and done.target == "lambda"
    assert (done.fault_id, done.window_s) == (0, 0.0)
    assert same_params("throttle-lambda", done.params, {"reserved_concurrency": 0})
    assert control.reserved_concurrency == 0
    inject = seen[0][-1]  # on disk before the change was made
    assert inject["event"] == "inject" and inject["manual"] is True
    assert inject["undo"] == {"reserved_concurrency": 12} and inject["backend"] == "local"
    assert inject["window_s"] == 0.0 and 1.9 <= inject["at_s"] <= 3.0

    (outcome,) = scheduler.rollback_all()
    assert outcome.ok and outcome.fault_id == 0
    assert control.reserved_concurrency == 12
    assert events(journal_path) == [(0, "inject"), (0, "rollback")]


def test_a_throttle_with_a_duration_is_rolled_back_when_it_ends(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=None)
    scheduler = started(control, journal_path)
    before = time.monotonic_ns()
    done = scheduler.inject_now("throttle-lambda", {"reserved_concurrency": 3}, duration=0.3)
    assert done.injected and done.window_s == 0.3
    wait_for(lambda: len(control.args_of("set_reserved_concurrency")) == 2)
    restored_after_ms = (control.times_of("set_reserved_concurrency")[1] - before) / MS
    assert 300 - 1 <= restored_after_ms <= 300 + TOLERANCE_MS
    assert control.reserved_concurrency is None  # "no reservation" restored exactly
    assert events(journal_path) == [(0, "inject"), (0, "rollback")]
    assert scheduler.rollback_all() == []
    scheduler.stop()


def test_a_kill_is_one_shot_observed_for_its_settle(journal_path: Path) -> None:
    control = FakeControl(instances=3)
    scheduler = started(control, journal_path)
    default = scheduler.inject_now("terminate-instance")
    chosen = scheduler.inject_now("terminate-instance", {"count": 1}, settle=4)
    assert default.injected and default.window_s == DEFAULT_SETTLE_S
    assert same_params("terminate-instance", default.params, {})  # the defaults: one instance, mode ec2
    assert get_action("terminate-instance").params.model_validate(default.params).how_many(3) == 1
    assert chosen.injected and chosen.window_s == 4.0
    assert [args[0] for args in control.args_of("signal_instance")] == [default.target, chosen.target]
    assert default.target != chosen.target
    assert scheduler.rollback_all() == []  # nothing to undo: the group replaces what was killed
    assert all(line["manual"] and line["undo"] is None for line in lines(journal_path))


def test_manual_faults_are_numbered_after_the_scenario_faults(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=12)
    scheduler = started(control, journal_path, faults=[throttle(60, 5), throttle(70, 5)])
    assert scheduler.inject_now("terminate-instance").fault_id == 2
    assert scheduler.inject_now("throttle-lambda", {}, duration=30).fault_id == 3
    scheduler.stop()
    scheduler.rollback_all()
    assert events(journal_path) == [(2, "inject"), (3, "inject"), (3, "rollback")]
    assert control.reserved_concurrency == 12


@pytest.mark.parametrize(
    ("action", "params", "extra", "message"),
    [
        (
            "unplug-datacenter",
            {},
            {},
            "expected one of the actions terminate-instance, stop-instance, set-capacity, throttle-lambda, "
            "lambda-latency, lambda-errors, got 'unplug-datacenter'",
        ),
        ("terminate-instance", {"count": "2"}, {}, "count: Input should be a valid integer"),
        ("terminate-instance", {"count": 0}, {}, "count: Input should be greater than or equal to 1"),
        ("terminate-instance", {"cuont": 1}, {}, "cuont: Extra inputs are not permitted"),
        ("terminate-instance", {}, {"duration": 5}, "duration: expected none, terminate-instance is"),
        ("throttle-lambda", {}, {"settle": 5}, "settle: expected none"),
        ("throttle-lambda", {}, {"duration": 0}, "duration: expected a number of seconds above 0, got 0"),
        ("throttle-lambda", {}, {"duration": float("nan")}, "duration: expected a number of seconds above 0"),
        ("throttle-lambda", {}, {"duration": True}, "duration: expected a number of seconds above 0"),
    ],
)
def test_a_bad_request_is_refused_with_one_line_and_changes_nothing(
    journal_path: Path, action: str, params: dict, extra: dict, message: str
) -> None:
    control = FakeControl()
    scheduler = started(control, journal_path)
    with pytest.raises(ValueError) as raised:
        scheduler.inject_now(action, params, **extra)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert journal_path.read_text() == ""
    assert [name for _, name, _ in control.calls] == []


def test_nothing_is_injected_before_start_or_after_stop(journal_path: Path) -> None:
    control = FakeControl()
    scheduler = FaultScheduler([], LocalBackend(control), Journal(journal_path))
    with pytest.raises(RuntimeError, match="not started"):
        scheduler.inject_now("terminate-instance")
    scheduler.start(time.time_ns())
    scheduler.stop()
    with pytest.raises(RuntimeError, match="has stopped"):
        scheduler.inject_now("terminate-instance")
    assert control.calls == [] and journal_path.read_text() == ""


def test_after_rollback_all_the_timeline_stops_but_injection_by_hand_goes_on(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=12)
    scheduler = started(control, journal_path, faults=[throttle(2.3, 5)])  # due in 0.3 s
    scheduler.rollback_all()
    time.sleep(0.5)
    assert control.args_of("set_reserved_concurrency") == []  # the scheduled throttle never came
    assert scheduler.inject_now("throttle-lambda", {"reserved_concurrency": 1}).injected
    scheduler.stop()
    scheduler.rollback_all()
    assert [args[0] for args in control.args_of("set_reserved_concurrency")] == [1, 12]


def test_a_second_throttle_on_an_open_one_is_refused(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=12)
    scheduler = started(control, journal_path, faults=[throttle(0, 30)])  # in force from the start
    wait_for(lambda: control.reserved_concurrency == 0)
    with pytest.raises(ValueError, match="got fault 0 still in force; roll it back first"):
        scheduler.inject_now("throttle-lambda", {"reserved_concurrency": 5}, duration=1)
    assert scheduler.inject_now("terminate-instance").injected  # another target is free
    scheduler.stop()
    scheduler.rollback_all()
    assert control.reserved_concurrency == 12
    assert events(journal_path) == [(0, "inject"), (1, "inject"), (0, "rollback")]


def test_a_scheduled_throttle_does_not_stack_on_a_manual_one(journal_path: Path) -> None:
    """Else its undo would capture the manual value and restore it after the manual one ended."""
    control = FakeControl(reserved_concurrency=12)
    scheduler = started(control, journal_path, faults=[throttle(2.3, 0.2, value=5)])  # due in 0.3 s
    assert scheduler.inject_now("throttle-lambda", {"reserved_concurrency": 0}, duration=0.6).injected
    wait_for(lambda: len(control.args_of("set_reserved_concurrency")) == 2)
    assert control.reserved_concurrency == 12
    assert events(journal_path) == [(1, "inject"), (0, "abort"), (1, "rollback")]
    abort = lines(journal_path)[1]
    assert abort["error"] == "fault 1, injected by hand, still holds the lambda; roll it back first"
    scheduler.stop()


def test_a_failed_plan_comes_back_as_an_abort(journal_path: Path) -> None:
    control = FakeControl(instances=1)
    scheduler = started(control, journal_path)
    done = scheduler.inject_now("terminate-instance", {"count": 2})
    assert not done.injected and "expected at least 2 in-service instance(s)" in (done.error or "")
    assert done.target == "fleet"
    assert events(journal_path) == [(0, "abort")]
    assert control.args_of("signal_instance") == []


def test_a_failed_apply_is_aborted_and_restored(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=12)
    control.fail_next["set_reserved_concurrency"] = TimeoutError("control API did not answer")
    scheduler = started(control, journal_path)
    done = scheduler.inject_now("throttle-lambda", {"reserved_concurrency": 0}, duration=5)
    assert not done.injected and done.error == "TimeoutError: control API did not answer"
    assert events(journal_path) == [(0, "inject"), (0, "abort"), (0, "rollback")]
    assert control.reserved_concurrency == 12
    scheduler.stop()


def test_a_manual_fault_left_open_by_a_crash_is_restored_from_the_journal(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=7)
    scheduler = started(control, journal_path)
    scheduler.inject_now("throttle-lambda", {"reserved_concurrency": 0})
    # the process dies here (no stop, no rollback_all); a later run restores from the file alone
    (outcome,) = rollback_from_journal(journal_path, LocalBackend(control))
    assert outcome.ok and control.reserved_concurrency == 7
