"""The AWS store: one DynamoDB table holding the counters and the ledger of applied idempotency keys.

Items (one table, ``pk`` string hash key, ``sk`` string range key, as ``counter/template.yaml`` makes):

- the counter ``name``: ``pk = "counter#<name>"``, ``sk = "#"``, ``value`` (number);
- each applied key: ``pk = "applied#<name>"``, ``sk = <key>``, ``value_after``, ``applied_ns``,
  ``writer`` (a random id of the call that applied it). Keys are scoped to their counter, as in SQLite.
  One partition per counter holds its ledger, so ``applied_ops`` is one strongly consistent ``Query``;
  the counter item sits in a partition of its own.

The increment is ONE ``TransactWriteItems`` of two actions:

1. ``Put`` of the key item with ``value_after = v + 1``, condition ``attribute_not_exists(pk)``;
2. ``Update`` of the counter item, ``ADD value :one``, condition ``value = :v`` (or, for ``v = 0``,
   ``attribute_not_exists(value) OR value = :zero``).

Why the value condition: DynamoDB transactions return no values, so an unconditional ``ADD`` would
leave us unable to say which value *this* increment produced (a read afterwards may already include
other increments). Conditioning the ``ADD`` on the value ``v`` we expect makes the transaction commit
only if the counter is still ``v`` at its commit, so the counter becomes exactly ``v + 1`` and the key
item, written in the same serializable transaction, records exactly that ``value_after``: the value
and the ledger row are atomic with the increment, as in the SQLite store. It is optimistic concurrency
control:

- ``v`` is first the value this process last saw for the counter (or a strongly consistent read);
- a cancellation whose reason is ``ConditionalCheckFailed`` on the counter item carries its current
  value (``ReturnValuesOnConditionCheckFailure = ALL_OLD``), so the retry needs no extra read;
- ``TransactionConflict`` (another transaction on the same item in flight) or a throttled item is
  retried after a short jittered backoff;
- ``ConditionalCheckFailed`` on the key item means the key was applied before (a replay): nothing
  changed, and the answer is the key item's ``value_after`` (returned with the cancellation, else read
  consistently), with ``applied=False``. If that item carries this call's own ``writer`` id, an earlier
  attempt of this very call committed and only its response was lost (botocore retried it): the answer
  is then ``applied=True``.

Under contention every retry is caused by another increment that committed, so the counter always
makes progress; one call gives up (``StoreContention``, the contract's 500: not applied) after
``max_attempts`` attempts or ``deadline_s`` seconds. Throughput on one hot counter is bounded by one
commit per transaction round trip: DynamoDB's per-item write limit would bound it anyway.

``applied_ns`` is the writing process's clock (epoch ns) just before the transaction is sent.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from counter.store import AppliedOp, Store

TABLE_ENV = "CHAOSCHECK_TABLE"
DB_ENV = "CHAOSCHECK_DB"

COUNTER_PREFIX = "counter#"
APPLIED_PREFIX = "applied#"
COUNTER_SK = "#"

KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]

MAX_ATTEMPTS = 64
DEADLINE_S = 8.0
"""Below the function's timeout (template: 10 s), so a contended call still answers."""

_NAMES = {"#v": "value"}  # ``value`` is a DynamoDB reserved word
_BACK_OFF = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


class StoreContention(RuntimeError):
    """The increment did not commit within its attempts (not applied: a definite failure)."""


def create_table(client: Any, table: str) -> None:
    """Create the store's table as the SAM template does (on-demand), and wait until it exists."""
    client.create_table(
        TableName=table,
        KeySchema=KEY_SCHEMA,
        AttributeDefinitions=ATTRIBUTE_DEFINITIONS,
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def default_client(region: str | None = None) -> Any:
    """A DynamoDB client with bounded timeouts and botocore's standard retries (3 attempts)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("dynamodb", region_name=region, config=config)


class DynamoDBStore:
    """A :class:`counter.store.Store` on one DynamoDB table (see the module docstring for the design).

    Safe to share between threads (boto3 clients are); the cache of last-seen values is only a hint.
    """

    def __init__(
        self,
        table: str,
        client: Any | None = None,
        *,
        region: str | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        deadline_s: float = DEADLINE_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not table:
            raise ValueError("expected a DynamoDB table name, got an empty one")
        if max_attempts < 1:
            raise ValueError(f"expected max_attempts >= 1, got {max_attempts}")
        self.table = table
        self.client = client if client is not None else default_client(region)
        self.max_attempts = max_attempts
        self.deadline_s = deadline_s
        self._sleep = sleep
        self._seen: dict[str, int] = {}
        self.attempts = 0
        """Transactions sent so far (for tests and diagnostics)."""

    # the protocol ------------------------------------------------------------------------------------

    def increment(self, name: str, key: str | None) -> tuple[int, bool]:
        if key is None:
            key = f"server:{uuid.uuid4().hex}"
        writer = uuid.uuid4().hex
        expected = self._seen.get(name)
        deadline = time.monotonic() + self.deadline_s
        attempts = conflicts = 0
        while True:
            if expected is None:
                expected = self.read(name)
            attempts += 1
            self.attempts += 1
            try:
                self.client.transact_write_items(TransactItems=self._actions(name, key, expected, writer))
            except Exception as exc:
                reasons = _cancellation_reasons(exc)
                if reasons is None:
                    self._seen.pop(name, None)
                    raise
                key_reason, counter_reason = [*reasons, {}, {}][:2]
                if key_reason.get("Code") == "ConditionalCheckFailed":
                    return self._replay(name, key, key_reason.get("Item"), writer)
                if counter_reason.get("Code") == "ConditionalCheckFailed":
                    # someone else's increment committed: retry at once with the value it left
                    # (no item: the counter does not exist yet, or the service sent none: read it)
                    item = counter_reason.get("Item")
                    expected = int(item["value"]["N"]) if item and "value" in item else None
                elif any(r.get("Code") in _BACK_OFF for r in reasons):
                    # another transaction on the item is in flight: if it commits, the next attempt's
                    # cancellation brings its value
                    conflicts += 1
                    self._sleep(random.uniform(0, min(0.005 * 2**conflicts, 0.1)))
                else:
                    raise
                if attempts >= self.max_attempts or time.monotonic() > deadline:
                    self._seen.pop(name, None)
                    raise StoreContention(
                        f"increment of {name} did not commit after {attempts} attempts (contention); "
                        "not applied"
                    ) from None
                continue
            self._seen[name] = expected + 1
            return expected + 1, True

    def read(self, name: str) -> int:
        item = self.client.get_item(
            TableName=self.table,
            Key=_counter_key(name),
            ConsistentRead=True,
            ProjectionExpression="#v",
            ExpressionAttributeNames=_NAMES,
        ).get("Item")
        return int(item["value"]["N"]) if item and "value" in item else 0

    def applied_ops(self, name: str) -> list[AppliedOp]:
        ops = []
        for page in self.client.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": APPLIED_PREFIX + name}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                ops.append(
                    AppliedOp(
                        item["sk"]["S"], name, int(item["value_after"]["N"]), int(item["applied_ns"]["N"])
                    )
                )
        ops.sort(key=lambda op: (op.value_after, op.applied_ns))
        return ops

    def close(self) -> None:
        """Nothing to release (the client's pool closes with the process); for symmetry with SQLite."""

    # internals ---------------------------------------------------------------------------------------

    def _actions(self, name: str, key: str, expected: int, writer: str) -> list[dict[str, Any]]:
        condition = "attribute_not_exists(#v) OR #v = :expected" if expected == 0 else "#v = :expected"
        return [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        "pk": {"S": APPLIED_PREFIX + name},
                        "sk": {"S": key},
                        "value_after": {"N": str(expected + 1)},
                        "applied_ns": {"N": str(time.time_ns())},
                        "writer": {"S": writer},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": _counter_key(name),
                    "UpdateExpression": "ADD #v :one",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": _NAMES,
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":expected": {"N": str(expected)}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]

    def _replay(self, name: str, key: str, item: Mapping[str, Any] | None, writer: str) -> tuple[int, bool]:
        if not item or "value_after" not in item:
            item = self.client.get_item(
                TableName=self.table,
                Key={"pk": {"S": APPLIED_PREFIX + name}, "sk": {"S": key}},
                ConsistentRead=True,
            ).get("Item")
        if not item:  # cannot happen: the condition failed because the item exists, and items stay
            raise RuntimeError(f"key {key} of {name} was reported applied but cannot be read back")
        ours = item.get("writer", {}).get("S") == writer
        if ours:
            self._seen[name] = int(item["value_after"]["N"])
        return int(item["value_after"]["N"]), ours


def _counter_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": COUNTER_PREFIX + name}, "sk": {"S": COUNTER_SK}}


def _cancellation_reasons(exc: Exception) -> list[dict[str, Any]] | None:
    """The ``CancellationReasons`` of a ``TransactionCanceledException``, else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    if response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    return list(response.get("CancellationReasons") or [])


def store_from_env(db_path: str | None = None, environ: Mapping[str, str] | None = None) -> Store:
    """The store both servers use, chosen by their environment.

    An explicit SQLite path (``db_path``, the instance server's ``--db``) or ``CHAOSCHECK_DB`` wins, so
    the local stack, which always names its SQLite file, never reaches DynamoDB even if
    ``CHAOSCHECK_TABLE`` leaked into its environment; otherwise ``CHAOSCHECK_TABLE`` names the table
    (the AWS tier). Neither is a ``RuntimeError``.
    """
    env = os.environ if environ is None else environ
    path = db_path or env.get(DB_ENV)
    if path:
        from counter.sqlite_store import SQLiteStore

        return SQLiteStore(path)
    table = env.get(TABLE_ENV)
    if table:
        return DynamoDBStore(table, region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
    raise RuntimeError(
        f"expected {TABLE_ENV} (a DynamoDB table) or {DB_ENV} (a SQLite file) in the environment, got neither"
    )
