"""The counter as a Lambda function: payload format 2.0 events (function URL, HTTP API) in and out.

Module-level code is the cold start: it opens the store once per execution environment, and every
warm invocation reuses it, as on AWS. ``X-Served-By`` is ``context.log_stream_name``, which is
unique per execution environment on AWS and in the local stack.

Store: SQLite file named by ``CHAOSCHECK_DB``. (The DynamoDB store comes with the AWS tier.)
"""

from __future__ import annotations

import base64
import os
from typing import Any

from counter.app import handle
from counter.sqlite_store import SQLiteStore
from counter.store import Store

DB_ENV = "CHAOSCHECK_DB"


def _open_store() -> Store:
    path = os.environ.get(DB_ENV)
    if not path:
        raise RuntimeError(f"{DB_ENV} is not set: the Lambda handler needs the path of its SQLite store")
    return SQLiteStore(path)


STORE: Store = _open_store()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer one HTTP request given as a payload format 2.0 event."""
    http = event.get("requestContext", {}).get("http", {})
    method = http.get("method", "GET")
    path = event.get("rawPath") or http.get("path") or "/"
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    raw_body = event.get("body") or ""
    body = base64.b64decode(raw_body) if event.get("isBase64Encoded") else raw_body.encode()
    response = handle(method, path, headers, body, STORE, context.log_stream_name)
    return {
        "statusCode": response.status,
        "headers": response.headers,
        "body": response.body.decode(),
        "isBase64Encoded": False,
    }
