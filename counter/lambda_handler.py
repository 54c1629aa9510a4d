"""The counter as a Lambda function: payload format 2.0 events (function URL, HTTP API) in and out.

Module-level code is the cold start: it opens the store once per execution environment, and every
warm invocation reuses it, as on AWS. ``X-Served-By`` is ``context.log_stream_name``, which is
unique per execution environment on AWS and in the local stack.

Chosen by the environment (``from_env``):

- store: ``CHAOSCHECK_DB`` names a SQLite file (the local stack), else ``CHAOSCHECK_TABLE`` a DynamoDB
  table (the AWS tier, ``counter/template.yaml``); see ``counter.dynamodb_store.store_from_env``;
- chaos faults: with ``CHAOSCHECK_FAULT_PREFIX`` (AWS only), the ``lambda-latency`` and
  ``lambda-errors`` parameters of this function (``AWS_LAMBDA_FUNCTION_NAME``) are read from SSM
  Parameter Store, cached for a second (``counter.fault_setting``). Locally the stack injects them;
- tracing: with ``CHAOSCHECK_XRAY=1``, X-Ray (``counter.xray``); the local stack's runtime gives the first
  invocation its environment's ``init_window``, which becomes an ``Initialization`` subsegment.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any

from counter.app import Response, handle
from counter.dynamodb_store import store_from_env
from counter.fault_setting import FaultSetting, injected_error
from counter.fault_setting import from_env as faults_from_env
from counter.store import Store
from counter.xray import Tracing, tracing_from_env

DB_ENV = "CHAOSCHECK_DB"
SERVICE = "chaoscheck-counter-lambda"


class CounterFunction:
    """One execution environment's handler: a store, and optionally faults to obey and a tracer."""

    def __init__(
        self,
        store: Store,
        faults: FaultSetting | None = None,
        tracing: Tracing | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.faults = faults
        self.tracing = tracing
        self.store = tracing.store(store) if tracing is not None else store
        self._sleep = sleep

    def __call__(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        http = event.get("requestContext", {}).get("http", {})
        method = http.get("method", "GET")
        path = event.get("rawPath") or http.get("path") or "/"
        headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
        raw_body = event.get("body") or ""
        body = base64.b64decode(raw_body) if event.get("isBase64Encoded") else raw_body.encode()
        served_by = context.log_stream_name
        if self.tracing is None:
            return _result(self._serve(method, path, headers, body, served_by))
        init = getattr(context, "init_window", None)  # the local stack's runtime, first invocation only
        with self.tracing.request(method, path, headers, served_by=served_by, init=init) as trace:
            response = self._serve(method, path, headers, body, served_by, trace)
            trace.status = response.status
        return _result(response)

    def _serve(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        served_by: str,
        trace: Any = None,
    ) -> Response:
        if self.faults is not None:
            delay_s, status = self.faults.decide()
            if delay_s > 0:
                if trace is not None:
                    trace.annotate(fault_delay_ms=round(delay_s * 1000))
                self._sleep(delay_s)
            if status is not None:
                if trace is not None:
                    trace.annotate(fault="lambda-errors")
                return Response(*injected_error(status, served_by))
        return handle(method, path, headers, body, self.store, served_by)


def _result(response: Response) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": response.headers,
        "body": response.body.decode(),
        "isBase64Encoded": False,
    }


def from_env(environ: Mapping[str, str] | None = None) -> CounterFunction:
    """The handler the environment describes (see the module docstring)."""
    return CounterFunction(
        store_from_env(environ=environ),
        faults=faults_from_env(environ),
        tracing=tracing_from_env(SERVICE, "lambda", environ),
    )


FUNCTION: CounterFunction = from_env()
STORE: Store = FUNCTION.store


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer one HTTP request given as a payload format 2.0 event."""
    return FUNCTION(event, context)
