"""The Lambda function URL: HTTP requests in, payload format 2.0 events to the function, HTTP out.

A throttled invocation is answered 429 here, before any environment sees it, with the body and
headers a function URL passes through from Lambda's ``TooManyRequestsException`` (its ``Reason`` says
which limit: reserved or account concurrency, or the scaling rate of a burst). Timeouts, crashed
environments and function errors answer 502. Those answers carry ``X-Served-By: function-url``
(and ``X-Target: <environment id>`` when an environment was involved); every other response is the
handler's own, with the environment's id in ``X-Served-By``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

from counter.local.http1 import HttpConnection, Request, response_bytes
from counter.local.lambda_pool import ACCOUNT_LIMIT, RESERVED_LIMIT, SCALING_RATE, FunctionPool

SERVED_BY = "function-url"
_THROTTLE_HEADERS = [("X-Served-By", SERVED_BY), ("X-Amzn-ErrorType", "TooManyRequestsException")]
_THROTTLES = {
    reason: response_bytes(
        429, b'{"Reason":"%s","Type":"User","message":"Rate Exceeded."}' % reason.encode(), _THROTTLE_HEADERS
    )
    for reason in (RESERVED_LIMIT, ACCOUNT_LIMIT, SCALING_RATE)
}
"""The 429 bodies: over the reserved concurrency, over the account's, and over the scaling rate."""


_FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection"}


def to_event(request: Request, request_id: str) -> dict[str, Any]:
    """The payload format 2.0 event a function URL makes of ``request``."""
    path, _, query = request.target.partition("?")
    headers = request.headers
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": headers.get("host", ""),
            "http": {
                "method": request.method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if request.body:
        try:
            event["body"] = request.body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    return event


def from_result(result: Any) -> bytes:
    """The HTTP response a function URL makes of the handler's return value."""
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        headers = [
            (str(k), str(v))
            for k, v in (result.get("headers") or {}).items()
            if str(k).lower() not in _FRAMING_HEADERS
        ]
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return response_bytes(status, raw, headers, content_type=None)
    return response_bytes(200, json.dumps(result).encode())


class _Invocation:
    __slots__ = ("conn", "keep_alive")

    def __init__(self, conn: HttpConnection, keep_alive: bool) -> None:
        self.conn = conn
        self.keep_alive = keep_alive

    def on_result(self, result: Any, environment_id: str) -> None:
        try:
            raw = from_result(result)
        except (TypeError, ValueError) as exc:
            self.on_failure(f"malformed function response: {exc}", environment_id)
            return
        self.conn.send(raw, self.keep_alive)

    def on_failure(self, message: str, environment_id: str) -> None:
        self.conn.send(
            response_bytes(
                502,
                json.dumps({"error": message}).encode(),
                [("X-Served-By", SERVED_BY), ("X-Target", environment_id)],
            ),
            self.keep_alive,
        )


class FunctionUrl:
    """The HTTP handler of the function URL endpoint."""

    def __init__(self, pool: FunctionPool) -> None:
        self.pool = pool

    def __call__(self, conn: HttpConnection, request: Request) -> None:
        request_id = str(uuid.uuid4())
        if not self.pool.invoke(
            to_event(request, request_id), request_id, _Invocation(conn, request.keep_alive)
        ):
            conn.send(_THROTTLES[self.pool.last_throttle_reason], request.keep_alive)
