"""The fault scheduler: on time, write-ahead, errors contained, rollback complete and idempotent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from chaos_fakes import FakeControl

from chaos.backends.local import LocalBackend
from chaos.journal import Journal
from chaos.scenario import Fault, fault_model
from chaos.scheduler import FaultScheduler
from chaoscheck import runformat

TOLERANCE_NS = 100_000_000  # a fault fires within 100 ms of its schedule
MS = 1_000_000


def kill(at: float, count: int = 1, settle: float = 1.0) -> Fault:
    return fault_model("terminate-instance")(at=at, action="terminate-instance", count=count, settle=settle)


def throttle(at: float, duration: float, value: int = 0) -> Fault:
    return fault_model("throttle-lambda")(
        at=at, action="throttle-lambda", duration=duration, reserved_concurrency=value
    )


def events(path: Path) -> list[tuple[int, str]]:
    return [(line["fault_id"], line["event"]) for line in map(json.loads, path.read_text().splitlines())]


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / runformat.FAULTS


def run(faults: list[Fault], control: FakeControl, path: Path, timeout_s: float = 5.0) -> FaultScheduler:
    """Start now, wait for the whole timeline (bounded), stop and roll back like the orchestrator."""
    scheduler = FaultScheduler(faults, LocalBackend(control, seed=1), Journal(path))
    scheduler.start(time.time_ns())
    assert scheduler.join(timeout_s), "the timeline did not finish in time"
    scheduler.stop()
    scheduler.rollback_all()
    return scheduler


def test_faults_fire_within_100_ms_of_their_schedule(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=12)
    faults = [kill(0.2), throttle(0.4, 0.3), kill(0.9), throttle(1.0, 0.2, value=3)]
    t0_ns, t0_monotonic = time.time_ns(), time.monotonic_ns()
    scheduler = FaultScheduler(faults, LocalBackend(control, seed=1), Journal(journal_path))
    scheduler.start(t0_ns)
    assert scheduler.join(5.0)

    def offsets_ms(method: str) -> list[float]:
        return [(t - t0_monotonic) / MS for t in control.times_of(method)]

    kills, sets = offsets_ms("signal_instance"), offsets_ms("set_reserved_concurrency")
    expected_kills, expected_sets = [200, 900], [400, 700, 1000, 1200]
    assert len(kills) == 2 and len(sets) == 4
    for got, want in zip(kills + sets, expected_kills + expected_sets, strict=True):
        assert want - 1 <= got <= want + TOLERANCE_NS / MS, (got, want)
    assert [args[0] for args in control.args_of("set_reserved_concurrency")] == [0, 12, 3, 12]
    assert control.reserved_concurrency == 12
    assert events(journal_path) == [
        (0, "inject"),
        (1, "inject"),
        (1, "rollback"),
        (2, "inject"),
        (3, "inject"),
        (3, "rollback"),
    ]


def test_t0_in_the_past_is_honoured(journal_path: Path) -> None:
    control = FakeControl()
    t0_monotonic = time.monotonic_ns()
    scheduler = FaultScheduler([kill(0.5)], LocalBackend(control), Journal(journal_path))
    scheduler.start(time.time_ns() - 300 * MS)  # the load started 300 ms ago: the kill is due in 200 ms
    assert scheduler.join(5.0)
    (fired,) = control.times_of("signal_instance")
    assert 200 - 1 <= (fired - t0_monotonic) / MS <= 200 + TOLERANCE_NS / MS


def test_the_inject_line_with_its_undo_is_on_disk_before_the_change(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=None)
    seen: list[list[dict]] = []

    def before_change(*_args: object) -> None:
        seen.append([json.loads(line) for line in journal_path.read_text().splitlines()])

    control.on_call["set_reserved_concurrency"] = before_change
    control.on_call["signal_instance"] = before_change
    run([kill(0.0), throttle(0.05, 0.05)], control, journal_path)
    at_kill, at_throttle, at_restore = seen
    assert (
        at_kill[-1]["event"] == "inject" and at_kill[-1]["target"] == control.args_of("signal_instance")[0][0]
    )
    assert at_kill[-1]["undo"] is None and at_kill[-1]["window_s"] == 1.0
    assert at_throttle[-1] | {"event": "inject", "undo": {"reserved_concurrency": None}} == at_throttle[-1]
    assert at_throttle[-1]["window_s"] == 0.05 and at_throttle[-1]["backend"] == "local"
    assert at_restore[-1]["event"] == "inject"  # the rollback line comes after the restore succeeded
    assert events(journal_path)[-1] == (1, "rollback")


def test_rollback_all_is_idempotent(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=12)
    scheduler = FaultScheduler([throttle(0.0, 30.0)], LocalBackend(control), Journal(journal_path))
    scheduler.start(time.time_ns())
    deadline = time.monotonic() + 5
    while control.reserved_concurrency != 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert control.reserved_concurrency == 0
    scheduler.stop()
    scheduler.stop()
    first = scheduler.rollback_all()
    assert [(o.fault_id, o.ok, o.result) for o in first] == [
        (0, True, {"reserved_concurrency": 12, "replaced": 0})
    ]
    assert scheduler.rollback_all() == []
    assert control.reserved_concurrency == 12
    assert events(journal_path) == [(0, "inject"), (0, "rollback")]
    assert len(control.args_of("set_reserved_concurrency")) == 2


def test_rollback_all_undoes_the_last_injected_first(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=12)
    # Two throttles that do not overlap in the schedule, but both are open when the run is stopped.
    scheduler = FaultScheduler(
        [throttle(0.0, 30.0), throttle(0.05, 30.0, value=5)], LocalBackend(control), Journal(journal_path)
    )
    scheduler.start(time.time_ns())
    deadline = time.monotonic() + 5
    while len(control.args_of("set_reserved_concurrency")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    outcomes = scheduler.rollback_all()
    assert [o.fault_id for o in outcomes] == [1, 0]
    assert control.reserved_concurrency == 12


def test_stop_before_the_first_fault_injects_nothing(journal_path: Path) -> None:
    control = FakeControl()
    scheduler = FaultScheduler([kill(0.3)], LocalBackend(control), Journal(journal_path))
    scheduler.start(time.time_ns())
    scheduler.stop()
    assert scheduler.join(1.0)
    time.sleep(0.4)
    assert control.args_of("signal_instance") == [] and journal_path.read_text() == ""
    assert scheduler.rollback_all() == []


def test_rollback_all_without_start_is_harmless(journal_path: Path) -> None:
    scheduler = FaultScheduler([kill(0.3)], LocalBackend(FakeControl()), Journal(journal_path))
    scheduler.stop()
    assert scheduler.rollback_all() == [] and scheduler.join(0.1)


def test_start_twice_is_refused(journal_path: Path) -> None:
    scheduler = FaultScheduler([], LocalBackend(FakeControl()), Journal(journal_path))
    scheduler.start(time.time_ns())
    with pytest.raises(RuntimeError, match="already started"):
        scheduler.start(time.time_ns())


def test_a_failed_apply_is_aborted_rolled_back_and_the_rest_goes_on(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=None)
    control.fail_next["set_reserved_concurrency"] = TimeoutError("control API did not answer\n(after 2 s)")
    run([throttle(0.0, 0.2), kill(0.1)], control, journal_path)
    assert events(journal_path) == [(0, "inject"), (0, "abort"), (0, "rollback"), (1, "inject")]
    abort = json.loads(journal_path.read_text().splitlines()[1])
    assert abort["error"] == "TimeoutError: control API did not answer (after 2 s)"
    assert control.reserved_concurrency is None  # restored exactly, though the change may not have happened
    assert len(control.args_of("signal_instance")) == 1


def test_a_failed_plan_is_an_abort_without_an_inject(journal_path: Path) -> None:
    control = FakeControl(instances=1)
    run([kill(0.0, count=2), throttle(0.05, 0.05)], control, journal_path)
    assert events(journal_path) == [(0, "abort"), (1, "inject"), (1, "rollback")]
    abort = json.loads(journal_path.read_text().splitlines()[0])
    assert abort["target"] == "fleet" and "expected at least 2 in-service instance(s)" in abort["error"]
    assert control.args_of("signal_instance") == []


def test_a_failed_rollback_stays_open_until_one_succeeds(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=7)
    scheduler = FaultScheduler([throttle(0.0, 30.0)], LocalBackend(control), Journal(journal_path))
    scheduler.start(time.time_ns())
    deadline = time.monotonic() + 5
    while control.reserved_concurrency != 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    control.fail_next["set_reserved_concurrency"] = ConnectionError("refused")
    (failed,) = scheduler.rollback_all()
    assert not failed.ok and failed.error == "ConnectionError: refused"
    assert events(journal_path) == [(0, "inject")]
    (retried,) = scheduler.rollback_all()
    assert retried.ok and control.reserved_concurrency == 7
    assert events(journal_path) == [(0, "inject"), (0, "rollback")]


def test_nothing_changes_when_the_journal_cannot_be_written(journal_path: Path, monkeypatch) -> None:
    control = FakeControl()
    journal = Journal(journal_path)

    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal, "inject", full_disk)
    scheduler = FaultScheduler([kill(0.0), throttle(0.0, 0.1)], LocalBackend(control), journal)
    scheduler.start(time.time_ns())
    assert scheduler.join(2.0)
    assert control.args_of("signal_instance") == [] and control.args_of("set_reserved_concurrency") == []


def test_a_throttle_that_starts_when_another_ends_captures_the_original_value(journal_path: Path) -> None:
    control = FakeControl(reserved_concurrency=12)
    run([throttle(0.1, 0.2, value=0), throttle(0.3, 0.2, value=5)], control, journal_path)
    lines = [json.loads(line) for line in journal_path.read_text().splitlines()]
    second_inject = next(line for line in lines if line["event"] == "inject" and line["fault_id"] == 1)
    assert second_inject["undo"] == {"reserved_concurrency": 12}
    assert [args[0] for args in control.args_of("set_reserved_concurrency")] == [0, 12, 5, 12]
