"""The Lambda handler with function URL and HTTP API (payload 2.0) events against a moto table, and the
chaos fault parameters that the AWS backend writes."""

from __future__ import annotations

import base64
import importlib
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from awstier import REGION, Context, http_api_event

from chaos.backends.aws import AwsBackend
from counter.dynamodb_store import DynamoDBStore
from counter.fault_setting import FaultSetting


@pytest.fixture
def handler_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``counter.lambda_handler`` freshly imported: its module code is a cold start, which opens the
    store the environment names (here a throwaway SQLite file)."""
    monkeypatch.setenv("CHAOSCHECK_DB", str(tmp_path / "cold.sqlite"))
    sys.modules.pop("counter.lambda_handler", None)
    yield importlib.import_module("counter.lambda_handler")
    sys.modules.pop("counter.lambda_handler", None)


def call(function: Any, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> tuple:
    result = function(http_api_event(method, path, headers, **kw), Context())
    assert result["isBase64Encoded"] is False
    return result["statusCode"], result["headers"], json.loads(result["body"])


@pytest.mark.parametrize("function_url", [True, False], ids=["function-url", "http-api"])
def test_the_contract_through_both_event_sources(
    table: str, function_url: bool, handler_module: ModuleType
) -> None:
    function = handler_module.from_env({"CHAOSCHECK_TABLE": table, "AWS_REGION": REGION})
    assert isinstance(function.store, DynamoDBStore) and function.faults is None and function.tracing is None
    key = {"Idempotency-Key": "op-1"}
    status, headers, body = call(function, "POST", "/counters/c1/increment", key, function_url=function_url)
    assert (status, body) == (200, {"name": "c1", "value": 1, "applied": True})
    assert headers["X-Served-By"] == Context().log_stream_name
    assert headers["Content-Type"] == "application/json"
    assert call(function, "POST", "/counters/c1/increment", function_url=function_url)[2]["value"] == 2
    replay = call(
        function, "POST", "/counters/c1/increment", {"idempotency-key": "op-1"}, function_url=function_url
    )
    assert replay[2] == {"name": "c1", "value": 1, "applied": False}
    assert call(function, "GET", "/counters/c1", function_url=function_url)[2] == {"name": "c1", "value": 2}
    assert call(function, "GET", "/health", function_url=function_url)[:3:2] == (200, {"status": "ok"})
    assert call(function, "GET", "/nope", function_url=function_url)[0] == 404
    assert call(function, "GET", "/counters/c1/increment", function_url=function_url)[0] == 405
    ledger = function.store.applied_ops("c1")
    assert (ledger[0].key, ledger[0].value_after, len(ledger)) == ("op-1", 1, 2)


def test_a_base64_body_and_a_store_failure(table: str, handler_module: ModuleType) -> None:
    function = handler_module.from_env({"CHAOSCHECK_TABLE": "no-such-table", "AWS_REGION": REGION})
    event = http_api_event("POST", "/counters/c/increment")
    event.update(body=base64.b64encode(b"ignored").decode(), isBase64Encoded=True)
    result = function(event, Context())
    assert result["statusCode"] == 500 and "store error" in json.loads(result["body"])["error"]


def test_the_module_handler_is_built_once_at_cold_start(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSCHECK_TABLE", table)
    sys.modules.pop("counter.lambda_handler", None)
    module = importlib.import_module("counter.lambda_handler")
    try:
        first = module.handler(http_api_event("POST", "/counters/m/increment"), Context())
        second = module.handler(http_api_event("POST", "/counters/m/increment"), Context())
        assert [json.loads(r["body"])["value"] for r in (first, second)] == [1, 2]
        assert module.STORE is module.FUNCTION.store
    finally:
        sys.modules.pop("counter.lambda_handler", None)


def _function(name: str = "counter") -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="counter-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return 1\n")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="counter.lambda_handler.handler",
        Code={"ZipFile": code.getvalue()}, Tags={"chaoscheck:allowed": "true"},
    )  # fmt: skip
    return name


def test_faults_injected_by_the_aws_backend_reach_the_handler(table: str, handler_module: ModuleType) -> None:
    """The backend writes the SSM parameters; the handler (cache expired) obeys them, then stops."""
    name = _function()
    env = {
        "CHAOSCHECK_TABLE": table,
        "CHAOSCHECK_FAULT_PREFIX": "/chaoscheck",
        "AWS_LAMBDA_FUNCTION_NAME": name,
    }
    slept: list[float] = []
    built = handler_module.from_env(env)
    assert built.faults is not None
    faults = FaultSetting(name, "/chaoscheck", boto3.client("ssm", region_name=REGION), ttl_s=0.0)
    function = handler_module.CounterFunction(built.store, faults=faults, sleep=slept.append)
    assert call(function, "POST", "/counters/f/increment")[2]["value"] == 1

    backend = AwsBackend(region=REGION, function_name=name, seed=1)
    errors = backend.inject("lambda-errors", {"status": 503, "percent": 100})
    status, headers, body = call(function, "POST", "/counters/f/increment")
    assert status == 503 and body == {"error": "injected fault", "fault": "lambda-errors", "status": 503}
    assert headers["X-Served-By"] == Context().log_stream_name
    assert function.store.read("f") == 1  # an injected error never touches the store
    backend.rollback("lambda-errors", errors)

    latency = backend.inject("lambda-latency", {"delay": 0.25, "percent": 100})
    status, _, body = call(function, "POST", "/counters/f/increment")
    assert (status, body["value"], slept) == (200, 2, [0.25])  # delayed, then served
    backend.rollback("lambda-latency", latency)
    call(function, "GET", "/counters/f")
    assert slept == [0.25]
