"""The Lambda function's execution environments and its concurrency limit.

What it reproduces (shared/reference/aws-semantics.md):
- Concurrency: executions in progress (environments ``busy`` plus those ``initializing`` for an
  invocation) may not exceed the reserved concurrency, or the account's when none is reserved. An
  invocation over the limit is throttled before any environment sees it: the handler never runs.
  Reserved concurrency can change at any time; 0 throttles everything.
- Environments: one OS process each (``counter.local.runtime``), one invocation at a time. A warm idle
  environment is reused (most recently used first); otherwise a new one starts for this invocation,
  paying a real cold start (process start + module init) plus ``cold_start``. Nothing is pre-warmed.
- Failures: an invocation running longer than ``timeout`` kills its environment and fails (502); an
  environment that exits fails its invocation (502) and is replaced on demand; a handler exception is
  a function error (502), and the environment lives on. Init is limited to ``init_timeout``.
- Injected faults (``set_fault``), as the FIS Lambda extension or failure-lambda apply them inside the
  function: for ``percent`` of the invocations, ``latency`` sleeps ``delay_s`` in the environment
  before the handler runs (the environment stays busy, so the delay counts against concurrency and
  against ``timeout``), and ``errors`` answers ``status`` with a JSON error body without running the
  handler (the store is not touched). Throttled invocations never reach either. The two settings are
  independent; each is ``None`` when off.
- Scaling (``burst_limit`` per ``burst_interval``, like AWS's 1,000 environments every 10 s): new
  environments draw from a bucket of ``burst_limit`` tokens that refills continuously at
  ``burst_limit / burst_interval`` per second. An invocation that needs a new environment when the
  bucket is empty is throttled (429, ``FunctionInvocationRateLimitExceeded``), as one over the
  concurrency limit is. Without ``burst_limit`` the pool grows as fast as invocations ask.
- ``idle_timeout``: an environment idle that long is reclaimed (its process stopped), so the next
  burst pays cold starts again. ``service_time`` is waited in the environment by every invocation
  before the handler runs (the handler's I/O wait), so concurrency follows rate x duration.
- Every environment started, reclaimed or lost is a scaling activity (``counter.local.activities``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from typing import Any, Protocol

from counter.local.activities import FAILED, Activity, ActivityLog
from counter.local.children import SIGNALS, Reaper, signal_by_name, spawn_python
from counter.local.config import LambdaConfig
from counter.local.framing import FrameBuffer, encode

log = logging.getLogger(__name__)

INITIALIZING, IDLE, BUSY, GONE = "initializing", "idle", "busy", "gone"
MAX_REDISPATCH = 2  # environments found dead before an invocation fails (nothing reached a handler)
RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"
SCALING_RATE = "FunctionInvocationRateLimitExceeded"
"""The ``Reason`` of a 429: over the reserved concurrency, the account's, or the scaling rate."""
SHUTTING_DOWN = "the stack is shutting down"


FAULT_KINDS = ("latency", "errors")


def check_fault(kind: str, setting: Any) -> dict[str, Any] | None:
    """``setting`` for the fault ``kind`` in its normal form, or ``ValueError`` saying what is wrong.

    ``latency``: ``{"delay_s": seconds >= 0, "percent": (0, 100]}``; ``errors``: ``{"status": 400..599,
    "percent": (0, 100]}``; ``percent`` defaults to 100; ``None`` turns the fault off.
    """
    if kind not in FAULT_KINDS:
        raise KeyError(kind)
    if setting is None:
        return None
    if not isinstance(setting, dict):
        raise ValueError(f"expected a JSON object or null for the {kind} fault, got {setting!r}")
    value_key = "delay_s" if kind == "latency" else "status"
    unknown = sorted(set(setting) - {value_key, "percent"})
    if unknown:
        raise ValueError(
            f"expected only {value_key} and percent in the {kind} fault, got {', '.join(unknown)}"
        )
    percent = setting.get("percent", 100.0)
    if not _is_number(percent) or not 0 < percent <= 100:
        raise ValueError(f"expected percent above 0 and at most 100, got {percent!r}")
    value = setting.get(value_key)
    if kind == "latency":
        if not _is_number(value) or value < 0:
            raise ValueError(f"expected delay_s, a number of seconds >= 0, got {value!r}")
        return {"delay_s": float(value), "percent": float(percent)}
    if not isinstance(value, int) or isinstance(value, bool) or not 400 <= value <= 599:
        raise ValueError(f"expected status, an HTTP error status from 400 to 599, got {value!r}")
    return {"status": value, "percent": float(percent)}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Invocation(Protocol):
    """The caller's side of one invocation: told its result or its failure, once."""

    def on_result(self, result: Any, environment_id: str) -> None: ...

    def on_failure(self, message: str, environment_id: str) -> None: ...


def new_environment_id() -> str:
    """A log stream name, as AWS gives each execution environment: unique per environment."""
    return time.strftime("%Y/%m/%d", time.gmtime()) + "/[$LATEST]" + uuid.uuid4().hex


class Environment:
    """One execution environment and its process."""

    __slots__ = (
        "activity",
        "id",
        "idle_since",
        "init_timer",
        "invocation",
        "pending",
        "pid",
        "process",
        "reader",
        "started_ns",
        "state",
        "timer",
        "writer",
    )

    def __init__(self) -> None:
        self.id = new_environment_id()
        self.state = INITIALIZING
        self.pid: int | None = None
        self.process: Any = None
        self.reader: asyncio.BaseTransport | None = None
        self.writer: asyncio.WriteTransport | None = None
        self.started_ns = time.time_ns()
        self.invocation: Invocation | None = None
        self.pending: tuple[dict[str, Any], str, Invocation, int] | None = None  # what it starts for
        self.timer: asyncio.TimerHandle | None = None
        self.init_timer: asyncio.TimerHandle | None = None
        self.idle_since = 0.0  # monotonic time it last became idle
        self.activity: Activity | None = None  # its cold start

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "pid": self.pid, "started_ns": self.started_ns}


class _FrameReader(asyncio.Protocol):
    """Reads an environment's stdout pipe and hands its frames to the pool."""

    def __init__(self, pool: FunctionPool, env: Environment) -> None:
        self.pool = pool
        self.env = env
        self.frames = FrameBuffer()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.frames.feed(data)
        except ValueError as exc:
            self.pool.retire(self.env, f"environment sent a bad frame: {exc}")
            return
        for frame in frames:
            self.pool.on_frame(self.env, frame)

    def eof_received(self) -> bool:
        self.pool.retire(self.env, "environment exited")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.retire(self.env, "environment exited")


class FunctionPool:
    """The function: its environments, its concurrency limit and its counters."""

    def __init__(
        self, config: LambdaConfig, db_path: str, reaper: Reaper, activities: ActivityLog | None = None
    ) -> None:
        self.config = config
        self.db_path = db_path
        self.reaper = reaper
        self.activities = activities if activities is not None else ActivityLog()
        self.reserved: int | None = config.reserved_concurrency
        self.environments: dict[str, Environment] = {}
        self.requests = 0
        self.throttles = 0
        self.cold_starts = 0
        self.errors = 0
        self.faults: dict[str, dict[str, Any] | None] = dict.fromkeys(FAULT_KINDS)
        self.delayed = 0  # invocations the latency fault delayed
        self.failed = 0  # invocations the errors fault answered with its status
        self.burst_throttles = 0  # invocations throttled by the scaling rate
        self.reclaimed = 0  # environments reclaimed after idle_timeout
        self.last_throttle_reason = ACCOUNT_LIMIT if self.reserved is None else RESERVED_LIMIT
        self._random = random.Random()
        self._idle: list[Environment] = []
        self._busy = 0
        self._initializing = 0
        self._loop = asyncio.get_running_loop()
        self._tokens = float(config.burst_limit or 0)
        self._tokens_at = time.monotonic()
        self._reclaimer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reclaiming idle environments (when ``idle_timeout`` is set)."""
        if self.config.idle_timeout is not None:
            self._reclaimer = self._loop.create_task(self._reclaim_forever(self.config.idle_timeout))

    async def _reclaim_forever(self, timeout: float) -> None:
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            self.reclaim_idle(timeout)

    def reclaim_idle(self, timeout: float) -> int:
        """Retire the environments idle for ``timeout`` seconds or more; returns how many."""
        limit = time.monotonic() - timeout
        stale = [env for env in self.environments.values() if env.state == IDLE and env.idle_since <= limit]
        for env in stale:
            self.reclaimed += 1
            self.retire(env, f"reclaimed after {timeout:g}s idle", kind="reclaim")
        if stale:
            self._idle = [env for env in self._idle if env.state == IDLE]
        return len(stale)

    def _has_idle(self) -> bool:
        return any(env.state == IDLE for env in self._idle)

    def _take_token(self) -> bool:
        """One new environment's worth of the scaling rate, if the bucket has it."""
        limit = self.config.burst_limit
        if limit is None:
            return True
        now = time.monotonic()
        refill = (now - self._tokens_at) * limit / self.config.burst_interval
        self._tokens = min(float(limit), self._tokens + refill)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    @property
    def active(self) -> int:
        return self._busy + self._initializing

    @property
    def limit(self) -> int:
        return self.config.account_concurrency if self.reserved is None else self.reserved

    def set_reserved(self, value: int | None) -> int | None:
        """Change the reserved concurrency (None: unreserved); returns the previous value."""
        if value is not None and not 0 <= value <= self.config.account_concurrency:
            raise ValueError(
                f"reserved_concurrency must be null or between 0 and the account's "
                f"{self.config.account_concurrency}, got {value}"
            )
        previous, self.reserved = self.reserved, value
        log.info("lambda: reserved concurrency %s -> %s", previous, value)
        return previous

    def set_fault(self, kind: str, setting: Any) -> dict[str, Any] | None:
        """Set (or, with None, clear) the ``latency`` or ``errors`` fault; returns the previous setting.

        ``KeyError`` for another kind, ``ValueError`` for a bad setting (see ``check_fault``).
        """
        checked = check_fault(kind, setting)
        previous, self.faults[kind] = self.faults[kind], checked
        log.info("lambda: %s fault %s -> %s", kind, previous, checked)
        return previous

    def _fault_for_invocation(self) -> dict[str, Any] | None:
        """What the injected faults do to the invocation about to run (each rolls its own dice)."""
        fault: dict[str, Any] = {}
        latency, errors = self.faults["latency"], self.faults["errors"]
        if latency is not None and self._random.random() * 100.0 < latency["percent"]:
            fault["delay_s"] = latency["delay_s"]
            self.delayed += 1
        if errors is not None and self._random.random() * 100.0 < errors["percent"]:
            fault["status"] = errors["status"]
            self.failed += 1
        return fault or None

    # -- invocations ----------------------------------------------------------------------------------

    def invoke(self, event: dict[str, Any], request_id: str, invocation: Invocation) -> bool:
        """Run ``event`` on an environment; False (and nothing runs) when throttled.

        ``last_throttle_reason`` then says which limit it hit (the ``Reason`` of the 429).
        """
        self.requests += 1
        if self._busy + self._initializing >= self.limit:
            self.throttles += 1
            self.last_throttle_reason = ACCOUNT_LIMIT if self.reserved is None else RESERVED_LIMIT
            return False
        if not self._has_idle() and not self._take_token():
            self.throttles += 1
            self.burst_throttles += 1
            self.last_throttle_reason = SCALING_RATE
            return False
        self._dispatch(event, request_id, invocation, 0)
        return True

    def _dispatch(self, event: dict[str, Any], request_id: str, invocation: Invocation, attempt: int) -> None:
        idle = self._idle
        while idle:
            env = idle.pop()
            if env.state == IDLE:
                self._run(env, event, request_id, invocation, attempt)
                return
        self._cold_start(event, request_id, invocation, attempt)

    def _run(
        self, env: Environment, event: dict[str, Any], request_id: str, invocation: Invocation, attempt: int
    ) -> None:
        writer = env.writer
        if writer is None or writer.is_closing():
            # The environment died and we have not read its EOF yet. Nothing reached a handler, so the
            # invocation may go to another environment, a bounded number of times.
            self.retire(env, "environment is gone")
            if attempt >= MAX_REDISPATCH:
                self.errors += 1
                invocation.on_failure("no execution environment could take the invocation", env.id)
                return
            self._dispatch(event, request_id, invocation, attempt + 1)
            return
        message: dict[str, Any] = {
            "event": event,
            "request_id": request_id,
            "deadline_ms": int((time.time() + self.config.timeout) * 1000),
        }
        fault = self._fault_for_invocation()
        if fault is not None:
            message["fault"] = fault
        if self.config.service_time:
            message["service_s"] = self.config.service_time
        writer.write(
            encode(message)
        )  # buffered by the event loop: a frozen environment cannot block the stack
        env.state = BUSY
        self._busy += 1
        env.invocation = invocation
        env.timer = self._loop.call_later(self.config.timeout, self._on_timeout, env)

    def on_frame(self, env: Environment, frame: dict[str, Any]) -> None:
        if env.state == INITIALIZING and "ready" in frame:
            if env.init_timer is not None:
                env.init_timer.cancel()
            self._initializing -= 1
            env.state = IDLE
            env.idle_since = time.monotonic()
            if env.activity is not None:
                env.activity.finish()
            log.info("lambda: environment %s ready (init %.0f ms)", env.id, frame["ready"])
            pending, env.pending = env.pending, None
            if pending is not None:
                self._run(env, *pending)
            else:
                self._idle.append(env)
            return
        if env.state != BUSY:
            self.retire(env, "environment sent a frame while not invoked")
            return
        if env.timer is not None:
            env.timer.cancel()
        invocation, env.invocation = env.invocation, None
        env.state = IDLE
        env.idle_since = time.monotonic()
        self._busy -= 1
        self._idle.append(env)
        assert invocation is not None
        if "result" in frame:
            invocation.on_result(frame["result"], env.id)
        else:
            error = frame.get("error") or {}
            self.errors += 1
            invocation.on_failure(
                f"function error: {error.get('errorType', 'Error')}: {error.get('errorMessage', '')}", env.id
            )

    def _on_timeout(self, env: Environment) -> None:
        log.warning("lambda: invocation on %s timed out after %gs: killing it", env.id, self.config.timeout)
        self.retire(env, f"Task timed out after {self.config.timeout:g} seconds")

    def _on_init_timeout(self, env: Environment) -> None:
        log.warning("lambda: environment %s did not initialise in %gs", env.id, self.config.init_timeout)
        self.retire(env, f"init timed out after {self.config.init_timeout:g} seconds")

    # -- environments ---------------------------------------------------------------------------------

    def _cold_start(
        self, event: dict[str, Any], request_id: str, invocation: Invocation, attempt: int
    ) -> None:
        env = Environment()
        before = len(self.environments)
        cause = (
            f"an invocation found no idle environment ({self._busy} busy, {self._initializing} "
            f"initializing, limit {self.limit})"
        )
        env.activity = self.activities.start(
            "lambda", "cold-start", cause, before, before + 1, subject=env.id, start_ns=env.started_ns
        )
        self.environments[env.id] = env
        self._initializing += 1
        self.cold_starts += 1
        env.pending = (event, request_id, invocation, attempt)
        env.init_timer = self._loop.call_later(
            self.config.init_timeout + self.config.cold_start, self._on_init_timeout, env
        )
        self._loop.create_task(self._start_process(env))

    async def _start_process(self, env: Environment) -> None:
        try:
            process = spawn_python(
                "counter.local.runtime",
                pipes=True,
                env={
                    "CHAOSCHECK_DB": self.db_path,
                    "CHAOSCHECK_COLD_START": repr(self.config.cold_start),
                    "AWS_LAMBDA_LOG_STREAM_NAME": env.id,
                    "AWS_LAMBDA_FUNCTION_NAME": "chaoscheck-counter",
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
                    "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.config.timeout),
                },
            )
        except OSError as exc:
            self.retire(env, f"cannot start an environment: {exc}")
            return
        self.reaper.track(process)
        env.process = process
        env.pid = process.pid
        if env.state == GONE:  # retired (init timeout) while starting
            self.reaper.signal(process.pid, SIGNALS["KILL"])
            return
        try:
            env.writer, _ = await self._loop.connect_write_pipe(asyncio.Protocol, process.stdin)
            env.reader, _ = await self._loop.connect_read_pipe(
                lambda: _FrameReader(self, env), process.stdout
            )
        except OSError as exc:
            self.retire(env, f"cannot talk to the environment: {exc}")

    def retire(self, env: Environment, message: str, kind: str = "terminate") -> None:
        """Take an environment out of the function for good: fail what it was doing, kill its process.

        Recorded as a ``kind`` activity (``terminate``, or ``reclaim`` for an idle one), except when the
        stack is shutting down.
        """
        state = env.state
        if state == GONE:
            return
        before = len(self.environments)
        env.state = GONE
        self.environments.pop(env.id, None)
        if env.activity is not None and not env.activity.done:
            env.activity.finish(FAILED)
        if message != SHUTTING_DOWN:
            ending = self.activities.start(
                "lambda", kind, f"environment {env.id} {state}: {message}", before, before - 1, subject=env.id
            )
            ending.finish(end_ns=ending.start_ns)
        for timer in (env.timer, env.init_timer):
            if timer is not None:
                timer.cancel()
        failed: Invocation | None = None
        if state == BUSY:
            self._busy -= 1
            failed, env.invocation = env.invocation, None
        elif state == INITIALIZING:
            self._initializing -= 1
            if env.pending is not None:
                failed = env.pending[2]
                env.pending = None
        if env.pid is not None:
            self.reaper.signal(env.pid, SIGNALS["KILL"])
        for transport in (env.reader, env.writer):
            if transport is not None:
                transport.close()
        log.info("lambda: environment %s retired (%s): %s", env.id, state, message)
        if failed is not None:
            self.errors += 1
            failed.on_failure(message, env.id)

    def signal(self, environment_id: str, signal_name: str) -> Environment:
        """Send a signal to an environment's process (a crash, as a fault would cause)."""
        env = self.environments.get(environment_id)
        if env is None:
            raise KeyError(environment_id)
        sig = signal_by_name(signal_name)
        if env.pid is None or not self.reaper.signal(env.pid, sig):
            raise ProcessLookupError(f"environment {environment_id} has no running process")
        return env

    def counts(self) -> dict[str, int]:
        return {
            "busy": self._busy,
            "initializing": self._initializing,
            "idle": len(self.environments) - self.active,
        }

    def snapshot(self) -> list[dict[str, Any]]:
        return [env.to_json() for env in self.environments.values()]

    def stop(self) -> None:
        if self._reclaimer is not None:
            self._reclaimer.cancel()
        for env in list(self.environments.values()):
            self.retire(env, SHUTTING_DOWN)
