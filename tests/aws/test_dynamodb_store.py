"""The DynamoDB store against moto: one conditional transaction per increment, replays, the ledger,
and increments racing from several writers."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import boto3
import pytest
from awstier import REGION
from botocore.exceptions import ClientError

from counter.dynamodb_store import (
    APPLIED_PREFIX,
    DynamoDBStore,
    StoreContention,
    store_from_env,
)
from counter.sqlite_store import SQLiteStore


def test_increments_count_and_a_replay_answers_the_first_value(dynamodb: Any, table: str) -> None:
    store = DynamoDBStore(table, dynamodb)
    assert store.read("c") == 0
    assert store.increment("c", "k1") == (1, True)
    assert store.increment("c", "k2") == (2, True)
    assert store.increment("c", "k1") == (1, False)  # a replay: the first application's value
    assert store.increment("c", "k2") == (2, False)
    assert store.read("c") == 2
    value, applied = store.increment("c", None)  # no key: a server-generated one, still in the ledger
    assert (value, applied) == (3, True)
    ops = store.applied_ops("c")
    assert [(op.key, op.name, op.value_after) for op in ops[:2]] == [("k1", "c", 1), ("k2", "c", 2)]
    assert ops[2].key.startswith("server:") and len(ops[2].key) == len("server:") + 32
    assert all(op.applied_ns > 1_600_000_000 * 10**9 for op in ops)
    assert store.attempts == 5  # one transaction each, replays included (no read was needed)


def test_keys_are_scoped_to_their_counter(dynamodb: Any, table: str) -> None:
    store = DynamoDBStore(table, dynamodb)
    assert store.increment("a", "same") == (1, True)
    assert store.increment("b", "same") == (1, True)
    assert store.increment("b", "other") == (2, True)
    assert [op.key for op in store.applied_ops("a")] == ["same"]
    assert [op.value_after for op in store.applied_ops("b")] == [1, 2]
    assert store.applied_ops("never") == []


def test_each_increment_is_one_transaction_of_a_conditional_put_and_an_add(dynamodb: Any, table: str) -> None:
    sent: list[dict] = []

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            sent.append(kwargs)
            return dynamodb.transact_write_items(**kwargs)

    store = DynamoDBStore(table, Recording())
    store.increment("c", "k1")
    (request,) = sent
    put, update = (item for action in request["TransactItems"] for item in action.values())
    assert put["ConditionExpression"] == "attribute_not_exists(pk)"
    assert put["Item"]["pk"] == {"S": APPLIED_PREFIX + "c"} and put["Item"]["value_after"] == {"N": "1"}
    assert update["UpdateExpression"] == "ADD #v :one"
    assert "#v = :expected" in update["ConditionExpression"]
    assert {put["ReturnValuesOnConditionCheckFailure"], update["ReturnValuesOnConditionCheckFailure"]} == {
        "ALL_OLD"
    }


def test_a_stale_value_is_corrected_from_the_cancellation_and_values_stay_exact(
    dynamodb: Any, table: str
) -> None:
    """Two processes (stores) take turns: each one's cached value is stale every time."""
    one, two = DynamoDBStore(table, dynamodb), DynamoDBStore(table, dynamodb)
    answers = [(one if i % 2 == 0 else two).increment("c", f"k{i}") for i in range(8)]
    assert answers == [(i + 1, True) for i in range(8)]
    assert [op.value_after for op in one.applied_ops("c")] == list(range(1, 9))
    # each store reads once (its first call); after that every call is stale by one and costs exactly
    # one retry, whose value comes with the cancellation: no read
    assert one.attempts + two.attempts == 8 + 6


def test_a_replay_whose_cancellation_carries_no_item_reads_the_key_item(dynamodb: Any, table: str) -> None:
    class NoOldItems:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            try:
                return dynamodb.transact_write_items(**kwargs)
            except ClientError as exc:
                for reason in exc.response.get("CancellationReasons", []):
                    reason.pop("Item", None)
                raise

    store = DynamoDBStore(table, NoOldItems())
    assert store.increment("c", "k1") == (1, True)
    assert DynamoDBStore(table, dynamodb).increment("c", "k2") == (2, True)
    assert store.increment("c", "k3") == (3, True)  # stale cache, no item in the reason: read, retry
    assert store.increment("c", "k1") == (1, False)


def test_a_lost_response_retried_by_botocore_still_answers_applied(dynamodb: Any, table: str) -> None:
    """The first send commits but its answer is lost; botocore sends the same request again, which
    fails on the key item written by this very call: the answer is applied=True, counted once."""

    class LostFirstResponse:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            dynamodb.transact_write_items(**kwargs)  # committed; the response never arrives
            return dynamodb.transact_write_items(**kwargs)  # the retry

    store = DynamoDBStore(table, LostFirstResponse())
    assert store.increment("c", "k1") == (1, True)
    assert store.read("c") == 1
    assert store.increment("c", "k1") == (1, False)  # a later replay by the client is a replay


def _cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


def test_transaction_conflicts_back_off_and_retry(dynamodb: Any, table: str) -> None:
    failures = [_cancelled("None", "TransactionConflict"), _cancelled("TransactionConflict", "None")]
    slept: list[float] = []

    class Conflicting:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            if failures:
                raise failures.pop(0)
            return dynamodb.transact_write_items(**kwargs)

    store = DynamoDBStore(table, Conflicting(), sleep=slept.append)
    assert store.increment("c", "k1") == (1, True)
    assert len(slept) == 2 and all(0 <= s <= 0.1 for s in slept)


def test_endless_contention_gives_up_without_applying(dynamodb: Any, table: str) -> None:
    class AlwaysBeaten:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            raise _cancelled("None", "ConditionalCheckFailed")

    store = DynamoDBStore(table, AlwaysBeaten(), max_attempts=5)
    with pytest.raises(StoreContention, match="after 5 attempts"):
        store.increment("c", "k1")
    assert store.read("c") == 0 and store.applied_ops("c") == []


def test_other_errors_are_raised_as_they_are(dynamodb: Any) -> None:
    store = DynamoDBStore("no-such-table", dynamodb)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        store.increment("c", "k1")


class _AtomicRequests:
    """moto applies a transaction without a lock, so two threads can interleave inside one request
    (DynamoDB never does). Each request is made atomic here; between requests, threads interleave
    freely (with a random pause), which is exactly the concurrency DynamoDB's clients live with."""

    lock = threading.Lock()

    def __init__(self, client: Any, rng: random.Random) -> None:
        self._client = client
        self._rng = rng

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "get_paginator" or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                result = attribute(*args, **kwargs)
            time.sleep(self._rng.random() * 0.002)
            return result

        return call


def test_concurrent_increments_are_each_applied_once_with_distinct_exact_values(table: str) -> None:
    writers, per_writer = 3, 10
    answers: list[tuple[str, int, bool]] = []
    errors: list[BaseException] = []
    stores: list[DynamoDBStore] = []

    def write(i: int) -> None:
        store = DynamoDBStore(
            table, _AtomicRequests(boto3.client("dynamodb", region_name=REGION), random.Random(i))
        )
        stores.append(store)
        try:
            for j in range(per_writer):
                key = f"w{i}-{j}"
                value, applied = store.increment("hot", key)
                answers.append((key, value, applied))
                if j % 3 == 0:  # a client retry of the same key in the middle of the race
                    assert store.increment("hot", key) == (value, False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    total = writers * per_writer
    assert sorted(value for _, value, _ in answers) == list(range(1, total + 1))
    assert all(applied for _, _, applied in answers)
    ledger = DynamoDBStore(table, boto3.client("dynamodb", region_name=REGION)).applied_ops("hot")
    assert [op.value_after for op in ledger] == list(range(1, total + 1))
    assert {op.key: op.value_after for op in ledger} == {key: value for key, value, _ in answers}
    assert sum(store.attempts for store in stores) > total  # they really did race


def test_store_selection_by_environment(tmp_path: Any, table: str) -> None:
    db = str(tmp_path / "c.sqlite")
    chosen = store_from_env(environ={"CHAOSCHECK_TABLE": table, "AWS_REGION": REGION})
    assert isinstance(chosen, DynamoDBStore) and chosen.table == table
    assert chosen.increment("c", "k") == (1, True)
    local = store_from_env(environ={"CHAOSCHECK_DB": db, "CHAOSCHECK_TABLE": table})
    assert isinstance(local, SQLiteStore)  # the local stack names its file: it never reaches DynamoDB
    local.close()
    explicit = store_from_env(db, environ={"CHAOSCHECK_TABLE": table})
    assert isinstance(explicit, SQLiteStore)
    explicit.close()
    with pytest.raises(RuntimeError, match="CHAOSCHECK_TABLE"):
        store_from_env(environ={})
