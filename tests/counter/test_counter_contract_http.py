"""The HTTP contract, end to end on both tiers: the fleet (balancer -> instances) and the function URL
(-> execution environments), both writing the same SQLite store."""

from __future__ import annotations

import re

import pytest
from stack_helpers import call, endpoint_url

from counter.local.client import LocalStack

TIERS = ["fleet", "lambda"]
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{17}$")
ENVIRONMENT_ID = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")


def assert_served_by_counter(tier: str, headers: dict[str, str]) -> None:
    pattern = INSTANCE_ID if tier == "fleet" else ENVIRONMENT_ID
    assert pattern.match(headers.get("x-served-by", "")), headers
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("tier", TIERS)
def test_increment_replay_and_read(stack: LocalStack, tier: str, fresh_name: str) -> None:
    url = endpoint_url(stack, tier)
    first = call(url, "GET", f"/counters/{fresh_name}")
    assert (first.status, first.body) == (200, {"name": fresh_name, "value": 0})
    assert_served_by_counter(tier, first.headers)

    one = call(url, "POST", f"/counters/{fresh_name}/increment", {"Idempotency-Key": "op-1"})
    assert (one.status, one.body) == (200, {"name": fresh_name, "value": 1, "applied": True})
    assert_served_by_counter(tier, one.headers)
    two = call(url, "POST", f"/counters/{fresh_name}/increment", {"Idempotency-Key": "op-2"})
    assert two.body == {"name": fresh_name, "value": 2, "applied": True}

    replay = call(url, "POST", f"/counters/{fresh_name}/increment", {"Idempotency-Key": "op-1"})
    assert (replay.status, replay.body) == (200, {"name": fresh_name, "value": 1, "applied": False})
    assert call(url, "GET", f"/counters/{fresh_name}").body["value"] == 2

    keyless = call(url, "POST", f"/counters/{fresh_name}/increment")
    assert keyless.body == {"name": fresh_name, "value": 3, "applied": True}
    assert call(url, "GET", f"/counters/{fresh_name}").body["value"] == 3


def test_both_tiers_share_one_store(stack: LocalStack, fresh_name: str) -> None:
    call(stack.fleet_url, "POST", f"/counters/{fresh_name}/increment", {"Idempotency-Key": "shared"})
    replay = call(
        stack.lambda_url, "POST", f"/counters/{fresh_name}/increment", {"Idempotency-Key": "shared"}
    )
    assert replay.body == {"name": fresh_name, "value": 1, "applied": False}
    assert call(stack.lambda_url, "GET", f"/counters/{fresh_name}").body["value"] == 1


@pytest.mark.parametrize("tier", TIERS)
def test_health(stack: LocalStack, tier: str) -> None:
    reply = call(endpoint_url(stack, tier), "GET", "/health")
    assert (reply.status, reply.body) == (200, {"status": "ok"})
    assert_served_by_counter(tier, reply.headers)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/counters/bad.name/increment", {}, 400),
        ("GET", "/counters/" + "x" * 65, {}, 400),
        ("POST", "/counters/ok/increment", {"Idempotency-Key": "no spaces"}, 400),
        ("POST", "/counters/ok/increment", {"Idempotency-Key": "k" * 129}, 400),
        ("GET", "/no/such/path", {}, 404),
        ("GET", "/", {}, 404),
        ("GET", "/counters/ok/increment", {}, 405),
        ("PUT", "/counters/ok", {}, 405),
        ("POST", "/health", {}, 405),
    ],
)
def test_errors(
    stack: LocalStack, tier: str, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    reply = call(endpoint_url(stack, tier), method, path, headers)
    assert reply.status == status
    assert isinstance(reply.body, dict) and isinstance(reply.body.get("error"), str)
    assert_served_by_counter(tier, reply.headers)


def test_round_robin_spreads_over_every_instance(stack: LocalStack, fresh_name: str) -> None:
    in_service = {i["id"] for i in stack.control.state()["fleet"]["instances"] if i["state"] == "in_service"}
    served = {call(stack.fleet_url, "GET", "/health").headers["x-served-by"] for _ in range(9)}
    assert served == in_service and len(in_service) == 3


def test_trace_header_passes_through_and_keep_alive_works(stack: LocalStack, fresh_name: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(stack.fleet_url).port, timeout=5)
    try:
        for n in range(1, 21):  # one client connection, many requests
            conn.request(
                "POST",
                f"/counters/{fresh_name}/increment",
                headers={
                    "X-Amzn-Trace-Id": "Root=1-00000000-000000000000000000000000",
                    "Idempotency-Key": f"k{n}",
                },
            )
            response = conn.getresponse()
            assert response.status == 200
            assert f'"value":{n},' in response.read().decode()
    finally:
        conn.close()


def test_connection_close_is_honoured(stack: LocalStack) -> None:
    reply = call(stack.fleet_url, "GET", "/health", {"Connection": "close"})
    assert reply.status == 200 and reply.headers.get("connection") == "close"
