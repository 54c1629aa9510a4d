"""The counter users: closed-loop Locust users that increment and read one counter.

One class per tier (fleet behind the load balancer, Lambda behind its function URL) so that Locust's
own statistics and weights keep the tiers apart. Each increment carries a fresh idempotency key; the
exchange is classified once (``outcome_of``) and handed to the ledger through the request event's
``context``, so the recorder stays an append on the request path.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import socket
import uuid
from typing import Any, ClassVar

from locust import FastHttpUser, constant, task

from loadtests.outcome import outcome_of
from loadtests.settings import LoadSettings

LEDGER_CONTEXT_KEY = "chaoscheck"
"""Key of the request context under which a user hands its ledger fields to the recorder."""

WORKER = f"{socket.gethostname()}:{os.getpid()}"
"""Identifies this load process in the ledger."""

_KEY_PREFIX = uuid.uuid4().hex[:8]
_sequence = itertools.count()
_ERROR_TEXT_LIMIT = 200


class CounterUser(FastHttpUser):
    """Sends increments (each with its own idempotency key) and reads, one at a time."""

    abstract = True
    endpoint: ClassVar[str] = ""
    settings: ClassVar[LoadSettings | None] = None
    wait_time = constant(0)

    def on_start(self) -> None:
        self._rng = random.Random()

    @task
    def operate(self) -> None:
        settings = self.settings
        assert settings is not None, "the chaoscheck plugin sets CounterUser.settings at init"
        if self._rng.random() < settings.increment_share:
            self.increment(settings.counter)
        else:
            self.read(settings.counter)

    def increment(self, counter: str) -> None:
        key = f"{counter}:{_KEY_PREFIX}.{next(_sequence)}"
        self._exchange(
            "POST", f"/counters/{counter}/increment", "increment", counter, key, {"Idempotency-Key": key}
        )

    def read(self, counter: str) -> None:
        self._exchange("GET", f"/counters/{counter}", "read", counter, None, None)

    def _exchange(
        self, method: str, path: str, kind: str, counter: str, key: str | None, headers: dict | None
    ) -> None:
        with self.client.request(
            method, path, headers=headers, name=f"{self.endpoint} {kind}", catch_response=True
        ) as resp:
            status = resp.status_code or 0
            error_obj: BaseException | None = getattr(resp, "error", None) if status == 0 else None
            outcome = outcome_of(status, error_obj)
            value, served_by, error = _read_response(resp, status, error_obj)
            fields = (key, kind, self.endpoint, counter, status, outcome, value, error, served_by)
            resp.request_meta["context"] = {LEDGER_CONTEXT_KEY: fields}
            if outcome == "ok" and value is not None:
                resp.success()
            else:
                resp.failure(error or f"{status} without a counter value")


class FleetUser(CounterUser):
    """A client of the EC2 fleet, through the load balancer."""

    abstract = False
    endpoint = "fleet"


class LambdaUser(CounterUser):
    """A client of the Lambda function, through its function URL."""

    abstract = False
    endpoint = "lambda"


def _read_response(resp: Any, status: int, error_obj: BaseException | None) -> tuple:
    """The counter value, the serving instance and an error text, from whatever came back."""
    if status == 0:
        return None, None, _clip(f"{type(error_obj).__name__}: {error_obj}" if error_obj else "no response")
    headers = resp.headers or {}
    served_by = headers.get("X-Served-By") or headers.get("x-served-by")
    body = resp.content or b""
    if 200 <= status < 300:
        try:
            value = json.loads(body)["value"]
            return (int(value) if isinstance(value, int) else None), served_by, None
        except (ValueError, KeyError, TypeError):
            return None, served_by, _clip(f"{status} unreadable body: {body[:80]!r}")
    return None, served_by, _clip(f"{status} {body.decode('utf-8', 'replace')}")


def _clip(text: str) -> str:
    return text if len(text) <= _ERROR_TEXT_LIMIT else text[: _ERROR_TEXT_LIMIT - 3] + "..."
