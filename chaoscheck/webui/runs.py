"""The runs of one Locust process, driven by Locust's events: a new run at every test start, its faults
rolled back at test stop (and when Locust quits), its run directory finished in the background.

Only the process that coordinates the test acts: the local runner, or the master. Workers take the
run's options (run directory, counter, URLs) from the master's spawn message, as Locust sends them.
In orchestrator mode (``chaoscheck run`` gives ``--run-dir``) nothing here is enabled.

Everything runs in Locust's gevent loop: listeners and Flask views are greenlets, and the backend's
blocking calls are sockets that gevent made cooperative.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gevent
from locust.exception import StopTest
from locust.rpc import Message
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner
from locust.util.timespan import parse_timespan

from chaos.scenario import ScenarioError
from chaoscheck.errors import UserError
from chaoscheck.webui.options import RunChoice
from chaoscheck.webui.webrun import FINISHING, RUNNING, WebRun, action_catalogue

log = logging.getLogger("chaoscheck.webui")

LEDGER_GRACE_S = 60.0
"""How long after ``--stop-timeout`` to wait for the load plugin to close the ledger."""
FINISH_TIMEOUT_S = 300.0
"""How long a new start, or Locust quitting, waits for the previous run's report."""
COUNTS = ("ok", "fail", "info", "omitted")
KEEP_PREVIOUS = 20


class Runs:
    """The current run and the earlier ones of this process, for the events and the Chaos tab."""

    def __init__(self) -> None:
        self.enabled = False
        self.environment: Any = None
        self.current: WebRun | None = None
        self.previous: list[WebRun] = []
        self.last_error: str | None = None
        self._finisher: gevent.Greenlet | None = None
        self._run_time: float | None = None
        self._workers: set[str] = set()

    # set-up ------------------------------------------------------------------------------------------

    def enable(self, environment: Any) -> None:
        """Take charge of the runs of this process (called at Locust's ``init``).

        The start form's defaults become the scenario's own load (users, spawn rate, run time) when
        the command line gives none. A headless Locust checks its run now and passes the target's
        URLs on, as the load plugin wants them at ``init`` there.
        """
        self.enabled = True
        self.environment = environment
        options = environment.parsed_options
        try:
            choice = self.choice()
            if options.headless:
                for tier, url in choice.check().items():
                    setattr(options, f"{tier}_url", url)
            load = choice.load().load if choice.scenario else None
        except (UserError, ScenarioError) as exc:
            log.error("%s", str(exc).splitlines()[0])
            raise SystemExit(2) from None
        if load is not None:
            if options.num_users is None:
                options.num_users = load.users
            if options.spawn_rate is None:
                options.spawn_rate = load.spawn_rate
            if not options.run_time:
                options.run_time = math.ceil(load.duration)
        self._run_time = float(options.run_time) if options.run_time else None

    def choice(self, form: dict[str, str] | None = None) -> RunChoice:
        return RunChoice.from_options(self.environment.parsed_options, form)

    def check_start(self, form: dict[str, str]) -> str | None:
        """Before the web UI starts a test: one line saying why it cannot run, or None."""
        runner = self.environment.runner
        if runner is None or runner.state in (STATE_RUNNING, STATE_SPAWNING):
            return None  # a change of users during a test: no new run
        try:
            self.choice(form).check()
        except (UserError, ScenarioError) as exc:
            return str(exc).splitlines()[0]
        except Exception as exc:  # a bug, but the form still gets one line rather than a 500
            log.exception("unexpected error while checking the run")
            return f"unexpected error: {type(exc).__name__}: {str(exc).strip()[:200]}"
        text = (form.get("run_time") or "").strip()
        try:
            self._run_time = float(parse_timespan(text)) if text else None
        except ValueError:
            self._run_time = None  # Locust answers this one itself
        return None

    # Locust's events ---------------------------------------------------------------------------------

    def on_test_start(self, environment: Any) -> None:
        """A new run: the options the load plugin reads next are set here, before it reads them."""
        if not self.enabled or isinstance(environment.runner, WorkerRunner):
            return
        self.wait_finished(FINISH_TIMEOUT_S)  # the previous run's final reads must not see new load
        if self.current is not None:
            self.previous = [self.current, *self.previous][:KEEP_PREVIOUS]
            self.current = None
        options = environment.parsed_options
        if isinstance(environment.runner, MasterRunner):
            self._workers |= set(environment.runner.clients.keys())
        choice = self.choice()
        for name in ("run_dir", "counter", "fleet_url", "lambda_url"):
            setattr(options, name, "")  # never the previous run's: no load without a run of its own
        try:
            run = WebRun.begin(
                choice,
                time.time_ns(),
                users=environment.runner.target_user_count or options.num_users,
                spawn_rate=options.spawn_rate,
                run_time=self._run_time,
                log=lambda message: log.info("%s", message),
            )
        except Exception as exc:
            if not isinstance(exc, UserError | ScenarioError | OSError):
                log.exception("unexpected error while starting the run")
            self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.error("the run could not start: %s", self.last_error)
            if environment.web_ui is None:
                raise SystemExit(2) from None
            raise StopTest(self.last_error) from None  # Locust stops the test, the web UI stays
        self.last_error = None
        self.current = run
        for name, value in run.load_options().items():
            setattr(options, name, value)
        if (environment.stop_timeout or 0) < run.stop_timeout_s:
            # Users killed in the middle of a request leave applied increments without a ledger row.
            environment.stop_timeout = run.stop_timeout_s
        log.info("run %s started: %s against %s", run.id, run.scenario.name, run.choice.target)
        gevent.spawn(self._stop_when_halted, run, environment)

    def halt_current(self, reason: str) -> None:
        """Halt the run in progress, if any (its watcher then stops the load)."""
        run = self.current
        if run is not None and run.status == RUNNING:
            run.session.halt(reason, source="halt")

    def _stop_when_halted(self, run: WebRun, environment: Any) -> None:
        """A stop condition halted the run (faults already rolled back): stop the load as well."""
        while run.status == RUNNING and self.current is run:
            if run.session.halted.is_set():
                log.warning("run %s halted by a stop condition: stopping the load", run.id)
                environment.runner.stop()
                return
            gevent.sleep(0.1)

    def on_test_stop(self, environment: Any) -> None:
        """The load stopped: every fault is rolled back now, the run directory finished in a greenlet
        (the load plugin closes the ledger after this listener)."""
        run = self.current
        if run is None or run.status != RUNNING:
            return
        try:
            run.stop_faults()
        finally:
            run.status = FINISHING
            self._finisher = gevent.spawn(self._finish, run, environment)

    def on_quitting_first(self, environment: Any) -> None:
        """Locust quits (Ctrl-C, SIGTERM, end of a headless run): faults first, then stop the load."""
        self._quit_resting_workers(environment.runner)
        run = self.current
        if run is None or run.status != RUNNING:
            return
        with _sigint_deferred():
            run.aborted = True
            run.stop_faults()
            log.warning("Locust quits during run %s: faults rolled back, finishing it", run.id)
            environment.runner.stop()
            if run.status == RUNNING:  # the runner thought it had nothing to stop
                self.on_test_stop(environment)

    def _quit_resting_workers(self, runner: Any) -> None:
        """A worker that stopped a test rejoins the master only ``--stop-timeout`` later, and the master
        quits only the workers it lists: one quitting in between would be left running. Tell it too."""
        if not isinstance(runner, MasterRunner):
            return
        for worker in sorted(self._workers - set(runner.clients.keys())):
            runner.server.send_to_client(Message("quit", None, worker))

    def on_quitting_last(self, environment: Any) -> None:
        """After the load plugin's own quitting: let the run's report be written before the exit."""
        with _sigint_deferred():
            self.wait_finished(FINISH_TIMEOUT_S)

    def roll_back_at_exit(self) -> None:
        """The last resort at interpreter exit (a path that skipped ``quitting``)."""
        run = self.current
        if run is not None and run.status == RUNNING:
            run.stop_faults()

    def wait_finished(self, timeout: float) -> bool:
        finisher = self._finisher
        if finisher is None or finisher.dead:
            return True
        finisher.join(timeout)
        if not finisher.dead:
            log.error("the run's report is still being written after %.0f s", timeout)
        return finisher.dead

    def _finish(self, run: WebRun, environment: Any) -> None:
        from loadtests import plugin

        timeout = float(environment.stop_timeout or 0) + LEDGER_GRACE_S
        wait_ledger_closed = getattr(plugin, "wait_ledger_closed", None)
        try:
            if wait_ledger_closed is None:
                log.error("loadtests.plugin has no wait_ledger_closed(); collecting without waiting")
            elif not wait_ledger_closed(timeout):
                log.warning("the ledger was not closed within %.0f s; collecting anyway", timeout)
        except Exception:
            log.exception("waiting for the ledger failed; collecting anyway")
        try:
            run.finish()
        except Exception:
            log.exception("run %s could not be finished", run.id)
            return
        verdict = run.verdict or "no verdict"
        report = run.run_dir / "report.html"
        log.info("run %s finished: %s; report %s", run.id, verdict, report)
        if environment.web_ui is None:  # headless: the exit status says the verdict, as chaoscheck run's
            environment.process_exit_code = 0 if run.verdict == "pass" else 1

    # the Chaos tab -----------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        from loadtests import plugin

        live_counts = getattr(plugin, "live_counts", None)
        counted = live_counts() if live_counts is not None else {}
        return {name: int(counted.get(name, 0)) for name in COUNTS}

    def state(self) -> dict[str, Any]:
        """Everything the tab shows, as plain data."""
        run = self.current
        if run is not None:
            scenario = run.scenario
        else:
            try:
                scenario = self.choice().load()
            except (UserError, ScenarioError):
                scenario = RunChoice().load()
        runner = self.environment.runner
        return {
            "runner": runner.state if runner is not None else None,
            "run": run.snapshot(self.counts()) if run is not None else None,
            "actions": action_catalogue(scenario),
            "error": self.last_error,
            "previous": [
                {"id": earlier.id, "status": earlier.status, "verdict": earlier.verdict, **earlier.links()}
                for earlier in self.previous
            ],
        }

    def timeline(self) -> list[dict[str, Any]]:
        return self.current.timeline() if self.current is not None else []

    def run_dir_of(self, run_id: str) -> Path | None:
        """The directory of a run of this process (only those: the report route serves nothing else)."""
        for run in [self.current, *self.previous]:
            if run is not None and run.id == run_id:
                return run.run_dir
        return None

    def inject(self, body: Any) -> tuple[int, dict[str, Any]]:
        """``POST chaos/inject``: ``{"action", "params", "duration"?, "settle"?}`` -> HTTP status, answer."""
        run = self.current
        if run is None:
            return 409, {"ok": False, "error": "no run: start a test first"}
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            return 400, {"ok": False, "error": 'expected a JSON object with "action" and "params"'}
        params = body.get("params") or {}
        if not isinstance(params, dict):
            return 400, {"ok": False, "error": '"params": expected a JSON object'}
        try:
            duration = _seconds(body.get("duration"), "duration")
            settle = _seconds(body.get("settle"), "settle")
            done = run.inject(body["action"], params, duration, settle)
        except UserError as exc:
            return 409, {"ok": False, "error": str(exc)}
        except (ValueError, RuntimeError) as exc:
            return 400 if isinstance(exc, ValueError) else 409, {"ok": False, "error": str(exc)}
        answer = {
            "ok": done.injected,
            "fault": done.fault_id,
            "action": done.action,
            "target": done.target,
            "params": done.params,
            "window_s": done.window_s,
            "error": done.error,
        }
        return (200 if done.injected else 502), answer

    def rollback(self) -> tuple[int, dict[str, Any]]:
        """``POST chaos/rollback``: every open fault of the current run restored."""
        run = self.current
        if run is None:
            return 409, {"ok": False, "error": "no run: start a test first", "outcomes": []}
        outcomes = run.rollback_all()
        answer = [
            {"fault": o.fault_id, "action": o.action, "target": o.target, "ok": o.ok, "error": o.error}
            for o in outcomes
        ]
        return 200, {"ok": all(o.ok for o in outcomes), "outcomes": answer}


def _seconds(value: Any, name: str) -> float | None:
    """A duration from the form: a number, a numeric string, or nothing."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{name}: expected a number of seconds, got {value!r}") from None
    return value


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """While faults are rolled back and the report written, a second Ctrl-C must not cut them short."""
    seen: list[int] = []

    def remember(signum: int, _frame: Any) -> None:
        seen.append(signum)
        log.warning("Ctrl-C again: rolling back and writing the report first")

    try:
        previous = signal.signal(signal.SIGINT, remember)
    except ValueError:  # not the main thread: nothing to defer
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
