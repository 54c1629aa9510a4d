"""A run directory being filled: what every way of running chaoscheck does around the load.

The CLI orchestrator (``chaoscheck.run``, Locust in a child process) and the Locust web UI (the run
driven by Locust's own events) both go through a ``RunSession``: prepare the directory, start the
faults on the load's clock, roll every fault back, collect the target's records and the final
value, then write ``run.json`` and hand the files to the analysis and the report. One code path,
so a web UI run directory is exactly a CLI run directory.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from chaos.journal import Journal
from chaos.scenario import Scenario
from chaos.scheduler import FaultScheduler
from chaos.stop_conditions import Breach, StopMonitor
from chaoscheck import runformat
from chaoscheck.errors import UserError
from chaoscheck.final_read import read_final
from chaoscheck.targets.base import Target
from loadtests.ledger import append_rows
from loadtests.settings import fresh_counter_name

QUIET_TIMEOUT_S = 10.0


def new_run_dir(scenario_name: str, out: Path | None, runs_dir: Path) -> Path:
    """A fresh, empty run directory (``runs/<UTC time>-<scenario>`` unless ``--out`` names one)."""
    if out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = runs_dir / f"{stamp}-{scenario_name}"
        suffix = 1
        while out.exists():
            suffix += 1
            out = runs_dir / f"{stamp}-{scenario_name}-{suffix}"
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out}: the run directory exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


class RunSession:
    """Everything a run does around the load, in the order that keeps it safe."""

    def __init__(
        self,
        scenario: Scenario,
        scenario_file: Path | str,
        run_dir: Path,
        target: Target,
        log: Callable[[str], None] = print,
    ) -> None:
        self.scenario = scenario
        self.run_dir = run_dir
        self.target = target
        self.log = log
        self.counter = fresh_counter_name(scenario.name)
        self.scheduler: FaultScheduler | None = None
        self.journal: Journal | None = None
        self.monitor: StopMonitor | None = None
        self.halted = threading.Event()
        """Set once the run was halted (a stop condition, ``chaoscheck halt``): the load must stop."""
        self._halt_lock = threading.Lock()
        self.meta: dict[str, Any] = {
            "run_id": run_dir.name,
            "scenario": scenario.name,
            "scenario_file": str(scenario_file),
            "target": target.name,
            "counter": self.counter,
            "started_at": iso_now(),
            "versions": _versions(),
        }
        if scenario.faults and not target.has_chaos:
            raise UserError(
                f"{scenario_file}: faults: target {target.name!r} has no chaos backend; "
                "remove the faults or run against --target local"
            )
        alarm_state = getattr(target, "alarm_state", None)
        for i, condition in enumerate(scenario.safety.stop_conditions):
            if condition.alarm is not None and alarm_state is None:
                raise UserError(
                    f"{scenario_file}: safety.stop_conditions[{i}].alarm: expected a target with "
                    f"CloudWatch alarms (aws), got target {target.name!r}; use a metric condition"
                )

    def prepare(self) -> None:
        """Write the resolved scenario and an empty journal: the directory is a run from now on."""
        write_text(
            self.run_dir / runformat.SCENARIO, yaml.safe_dump(self.scenario.resolved(), sort_keys=False)
        )
        (self.run_dir / runformat.FAULTS).touch()

    def endpoints(self) -> dict[str, str]:
        """The target's endpoints that the scenario's load uses."""
        weights = self.scenario.load.endpoints
        chosen = {tier: url for tier, url in self.target.endpoints().items() if weights.get(tier, 0) > 0}
        self.meta["endpoints"] = chosen
        return chosen

    def start_faults(self, load_started_ns: int) -> None:
        """Journal and schedule the scenario's faults on the load's clock."""
        self.journal = Journal(self.run_dir / runformat.FAULTS)
        conditions = self.scenario.safety.stop_conditions
        if conditions:
            self.monitor = StopMonitor(
                conditions,
                self.run_dir / runformat.LIVE_DIR,
                self._on_breach,
                alarm_state=getattr(self.target, "alarm_state", None),
            )
            self.monitor.start()
        backend = self.target.chaos_backend()
        if backend is None:
            return
        self.scheduler = FaultScheduler(self.scenario.faults, backend, self.journal)
        self.scheduler.start(load_started_ns)

    def _on_breach(self, breach: Breach) -> None:
        self.halt(breach.reason, source="stop-condition", detected_ns=breach.detected_ns)

    def halt(self, reason: str, *, source: str, **fields: Any) -> bool:
        """Stop the faults, roll every one back, journal the halt, and tell the load to stop.

        Safe from any thread and more than once: only the first call acts. Returns whether it did.
        """
        with self._halt_lock:
            if self.halted.is_set():
                return False
            self.halted.set()
        self.log(f"halting: {reason}")
        if self.scheduler is not None:
            self.scheduler.stop()
            for outcome in self.scheduler.rollback_all():
                if not outcome.ok:
                    self.log(f"fault {outcome.fault_id} ({outcome.action}) not rolled back: {outcome.error}")
        if self.journal is not None:
            self.journal.halt(reason, source=source, rolled_back_ns=time.time_ns(), **fields)
        return True

    def stop_faults(self) -> None:
        """Stop injecting and roll back every open fault. Idempotent; call it on every way out."""
        if self.monitor is not None:
            self.monitor.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler.rollback_all()

    def collect(self, load: dict[str, Any]) -> None:
        """After the load: let the target go quiet, read the final value, save the target's records."""
        self.meta["load_started_ns"] = load.get("started_ns")
        self.meta["load_ended_ns"] = load.get("stopped_ns") or load.get("ended_ns")
        if not self.target.wait_quiet(QUIET_TIMEOUT_S):
            self.log(f"warning: requests still in flight after {QUIET_TIMEOUT_S:.0f} s; reading anyway")
        ops_path = self.run_dir / runformat.OPS
        if ops_path.exists():
            timeout = self.scenario.load.timeout
            append_rows(ops_path, read_final(self.meta.get("endpoints", {}), self.counter, timeout=timeout))
        else:
            self.log(f"warning: no {runformat.OPS} was written; see {self.run_dir / runformat.LOCUST_LOG}")
        server_ops = self.target.server_ops(self.counter)
        if server_ops is not None:
            write_parquet(server_ops, self.run_dir / runformat.SERVER_OPS)
        since = int(self.meta.get("load_started_ns") or 0) - 2_000_000_000
        timeline = self.target.timeline(since)
        if timeline is not None:
            write_parquet(timeline, self.run_dir / runformat.TIMELINE)
        activities = getattr(self.target, "activities", None)  # optional in the Target protocol
        scaling = activities(since) if activities is not None else None
        if scaling is not None:
            write_parquet(scaling, self.run_dir / runformat.SCALING)

    def finish(self, aborted: bool) -> dict[str, Any] | None:
        """Write ``run.json``, then ``summary.json``, ``junit.xml``, ``summary.md`` and ``report.html``
        (None when there is no ledger)."""
        self.meta["ended_at"] = iso_now()
        self.meta["aborted"] = aborted
        write_text(self.run_dir / runformat.RUN_META, json.dumps(self.meta, indent=2, sort_keys=True))
        if not (self.run_dir / runformat.OPS).exists():
            return None
        from analysis.summary import analyze
        from reports.html import write_report
        from reports.junit import write_junit
        from reports.markdown import write_markdown

        result = analyze(self.run_dir)
        write_junit(self.run_dir, result.summary)
        write_markdown(self.run_dir, result.summary)
        write_report(self.run_dir, result)
        self.log(f"report: {self.run_dir / runformat.REPORT}")
        return result.summary


def write_parquet(table: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("chaoscheck", "locust", "pandas", "pyarrow"):
        try:
            found[dist] = version(dist)
        except Exception:  # a missing distribution is not worth failing a run for
            found[dist] = "unknown"
    return found
