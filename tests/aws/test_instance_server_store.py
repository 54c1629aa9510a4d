"""The instance server as EC2 runs it (uvicorn's ``--factory``): the store chosen by the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from awstier import asgi_request

from counter.dynamodb_store import DynamoDBStore
from counter.instance_server import CounterASGI, create_app
from counter.sqlite_store import SQLiteStore


def test_on_ec2_the_table_from_the_environment_is_the_store(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSCHECK_TABLE", table)
    monkeypatch.setenv("CHAOSCHECK_INSTANCE_ID", "i-0123456789abcdef0")
    app = create_app()
    assert isinstance(app, CounterASGI) and isinstance(app.store, DynamoDBStore) and app.tracing is None
    status, headers, body = asgi_request(app, "POST", "/counters/fleet/increment", {"Idempotency-Key": "a"})
    assert (status, body) == (200, {"name": "fleet", "value": 1, "applied": True})
    assert headers["x-served-by"] == "i-0123456789abcdef0" and "x-amzn-trace-id" not in headers
    assert (
        asgi_request(app, "POST", "/counters/fleet/increment", {"Idempotency-Key": "a"})[2]["applied"]
        is False
    )
    assert asgi_request(app, "GET", "/counters/fleet")[2] == {"name": "fleet", "value": 1}
    assert asgi_request(app, "GET", "/health")[:3:2] == (200, {"status": "ok"})


def test_an_explicit_sqlite_file_always_wins(
    table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSCHECK_TABLE", table)
    app = create_app(str(tmp_path / "local.sqlite"))  # the local stack's --db
    assert isinstance(app.store, SQLiteStore)
    assert asgi_request(app, "POST", "/counters/l/increment")[2]["value"] == 1
    assert app.served_by.startswith("instance-")
