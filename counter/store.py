"""The store protocol: what the counter needs from a database, and nothing more.

The HTTP contract (``app.py``) talks to a store only through this protocol, so that the local SQLite
store and the DynamoDB store of the AWS tier are interchangeable. It is kept small on purpose: an
idempotent increment, a strongly consistent read, and the ledger of applied increments that the
analysis compares with the client's own history.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class AppliedOp(NamedTuple):
    """One row of the ledger: an increment that the store applied, in the transaction that applied it."""

    key: str  # the idempotency key (``server:<uuid hex>`` when the client sent none)
    name: str  # the counter
    value_after: int  # the counter's value right after this increment
    applied_ns: int  # epoch ns, taken inside the transaction


class Store(Protocol):
    """A counter store. Every implementation applies an increment and its ledger row atomically."""

    def increment(self, name: str, key: str | None) -> tuple[int, bool]:
        """Add 1 to ``name`` unless ``key`` was applied to it before.

        Returns ``(value, applied)``: the value right after this increment and True, or, for a key seen
        before, the value recorded when it was first applied and False (and nothing changes). With
        ``key=None`` the store records a server-generated key, so every application has a ledger row.
        """
        ...

    def read(self, name: str) -> int:
        """The current value of ``name``, strongly consistent; 0 for a counter never incremented."""
        ...

    def applied_ops(self, name: str) -> list[AppliedOp]:
        """Every increment applied to ``name``, in the order of ``value_after``."""
        ...
