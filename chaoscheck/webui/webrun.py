"""One test started from Locust, run as chaoscheck runs it: a ``RunSession`` from start to report.

``begin`` does what ``chaoscheck run`` does before the load (scenario, target, a fresh run directory,
``prepare``, the endpoints) and starts the scenario's faults on the test's clock; ``stop_faults`` rolls
every fault back when the test stops; ``finish`` collects the target's records and writes
``run.json``, ``summary.json`` and ``report.html``. In between, faults can be added by hand
(``inject``) and everything rolled back (``rollback_all``), through the run's one journal.

Nothing here knows Locust: the Locust side (``chaoscheck.webui.runs``) calls these at its events.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chaos.actions import ACTIONS, get_action
from chaos.rollback import RollbackOutcome
from chaos.scenario import Scenario
from chaos.scheduler import ManualInjection
from chaoscheck import active_runs, runformat
from chaoscheck.errors import UserError
from chaoscheck.session import RunSession, new_run_dir, read_json
from chaoscheck.webui.options import RunChoice, start_target

RUNNING, FINISHING, FINISHED, FAILED = "running", "finishing", "finished", "failed"
LOG_FORMAT = "[%(asctime)s] %(levelname)s/%(name)s: %(message)s"


class WebRun:
    """A run directory being filled by a test of the web UI (or a headless Locust without ``chaoscheck
    run``). ``status`` goes running, finishing (load stopped, faults rolled back), finished or failed."""

    def __init__(self, session: RunSession, choice: RunChoice, started_ns: int) -> None:
        self.session = session
        self.choice = choice
        self.started_ns = started_ns
        self.status = RUNNING
        self.aborted = False
        self.verdict: str | None = None
        self.error: str | None = None
        self._log_handler: logging.Handler | None = None
        self._registration: Path | None = None  # the entry that lets ``chaoscheck halt`` find this run

    @classmethod
    def begin(
        cls,
        choice: RunChoice,
        started_ns: int,
        *,
        users: int | None = None,
        spawn_rate: float | None = None,
        run_time: float | None = None,
        log: Callable[[str], None] = print,
    ) -> WebRun:
        """Scenario, target, run directory, ``prepare``, and the faults scheduled from ``started_ns``."""
        scenario = choice.load(users, spawn_rate, run_time)
        target = choice.make_target(scenario)
        start_target(target, choice)
        try:
            choice.endpoints_used(scenario, target)
            run_dir = new_run_dir(scenario.name, None, Path(choice.runs_dir))
            session = RunSession(scenario, choice.scenario, run_dir, target, log)
            session.prepare()
            session.endpoints()
        except BaseException:
            target.stop()
            raise
        run = cls(session, choice, started_ns)
        run._log_to(run_dir / runformat.LOCUST_LOG)
        run._registration = active_runs.register(run_dir)
        session.start_faults(started_ns)
        return run

    # what the load plugin needs ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.session.run_dir.name

    @property
    def run_dir(self) -> Path:
        return self.session.run_dir

    @property
    def scenario(self) -> Scenario:
        return self.session.scenario

    @property
    def stop_timeout_s(self) -> int:
        """Time for users to finish the request in flight when the test stops, as ``chaoscheck run``
        gives Locust: a killed request may have been applied with no ledger row."""
        load = self.scenario.load
        return math.ceil(load.timeout * (load.retries + 1) + 1)

    def load_options(self) -> dict[str, str]:
        """The options the load plugin reads at its ``test_start``: where and what to load."""
        endpoints = self.session.meta.get("endpoints", {})
        return {
            "run_dir": str(self.run_dir),
            "counter": self.session.counter,
            "fleet_url": endpoints.get("fleet", ""),
            "lambda_url": endpoints.get("lambda", ""),
        }

    # faults while the test runs ----------------------------------------------------------------------

    def inject(
        self,
        action: str,
        params: dict[str, Any],
        duration: float | None = None,
        settle: float | None = None,
    ) -> ManualInjection:
        """A fault by hand, now. ``UserError`` when the run cannot take one, ``ValueError`` if it is bad."""
        scheduler = self.session.scheduler
        if scheduler is None:
            raise UserError(f"target {self.session.target.name!r} has no chaos backend: nothing to inject")
        if self.status != RUNNING:
            raise UserError("the test is not running: faults are injected only while it runs")
        if action not in allowed_actions(self.scenario):
            allowed = ", ".join(allowed_actions(self.scenario))
            raise ValueError(f"expected one of the actions this scenario allows ({allowed}), got {action!r}")
        return scheduler.inject_now(action, params, duration=duration, settle=settle)

    def rollback_all(self) -> list[RollbackOutcome]:
        """Every open fault restored, the last injected first; the scenario's timeline stops."""
        scheduler = self.session.scheduler
        return scheduler.rollback_all() if scheduler is not None else []

    def stop_faults(self) -> None:
        """Stop injecting and roll back every open fault. Idempotent."""
        self.session.stop_faults()

    # the end -----------------------------------------------------------------------------------------

    def finish(self) -> None:
        """After the ledger closed: collect the target's records, then ``run.json``, summary, report."""
        try:
            try:
                self.session.collect(read_json(self.run_dir / runformat.LOAD))
            finally:
                self.session.target.stop()
            summary = self.session.finish(aborted=self.aborted)
            self.verdict = summary.get("verdict") if summary else None
            if summary is None:
                self.error = f"no {runformat.OPS} was written: no summary or report"
            self.status = FINISHED
        except Exception as exc:
            self.error = _first_line(exc)
            self.status = FAILED
            raise
        finally:
            if self.session.journal is not None:
                self.session.journal.close()
            if self._registration is not None:
                active_runs.unregister(self._registration)
            self._stop_logging()

    # what the Chaos tab shows ------------------------------------------------------------------------

    def snapshot(self, counts: dict[str, int]) -> dict[str, Any]:
        """The run as plain data for the tab's JSON."""
        journal = self.session.journal
        return {
            "id": self.id,
            "scenario": self.scenario.name,
            "scenario_file": self.choice.scenario or None,
            "target": self.session.target.name,
            "counter": self.session.counter,
            "endpoints": self.session.meta.get("endpoints", {}),
            "started_at": self.session.meta.get("started_at"),
            "status": self.status,
            "aborted": self.aborted,
            "verdict": self.verdict,
            "error": self.error,
            "can_inject": self.session.scheduler is not None and self.status == RUNNING,
            "counts": counts,
            "timeline": self.timeline(),
            "open": [
                {"fault": line["fault_id"], "action": line["action"], "target": line["target"]}
                for line in (journal.open_injections() if journal is not None else [])
            ],
            **self.links(),
        }

    def timeline(self) -> list[dict[str, Any]]:
        """The run's journal, one row per line (the tab's table)."""
        journal = self.session.journal
        entries = journal.entries if journal is not None else []
        return timeline_rows(entries, self.started_ns, len(self.scenario.faults))

    def links(self) -> dict[str, str | None]:
        """Where the tab's report route serves the report and the summary, once they are written."""
        base = f"chaos/runs/{quote(self.id, safe='')}/"
        return {
            name: base + file if (self.run_dir / file).is_file() else None
            for name, file in (("report", runformat.REPORT), ("summary", runformat.SUMMARY))
        }

    def _log_to(self, path: Path) -> None:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.getLogger().addHandler(handler)
        self._log_handler = handler

    def _stop_logging(self) -> None:
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None


def allowed_actions(scenario: Scenario) -> list[str]:
    """The actions the scenario's faults use, or every registered action when it has none."""
    used = list(dict.fromkeys(fault.action for fault in scenario.faults))
    return used or list(ACTIONS)


def action_catalogue(scenario: Scenario) -> list[dict[str, Any]]:
    """The allowed actions with their parameters, from each action's parameter model."""
    catalogue = []
    for name in allowed_actions(scenario):
        spec = get_action(name)
        schema = spec.params.model_json_schema()
        params = []
        for param, field in schema.get("properties", {}).items():
            kind = _json_type(field)
            if kind in ("object", "array", None):
                continue  # target selectors and id lists: the tab acts on the stack's own group/function
            params.append(
                {
                    "name": param,
                    "type": kind,
                    "default": field.get("default"),
                    "minimum": _bound(field, "minimum"),
                    "maximum": _bound(field, "maximum"),
                    "description": field.get("description", ""),
                }
            )
        catalogue.append(
            {
                "name": spec.name,
                "summary": spec.summary.replace("`", ""),
                "lasting": spec.takes_duration,
                "target": spec.target_kind,
                "params": params,
            }
        )
    return catalogue


def _json_type(field: dict[str, Any]) -> str | None:
    """The JSON type of a parameter, looking through ``X | None`` (``anyOf``) and enums."""
    if "type" in field:
        return str(field["type"])
    if "enum" in field or "const" in field:
        return "string"
    kinds = [option.get("type") for option in field.get("anyOf", []) if option.get("type") != "null"]
    if "$ref" in field or any("$ref" in option for option in field.get("anyOf", [])):
        return "object"
    return str(kinds[0]) if len(kinds) == 1 else ("string" if kinds else None)


def _bound(field: dict[str, Any], key: str) -> Any:
    if key in field:
        return field[key]
    for option in field.get("anyOf", []):
        if key in option:
            return option[key]
    return None


def timeline_rows(entries: list[dict[str, Any]], started_ns: int, scheduled: int) -> list[dict[str, Any]]:
    """One row per journal line: when, what, scheduled or by hand, and the line's own details."""
    rows = []
    for entry in entries:
        fault_id = int(entry.get("fault_id", -1))
        rows.append(
            {
                "time": str(entry.get("ts", ""))[11:23],
                "at": round((int(entry.get("ts_ns", started_ns)) - started_ns) / 1e9, 1),
                "event": entry.get("event", ""),
                "fault": fault_id,
                "origin": "manual" if entry.get("manual") or fault_id >= scheduled else "scheduled",
                "action": entry.get("action", ""),
                "target": entry.get("target", ""),
                "details": _details(entry),
            }
        )
    return rows


def _details(entry: dict[str, Any]) -> str:
    event = entry.get("event")
    params = ", ".join(f"{key}={value}" for key, value in (entry.get("params") or {}).items())
    if event == "inject":
        window = float(entry.get("window_s") or 0)
        until = f"window {window:g} s" if window else "until rolled back"
        return "; ".join(part for part in (params, until) if part)
    if event == "rollback":
        result = entry.get("result") or {}
        return ", ".join(f"{key}={value}" for key, value in result.items()) or "restored"
    return str(entry.get("error") or "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
