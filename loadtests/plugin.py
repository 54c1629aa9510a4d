"""Attaches chaoscheck to Locust through its events: options, user setup, the ledger, the load marker.

Importing this module (the locustfile does) registers listeners on ``locust.events``; nothing here
subclasses Locust's core. The same wiring serves ``chaoscheck run`` (which starts Locust headless
with these options) and a person running ``locust -f loadtests/locustfile.py`` with the web UI.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.runners import MasterRunner

from chaoscheck import runformat
from loadtests.ledger import LedgerRecorder
from loadtests.settings import LoadSettingsError, settings_from_scenario
from loadtests.users import LEDGER_CONTEXT_KEY, WORKER, CounterUser, FleetUser, LambdaUser

log = logging.getLogger("chaoscheck")

FLUSH_INTERVAL_S = 2.0
_USER_CLASSES = {"fleet": FleetUser, "lambda": LambdaUser}


@dataclass
class _State:
    recorder: LedgerRecorder | None = None
    run_dir: Path | None = None
    load: dict[str, Any] = field(default_factory=dict)


state = _State()


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("chaoscheck")
    group.add_argument("--scenario", default="", help="chaoscheck scenario file (its load section is used)")
    group.add_argument("--fleet-url", default="", help="base URL of the fleet's load balancer")
    group.add_argument("--lambda-url", default="", help="base URL of the Lambda function URL")
    group.add_argument("--run-dir", default="", help="run directory (default runs/<time>-locust)")
    group.add_argument("--counter", default="", help="counter name (default: a fresh one)")


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    try:
        settings = settings_from_scenario(
            Path(options.scenario) if options.scenario else None, options.counter or None
        )
    except LoadSettingsError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    CounterUser.settings = settings
    urls = {"fleet": options.fleet_url, "lambda": options.lambda_url}
    chosen = []
    for endpoint, user_class in _USER_CLASSES.items():
        weight = settings.endpoint_weights.get(endpoint, 0.0)
        if weight <= 0 or not urls[endpoint]:
            continue
        user_class.host = urls[endpoint].rstrip("/")
        user_class.weight = max(1, round(weight * 100))
        user_class.network_timeout = settings.timeout
        user_class.connection_timeout = settings.timeout
        chosen.append(user_class)
    if not chosen:
        log.error("chaoscheck: give --fleet-url and/or --lambda-url for an endpoint with a positive weight")
        raise SystemExit(2)
    environment.user_classes[:] = chosen
    if isinstance(environment.runner, MasterRunner):
        return  # only processes that run users record rows
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    state.run_dir = Path(options.run_dir) if options.run_dir else Path("runs") / f"{stamp}-locust"
    state.recorder = LedgerRecorder(state.run_dir / runformat.OPS)
    environment.events.request.add_listener(_on_request)
    gevent.spawn(_flush_periodically)


def _on_request(
    response_time: float, context: dict | None, start_time: float | None = None, **_: Any
) -> None:
    """Append one ledger row. This is the hot path: one dict lookup, a little arithmetic, an append."""
    fields = context.get(LEDGER_CONTEXT_KEY) if context else None
    if fields is None or state.recorder is None:
        return
    op_id, kind, endpoint, counter, status, outcome, value, error, served_by = fields
    start_ns = int((start_time or time.time()) * 1e9)
    end_ns = start_ns + int(response_time * 1e6)
    state.recorder.append(
        (
            op_id,
            kind,
            endpoint,
            counter,
            start_ns,
            end_ns,
            status,
            outcome,
            value,
            error,
            served_by,
            WORKER,
            None,
            0,
            None,
        )
    )


def _flush_periodically() -> None:
    while state.recorder is not None and not state.recorder.closed:
        gevent.sleep(FLUSH_INTERVAL_S)
        if state.recorder is not None:
            state.recorder.flush()


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    counter = CounterUser.settings.counter if CounterUser.settings else None
    state.load = {"started_ns": time.time_ns(), "counter": counter}
    _write_load_marker()


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    if state.load:
        state.load["stopped_ns"] = time.time_ns()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    if state.recorder is not None:
        rows = state.recorder.close()
        state.load["rows"] = rows
    if state.load:
        state.load.setdefault("stopped_ns", time.time_ns())
        state.load["ended_ns"] = time.time_ns()
        _write_load_marker()


def _write_load_marker() -> None:
    """``load.json``: when the load started and stopped, so the orchestrator can time its faults."""
    if state.run_dir is None:
        return
    state.run_dir.mkdir(parents=True, exist_ok=True)
    path = state.run_dir / runformat.LOAD
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state.load, sort_keys=True))
    os.replace(tmp, path)
