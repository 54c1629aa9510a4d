"""One verification run: scenario in, run directory out.

The orchestrator is the only place where the four parts meet. It starts the target, starts Locust
(which writes the ledger), times the chaos scheduler on Locust's start (which writes the journal),
and when the load ends, or a signal arrives, it rolls every fault back first, then collects the
target's records, and finally hands the run directory to the analysis and the report, which read
files only. The order of the ``finally`` blocks is the safety case: no path out of here leaves a
fault injected or a process running.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.scenario import Scenario
from chaoscheck import active_runs, runformat
from chaoscheck.errors import RunInterrupted, UserError
from chaoscheck.locust_process import LocustProcess
from chaoscheck.session import RunSession, new_run_dir, read_json
from chaoscheck.targets.base import Target
from counter.local.client import StackError

START_TIMEOUT_S = 60.0

__all__ = ["RunResult", "execute", "locust_args", "new_run_dir"]


@dataclass
class RunResult:
    """Where the run went and how it ended."""

    run_dir: Path
    summary: dict[str, Any] | None
    interrupted: int | None = None  # the signal number that stopped the run, if one did

    @property
    def exit_code(self) -> int:
        if self.interrupted is not None:
            return 128 + self.interrupted
        return 0 if self.summary and self.summary.get("verdict") == "pass" else 1


def execute(
    scenario: Scenario,
    scenario_file: Path,
    run_dir: Path,
    target: Target,
    *,
    processes: int = 1,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Run ``scenario`` against ``target`` into ``run_dir`` and analyse it."""
    session = RunSession(scenario, scenario_file, run_dir, target, log)
    session.prepare()
    interrupted: int | None = None
    started = False
    entry = active_runs.register(run_dir)
    with _signals_raise() as stop_signal, _halt_on_request(session):
        try:
            log(f"starting target {target.name}")
            target.start()
            started = True
            _drive(session, processes)
        except StackError as exc:
            raise UserError(f"the local stack did not start: {str(exc).splitlines()[0]}") from None
        except (KeyboardInterrupt, RunInterrupted):
            interrupted = stop_signal.get("signum", signal.SIGINT)
            log(f"interrupted by signal {interrupted}: faults rolled back, collecting what was recorded")
        finally:
            late: list[int] = []
            with _signals_deferred(late):
                try:
                    if started:
                        session.collect(read_json(run_dir / runformat.LOAD))
                finally:
                    target.stop()
            if late and interrupted is None:
                interrupted = late[0]
            active_runs.unregister(entry)
    summary = session.finish(aborted=interrupted is not None)
    return RunResult(run_dir, summary, interrupted)


def locust_args(session: RunSession, processes: int) -> list[str]:
    """The Locust command line for a headless run of the session's scenario."""
    load = session.scenario.load
    args = [
        "--headless",
        "--users", str(load.users),
        "--spawn-rate", str(load.spawn_rate),
        "--run-time", f"{math.ceil(load.duration)}s",
        "--stop-timeout", str(math.ceil(load.timeout * (load.retries + 1) + 1)),
        "--scenario", str(session.run_dir / runformat.SCENARIO),
        "--counter", session.counter,
        "--only-summary",
    ]  # fmt: skip
    if processes > 1:
        args += ["--processes", str(processes)]
    for tier, url in session.endpoints().items():
        args += [f"--{tier}-url", url]
    return args


def _drive(session: RunSession, processes: int) -> None:
    """Load and chaos on one timeline; every fault is rolled back before this returns or raises."""
    load = session.scenario.load
    locust = LocustProcess(session.run_dir, locust_args(session, processes))
    try:
        started_ns = locust.wait_started(START_TIMEOUT_S)
        session.log(
            f"load started: {load.users} users, {load.duration:g} s, {len(session.scenario.faults)} faults"
        )
        session.start_faults(started_ns)
        timeout = load.duration + load.timeout * (load.retries + 1) + START_TIMEOUT_S
        locust.wait(timeout=timeout, until=session.halted)
    finally:
        with _signals_deferred():
            session.stop_faults()
            locust.stop()


@contextmanager
def _halt_on_request(session: RunSession) -> Iterator[None]:
    """``chaoscheck halt`` sends ``SIGUSR1``: halt in a thread (backend calls do not belong in a
    signal handler), which rolls back, journals the halt and makes the load stop."""

    def on_halt(_signum: int, _frame: Any) -> None:
        threading.Thread(
            target=session.halt, args=("halted by chaoscheck halt",), kwargs={"source": "halt"}, daemon=True
        ).start()

    previous = signal.signal(active_runs.HALT_SIGNAL, on_halt)
    try:
        yield
    finally:
        signal.signal(active_runs.HALT_SIGNAL, previous)


@contextmanager
def _signals_raise() -> Iterator[dict[str, int]]:
    """While the run is active, SIGTERM unwinds like Ctrl-C does, through every ``finally``."""
    seen: dict[str, int] = {}

    def on_signal(signum: int, _frame: Any) -> None:
        seen["signum"] = signum
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise RunInterrupted(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _signals_deferred(pending: list[int] | None = None) -> Iterator[list[int]]:
    """During rollback and collection a second Ctrl-C must not cut the cleanup short.

    Signals that arrive meanwhile are remembered; with no ``pending`` list given, the first one is
    raised again once the cleanup is done, so the caller still unwinds.
    """
    reraise = pending is None
    seen: list[int] = [] if pending is None else pending
    previous = {
        sig: signal.signal(sig, lambda signum, _f: seen.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield seen
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if reraise and seen:
            raise KeyboardInterrupt if seen[0] == signal.SIGINT else RunInterrupted(seen[0])
