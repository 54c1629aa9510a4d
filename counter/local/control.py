"""The control API: how the orchestrator, the chaos actions and the tests drive the local stack.

Every call needs ``Authorization: Bearer <token>`` (the token the parent put in
``CHAOSCHECK_CONTROL_TOKEN``; it is compared in constant time and never logged). JSON in and out:

- ``GET /state``                           the fleet and the function, as the README of this folder shows
- ``GET /info``                            the stack's pid and URLs
- ``POST /fleet/instances/{id}/signal``    ``{"signal": "KILL"|"STOP"|"CONT"|"TERM"}``
- ``POST /fleet/instances/{id}/terminate`` ``{"decrement_desired": bool}``: the group terminates it
- ``PUT /fleet/capacity``                  ``{"desired": n}``
- ``POST /lambda/environments/{id}/signal`` ``{"signal": ...}``, e.g. KILL to crash an environment
- ``PUT /lambda/concurrency``              ``{"reserved_concurrency": int|null}``; answers the previous
- ``GET /lambda/faults``                   the injected faults: ``{"latency": ..., "errors": ...}``
- ``PUT /lambda/faults/latency``           ``{"delay_s": s, "percent": p}`` or ``null``; answers the previous
- ``PUT /lambda/faults/errors``            ``{"status": n, "percent": p}`` or ``null``; answers the previous
- ``GET /timeline[?since_ns=N]``           the samples (all of the ring, or those after ``since_ns``)
- ``GET /activities[?since_ns=N]``         the scaling activities (all, or those not ended by ``since_ns``)
- ``POST /shutdown``                       stop the stack (answers first, then stops)
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from counter.local.activities import ActivityLog
from counter.local.balancer import Balancer
from counter.local.config import FUNCTION_NAME, GROUP_NAME, RESOURCE_TAGS
from counter.local.fleet import Group
from counter.local.http1 import HttpConnection, Request, json_response
from counter.local.lambda_pool import FunctionPool
from counter.local.scaling import TargetTracking
from counter.local.timeline import Timeline

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlApi:
    """The HTTP handler of the control endpoint."""

    def __init__(
        self,
        token: str,
        group: Group,
        balancer: Balancer,
        pool: FunctionPool,
        timeline: Timeline,
        info: dict[str, Any],
        on_shutdown: Callable[[], None],
        activities: ActivityLog | None = None,
        policy: TargetTracking | None = None,
    ) -> None:
        self._expected = f"Bearer {token}".encode()
        self.group = group
        self.balancer = balancer
        self.pool = pool
        self.timeline = timeline
        self.info = info
        self.on_shutdown = on_shutdown
        self.activities = activities if activities is not None else group.activities
        self.policy = policy

    def __call__(self, conn: HttpConnection, request: Request) -> None:
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), self._expected):
            conn.send(json_response(401, {"error": "missing or wrong bearer token"}), request.keep_alive)
            return
        try:
            status, payload = self._route(request)
        except ApiError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except Exception as exc:
            log.exception("control API: %s %s failed", request.method, request.path)
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        conn.send(json_response(status, payload), request.keep_alive)
        if request.path == "/shutdown" and status == 200:
            self.on_shutdown()

    def _route(self, request: Request) -> tuple[int, Any]:
        method, path = request.method, request.path
        parts = [unquote(part) for part in path.strip("/").split("/")]  # ids may hold "/"
        routes: dict[tuple[str, ...], dict[str, Callable[[], tuple[int, Any]]]] = {
            ("state",): {"GET": self.state},
            ("info",): {"GET": lambda: (200, self.info)},
            ("timeline",): {"GET": lambda: self._timeline(request)},
            ("activities",): {"GET": lambda: (200, self.activities.since(_since_ns(request)))},
            ("shutdown",): {"POST": lambda: (200, {"stopping": True})},
            ("fleet", "capacity"): {"PUT": lambda: self._capacity(request)},
            ("lambda", "concurrency"): {"PUT": lambda: self._concurrency(request)},
            ("lambda", "faults"): {"GET": lambda: (200, dict(self.pool.faults))},
            ("lambda", "faults", "latency"): {"PUT": lambda: self._fault("latency", request)},
            ("lambda", "faults", "errors"): {"PUT": lambda: self._fault("errors", request)},
        }
        if len(parts) == 4 and parts[0] == "fleet" and parts[1] == "instances" and parts[3] == "signal":
            methods = {"POST": lambda: self._signal("instance", self.group.signal, parts[2], request)}
        elif len(parts) == 4 and parts[0] == "fleet" and parts[1] == "instances" and parts[3] == "terminate":
            methods = {"POST": lambda: self._terminate(parts[2], request)}
        elif len(parts) == 4 and parts[0] == "lambda" and parts[1] == "environments" and parts[3] == "signal":
            methods = {"POST": lambda: self._signal("environment", self.pool.signal, parts[2], request)}
        else:
            methods = routes.get(tuple(parts), {})
        if not methods:
            raise ApiError(404, f"no such control endpoint: {path}")
        handler = methods.get(method)
        if handler is None:
            raise ApiError(405, f"{method} not allowed on {path}; use {', '.join(methods)}")
        return handler()

    # -- endpoints ------------------------------------------------------------------------------------

    def state(self) -> tuple[int, Any]:
        group, pool, balancer = self.group, self.pool, self.balancer
        return 200, {
            "fleet": {
                "name": GROUP_NAME,
                "tags": dict(RESOURCE_TAGS),
                "desired": group.desired,
                "min": group.min,
                "max": group.max,
                "requests": balancer.requests,
                "errors": balancer.errors,
                "in_flight": balancer.in_flight,
                "scaling": self.policy.snapshot() if self.policy is not None else None,
                "instances": group.snapshot(),
            },
            "lambda": {
                "name": FUNCTION_NAME,
                "tags": dict(RESOURCE_TAGS),
                "reserved_concurrency": pool.reserved,
                "faults": dict(pool.faults),
                "active": pool.active,
                "requests": pool.requests,
                "throttles": pool.throttles,
                "burst_throttles": pool.burst_throttles,
                "cold_starts": pool.cold_starts,
                "reclaimed": pool.reclaimed,
                "errors": pool.errors,
                "fault_delays": pool.delayed,
                "fault_errors": pool.failed,
                "environments": pool.snapshot(),
            },
        }

    def _timeline(self, request: Request) -> tuple[int, Any]:
        return 200, self.timeline.since(_since_ns(request))

    def _capacity(self, request: Request) -> tuple[int, Any]:
        desired = _body(request).get("desired")
        if not isinstance(desired, int) or isinstance(desired, bool):
            raise ApiError(400, f'body must be {{"desired": <int>}}, got desired={desired!r}')
        previous = self.group.desired
        try:
            self.group.set_desired(desired)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return 200, {"desired": desired, "previous": previous}

    def _concurrency(self, request: Request) -> tuple[int, Any]:
        body = _body(request)
        if "reserved_concurrency" not in body:
            raise ApiError(400, 'body must be {"reserved_concurrency": <int or null>}')
        value = body["reserved_concurrency"]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ApiError(400, f"reserved_concurrency must be an integer or null, got {value!r}")
        try:
            previous = self.pool.set_reserved(value)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return 200, {"reserved_concurrency": value, "previous": previous}

    def _terminate(self, instance_id: str, request: Request) -> tuple[int, Any]:
        decrement = _body(request).get("decrement_desired", False)
        if not isinstance(decrement, bool):
            raise ApiError(400, f"decrement_desired must be true or false, got {decrement!r}")
        try:
            inst, previous = self.group.terminate(instance_id, decrement_desired=decrement)
        except KeyError:
            raise ApiError(404, f"no instance {instance_id}") from None
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        except ProcessLookupError as exc:
            raise ApiError(409, str(exc)) from None
        return 200, {
            "id": inst.id,
            "pid": inst.pid,
            "state": inst.state,
            "decrement_desired": decrement,
            "desired": self.group.desired,
            "previous_desired": previous,
        }

    def _fault(self, kind: str, request: Request) -> tuple[int, Any]:
        try:
            setting = json.loads(request.body)  # an empty body is an error, not "off"
        except ValueError:
            raise ApiError(
                400, f"body must be JSON: the {kind} fault as an object, or null to clear it"
            ) from None
        try:
            previous = self.pool.set_fault(kind, setting)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return 200, {kind: self.pool.faults[kind], "previous": previous}

    def _signal(
        self, noun: str, send: Callable[[str, str], Any], target_id: str, request: Request
    ) -> tuple[int, Any]:
        """Signal an instance (``group.signal``) or an environment (``pool.signal``)."""
        name = _signal_name(request)
        try:
            target = send(target_id, name)
        except KeyError:
            raise ApiError(404, f"no {noun} {target_id}") from None
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        except ProcessLookupError as exc:
            raise ApiError(409, str(exc)) from None
        return 200, {"id": target.id, "pid": target.pid, "signal": name.upper()}


def _since_ns(request: Request) -> int | None:
    """The ``since_ns`` query parameter (an integer), or None when absent; 400 when not an integer."""
    query = parse_qs(request.target.partition("?")[2])
    since = query.get("since_ns", [None])[0]
    if since is not None and not since.lstrip("-").isdigit():
        raise ApiError(400, f"since_ns must be an integer, got {since!r}")
    return None if since is None else int(since)


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise ApiError(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def _signal_name(request: Request) -> str:
    name = _body(request).get("signal", "KILL")
    if not isinstance(name, str):
        raise ApiError(400, f"signal must be a string, got {name!r}")
    return name
