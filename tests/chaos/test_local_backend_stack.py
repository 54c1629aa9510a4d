"""The local backend against the real local stack: real SIGKILLs, a real throttle, exact restores.

Everything talks to 127.0.0.1 only, and every wait is bounded. Skipped while the local stack's control
client (``counter.local.client``) is not there.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

client = pytest.importorskip("counter.local.client")

from chaos.backends.local import LocalBackend  # noqa: E402
from chaos.journal import Journal  # noqa: E402
from chaos.rollback import rollback_from_journal  # noqa: E402
from chaos.scenario import fault_model  # noqa: E402
from chaos.scheduler import FaultScheduler  # noqa: E402
from chaoscheck import runformat  # noqa: E402
from counter.local.config import FleetConfig, LambdaConfig, StackConfig  # noqa: E402

pytestmark = pytest.mark.slow

WAIT_S = 30.0


def small_stack(reserved_concurrency: int | None) -> StackConfig:
    """Timers scaled down so that a kill is noticed and repaired in a second or two."""
    return StackConfig(
        fleet=FleetConfig(
            desired=2,
            min=1,
            max=4,
            health_interval=0.1,
            health_timeout=0.2,
            unhealthy_threshold=2,
            boot_delay=0.1,
        ),
        lambda_=LambdaConfig(reserved_concurrency=reserved_concurrency, cold_start=0.0),
        sample_interval=0.2,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("stack")
    started = client.LocalStack.start(
        small_stack(reserved_concurrency=None), db_path=workdir / "db.sqlite", log_path=workdir / "stack.log"
    )
    try:
        yield started
    finally:
        started.stop()


def wait_for(control: Any, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        state = control.state()
        if predicate(state):
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {WAIT_S:g} s")
        time.sleep(0.05)


def states(state: dict[str, Any]) -> dict[str, str]:
    return {i["id"]: i["state"] for i in state["fleet"]["instances"]}


def in_service(state: dict[str, Any]) -> set[str]:
    return {i for i, s in states(state).items() if s == "in_service"}


def increment_status(url: str, counter: str) -> int:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("POST", f"/counters/{counter}/increment", body=b"", headers={"Idempotency-Key": "k"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_terminate_instance_kills_one_in_service_instance_and_the_group_replaces_it(stack: Any) -> None:
    control = stack.control
    before = in_service(wait_for(control, lambda s: len(in_service(s)) == 2, "two instances in service"))
    injection = LocalBackend(control, seed=5).inject("terminate-instance", {"count": 1})
    assert injection.target in before and injection.undo is None
    after = wait_for(
        control, lambda s: states(s)[injection.target] != "in_service", "the victim leaves service"
    )
    assert states(after)[injection.target] in {"unhealthy", "terminated"}
    repaired = wait_for(
        control, lambda s: len(in_service(s)) == 2 and injection.target not in in_service(s), "a replacement"
    )
    assert len(in_service(repaired) - before) == 1  # a new instance took the victim's place


@pytest.mark.parametrize("previous", [None, 3])
def test_throttle_lambda_holds_then_restores_the_previous_value_exactly(
    stack: Any, previous: int | None
) -> None:
    control = stack.control
    control.set_reserved_concurrency(previous)
    backend = LocalBackend(control)
    injection = backend.inject("throttle-lambda", {"reserved_concurrency": 0})
    assert injection.undo == {"reserved_concurrency": previous}
    assert control.state()["lambda"]["reserved_concurrency"] == 0
    assert increment_status(stack.lambda_url, f"throttled-{previous}") == 429
    backend.rollback("throttle-lambda", injection)
    assert control.state()["lambda"]["reserved_concurrency"] == previous
    backend.rollback("throttle-lambda", injection)  # twice is harmless
    assert control.state()["lambda"]["reserved_concurrency"] == previous
    assert increment_status(stack.lambda_url, f"restored-{previous}") == 200


def test_the_scheduler_runs_a_timeline_against_the_stack(stack: Any, tmp_path: Path) -> None:
    control = stack.control
    control.set_reserved_concurrency(None)
    wait_for(control, lambda s: len(in_service(s)) == 2, "two instances in service")
    kill = fault_model("terminate-instance")(at=0.2, action="terminate-instance", settle=1.0)
    throttle = fault_model("throttle-lambda")(at=0.4, action="throttle-lambda", duration=0.6)
    path = tmp_path / runformat.FAULTS
    scheduler = FaultScheduler([kill, throttle], LocalBackend(control, seed=1), Journal(path))
    scheduler.start(time.time_ns())
    try:
        assert scheduler.join(WAIT_S)
    finally:
        scheduler.stop()
        assert scheduler.rollback_all() == []  # the timeline already rolled the throttle back
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["fault_id"], line["event"]) for line in lines] == [
        (0, "inject"),
        (1, "inject"),
        (1, "rollback"),
    ]
    assert lines[1]["undo"] == {"reserved_concurrency": None}
    assert control.state()["lambda"]["reserved_concurrency"] is None


def test_a_crashed_run_is_restored_from_its_journal(stack: Any, tmp_path: Path) -> None:
    control = stack.control
    control.set_reserved_concurrency(3)
    path = tmp_path / runformat.FAULTS
    throttle = fault_model("throttle-lambda")(at=0, action="throttle-lambda", duration=60)
    scheduler = FaultScheduler([throttle], LocalBackend(control), Journal(path))
    scheduler.start(time.time_ns())
    wait_for(control, lambda s: s["lambda"]["reserved_concurrency"] == 0, "the throttle")
    scheduler.stop()  # the runner "dies" here: no rollback_all
    (outcome,) = rollback_from_journal(path, LocalBackend(control))
    assert outcome.ok and control.state()["lambda"]["reserved_concurrency"] == 3
    assert rollback_from_journal(path, LocalBackend(control)) == []
    control.set_reserved_concurrency(None)
