"""The contract core without HTTP: ``app.handle`` over a real SQLite store, and the store itself."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from counter.app import handle
from counter.sqlite_store import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "counter.db")


def test_increment_then_replay_changes_nothing(store: SQLiteStore) -> None:
    assert store.increment("a", "k1") == (1, True)
    assert store.increment("a", "k2") == (2, True)
    assert store.increment("a", "k1") == (1, False)
    assert store.read("a") == 2
    assert [(op.key, op.value_after) for op in store.applied_ops("a")] == [("k1", 1), ("k2", 2)]


def test_keys_are_scoped_to_a_counter(store: SQLiteStore) -> None:
    assert store.increment("a", "same") == (1, True)
    assert store.increment("b", "same") == (1, True)


def test_increment_without_key_records_a_server_key(store: SQLiteStore) -> None:
    assert store.increment("a", None) == (1, True)
    assert store.increment("a", None) == (2, True)
    ops = store.applied_ops("a")
    assert len(ops) == 2 and all(op.key.startswith("server:") and len(op.key) == 39 for op in ops)
    assert all(op.applied_ns > 0 and op.name == "a" for op in ops)


def test_new_counter_reads_zero(store: SQLiteStore) -> None:
    assert store.read("never") == 0
    assert store.applied_ops("never") == []


def _hammer(path: str, name: str, start: int, count: int) -> None:
    store = SQLiteStore(path)
    for i in range(start, start + count):
        store.increment(name, f"k{i}")
        store.increment(name, f"k{i}")  # a replay right away: never counted twice


def test_processes_sharing_the_file_never_lose_or_duplicate(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    SQLiteStore(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(path, "c", n * 1000, 200)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    store = SQLiteStore(path)
    ops = store.applied_ops("c")
    assert store.read("c") == 600
    assert [op.value_after for op in ops] == list(range(1, 601))
    assert len({op.key for op in ops}) == 600


def test_handle_contract(store: SQLiteStore) -> None:
    def h(
        method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], object]:
        response = handle(method, path, headers or {}, b"", store, "i-test")
        assert response.headers["X-Served-By"] == "i-test"
        assert response.headers["Content-Type"] == "application/json"
        return response.status, response.headers, json.loads(response.body)

    assert h("GET", "/health")[::2] == (200, {"status": "ok"})
    assert h("GET", "/counters/x")[::2] == (200, {"name": "x", "value": 0})
    assert h("POST", "/counters/x/increment", {"idempotency-key": "a"})[::2] == (
        200,
        {"name": "x", "value": 1, "applied": True},
    )
    assert h("POST", "/counters/x/increment?ignored=1", {"idempotency-key": "a"})[2] == {
        "name": "x",
        "value": 1,
        "applied": False,
    }
    assert h("GET", "/counters/x")[2] == {"name": "x", "value": 1}
    for method, path, headers, status in [
        ("POST", "/counters/bad!name/increment", {}, 400),
        ("POST", "/counters/" + "n" * 65 + "/increment", {}, 400),
        ("GET", "/counters/bad%20name", {}, 400),
        ("POST", "/counters/x/increment", {"idempotency-key": "bad key"}, 400),
        ("POST", "/counters/x/increment", {"idempotency-key": "k" * 129}, 400),
        ("POST", "/counters/x/increment", {"idempotency-key": ""}, 400),
        ("GET", "/nope", {}, 404),
        ("GET", "/counters", {}, 404),
        ("GET", "/counters/x/decrement", {}, 404),
        ("POST", "/health", {}, 405),
        ("GET", "/counters/x/increment", {}, 405),
        ("DELETE", "/counters/x", {}, 405),
    ]:
        got, headers_out, body = h(method, path, headers)
        assert got == status, (method, path, headers)
        assert isinstance(body, dict) and isinstance(body["error"], str)
        if status == 405:
            assert headers_out["Allow"] in ("GET", "POST")
    assert store.read("x") == 1
