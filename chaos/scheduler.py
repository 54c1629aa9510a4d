"""The fault scheduler: injects each fault of a scenario on time and undoes it on time.

One thread walks the scenario's timeline: each fault is injected at ``t0 + at`` and, when it lasts,
rolled back at ``t0 + at + duration``. Times are measured on the monotonic clock, anchored once to the
wall-clock ``t0`` the load started at, so a wall-clock step during the run cannot shift a fault.

Every change goes through the journal first (see ``chaos.journal``): plan, write ``inject``, apply.
A fault whose injection fails is journaled as ``abort``, rolled back if it may have partly happened,
and the other faults go on. ``stop`` and ``rollback_all`` are for the runner's ``finally``: both are
idempotent and safe to call twice or from a signal handler's path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chaos.actions import get_action
from chaos.backends.interface import Backend
from chaos.journal import Journal, error_line
from chaos.rollback import RollbackOutcome, rollback_injection, rollback_open
from chaos.scenario import Fault

log = logging.getLogger(__name__)

_INJECT, _ROLLBACK = "inject", "rollback"


@dataclass(frozen=True, order=True)
class _Step:
    """One thing to do at one time. Orders rollbacks before injections due at the same instant, so a
    fault that starts when another of the same action ends finds the original state to capture."""

    due_ns: int
    order: int  # 0 rollback, 1 inject
    fault_id: int


class FaultScheduler:
    """Injects ``faults`` through ``backend``, journaling every step in ``journal``.

    ``fault_id`` in the journal is each fault's index in ``faults`` (the scenario's order).
    ``lock_timeout_s`` bounds how long ``rollback_all`` waits for an injection in flight before it
    restores anyway: a stuck backend call must not keep the run from cleaning up.
    """

    def __init__(
        self, faults: Sequence[Fault], backend: Backend, journal: Journal, *, lock_timeout_s: float = 30.0
    ) -> None:
        self._faults = list(faults)
        self._backend = backend
        self._journal = journal
        self._lock_timeout_s = lock_timeout_s
        self._lock = threading.RLock()  # held for each whole step, so rollback_all never races an inject
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0_monotonic_ns = 0
        self._inject_lines: dict[int, dict[str, Any]] = {}
        self._steps = sorted(self._timeline())

    def _timeline(self) -> Iterator[_Step]:
        for fault_id, fault in enumerate(self._faults):
            yield _Step(_ns(fault.at), 1, fault_id)
            if fault.duration is not None:
                yield _Step(_ns(fault.at + fault.duration), 0, fault_id)

    # lifecycle ---------------------------------------------------------------------------------------

    def start(self, t0_ns: int) -> None:
        """Start the timeline at ``t0_ns`` (epoch ns when the load started; may be slightly past)."""
        if self._thread is not None:
            raise RuntimeError("the fault scheduler was already started")
        self._t0_monotonic_ns = time.monotonic_ns() - (time.time_ns() - t0_ns)
        self._thread = threading.Thread(target=self._run, name="fault-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Inject nothing more, and wait (bounded) for a step in flight to finish. Idempotent."""
        self._stopped.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("the fault scheduler is still in a backend call after %.1f s", timeout_s)

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait until every step of the timeline has run (or the scheduler stopped); True if so."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    def rollback_all(self) -> list[RollbackOutcome]:
        """Stop injecting, then roll back every open fault, the last injected first.

        Idempotent (a second call finds nothing open and returns ``[]``); never raises for a failed
        undo, which comes back as an outcome with ``error`` and stays open in the journal for
        ``chaoscheck rollback``.
        """
        self._stopped.set()
        with self._holding_lock():
            return rollback_open(self._backend, self._journal)

    # the timeline ------------------------------------------------------------------------------------

    def _run(self) -> None:
        for step in self._steps:
            if not self._wait_until(self._t0_monotonic_ns + step.due_ns):
                return
            with self._holding_lock():
                if self._stopped.is_set():
                    return
                try:
                    if step.order == 1:
                        self._inject(step.fault_id)
                    else:
                        self._rollback(step.fault_id)
                except Exception:  # a bug, not a backend failure (those are handled inside)
                    log.exception("fault %s: unexpected error in the scheduler", step.fault_id)

    def _wait_until(self, due_monotonic_ns: int) -> bool:
        """Sleep until the due time; False if stopped first. Bounded: it only ever waits for ``due``."""
        while True:
            remaining_s = (due_monotonic_ns - time.monotonic_ns()) / 1e9
            if remaining_s <= 0:
                return not self._stopped.is_set()
            if self._stopped.wait(remaining_s):
                return False

    def _inject(self, fault_id: int) -> None:
        fault = self._faults[fault_id]
        params = fault.params()
        try:
            injection = self._backend.plan(fault.action, params)
        except Exception as exc:  # nothing changed yet: record why and go on with the next fault
            self._journal_abort(fault_id, fault, get_action(fault.action).target_kind, params, exc)
            return
        try:
            line = self._journal.inject(
                fault_id,
                fault.action,
                injection.target,
                params,
                window_s=fault.window_s,
                undo=injection.undo,
                at_s=fault.at,
                backend=self._backend.name,
            )
        except Exception as exc:  # never change what could not be recorded first
            log.error(
                "fault %s not injected: the journal could not be written: %s", fault_id, error_line(exc)
            )
            return
        self._inject_lines[fault_id] = line
        try:
            self._backend.apply(fault.action, params, injection)
        except Exception as exc:
            self._journal_abort(fault_id, fault, injection.target, params, exc)
            # The change may have partly happened (a lost response, one of two kills): restore now.
            rollback_injection(self._backend, self._journal, line)

    def _rollback(self, fault_id: int) -> None:
        line = self._inject_lines.get(fault_id)
        if line is not None:
            rollback_injection(self._backend, self._journal, line)

    def _journal_abort(
        self, fault_id: int, fault: Fault, target: str, params: dict[str, Any], exc: Exception
    ) -> None:
        log.warning("fault %s (%s) not injected: %s", fault_id, fault.action, error_line(exc))
        try:
            self._journal.abort(fault_id, fault.action, target, params, error=error_line(exc))
        except Exception as journal_exc:
            log.error("fault %s: the abort could not be journaled: %s", fault_id, error_line(journal_exc))

    @contextmanager
    def _holding_lock(self) -> Iterator[None]:
        acquired = self._lock.acquire(timeout=self._lock_timeout_s)
        if not acquired:
            log.error(
                "a fault step is stuck for %.1f s; going on without waiting for it", self._lock_timeout_s
            )
        try:
            yield
        finally:
            if acquired:
                self._lock.release()


def _ns(seconds: float) -> int:
    return round(seconds * 1_000_000_000)
