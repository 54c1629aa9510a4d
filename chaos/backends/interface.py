"""The interface every backend implements, whatever it drives (the local stack now, AWS later).

An injection is split in two steps so that it can be journaled write-ahead: ``plan`` reads the
current state, chooses the target and captures what rollback will need, without changing anything;
``apply`` makes the change. The caller writes the plan to the journal in between, so a crash at any
moment leaves enough on disk to restore the prior state. ``inject`` does both for callers that keep no
journal. ``rollback`` restores the captured state and must be idempotent: it may be called again after
a crash, from a ``finally`` and from a signal handler.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar


class InjectionError(Exception):
    """A fault that cannot be carried out as asked (no instance in service, unsupported action...).

    Its message is one line meant for the journal and the user, never a traceback.
    """


@dataclass(frozen=True)
class Injection:
    """What an injection hit and how to undo it.

    ``target`` is what the fault acts on in backend terms: instance ids joined by commas for a kill,
    the function for a throttle. ``undo`` is the state to restore, captured before the change, as plain
    JSON-able data; ``None`` when there is nothing to undo (a one-shot fault that the system repairs).
    """

    target: str
    undo: dict[str, Any] | None


class Backend(ABC):
    """Carries out the registered actions against one kind of target."""

    name: ClassVar[str]
    """Short name written in the journal, so a journal is rolled back by the backend that wrote it."""

    actions: ClassVar[frozenset[str]]
    """Names of the registered actions this backend implements."""

    @abstractmethod
    def plan(self, action: str, params: dict[str, Any]) -> Injection:
        """Choose the target and capture the state to restore, changing nothing."""

    @abstractmethod
    def apply(self, action: str, params: dict[str, Any], injection: Injection) -> None:
        """Make the change that ``plan`` prepared."""

    @abstractmethod
    def rollback(self, action: str, injection: Injection) -> dict[str, Any]:
        """Restore ``injection.undo``; safe to repeat. Returns what was done, for the journal."""

    def descriptor(self) -> dict[str, Any]:
        """How to reach this backend's target again after a crash, as plain JSON-able data.

        Written into every ``inject`` line of the journal (``backend_config``) so that ``chaoscheck
        rollback RUN_DIR`` can rebuild the backend with ``chaos.backends.backend_for``. Never a
        credential: names, regions, a profile name or a state file path only.
        """
        return {}

    def inject(self, action: str, params: dict[str, Any]) -> Injection:
        """Plan and apply in one call, for callers that keep no journal."""
        injection = self.plan(action, params)
        self.apply(action, params, injection)
        return injection
