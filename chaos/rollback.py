"""Rollback: restoring the state a fault changed, from the journal, exactly once on record.

The same function serves the live run (the scheduler at the end of a fault, and ``rollback_all`` when
the run stops) and the recovery after a crash (``rollback_from_journal``, behind
``chaoscheck rollback RUN_DIR``): in both cases the journal's ``inject`` line is the source of what to
restore, so a crashed run is undone exactly as a finished one would have been.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.backends.interface import Backend, Injection
from chaos.journal import Journal, error_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RollbackOutcome:
    """What happened to one open fault: restored (``result``) or not (``error``, one line)."""

    fault_id: int
    action: str
    target: str
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def rollback_injection(
    backend: Backend, journal: Journal, inject_line: dict[str, Any]
) -> RollbackOutcome | None:
    """Undo the fault of ``inject_line`` and journal it; ``None`` when it is not open (nothing to do).

    Never raises for a failed undo: the failure comes back as the outcome's ``error`` and the fault
    stays open in the journal, so a later call (or ``chaoscheck rollback``) tries again.
    """
    fault_id, action, target = inject_line["fault_id"], inject_line["action"], inject_line["target"]
    if not journal.is_open(fault_id):
        return None
    written_by = inject_line.get("backend")
    if written_by is not None and written_by != backend.name:
        error = f"expected the {written_by} backend that injected this fault, got {backend.name}"
        return RollbackOutcome(fault_id, action, target, error=error)
    injection = Injection(target=target, undo=inject_line.get("undo"))
    try:
        result = backend.rollback(action, injection)
    except Exception as exc:  # a backend failure is reported, never allowed to stop the other rollbacks
        log.error("rollback of fault %s (%s on %s) failed: %s", fault_id, action, target, error_line(exc))
        return RollbackOutcome(fault_id, action, target, error=error_line(exc))
    try:
        if journal.is_open(fault_id):  # a re-entrant call (signal handler) may have journaled it meanwhile
            journal.rollback(fault_id, action, target, inject_line.get("params", {}), result=result)
    except Exception as exc:  # restored, but the record is missing: a later rollback repeats it harmlessly
        error = f"restored, but the rollback line could not be journaled: {error_line(exc)}"
        log.error("fault %s: %s", fault_id, error)
        return RollbackOutcome(fault_id, action, target, result=result, error=error)
    return RollbackOutcome(fault_id, action, target, result=result)


def rollback_open(backend: Backend, journal: Journal) -> list[RollbackOutcome]:
    """Roll back every open fault of ``journal``, the last injected first."""
    outcomes = [rollback_injection(backend, journal, line) for line in reversed(journal.open_injections())]
    return [outcome for outcome in outcomes if outcome is not None]


def rollback_from_journal(path: str | os.PathLike[str], backend: Backend) -> list[RollbackOutcome]:
    """Restore every fault of the journal at ``path`` that has an ``inject`` without a ``rollback``.

    For a run whose runner died (``kill -9``) with faults in force. Appends the ``rollback`` lines to
    the same journal. Safe to run twice: the second run finds nothing open.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{os.fspath(path)}: no fault journal here")
    with Journal(path) as journal:
        return rollback_open(backend, journal)


def rollback_run(journal_path: str | os.PathLike[str]) -> list[RollbackOutcome]:
    """Restore the open faults of a journal with the backend that wrote them, rebuilt from the journal.

    For ``chaoscheck rollback`` and ``chaoscheck halt``: nothing but the file is needed (each ``inject``
    line holds its backend's ``backend_config``). A backend that cannot be rebuilt comes back as an
    error outcome for each of its faults, which stay open.
    """
    from chaos.backends import backend_for
    from chaos.journal import open_injections as open_lines
    from chaos.journal import read_journal

    if not Path(journal_path).is_file():
        raise FileNotFoundError(f"{os.fspath(journal_path)}: no fault journal here")
    pending = open_lines(read_journal(journal_path))
    if not pending:
        return []
    outcomes: list[RollbackOutcome] = []
    with Journal(journal_path) as journal:
        for line in reversed(pending):
            try:
                backend = backend_for(line.get("backend"), line.get("backend_config"))
            except Exception as exc:
                outcomes.append(
                    RollbackOutcome(line["fault_id"], line["action"], line["target"], error=error_line(exc))
                )
                continue
            outcome = rollback_injection(backend, journal, line)
            if outcome is not None:
                outcomes.append(outcome)
    return outcomes
