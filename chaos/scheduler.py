"""The fault scheduler: injects each fault of a scenario on time and undoes it on time.

One thread walks the scenario's timeline: each fault is injected at ``t0 + at`` and, when it lasts,
rolled back at ``t0 + at + duration``. Times are measured on the monotonic clock, anchored once to the
wall-clock ``t0`` the load started at, so a wall-clock step during the run cannot shift a fault.

Every change goes through the journal first (see ``chaos.journal``): plan, write ``inject``, apply.
A fault whose injection fails is journaled as ``abort``, rolled back if it may have partly happened,
and the other faults go on. ``stop`` and ``rollback_all`` are for the runner's ``finally``: both are
idempotent and safe to call twice or from a signal handler's path.

``inject_now`` adds a fault by hand while the timeline runs (the web UI's Chaos tab): an action name and
its parameters, injected at once through the same plan, journal and apply, its ``inject`` line marked
``"manual": true``, and rolled back after its ``duration`` or by ``rollback_all`` like any other.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chaos.actions import ACTIONS, get_action
from chaos.backends.interface import Backend
from chaos.journal import INJECT, Journal, error_line
from chaos.rollback import RollbackOutcome, rollback_injection, rollback_open
from chaos.scenario import DEFAULT_SETTLE_S, Fault

log = logging.getLogger(__name__)

_INJECT, _ROLLBACK = "inject", "rollback"


@dataclass(frozen=True, order=True)
class _Step:
    """One thing to do at one time. Orders rollbacks before injections due at the same instant, so a
    fault that starts when another of the same action ends finds the original state to capture."""

    due_ns: int
    order: int  # 0 rollback, 1 inject
    fault_id: int


@dataclass(frozen=True)
class ManualInjection:
    """What ``inject_now`` did: the fault is in force (``injected``), or it was aborted (``error``)."""

    fault_id: int
    action: str
    target: str
    params: dict[str, Any]
    window_s: float
    injected: bool
    error: str | None = None


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
        self._stopped = threading.Event()  # the timeline injects nothing more (stop or rollback_all)
        self._closed = threading.Event()  # nothing is injected any more, by hand either (stop)
        self._thread: threading.Thread | None = None
        self._t0_monotonic_ns = 0
        self._inject_lines: dict[int, dict[str, Any]] = {}
        self._steps = sorted(self._timeline())
        self._next_manual_id = len(self._faults)
        self._manual_ids: set[int] = set()
        self._timers: list[threading.Thread] = []

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
        self._closed.set()
        for thread in [self._thread, *self._timers]:
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
        ``chaoscheck rollback``. The scenario's timeline injects nothing after it; ``inject_now``
        still does until ``stop``.
        """
        self._stopped.set()
        with self._holding_lock():
            return rollback_open(self._backend, self._journal)

    # injection by hand -------------------------------------------------------------------------------

    def inject_now(
        self,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        duration: float | None = None,
        settle: float | None = None,
    ) -> ManualInjection:
        """Inject one fault now, outside the scenario's timeline, journaled like the scheduled ones.

        ``params`` are checked by the action's parameter model, strictly, defaults filled in. A lasting
        action (``throttle-lambda``) is rolled back after ``duration`` seconds, or, without one, stays
        in force until ``rollback_all`` (its ``window_s`` is then 0: the window ends at the rollback
        line). A one-shot action (``terminate-instance``) takes no duration; it is observed for
        ``settle`` seconds (default 10). The fault gets the next ``fault_id`` after the scenario's, and
        its ``inject`` line carries ``"manual": true`` and ``at_s``, the seconds since the load started.

        Refused, with nothing journaled or changed: an unknown action, one the backend lacks, bad
        parameters or duration, and a fault on a target that an open fault already holds (its undo
        would capture that fault's effect) raise ``ValueError`` with one line; before ``start`` or
        after ``stop``, ``RuntimeError``. A backend failure is journaled as ``abort`` (and restored
        like a scheduled fault's) and comes back with ``injected`` false and its ``error``.
        """
        spec, checked, window_s = self._manual_fault(action, params, duration, settle)
        with self._holding_lock():
            if self._thread is None:
                raise RuntimeError("the fault scheduler was not started; start it before injecting")
            if self._closed.is_set():
                raise RuntimeError("the fault scheduler has stopped; nothing more is injected")
            holder = self._open_on(spec.target_kind)
            if holder is not None:
                raise ValueError(
                    f"{action}: expected no open fault on the {spec.target_kind}, got fault {holder} "
                    "still in force; roll it back first"
                )
            fault_id = self._next_manual_id
            self._next_manual_id += 1
            self._manual_ids.add(fault_id)
            at_s = round((time.monotonic_ns() - self._t0_monotonic_ns) / 1e9, 6)
            line, error = self._inject_fault(
                fault_id, action, checked, window_s=window_s, at_s=at_s, manual=True
            )
        if line is not None and error is None and duration is not None:
            self._rollback_later(fault_id, time.monotonic_ns() + _ns(duration))
        target = line["target"] if line is not None else spec.target_kind
        return ManualInjection(fault_id, action, target, checked, window_s, error is None, error)

    def _manual_fault(
        self, action: str, params: Mapping[str, Any] | None, duration: float | None, settle: float | None
    ) -> tuple[Any, dict[str, Any], float]:
        """The action, its checked parameters and the fault's window, or ``ValueError`` with one line."""
        if action not in ACTIONS:
            raise ValueError(f"expected one of the actions {', '.join(ACTIONS)}, got {action!r}")
        if action not in self._backend.actions:
            raise ValueError(f"{action}: the {self._backend.name} backend cannot carry out this action")
        spec = get_action(action)
        try:
            checked = spec.params.model_validate(dict(params or {}), strict=True).model_dump(
                mode="json", exclude_none=True
            )  # the same form as a scheduled fault's ``Fault.params()``
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "params"
            raise ValueError(f"{action}: {where}: {first['msg']}, got {first.get('input')!r}") from None
        for name, value in (("duration", duration), ("settle", settle)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                or value <= 0
            ):  # fmt: skip
                raise ValueError(f"{action}: {name}: expected a number of seconds above 0, got {value!r}")
        if spec.takes_duration:
            if settle is not None:
                raise ValueError(
                    f"{action}: settle: expected none, the window of a lasting fault is its duration"
                )
            return spec, checked, float(duration) if duration is not None else 0.0
        if duration is not None:
            raise ValueError(f"{action}: duration: expected none, {action} is one-shot (give settle instead)")
        return spec, checked, float(settle) if settle is not None else DEFAULT_SETTLE_S

    def _open_on(self, target_kind: str) -> int | None:
        """The id of an open fault on ``target_kind`` (whose undo a new fault there would capture)."""
        for line in self._journal.open_injections():
            known = ACTIONS.get(line.get("action", ""))
            if known is not None and known.target_kind == target_kind:
                return int(line["fault_id"])
        return None

    def _rollback_later(self, fault_id: int, due_monotonic_ns: int) -> None:
        def undo_when_due() -> None:
            while (remaining_s := (due_monotonic_ns - time.monotonic_ns()) / 1e9) > 0:
                if self._closed.wait(remaining_s):
                    return  # stopped: rollback_all restores it
            with self._holding_lock():
                if not self._closed.is_set():
                    self._rollback(fault_id)

        timer = threading.Thread(target=undo_when_due, name=f"fault-{fault_id}-rollback", daemon=True)
        self._timers.append(timer)
        timer.start()

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
        kind = get_action(fault.action).target_kind
        holder = self._open_on(kind)
        if holder in self._manual_ids:  # never stack on a fault injected by hand: its undo would be wrong
            message = f"fault {holder}, injected by hand, still holds the {kind}; roll it back first"
            self._journal_abort(fault_id, fault.action, kind, params, message)
            return
        self._inject_fault(fault_id, fault.action, params, window_s=fault.window_s, at_s=fault.at)

    def _inject_fault(
        self,
        fault_id: int,
        action: str,
        params: dict[str, Any],
        *,
        window_s: float,
        at_s: float,
        manual: bool = False,
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Plan, journal, apply. Returns the ``inject`` line (None if none was written) and the error."""
        try:
            injection = self._backend.plan(action, params)
        except Exception as exc:  # nothing changed yet: record why and go on with the next fault
            return None, self._journal_abort(fault_id, action, get_action(action).target_kind, params, exc)
        fields: dict[str, Any] = {"window_s": window_s, "undo": injection.undo, "at_s": at_s}
        try:
            if manual:
                line = self._journal.write(
                    INJECT, fault_id=fault_id, action=action, target=injection.target, params=params,
                    **fields, backend=self._backend.name, manual=True,
                    backend_config=self._backend.descriptor(),
                )  # fmt: skip
            else:
                line = self._journal.inject(
                    fault_id, action, injection.target, params, **fields, backend=self._backend.name,
                    backend_config=self._backend.descriptor(),
                )  # fmt: skip
        except Exception as exc:  # never change what could not be recorded first
            log.error(
                "fault %s not injected: the journal could not be written: %s", fault_id, error_line(exc)
            )
            return None, f"not injected: the journal could not be written: {error_line(exc)}"
        self._inject_lines[fault_id] = line
        try:
            self._backend.apply(action, params, injection)
        except Exception as exc:
            error = self._journal_abort(fault_id, action, injection.target, params, exc)
            # The change may have partly happened (a lost response, one of two kills): restore now.
            rollback_injection(self._backend, self._journal, line)
            return line, error
        return line, None

    def _rollback(self, fault_id: int) -> None:
        line = self._inject_lines.get(fault_id)
        if line is not None:
            rollback_injection(self._backend, self._journal, line)

    def _journal_abort(
        self, fault_id: int, action: str, target: str, params: dict[str, Any], exc: Exception | str
    ) -> str:
        error = exc if isinstance(exc, str) else error_line(exc)
        log.warning("fault %s (%s) not injected: %s", fault_id, action, error)
        try:
            self._journal.abort(fault_id, action, target, params, error=error)
        except Exception as journal_exc:
            log.error("fault %s: the abort could not be journaled: %s", fault_id, error_line(journal_exc))
        return error

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
