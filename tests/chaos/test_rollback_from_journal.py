"""Rolling back from the journal alone, as ``chaoscheck rollback RUN_DIR`` does after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from chaos_fakes import FakeControl, FileControl

from chaos.backends.local import LocalBackend
from chaos.rollback import rollback_from_journal
from chaoscheck import runformat


def _write(path: Path, *entries: dict) -> None:
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))


def _inject(fault_id: int, action: str, target: str, undo: dict | None, **extra: object) -> dict:
    return {
        "ts": "2026-11-28T21:30:12.004211Z", "ts_ns": 1, "fault_id": fault_id, "event": "inject",
        "action": action, "target": target, "params": {}, "window_s": 5.0, "undo": undo, **extra,
    }  # fmt: skip


def _events(path: Path) -> list[tuple[int, str]]:
    return [(line["fault_id"], line["event"]) for line in map(json.loads, path.read_text().splitlines())]


@pytest.mark.parametrize("previous", [None, 12])
def test_an_open_throttle_is_restored_exactly_once(tmp_path: Path, previous: int | None) -> None:
    path = tmp_path / runformat.FAULTS
    _write(
        path,
        _inject(0, "terminate-instance", "i-0002", None, backend="local"),
        _inject(1, "throttle-lambda", "lambda", {"reserved_concurrency": previous}, backend="local"),
    )
    control = FakeControl(reserved_concurrency=0)  # the runner died with the throttle in force
    (outcome,) = rollback_from_journal(path, LocalBackend(control))
    assert outcome.ok and outcome.fault_id == 1 and outcome.action == "throttle-lambda"
    assert control.reserved_concurrency == previous
    assert _events(path) == [(0, "inject"), (1, "inject"), (1, "rollback")]
    assert rollback_from_journal(path, LocalBackend(control)) == []  # the second run finds nothing open
    assert len(control.args_of("set_reserved_concurrency")) == 1


def test_a_rolled_back_or_one_shot_journal_needs_nothing(tmp_path: Path) -> None:
    path = tmp_path / runformat.FAULTS
    rollback = {"ts": "x", "ts_ns": 2, "fault_id": 1, "event": "rollback", "action": "throttle-lambda",
                "target": "lambda", "params": {}, "result": {}}  # fmt: skip
    _write(
        path,
        _inject(0, "terminate-instance", "i-1", None),
        _inject(1, "throttle-lambda", "lambda", {"reserved_concurrency": 3}),
        rollback,
    )
    control = FakeControl()
    assert rollback_from_journal(path, LocalBackend(control)) == []
    assert control.calls == []


def test_a_torn_inject_was_never_applied_and_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / runformat.FAULTS
    path.write_text(json.dumps(_inject(0, "throttle-lambda", "lambda", {"reserved_concurrency": 3}))[:40])
    control = FakeControl()
    assert rollback_from_journal(path, LocalBackend(control)) == []
    assert path.read_text() == ""


def test_a_journal_of_another_backend_is_not_rolled_back_here(tmp_path: Path) -> None:
    path = tmp_path / runformat.FAULTS
    _write(path, _inject(0, "throttle-lambda", "arn:function", {"reserved_concurrency": 3}, backend="aws"))
    control = FakeControl()
    (outcome,) = rollback_from_journal(path, LocalBackend(control))
    assert outcome.error == "expected the aws backend that injected this fault, got local"
    assert control.calls == [] and _events(path) == [(0, "inject")]


def test_a_missing_journal_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no fault journal"):
        rollback_from_journal(tmp_path / runformat.FAULTS, LocalBackend(FakeControl()))


RUNNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from chaos_fakes import FileControl
    from chaos.backends.local import LocalBackend
    from chaos.journal import Journal
    from chaos.scenario import fault_model
    from chaos.scheduler import FaultScheduler

    Throttle = fault_model("throttle-lambda")
    throttle = Throttle(at=0, action="throttle-lambda", duration=60, reserved_concurrency=0)
    backend = LocalBackend(FileControl(Path(sys.argv[1])))
    scheduler = FaultScheduler([throttle], backend, Journal(sys.argv[2]))
    scheduler.start(time.time_ns())
    time.sleep(60)
    """
)


def test_after_kill_9_the_journal_is_enough_to_restore(tmp_path: Path) -> None:
    state_path, journal_path = tmp_path / "stack.json", tmp_path / runformat.FAULTS
    state_path.write_text(json.dumps({"fleet": {"instances": []}, "lambda": {"reserved_concurrency": None}}))
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(state_path), str(journal_path), str(Path(__file__).parent)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if json.loads(state_path.read_text())["lambda"]["reserved_concurrency"] == 0:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the runner never throttled")
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
    assert _events(journal_path) == [(0, "inject")]
    (outcome,) = rollback_from_journal(journal_path, LocalBackend(FileControl(state_path)))
    assert outcome.ok
    assert json.loads(state_path.read_text())["lambda"]["reserved_concurrency"] is None
    assert _events(journal_path) == [(0, "inject"), (0, "rollback")]
