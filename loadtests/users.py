"""The counter users: Locust users that increment and read one counter.

One class per tier (fleet behind the load balancer, Lambda behind its function URL) so that Locust's
own statistics and weights keep the tiers apart. Three ways to pace them (``loadtests.schedule``):
closed loop (the next operation when the last one answered), closed loop with ``pacing``, and the
open model (``rate``), where a user takes the next due operation of its tier's schedule.

Requests go over ``loadtests.wire`` (a lean keep-alive client) when the target is plain HTTP, and
through Locust's ``FastHttpSession`` otherwise; either way each exchange is reported through Locust's
``request`` event, so Locust's statistics and the ledger are the same.

Each increment carries a fresh idempotency key, and every request a fresh X-Ray trace header. An
increment whose outcome is unknown (info) is retried with the same key, ``retries`` times, with
jittered exponential backoff; every attempt is its own ledger row. The exchange is classified once
(``outcome_of``) and handed to the ledger through the request event's ``context``, so the recorder
stays an append on the request path.
"""

from __future__ import annotations

import json
import random
import time
from typing import ClassVar

import gevent
from locust import FastHttpUser, constant, task
from locust.exception import CatchResponseError

from loadtests import wire
from loadtests.outcome import outcome_of
from loadtests.schedule import DueTimes, Schedule, Stage
from loadtests.settings import LoadSettings
from loadtests.sink import sink

LEDGER_CONTEXT_KEY = "chaoscheck"
"""Key of the request context under which a user hands its ledger fields to the recorder."""

_ERROR_TEXT_LIMIT = 200
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0
IDLE_POLL_S = 0.25


class CounterUser(FastHttpUser):
    """Sends increments (each with its own idempotency key) and reads, one at a time."""

    abstract = True
    endpoint: ClassVar[str] = ""
    settings: ClassVar[LoadSettings | None] = None
    schedule: ClassVar[Schedule | None] = None
    """The tier's open-model schedule in this process (set by the plugin at test start)."""
    wait_time = constant(0)

    lean_http: ClassVar[bool] = True
    """Use ``loadtests.wire`` for http:// targets (``CHAOSCHECK_HTTP_CLIENT=fasthttp`` turns it off)."""

    def on_start(self) -> None:
        self._rng = random.Random()
        self._wire: wire.WireClient | None = None
        if self.lean_http and self.host and wire.supports(self.host):
            self._wire = wire.WireClient(self.host, self.network_timeout)
        # The counter API sets no cookies, and the cookie jar costs about a tenth of the client's
        # CPU per request (profiled): without it one Locust process sends more.
        self.client.client.cookiejar = None
        settings = self.settings
        self._paced: Schedule | None = None
        if settings is not None and settings.rate is None and settings.pacing:
            due = DueTimes([Stage(None, 1.0 / settings.pacing)], phase=self._rng.random())
            self._paced = Schedule(due, time.time_ns(), settings.max_lag)

    @task
    def operate(self) -> None:
        settings = self.settings
        assert settings is not None, "the chaoscheck plugin sets CounterUser.settings at test start"
        schedule = self.schedule if settings.rate is not None else self._paced
        intended: int | None = None
        if schedule is not None:
            intended = self._next_due(schedule, settings.counter)
            if intended is None:
                return
        if self._rng.random() < settings.increment_share:
            self.increment(settings, intended)
        else:
            self.read(settings.counter, intended)

    def _next_due(self, schedule: Schedule, counter: str) -> int | None:
        """Wait for this user's next due operation; record those already too late as omitted."""
        while True:
            due = schedule.claim()
            if due is None:
                gevent.sleep(IDLE_POLL_S)
                return None
            now = time.time_ns()
            if due > now:
                gevent.sleep((due - now) / 1e9)
                return due
            if now - due <= schedule.max_lag_ns:
                return due
            lag_ms = (now - due) / 1e6
            error = f"omitted: {lag_ms:.0f} ms behind schedule, every user was busy"
            sink.append(
                (None, "omitted", self.endpoint, counter, now, now, 0, "fail", None, error, None, sink.worker,
                 due, 0, None),
                "omitted",
            )  # fmt: skip

    def increment(self, settings: LoadSettings, intended: int | None) -> None:
        counter = settings.counter
        key = f"{counter}:{sink.key_prefix}.{next(sink.sequence)}"
        path = f"/counters/{counter}/increment"
        for attempt in range(settings.retries + 1):
            if attempt:
                backoff = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_CAP_S) * self._rng.uniform(
                    0.5, 1.5
                )
                gevent.sleep(backoff)
                intended = time.time_ns()
            outcome = self._exchange("POST", path, "increment", counter, key, intended, attempt)
            if outcome != "info":
                return

    def read(self, counter: str, intended: int | None) -> None:
        self._exchange("GET", f"/counters/{counter}", "read", counter, None, intended, 0)

    def _exchange(
        self,
        method: str,
        path: str,
        kind: str,
        counter: str,
        key: str | None,
        intended: int | None,
        attempt: int,
    ) -> str:
        trace_id = f"1-{int(time.time()):08x}-{self._rng.getrandbits(96):024x}"
        if self._wire is not None:
            return self._exchange_wire(method, path, kind, counter, key, intended, attempt, trace_id)
        headers = {"X-Amzn-Trace-Id": f"Root={trace_id};Sampled=1"}
        if key is not None:
            headers["Idempotency-Key"] = key
        with self.client.request(
            method, path, headers=headers, name=f"{self.endpoint} {kind}", catch_response=True
        ) as resp:
            status = resp.status_code or 0
            error_obj: BaseException | None = getattr(resp, "error", None) if status == 0 else None
            outcome = outcome_of(status, error_obj)
            response_headers = resp.headers or {}
            served_by = response_headers.get("X-Served-By") or response_headers.get("x-served-by")
            value, error = _read_answer(status, resp.content or b"", error_obj)
            fields = (key, kind, self.endpoint, counter, status, outcome, value, error, served_by,
                      intended, attempt, trace_id)  # fmt: skip
            resp.request_meta["context"] = {LEDGER_CONTEXT_KEY: fields}
            if outcome == "ok" and value is not None:
                resp.success()
            else:
                resp.failure(error or f"{status} without a counter value")
        return outcome

    def _exchange_wire(
        self,
        method: str,
        path: str,
        kind: str,
        counter: str,
        key: str | None,
        intended: int | None,
        attempt: int,
        trace_id: str,
    ) -> str:
        """The same exchange over the lean client, reported through the same ``request`` event."""
        assert self._wire is not None
        headers = f"X-Amzn-Trace-Id: Root={trace_id};Sampled=1\r\n"
        if key is not None:
            headers += f"Idempotency-Key: {key}\r\n"
        start_time = time.time()
        started = time.perf_counter()
        reply = self._wire.request(method, path, headers)
        response_time = (time.perf_counter() - started) * 1000.0
        outcome = outcome_of(reply.status, reply.error)
        value, error = _read_answer(reply.status, reply.body, reply.error)
        fields = (key, kind, self.endpoint, counter, reply.status, outcome, value, error, reply.served_by,
                  intended, attempt, trace_id)  # fmt: skip
        failed = (
            None
            if outcome == "ok" and value is not None
            else CatchResponseError(error or f"{reply.status} without a counter value")
        )
        self.environment.events.request.fire(
            request_type=method,
            name=f"{self.endpoint} {kind}",
            response_time=response_time,
            response_length=len(reply.body),
            response=None,
            context={LEDGER_CONTEXT_KEY: fields},
            exception=failed,
            start_time=start_time,
            url=path,
        )
        return outcome

    def on_stop(self) -> None:
        if self._wire is not None:
            self._wire.close()


class FleetUser(CounterUser):
    """A client of the EC2 fleet, through the load balancer."""

    abstract = False
    endpoint = "fleet"


class LambdaUser(CounterUser):
    """A client of the Lambda function, through its function URL."""

    abstract = False
    endpoint = "lambda"


USER_CLASSES: dict[str, type[CounterUser]] = {"fleet": FleetUser, "lambda": LambdaUser}


def _read_answer(status: int, body: bytes, error_obj: BaseException | None) -> tuple[int | None, str | None]:
    """The counter value and an error text, from whatever came back."""
    if status == 0:
        return None, _clip(f"{type(error_obj).__name__}: {error_obj}" if error_obj else "no response")
    if 200 <= status < 300:
        try:
            value = json.loads(body)["value"]
            return (int(value) if isinstance(value, int) else None), None
        except (ValueError, KeyError, TypeError):
            return None, _clip(f"{status} unreadable body: {body[:80]!r}")
    return None, _clip(f"{status} {body.decode('utf-8', 'replace')}")


def _clip(text: str) -> str:
    return text if len(text) <= _ERROR_TEXT_LIMIT else text[: _ERROR_TEXT_LIMIT - 3] + "..."
