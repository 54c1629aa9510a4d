"""The final reads: the counter's value after the load stopped and the target went quiet.

They are ledger rows of kind ``final`` so that the run directory alone holds the value V that the
consistency check compares with the acknowledged increments. Each tier is read, and every attempt
is recorded (a tier still recovering may need a few).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from urllib.parse import urlsplit

from loadtests.ledger import Row
from loadtests.outcome import outcome_of

WORKER = f"{socket.gethostname()}:{os.getpid()}:final"


def read_final(
    endpoints: dict[str, str], counter: str, attempts: int = 10, timeout: float = 5.0, budget_s: float = 15.0
) -> list[Row]:
    """Read ``counter`` through every endpoint until one attempt per endpoint answers 200.

    Bounded per endpoint by ``attempts`` and by ``budget_s`` seconds, so a target that hangs costs
    a run seconds, not minutes.
    """
    rows: list[Row] = []
    for endpoint, url in endpoints.items():
        deadline = time.monotonic() + budget_s
        for attempt in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            row = _read_once(endpoint, url, counter, min(timeout, remaining))
            rows.append(row)
            if row[7] == "ok":
                break
            time.sleep(min(0.2 * (attempt + 1), 1.0, max(0.0, deadline - time.monotonic())))
    return rows


def _read_once(endpoint: str, url: str, counter: str, timeout: float) -> Row:
    parts = urlsplit(url)
    start_ns = time.time_ns()
    status, value, error, served_by = 0, None, None, None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    err: BaseException | None = None
    try:
        conn.request("GET", f"/counters/{counter}")
        resp = conn.getresponse()
        body = resp.read()
        status, served_by = resp.status, resp.getheader("X-Served-By")
        if status == 200:
            value = int(json.loads(body)["value"])
        else:
            error = f"{status} {body[:200].decode('utf-8', 'replace')}"
    except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
        err = exc
        error = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        conn.close()
    end_ns = time.time_ns()
    outcome = outcome_of(status, err)
    if outcome == "ok" and value is None:
        outcome, error = "info", error or "200 without a value"
    return (
        None,
        "final",
        endpoint,
        counter,
        start_ns,
        end_ns,
        status,
        outcome,
        value,
        error,
        served_by,
        WORKER,
        None,  # intended_ns: a final read is not scheduled
        0,  # attempt
        None,  # trace_id
    )
