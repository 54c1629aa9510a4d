"""The counter's HTTP contract, in one framework-free function.

The instance server (ASGI) and the Lambda handler (payload format 2.0) both translate their input into
``handle(method, path, headers, body, store, served_by)`` and its :class:`Response` back, so the
contract in ``counter/openapi.yaml`` is implemented exactly once and both tiers behave identically.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import NamedTuple

from counter.store import Store

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEY_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
CONTENT_TYPE = "application/json"


class Response(NamedTuple):
    """An HTTP response: status, headers (without Content-Length, which servers add) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


def _json(status: int, served_by: str, body: bytes, extra: dict[str, str] | None = None) -> Response:
    headers = {"Content-Type": CONTENT_TYPE, "X-Served-By": served_by}
    if extra:
        headers.update(extra)
    return Response(status, headers, body)


def _error(status: int, message: str, served_by: str, extra: dict[str, str] | None = None) -> Response:
    return _json(status, served_by, json.dumps({"error": message}).encode(), extra)


def handle(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    store: Store,
    served_by: str,
) -> Response:
    """Answer one request of the counter contract.

    ``headers`` has lower-case names; ``path`` may carry a query string, which is ignored. ``body`` is
    ignored too (no operation takes one) but is part of the signature so that callers pass it through.
    """
    del body
    path = path.partition("?")[0]
    parts = path.split("/")
    # "/health" -> ["", "health"]; "/counters/x" -> ["", "counters", "x"]; "/counters/x/increment" -> 4 parts
    if len(parts) == 2 and parts[1] == "health":
        if method != "GET":
            return _error(405, f"method {method} not allowed on {path}", served_by, {"Allow": "GET"})
        return _json(200, served_by, b'{"status":"ok"}')
    if len(parts) < 3 or len(parts) > 4 or parts[0] or parts[1] != "counters":
        return _error(404, f"no such resource: {path}", served_by)
    name = parts[2]
    if len(parts) == 4:
        if parts[3] != "increment":
            return _error(404, f"no such resource: {path}", served_by)
        if method != "POST":
            return _error(405, f"method {method} not allowed on {path}", served_by, {"Allow": "POST"})
        if not NAME_PATTERN.fullmatch(name):
            return _error(400, "counter name must be 1-64 characters of [A-Za-z0-9_-]", served_by)
        key = headers.get("idempotency-key")
        if key is not None and not KEY_PATTERN.fullmatch(key):
            return _error(400, "Idempotency-Key must be 1-128 characters of [A-Za-z0-9._:-]", served_by)
        try:
            value, applied = store.increment(name, key)
        except Exception as exc:  # the boundary: a store failure must still answer JSON
            return _error(500, f"store error: {type(exc).__name__}: {exc}", served_by)
        # name is validated to characters that need no JSON escaping
        return _json(
            200,
            served_by,
            b'{"name":"%s","value":%d,"applied":%s}'
            % (name.encode(), value, b"true" if applied else b"false"),
        )
    if method != "GET":
        return _error(405, f"method {method} not allowed on {path}", served_by, {"Allow": "GET"})
    if not NAME_PATTERN.fullmatch(name):
        return _error(400, "counter name must be 1-64 characters of [A-Za-z0-9_-]", served_by)
    try:
        value = store.read(name)
    except Exception as exc:  # the boundary: a store failure must still answer JSON
        return _error(500, f"store error: {type(exc).__name__}: {exc}", served_by)
    return _json(200, served_by, b'{"name":"%s","value":%d}' % (name.encode(), value))
