"""Helpers for the counter and local-stack tests: real stacks, real processes, 127.0.0.1 only.

Timers are scaled down (health checks every 0.2 s, boot in 0.5 s) so the whole suite stays fast.
Every wait in these tests is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest

from counter.local.client import LocalStack
from counter.local.config import StackConfig

FAST = {
    "fleet": {
        "desired": 3,
        "health_interval": 0.2,
        "health_timeout": 0.15,
        "unhealthy_threshold": 2,
        "healthy_threshold": 1,
        "boot_delay": 0.5,
        "upstream_timeout": 1.0,
        "idle_timeout": 4.0,
    },
    "lambda": {"reserved_concurrency": 10, "cold_start": 0.05, "timeout": 2.0},
    "sample_interval": 0.1,
}


def stack_config(**overrides: dict[str, Any]) -> StackConfig:
    """The fast test configuration, with sections updated by ``overrides`` (e.g. ``fleet={...}``)."""
    raw = json.loads(json.dumps(FAST))
    for section, values in overrides.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return StackConfig.model_validate(raw)


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-case names
    body: Any  # decoded JSON, or the raw text when it is not JSON
    seconds: float


def call(
    base_url: str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One request on a fresh connection to 127.0.0.1 (never anywhere else)."""
    parts = urlsplit(base_url)
    assert parts.hostname == "127.0.0.1", base_url
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        decoded: Any = json.loads(raw)
    except ValueError:
        decoded = raw.decode(errors="replace")
    return Reply(
        response.status,
        {k.lower(): v for k, v in response.getheaders()},
        decoded,
        time.monotonic() - started,
    )


def until(
    condition: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout:g}s")
        time.sleep(interval)


def process_running(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def stack_pids(stack: LocalStack) -> list[int]:
    """The stack's pid and every child pid its state shows (instances, environments)."""
    state = stack.control.state()
    pids = [stack.pid]
    pids += [i["pid"] for i in state["fleet"]["instances"] if i["pid"] and i["state"] != "terminated"]
    pids += [e["pid"] for e in state["lambda"]["environments"] if e["pid"]]
    return pids


def endpoint_url(stack: LocalStack, tier: str) -> str:
    return stack.fleet_url if tier == "fleet" else stack.lambda_url
