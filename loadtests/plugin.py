"""Attaches chaoscheck to Locust through its events: options, user setup, the ledger, the load marker.

Importing this module (the locustfile does) registers listeners on ``locust.events``; nothing here
subclasses Locust's core. The same wiring serves ``chaoscheck run`` (Locust headless with these
options), a person at the web UI, and distributed runs (``--processes N``, ``--master``/``--worker``).

Where rows go:
- a single process (local runner) appends every request to the row sink and streams the sink to
  ``ops.parquet`` every two seconds;
- a worker ships its sink to the master inside each stats report (every 3 s), and the rest in a
  message sent when its users have stopped, before it tells the master it stopped;
- the master writes what its workers ship, and closes the ledger when the test has stopped and
  every worker has sent its last rows.

Headless ``--run-time`` is taken over so that a run ends gracefully: Locust's own timer would quit
the master 0.5 s after telling workers to stop, before their last rows arrive. Here the test is
stopped first (users finish their current operation, within ``--stop-timeout``), the ledger is
closed, and only then does Locust quit.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import gevent.event
from locust import events
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from chaoscheck import runformat
from loadtests.ledger import LedgerRecorder, rows_to_table
from loadtests.live import WRITE_INTERVAL_S, LiveWindow
from loadtests.schedule import DueTimes, Schedule
from loadtests.settings import LoadSettings, LoadSettingsError, fresh_counter_name, settings_from_scenario
from loadtests.sink import sink
from loadtests.users import LEDGER_CONTEXT_KEY, USER_CLASSES, CounterUser

log = logging.getLogger("chaoscheck")

FLUSH_INTERVAL_S = 2.0
ROWS_KEY = "chaoscheck_rows"
FINAL_ROWS_MESSAGE = "chaoscheck_final_rows"
TOTAL_USERS_OPTION = "chaoscheck_total_users"
LIVE_INTERVAL_S = WRITE_INTERVAL_S
HTTP_CLIENT_ENV = "CHAOSCHECK_HTTP_CLIENT"
"""``fasthttp`` makes the users send through Locust's FastHttpSession even for http:// targets."""


@dataclass
class _State:
    environment: Any = None
    recorder: LedgerRecorder | None = None
    run_dir: Path | None = None
    load: dict[str, Any] = field(default_factory=dict)
    closed: gevent.event.Event = field(default_factory=gevent.event.Event)
    run_time: float | None = None
    workers_seen: set[str] = field(default_factory=set)
    workers_done: set[str] = field(default_factory=set)
    live: Any = None  # the greenlet writing live/<worker>.json, when the scenario has stop conditions


state = _State()


# -- options and start-up ---------------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    parser.add_argument("--scenario", default="", help="chaoscheck scenario file (its load section is used)")
    parser.add_argument("--fleet-url", default="", help="base URL of the fleet's load balancer")
    parser.add_argument("--lambda-url", default="", help="base URL of the Lambda function URL")
    parser.add_argument("--run-dir", default="", help="run directory (default runs/<time>-<scenario>)")
    parser.add_argument("--counter", default="", help="counter name (default: a fresh one)")
    parser.add_argument(
        "--no-ledger", action="store_true", default=False, include_in_web_ui=False,
        help="do not record operations (only to measure the recorder's own cost)",
    )  # fmt: skip


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    state.environment = environment
    options = environment.parsed_options
    if options is None:
        return
    try:  # fail before anything starts, with one line
        settings = settings_from_scenario(
            Path(options.scenario) if options.scenario else None, options.counter or None
        )
    except LoadSettingsError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    # The set of user classes must be the same in every process of a distributed run (the master
    # dispatches them by name), so it is fixed here, from the command line, not at test start.
    urls = {"fleet": options.fleet_url, "lambda": options.lambda_url}
    chosen = [
        user_class
        for endpoint, user_class in USER_CLASSES.items()
        if settings.endpoint_weights.get(endpoint, 0.0) > 0 and (urls[endpoint] or not options.headless)
    ]
    if not chosen:
        log.error("chaoscheck: give --fleet-url and/or --lambda-url for an endpoint with a positive weight")
        raise SystemExit(2)
    for user_class in chosen:
        user_class.weight = max(1, round(settings.endpoint_weights[user_class.endpoint] * 100))
    environment.user_classes[:] = chosen
    if options.headless and not isinstance(environment.runner, WorkerRunner) and options.run_time:
        state.run_time, options.run_time = options.run_time, None
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(FINAL_ROWS_MESSAGE, _on_final_rows)
    elif not options.no_ledger:
        environment.events.request.add_listener(_on_request)
    sink.enabled = not options.no_ledger
    if not options.no_ledger:
        # The first conversion of strings to Arrow imports pandas (~200 ms): pay it now, not in
        # the first flush, where it would freeze every user once mid-run.
        rows_to_table([(None, "read", "fleet", "c", 0, 0, 200, "ok", 0, None, None, "w", None, 0, None)])


# -- every process: configure the users for the test that starts ------------------------------------


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    runner = environment.runner
    if options is None:
        return
    coordinating = not isinstance(runner, WorkerRunner)
    if coordinating and not options.counter:
        options.counter = fresh_counter_name(_scenario_name(options.scenario))
    try:
        settings = settings_from_scenario(
            Path(options.scenario) if options.scenario else None, options.counter
        )
    except LoadSettingsError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    if coordinating:
        setattr(options, TOTAL_USERS_OPTION, runner.target_user_count or options.num_users or 1)
    _configure_users(environment, settings, {"fleet": options.fleet_url, "lambda": options.lambda_url})
    sink.identify()
    sink.reset()
    # Everything alive now (modules, Locust, gevent) lives as long as the process: keep it out of
    # the garbage collector's full passes, which the ledger's buffered rows otherwise make costly.
    gc.freeze()
    _start_live_window(environment, settings)
    if not coordinating:
        return
    state.closed.clear()
    state.workers_seen, state.workers_done = set(), set()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    default = Path("runs") / f"{stamp}-{_scenario_name(options.scenario)}"
    state.run_dir = Path(options.run_dir) if options.run_dir else default
    state.recorder = None if options.no_ledger else LedgerRecorder(state.run_dir / runformat.OPS)
    state.load = {"started_ns": time.time_ns(), "counter": settings.counter}
    _write_load_marker()
    if isinstance(runner, MasterRunner):
        state.workers_seen = {client.id for client in runner.clients.values()}
    else:
        gevent.spawn(_flush_periodically, state.recorder)
    if state.run_time:
        gevent.spawn_later(state.run_time, _finish_headless_run, environment)


def _start_live_window(environment: Any, settings: LoadSettings) -> None:
    """In every process whose users make rows, keep ``live/<worker>.json`` for the stop conditions."""
    if state.live is not None:
        state.live.kill(block=False)
        state.live = None
    sink.observer = None
    run_dir = environment.parsed_options.run_dir
    if not settings.live_window or not run_dir or isinstance(environment.runner, MasterRunner):
        return
    name = sink.worker.replace(":", "-").replace("/", "-")
    window = LiveWindow(Path(run_dir) / runformat.LIVE_DIR / f"{name}.json", sink.worker)
    sink.observer = window.observe

    def keep_writing() -> None:
        while True:
            sink.observe()
            try:
                window.write()
            except OSError as exc:  # a full disk must not stop the load; the ledger says more
                log.warning("chaoscheck: live window not written: %s", exc)
            gevent.sleep(LIVE_INTERVAL_S)

    state.live = gevent.spawn(keep_writing)


def _configure_users(environment: Any, settings: LoadSettings, urls: dict[str, str]) -> None:
    """Hosts, timeouts and the open model's schedules of the user classes chosen at init."""
    CounterUser.settings = settings
    now = time.time_ns()
    for user_class in environment.user_classes:
        endpoint = user_class.endpoint
        if not urls.get(endpoint):
            log.error("chaoscheck: no URL for the %s endpoint (--%s-url)", endpoint, endpoint)
            raise SystemExit(2)
        user_class.host = urls[endpoint].rstrip("/")
        user_class.network_timeout = settings.timeout
        user_class.connection_timeout = settings.timeout
        user_class.lean_http = os.environ.get(HTTP_CLIENT_ENV, "wire") != "fasthttp"
        user_class.schedule = None
        if settings.rate is not None:
            part = settings.endpoint_share(endpoint)
            due = DueTimes(settings.rate, share=lambda part=part: part * _process_share(environment))
            user_class.schedule = Schedule(due, now, settings.max_lag)


def _process_share(environment: Any) -> float:
    """This process's part of the total rate: its users over all users (1 in a single process)."""
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        return 1.0
    total = getattr(environment.parsed_options, TOTAL_USERS_OPTION, None) or runner.target_user_count or 1
    return min(1.0, (runner.target_user_count or 0) / total)


def _scenario_name(path: str) -> str:
    if not path:
        return "locust"
    try:
        import yaml

        data = yaml.safe_load(Path(path).read_text())
        return str(data.get("name") or Path(path).stem) if isinstance(data, dict) else Path(path).stem
    except (OSError, ValueError):
        return Path(path).stem


# -- the hot path -----------------------------------------------------------------------------------


def _on_request(
    response_time: float, context: dict | None, start_time: float | None = None, **_: Any
) -> None:
    """Append one ledger row: one dict lookup, a little arithmetic, an append."""
    fields = context.get(LEDGER_CONTEXT_KEY) if context else None
    if fields is None:
        return
    op_id, kind, endpoint, counter, status, outcome, value, error, served_by, intended, attempt, trace = (
        fields
    )
    start_ns = int((start_time or time.time()) * 1e9)
    sink.append(
        (op_id, kind, endpoint, counter, start_ns, start_ns + int(response_time * 1e6), status, outcome,
         value, error, served_by, sink.worker, intended, attempt, trace),
        outcome,
    )  # fmt: skip


def _flush_periodically(recorder: LedgerRecorder | None) -> None:
    """Single process: stream the sink to the ledger file in row groups."""
    while recorder is not None and not recorder.closed:
        gevent.sleep(FLUSH_INTERVAL_S)
        if not recorder.closed:
            recorder.rows.extend(sink.take())
            recorder.flush()


# -- distributed: workers ship, the master writes ---------------------------------------------------


@events.report_to_master.add_listener
def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    data[ROWS_KEY] = sink.take()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    rows = data.get(ROWS_KEY)
    if rows:
        state.workers_seen.add(client_id)
        _receive(rows)


def _on_final_rows(environment: Any, msg: Any, **_: Any) -> None:
    client_id = msg.data.get("client_id", msg.node_id)
    state.workers_seen.add(client_id)
    _receive(msg.data.get("rows") or [])
    state.workers_done.add(client_id)


def _receive(rows: list) -> None:
    if state.recorder is None or state.recorder.closed:
        return
    for row in rows:
        outcome = "omitted" if row[1] == "omitted" else row[7]
        sink.counts[outcome] = sink.counts.get(outcome, 0) + 1
    state.recorder.rows.extend(tuple(row) for row in rows)
    if len(state.recorder.rows) >= 50_000:
        state.recorder.flush()


# -- the end of a test ------------------------------------------------------------------------------


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_: Any) -> None:
    if state.load and "stopped_ns" not in state.load:
        state.load["stopped_ns"] = time.time_ns()


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if state.live is not None:
        state.live.kill(block=False)
        state.live = None
    if isinstance(runner, WorkerRunner):
        runner.send_message(FINAL_ROWS_MESSAGE, {"rows": sink.take(), "client_id": runner.client_id})
        return
    if isinstance(runner, MasterRunner):
        gevent.spawn(_close_when_workers_done, environment)
    else:
        _close_ledger()


def _close_when_workers_done(environment: Any) -> None:
    """The master's last rows come with each worker's final message; wait for them, bounded."""
    deadline = time.monotonic() + (environment.stop_timeout or 0) + 30
    while time.monotonic() < deadline and not state.workers_seen <= state.workers_done:
        gevent.sleep(0.05)
    missing = state.workers_seen - state.workers_done
    if missing:
        log.warning("chaoscheck: no final rows from %d worker(s); the ledger may be incomplete", len(missing))
        state.load["incomplete_workers"] = sorted(missing)
    _close_ledger()


def _close_ledger() -> None:
    if state.recorder is not None and not state.recorder.closed:
        state.recorder.rows.extend(sink.take())
        state.load["rows"] = state.recorder.close()
    if state.load:
        state.load.setdefault("stopped_ns", time.time_ns())
        state.load["ended_ns"] = time.time_ns()
        _write_load_marker()
    state.closed.set()


def _finish_headless_run(environment: Any) -> None:
    """``--run-time`` reached: stop the users, wait for the ledger, then quit.

    A stopped worker is forgotten by the master until it reports ready again (after sleeping
    ``--stop-timeout``), so the master's quit would not reach it; it is told to quit directly.
    """
    log.info("chaoscheck: run time reached, stopping the users")
    runner = environment.runner
    runner.stop()
    wait_ledger_closed((environment.stop_timeout or 0) + 60)
    if isinstance(runner, MasterRunner):
        for client_id in state.workers_seen - set(runner.clients.keys()):
            runner.server.send_to_client(Message("quit", None, client_id))
    runner.quit()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        _close_ledger()


def wait_ledger_closed(timeout: float) -> bool:
    """Block (cooperatively) until the current test's ledger and ``load.json`` are complete."""
    return bool(state.closed.wait(timeout))


def live_counts() -> dict[str, int]:
    """Operations recorded so far in the current test, by outcome (and ``omitted``)."""
    return dict(sink.counts)


def _write_load_marker() -> None:
    """``load.json``: when the load started and stopped, so the orchestrator can time its faults."""
    if state.run_dir is None:
        return
    state.run_dir.mkdir(parents=True, exist_ok=True)
    path = state.run_dir / runformat.LOAD
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state.load, sort_keys=True))
    os.replace(tmp, path)
