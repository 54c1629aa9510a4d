"""The chaos fault parameters a Lambda function reads on AWS (SSM Parameter Store), cached for ~1 s.

The AWS chaos backend injects ``lambda-latency`` and ``lambda-errors`` by writing one String parameter
each (``docs/chaos-aws.md``, "The fault parameters the handler reads"):

- ``{prefix}/{function}/lambda-latency``: ``{"delay_ms": 300, "percent": 50.0}``: for ``percent`` % of
  invocations, sleep ``delay_ms`` before serving;
- ``{prefix}/{function}/lambda-errors``: ``{"status": 503, "percent": 20.0}``: for ``percent`` % of
  invocations, answer ``status`` without touching the store.

Absent, unreadable JSON, a wrong shape, a missing ``delay_ms``/``status``, a ``status`` outside
400-599 or ``percent`` 0 mean no fault; unknown keys are ignored. Both are read with one
``GetParameters`` call at most once per ``ttl_s`` (1 s), so a fault starts and ends within about a
second without a Parameter Store call per invocation. A failed read means no fault (logged), never
a failed invocation.

This module is part of the function's package, so it imports nothing outside ``counter``. Its ``parse``
is the only reader of the format: the chaos backend (``chaos.backends.aws_fault_parameters.read_value``)
calls it, never the other way round.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

PREFIX_ENV = "CHAOSCHECK_FAULT_PREFIX"
FUNCTION_ENV = "AWS_LAMBDA_FUNCTION_NAME"
DEFAULT_PREFIX = "/chaoscheck"
LATENCY, ERRORS = "lambda-latency", "lambda-errors"
TTL_S = 1.0

_PREFIX = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")


def parse(kind: str, text: str | None) -> dict[str, Any] | None:
    """A parameter's text as the fault it describes, or None for no fault (lenient, never raises)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    try:
        percent = float(value.get("percent", 100.0))
        if kind == LATENCY:
            fault: dict[str, Any] = {"delay_ms": int(value["delay_ms"]), "percent": percent}
        elif kind == ERRORS:
            fault = {"status": int(value["status"]), "percent": percent}
            if not 400 <= fault["status"] <= 599:  # a 2xx would report an increment it never applied
                return None
        else:
            return None
    except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: int() of an infinity
        return None
    return fault if percent > 0 else None


class Decision(NamedTuple):
    """What one invocation suffers: a delay (seconds, 0 for none) and an error status (None for none)."""

    delay_s: float
    status: int | None


NO_FAULT = Decision(0.0, None)


class FaultSetting:
    """The two fault parameters of one function, read together and cached for ``ttl_s``.

    ``client`` is an SSM client (made on first use with short timeouts when not given).
    """

    def __init__(
        self,
        function: str,
        prefix: str = DEFAULT_PREFIX,
        client: Any | None = None,
        *,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not _PREFIX.match(prefix):
            raise ValueError(f"expected a parameter prefix such as /chaoscheck, got {prefix!r}")
        if not function:
            raise ValueError("expected the function's name, got an empty one")
        self.function = function
        self.prefix = prefix
        self.names = {LATENCY: f"{prefix}/{function}/{LATENCY}", ERRORS: f"{prefix}/{function}/{ERRORS}"}
        self.ttl_s = ttl_s
        self._client = client
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._faults: dict[str, dict[str, Any] | None] = {LATENCY: None, ERRORS: None}
        self._read_at: float | None = None
        self.reads = 0
        """``GetParameters`` calls made (for tests and diagnostics)."""

    def current(self) -> dict[str, dict[str, Any] | None]:
        """Both faults as they stand (re-read when the cached values are older than ``ttl_s``)."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self.ttl_s:
                self._faults = self._read()
                self._read_at = now
            return dict(self._faults)

    def decide(self) -> Decision:
        """This invocation's fate: each fault applies independently with its ``percent``."""
        faults = self.current()
        latency, errors = faults[LATENCY], faults[ERRORS]
        delay = latency["delay_ms"] / 1000 if latency and self._rng() * 100 < latency["percent"] else 0.0
        status = errors["status"] if errors and self._rng() * 100 < errors["percent"] else None
        return Decision(max(0.0, delay), status)

    def _read(self) -> dict[str, dict[str, Any] | None]:
        self.reads += 1
        try:
            if self._client is None:
                self._client = _ssm_client()
            found = self._client.get_parameters(Names=list(self.names.values()))
        except Exception as exc:  # no fault rather than a failed invocation
            log.warning("chaos fault parameters unreadable, assuming none: %s", " ".join(str(exc).split()))
            return {LATENCY: None, ERRORS: None}
        texts = {p.get("Name"): p.get("Value") for p in found.get("Parameters", [])}
        return {kind: parse(kind, texts.get(name)) for kind, name in self.names.items()}


def _ssm_client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2})
    return boto3.client("ssm", config=config)


def from_env(environ: Mapping[str, str] | None = None, client: Any | None = None) -> FaultSetting | None:
    """The function's fault setting when ``CHAOSCHECK_FAULT_PREFIX`` is set (the SAM template sets it),
    else None: the local stack injects its Lambda faults itself and must never call AWS."""
    env = os.environ if environ is None else environ
    prefix = env.get(PREFIX_ENV)
    if not prefix:
        return None
    function = env.get(FUNCTION_ENV)
    if not function:
        raise RuntimeError(f"{PREFIX_ENV} is set but {FUNCTION_ENV} is not: whose faults should be read?")
    return FaultSetting(function, prefix, client)


def injected_error(status: int, served_by: str) -> tuple[int, dict[str, str], bytes]:
    """The response of an invocation failed by ``lambda-errors``: as the local stack's runtime answers."""
    body = {"error": "injected fault", "fault": ERRORS, "status": status}
    headers = {"Content-Type": "application/json", "X-Served-By": served_by}
    return status, headers, json.dumps(body).encode()
