"""The AWS backend in the chaos engine: descriptors, the scheduler and journal, rollback after a crash."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from aws_stack import FUNCTION, GROUP, REGION, Stack

from chaos.backends import InjectionError, backend_for
from chaos.backends.aws import AwsBackend
from chaos.journal import Journal, read_journal, redact
from chaos.rollback import rollback_from_journal
from chaos.scenario import parse_scenario
from chaos.scheduler import FaultScheduler
from chaoscheck import runformat

FAKE_KEY_ID = "AKIAFAKEFAKEFAKEFAKE"
FAKE_SECRET = "fakeSecretKeyThatMustNeverBeWrittenAnywhere0"

# descriptors ------------------------------------------------------------------------------------------


def test_the_descriptor_is_plain_data_without_any_secret(counter_stack: Stack) -> None:
    backend = AwsBackend(
        counter_stack.session, group_name=GROUP, function_name=FUNCTION, allow_untagged=True, max_share=0.3,
        seed=5, accounts=["123456789012"], regions=[REGION], parameter_prefix="/team/chaos",
    )  # fmt: skip
    descriptor = backend.descriptor()
    assert descriptor == {
        "region": REGION, "profile": None, "group_name": GROUP, "function_name": FUNCTION,
        "allow_untagged": True, "max_share": 0.3, "parameter_prefix": "/team/chaos",
        "accounts": ["123456789012"], "regions": [REGION], "seed": 5, "instance_wait_s": 180.0,
    }  # fmt: skip
    text = json.dumps(descriptor)
    assert "testing" not in text  # the fake credentials of the environment
    assert redact(descriptor) == descriptor  # nothing the journal would have to hide


def test_the_descriptor_round_trips_through_backend_for(counter_stack: Stack) -> None:
    backend = AwsBackend(counter_stack.session, group_name=GROUP, function_name=FUNCTION, regions=[REGION])
    rebuilt = backend_for("aws", json.loads(json.dumps(backend.descriptor())))
    assert isinstance(rebuilt, AwsBackend)
    assert rebuilt.descriptor() == backend.descriptor()
    injection = backend.inject("throttle-lambda", {"reserved_concurrency": 0})
    rebuilt.rollback("throttle-lambda", injection)  # a fresh session, from the environment
    assert counter_stack.reserved() is None


def test_a_named_profile_is_recorded_by_name_only(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials, config = tmp_path / "no-aws-credentials", tmp_path / "no-aws-config"
    credentials.write_text(
        f"[chaos]\naws_access_key_id = {FAKE_KEY_ID}\naws_secret_access_key = {FAKE_SECRET}\n"
    )
    config.write_text("[profile chaos]\nregion = eu-west-1\n")
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # the profile's region, then
    monkeypatch.delenv("AWS_REGION")
    by_argument = AwsBackend(profile="chaos", group_name=GROUP)
    monkeypatch.setenv("AWS_PROFILE", "chaos")
    by_environment = AwsBackend(group_name=GROUP)
    for backend in (by_argument, by_environment):
        descriptor = backend.descriptor()
        assert descriptor["profile"] == "chaos" and descriptor["region"] == "eu-west-1"
        assert FAKE_SECRET not in json.dumps(descriptor) and FAKE_KEY_ID not in json.dumps(descriptor)
    monkeypatch.delenv("AWS_PROFILE")
    assert backend_for("aws", by_argument.descriptor()).descriptor() == by_argument.descriptor()


def test_a_missing_profile_is_one_line(aws: None) -> None:
    with pytest.raises(
        InjectionError, match=r"^expected an AWS profile named 'gone' in the AWS config, got none$"
    ):
        backend_for("aws", {"profile": "gone", "region": REGION})


# the scheduler and the journal ------------------------------------------------------------------------

SCENARIO = """
version: 1
name: aws-throttle
seed: 3
load: {users: 1, duration: 5s}
faults:
  - {at: 200ms, action: throttle-lambda, reserved_concurrency: 0, duration: 300ms}
  - {at: 100ms, action: lambda-errors, status: 503, percent: 50, duration: 600ms}
"""


def test_the_scheduler_throttles_and_restores_through_the_journal(
    counter_stack: Stack, backend: AwsBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter_stack.client("lambda").put_function_concurrency(
        FunctionName=FUNCTION, ReservedConcurrentExecutions=7
    )
    errors = "/chaoscheck/counter/lambda-errors"
    scenario = parse_scenario(SCENARIO)
    observed: dict[str, tuple[int | None, str | None]] = {}
    real_apply = backend.apply

    def apply(action: str, params: dict, injection: object) -> None:
        real_apply(action, params, injection)  # type: ignore[arg-type]
        observed[action] = (counter_stack.reserved(), counter_stack.parameter(errors))

    monkeypatch.setattr(backend, "apply", apply)
    path = tmp_path / runformat.FAULTS
    with Journal(path) as journal:
        scheduler = FaultScheduler(scenario.faults, backend, journal)
        scheduler.start(time.time_ns())
        assert scheduler.join(10.0), "the timeline did not finish in time"
        scheduler.stop()
        assert scheduler.rollback_all() == []  # everything was already restored on time

    assert observed["lambda-errors"] == (7, '{"percent":50.0,"status":503}')
    assert observed["throttle-lambda"] == (0, '{"percent":50.0,"status":503}')
    assert counter_stack.reserved() == 7 and counter_stack.parameter(errors) is None

    lines = read_journal(path)
    assert [(line["fault_id"], line["event"]) for line in lines] == [
        (1, "inject"), (0, "inject"), (0, "rollback"), (1, "rollback"),
    ]  # fmt: skip
    throttle_inject, throttle_rollback = lines[1], lines[2]
    assert throttle_inject["backend"] == "aws"
    assert throttle_inject["backend_config"] == backend.descriptor()
    assert throttle_inject["target"] == FUNCTION
    assert throttle_inject["params"] == {"reserved_concurrency": 0, "target": {}}
    assert throttle_inject["undo"] == {
        "function": FUNCTION, "reserved_concurrency": 7, "account": "123456789012", "region": REGION,
    }  # fmt: skip
    assert throttle_rollback["result"] == {"reserved_concurrency": 7, "replaced": 0}
    assert lines[3]["result"] == {
        "parameter": errors,
        "value": None,
        "replaced": '{"percent":50.0,"status":503}',
    }


def test_an_abort_is_journaled_and_nothing_changes(counter_stack: Stack, tmp_path: Path) -> None:
    backend = AwsBackend(counter_stack.session, function_name=FUNCTION, accounts=["111111111111"])
    path = tmp_path / runformat.FAULTS
    with Journal(path) as journal:
        scheduler = FaultScheduler(parse_scenario(SCENARIO).faults[:1], backend, journal)
        scheduler.start(time.time_ns())
        assert scheduler.join(10.0)
        scheduler.stop()
    (line,) = read_journal(path)
    assert line["event"] == "abort"
    assert line["error"] == (
        "InjectionError: refused: account 123456789012 is not in the allowed accounts 111111111111"
    )
    assert counter_stack.reserved() is None


# rollback after a crash, from the journal alone --------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("throttle-lambda", {"reserved_concurrency": 0}),
        ("set-capacity", {"desired": 1}),
        ("stop-instance", {"count": 1}),
        ("lambda-latency", {"delay": 0.5, "percent": 10.0}),
    ],
)
def test_a_crashed_run_is_restored_from_the_journal_alone(
    counter_stack: Stack, backend: AwsBackend, tmp_path: Path, action: str, params: dict
) -> None:
    def state() -> tuple:
        ids = counter_stack.in_service()
        return (
            counter_stack.reserved(),
            counter_stack.group_state()["DesiredCapacity"],
            sorted(counter_stack.instance_states(ids).values()),
            counter_stack.parameter("/chaoscheck/counter/lambda-latency"),
        )

    before = state()
    path = tmp_path / runformat.FAULTS
    journal = Journal(path)
    injection = backend.plan(action, params)
    journal.inject(
        0, action, injection.target, params, window_s=30.0, undo=injection.undo, at_s=1.0,
        backend=backend.name, backend_config=backend.descriptor(),
    )  # fmt: skip
    backend.apply(action, params, injection)
    journal.close()  # the runner dies here, the fault in force
    assert state() != before

    (line,) = read_journal(path)
    (outcome,) = rollback_from_journal(path, backend_for(line["backend"], line["backend_config"]))
    assert outcome.ok, outcome.error
    assert state() == before
    assert rollback_from_journal(path, backend_for(line["backend"], line["backend_config"])) == []
    assert [entry["event"] for entry in read_journal(path)] == ["inject", "rollback"]
