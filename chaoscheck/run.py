"""One verification run: scenario in, run directory out.

The orchestrator is the only place where the four parts meet. It starts the target, starts Locust
(which writes the ledger), times the chaos scheduler on Locust's start (which writes the journal),
and when the load ends, or a signal arrives, it rolls every fault back first, then collects the
target's records, and finally hands the run directory to the analysis and the report, which read
files only. The order of the ``finally`` blocks is the safety case: no path out of here leaves a
fault injected or a process running.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from chaos.journal import Journal
from chaos.scenario import Scenario
from chaos.scheduler import FaultScheduler
from chaoscheck import runformat
from chaoscheck.errors import RunInterrupted, UserError
from chaoscheck.final_read import read_final
from chaoscheck.locust_process import LocustProcess
from chaoscheck.targets.local import LocalTarget
from counter.local.client import StackError
from loadtests.ledger import append_rows
from loadtests.settings import fresh_counter_name

QUIET_TIMEOUT_S = 10.0
START_TIMEOUT_S = 60.0


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


def new_run_dir(scenario: Scenario, out: Path | None, runs_dir: Path) -> Path:
    """A fresh, empty run directory (``runs/<UTC time>-<scenario>`` unless ``--out`` names one)."""
    if out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = runs_dir / f"{stamp}-{scenario.name}"
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: the run directory exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def execute(
    scenario: Scenario,
    scenario_file: Path,
    run_dir: Path,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Run ``scenario`` against the local stack into ``run_dir`` and analyse it."""
    _write_text(run_dir / runformat.SCENARIO, yaml.safe_dump(scenario.resolved(), sort_keys=False))
    (run_dir / runformat.FAULTS).touch()
    counter = fresh_counter_name(scenario.name)
    meta: dict[str, Any] = {
        "run_id": run_dir.name,
        "scenario": scenario.name,
        "scenario_file": str(scenario_file),
        "target": "local",
        "counter": counter,
        "started_at": _iso_now(),
        "versions": _versions(),
    }
    interrupted: int | None = None
    target = LocalTarget(scenario.stack, log_path=run_dir / runformat.STACK_LOG, seed=scenario.seed)
    with _signals_raise() as stop_signal:
        try:
            log("starting the local stack")
            target.start()
            endpoints = {
                tier: url
                for tier, url in target.endpoints().items()
                if scenario.load.endpoints.get(tier, 0) > 0
            }
            meta["endpoints"] = endpoints
            _drive(scenario, run_dir, counter, endpoints, target, log)
        except StackError as exc:
            raise UserError(f"the local stack did not start: {str(exc).splitlines()[0]}") from None
        except (KeyboardInterrupt, RunInterrupted):
            interrupted = stop_signal.get("signum", signal.SIGINT)
            log(f"interrupted by signal {interrupted}: faults rolled back, collecting what was recorded")
        finally:
            late: list[int] = []
            with _signals_deferred(late):
                try:
                    if target.stack is not None:
                        _collect(run_dir, counter, meta, target, log)
                finally:
                    target.stop()
            if late and interrupted is None:
                interrupted = late[0]
    meta["ended_at"] = _iso_now()
    meta["aborted"] = interrupted is not None
    _write_text(run_dir / runformat.RUN_META, json.dumps(meta, indent=2, sort_keys=True))
    summary = _analyse(run_dir, log) if (run_dir / runformat.OPS).exists() else None
    return RunResult(run_dir, summary, interrupted)


def _drive(
    scenario: Scenario,
    run_dir: Path,
    counter: str,
    endpoints: dict[str, str],
    target: LocalTarget,
    log: Callable[[str], None],
) -> None:
    """Load and chaos on one timeline; every fault is rolled back before this returns or raises."""
    load = scenario.load
    args = [
        "--headless",
        "--users", str(load.users),
        "--spawn-rate", str(load.spawn_rate),
        "--run-time", f"{math.ceil(load.duration)}s",
        "--stop-timeout", str(math.ceil(load.timeout) + 1),
        "--scenario", str(run_dir / runformat.SCENARIO),
        "--counter", counter,
        "--only-summary",
    ]  # fmt: skip
    for tier, url in endpoints.items():
        args += [f"--{tier}-url", url]
    locust = LocustProcess(run_dir, args)
    scheduler: FaultScheduler | None = None
    try:
        started_ns = locust.wait_started(START_TIMEOUT_S)
        log(f"load started: {load.users} users, {load.duration:g} s, {len(scenario.faults)} faults")
        journal = Journal(run_dir / runformat.FAULTS)
        scheduler = FaultScheduler(scenario.faults, target.chaos_backend(), journal)
        scheduler.start(started_ns)
        locust.wait(timeout=load.duration + load.timeout + START_TIMEOUT_S)
    finally:
        with _signals_deferred():
            if scheduler is not None:
                scheduler.stop()
                scheduler.rollback_all()
            locust.stop()


def _collect(
    run_dir: Path, counter: str, meta: dict[str, Any], target: LocalTarget, log: Callable[[str], None]
) -> None:
    """After the load: let the target go quiet, read the final value, save the target's records."""
    load = _read_json(run_dir / runformat.LOAD)
    meta["load_started_ns"] = load.get("started_ns")
    meta["load_ended_ns"] = load.get("stopped_ns") or load.get("ended_ns")
    if not target.wait_quiet(QUIET_TIMEOUT_S):
        log(f"warning: requests still in flight after {QUIET_TIMEOUT_S:.0f} s; reading anyway")
    ops_path = run_dir / runformat.OPS
    if ops_path.exists():
        rows = read_final(meta.get("endpoints", {}), counter)
        append_rows(ops_path, rows)
    else:
        log(f"warning: Locust wrote no {runformat.OPS}; see {run_dir / runformat.LOCUST_LOG}")
    server_ops = target.server_ops(counter)
    if server_ops is not None:
        _write_parquet(server_ops, run_dir / runformat.SERVER_OPS)
    since = int(meta.get("load_started_ns") or 0) - 2_000_000_000
    timeline = target.timeline(since)
    if timeline is not None:
        _write_parquet(timeline, run_dir / runformat.TIMELINE)


def _analyse(run_dir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from analysis.summary import write_summary
    from reports.html import write_report

    summary = write_summary(run_dir)
    write_report(run_dir)
    log(f"report: {run_dir / runformat.REPORT}")
    return summary


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


def _write_parquet(table: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("chaoscheck", "locust", "pandas", "pyarrow"):
        try:
            found[dist] = version(dist)
        except Exception:  # a missing distribution is not worth failing a run for
            found[dist] = "unknown"
    return found
