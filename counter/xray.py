"""X-Ray instrumentation of the counter's two servers, off unless ``CHAOSCHECK_XRAY`` turns it on.

With ``CHAOSCHECK_XRAY=1`` (the SAM template sets it; the local stack sets it when it runs a
collector), ``tracing_from_env`` configures aws-xray-sdk once per process and patches boto3, so every
DynamoDB or SSM call is a subsegment; ``Tracing.request`` traces one HTTP request and
``Tracing.store`` wraps the store so that each store call is a subsegment (``store.increment``,
``store.read``) with the boto3 calls under it. Without it nothing is imported and nothing changes:
the servers call the store directly, as before.

Where the request's entity comes from:

- on an instance (and in the local stack's Lambda environments, which are plain processes): a
  segment of its own that honours the incoming ``X-Amzn-Trace-Id`` (``Root``, ``Parent``,
  ``Sampled``; the ALB adds ``Root`` to requests that come without one). ``Sampled=1`` or ``0`` is
  obeyed; without a decision the SDK's local rules decide (1 request/s, then 5 %), never a call to AWS.
  A local environment hands its init window (``counter.local.runtime``) to the first request its
  handler serves, and that request's segment gets an ``Initialization`` subsegment with those times,
  as Lambda puts one in the function segment of an environment's first invocation. Unlike AWS, it
  lies before its parent's ``start_time`` (the segment is the handler's, not Lambda's function
  segment, so there is no ``Invocation`` or ``Overhead``), and an unsampled first request loses it.
- inside AWS Lambda (``LAMBDA_TASK_ROOT``): Lambda owns the segment (active tracing) and the SDK may only
  add subsegments, so the request is a ``counter`` subsegment of the function's segment, annotated
  with ``client_trace_id`` (the incoming ``Root``) in case Lambda did not continue the client's trace.

Every request entity is annotated ``counter``, ``op_id`` (the idempotency key), ``tier`` and
``served_by``, and records the HTTP method, path and status: the analysis joins on the trace id, and
the annotations make traces findable by ``annotation.counter = "..."`` filter expressions.

Segments go over UDP to ``AWS_XRAY_DAEMON_ADDRESS`` (default ``127.0.0.1:2000``): the X-Ray daemon
(the CloudWatch agent on the instances, Lambda's own), or ``counter.xray_collector`` locally.
``CHAOSCHECK_XRAY_PLUGINS=EC2Plugin`` adds the instance's metadata (it reads the instance metadata
service, so only on EC2).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from counter.store import AppliedOp, Store

ENABLE_ENV = "CHAOSCHECK_XRAY"
PLUGINS_ENV = "CHAOSCHECK_XRAY_PLUGINS"
DAEMON_ENV = "AWS_XRAY_DAEMON_ADDRESS"
NAME_ENV = "AWS_XRAY_TRACING_NAME"
TRACE_HEADER = "x-amzn-trace-id"

_configured = threading.Lock()
_ready = False


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``CHAOSCHECK_XRAY`` asks for tracing (``1``, ``true``, ``yes``, ``on``)."""
    env = os.environ if environ is None else environ
    return env.get(ENABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def parse_header(value: str | None) -> dict[str, str]:
    """``Root``, ``Parent`` and ``Sampled`` of an ``X-Amzn-Trace-Id`` value (absent keys left out)."""
    fields: dict[str, str] = {}
    for part in (value or "").split(";"):
        name, sep, item = part.strip().partition("=")
        if sep and name in ("Root", "Parent", "Sampled") and item:
            fields[name] = item
    return fields


def _configure(environ: Mapping[str, str]) -> Any:
    """Configure the SDK's global recorder once per process and patch boto3; return the recorder."""
    global _ready
    from aws_xray_sdk.core import patch, xray_recorder
    from aws_xray_sdk.core.sampling.local.sampler import LocalSampler

    with _configured:
        if not _ready:
            plugins = tuple(p for p in environ.get(PLUGINS_ENV, "").split(",") if p.strip())
            xray_recorder.configure(
                sampling=True,
                sampler=LocalSampler(),  # never polls AWS for sampling rules
                context_missing="IGNORE_ERROR",  # a boto3 call outside a request is simply not traced
                daemon_address=environ.get(DAEMON_ENV) or "127.0.0.1:2000",
                plugins=plugins or None,
            )
            patch(["boto3"])
            _ready = True
    return xray_recorder


def _in_lambda(recorder: Any) -> bool:
    from aws_xray_sdk.core.lambda_launcher import LambdaContext

    return isinstance(recorder.context, LambdaContext)


class RequestTrace:
    """The entity of one request: its trace id (None when not sampled) and what it records."""

    def __init__(self, entity: Any, sampled: bool) -> None:
        self.entity = entity
        self.sampled = sampled
        self.trace_id: str | None = getattr(entity, "trace_id", None) if sampled else None
        self.status: int | None = None
        """The response's status: set it before the block ends, and the entity records it."""

    def annotate(self, **values: str | int | float | bool | None) -> None:
        if not self.sampled:
            return
        for key, value in values.items():
            if value is not None:
                self.entity.put_annotation(key, value)

    def response_header(self) -> str | None:
        """The ``X-Amzn-Trace-Id`` to send back (the SDK's middlewares do the same), or None."""
        if self.trace_id is None:
            return None
        return f"Root={self.trace_id};Sampled=1"


class Tracing:
    """Traces requests and store calls with aws-xray-sdk (see the module docstring)."""

    def __init__(self, service: str, tier: str, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.recorder = _configure(env)
        self.service = env.get(NAME_ENV) or service
        self.tier = tier
        self.in_lambda = _in_lambda(self.recorder)

    @contextmanager
    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        *,
        served_by: str,
        init: tuple[float, float] | None = None,
    ) -> Iterator[RequestTrace]:
        """Trace one request (``headers`` with lower-case names); set ``status`` on the yielded trace.

        ``init``: the (start, end) epoch seconds of the environment's init, given with the first request
        a local Lambda environment serves: recorded as an ``Initialization`` subsegment of the request's
        segment. Inside AWS Lambda it is ignored (Lambda records its own).
        """
        incoming = parse_header(headers.get(TRACE_HEADER))
        recorder = self.recorder
        if self.in_lambda:
            entity = recorder.begin_subsegment("counter")
            if entity is None:  # no function segment (tracing off for this invocation)
                yield RequestTrace(None, False)
                return
        else:
            sampled = {"1": 1, "0": 0}.get(incoming.get("Sampled", ""))
            entity = recorder.begin_segment(
                self.service, traceid=incoming.get("Root"), parent_id=incoming.get("Parent"), sampling=sampled
            )
        trace = RequestTrace(entity, bool(getattr(entity, "sampled", False)))
        try:
            if trace.sampled:
                route = path.partition("?")[0]
                entity.put_http_meta("method", method)
                entity.put_http_meta("url", route)
                parts = route.split("/")
                trace.annotate(
                    tier=self.tier,
                    served_by=served_by,
                    counter=parts[2] if len(parts) > 2 and parts[1] == "counters" else None,
                    op_id=headers.get("idempotency-key"),
                    client_trace_id=incoming.get("Root") if self.in_lambda else None,
                )
                if init is not None and not self.in_lambda:
                    initialization = recorder.begin_subsegment("Initialization")
                    initialization.start_time = init[0]
                    recorder.end_subsegment(init[1])
            yield trace
        except BaseException as exc:
            if trace.sampled:
                import traceback

                entity.add_exception(exc, traceback.extract_tb(exc.__traceback__))
            raise
        finally:
            if trace.sampled and trace.status is not None:
                entity.put_http_meta("status", trace.status)
                entity.apply_status_code(trace.status)
            if self.in_lambda:
                recorder.end_subsegment()
            else:
                recorder.end_segment()

    def store(self, store: Store) -> Store:
        """``store`` with each call recorded as a subsegment of the current request."""
        return TracedStore(store, self.recorder)


class TracedStore:
    """A store whose calls are subsegments (``store.increment``, ``store.read``, ``store.applied_ops``)."""

    def __init__(self, store: Store, recorder: Any) -> None:
        self.inner = store
        self._recorder = recorder

    def increment(self, name: str, key: str | None) -> tuple[int, bool]:
        with self._recorder.in_subsegment("store.increment") as sub:
            value, applied = self.inner.increment(name, key)
            if sub is not None and sub.sampled:
                sub.put_annotation("applied", applied)
                sub.put_metadata("value", value, "counter")
            return value, applied

    def read(self, name: str) -> int:
        with self._recorder.in_subsegment("store.read"):
            return self.inner.read(name)

    def applied_ops(self, name: str) -> list[AppliedOp]:
        with self._recorder.in_subsegment("store.applied_ops"):
            return self.inner.applied_ops(name)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def tracing_from_env(service: str, tier: str, environ: Mapping[str, str] | None = None) -> Tracing | None:
    """A ``Tracing`` when ``CHAOSCHECK_XRAY`` is on, else None (and aws-xray-sdk is not imported)."""
    env = os.environ if environ is None else environ
    return Tracing(service, tier, env) if enabled(env) else None
