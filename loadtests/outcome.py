"""How one HTTP exchange becomes an operation outcome (Jepsen's ok / fail / info).

The rule decides what the consistency check may conclude, so it is written once, here, and
documented in docs/run-format.md:

- ``ok``: any 2xx. The server acknowledged the operation.
- ``fail``: the operation certainly did not happen. Any 4xx (bad input, and the Lambda throttle 429:
  a throttled invocation never ran), 503 (the load balancer had no instance in service, so nothing
  was forwarded), and a connection refused before any byte was sent.
- ``info``: unknown. 500 (an API in front of Lambda turns a throttle or crash into 500), 502 (the
  instance died mid-request, or the function failed), 504 (timeout behind the balancer), any other
  5xx or unexpected status, a client timeout, a reset after sending. An info increment may take
  effect at any later time.
"""

from __future__ import annotations

import errno

from chaoscheck.runformat import FAIL, INFO, OK

_DEFINITE_5XX = frozenset({503})


def outcome_of(status: int, error: BaseException | None = None) -> str:
    """The outcome of an exchange that ended with ``status`` (0 when no response came)."""
    if 200 <= status < 300:
        return OK
    if 400 <= status < 500 or status in _DEFINITE_5XX:
        return FAIL
    if status == 0 and error is not None and _refused(error):
        return FAIL
    return INFO


def _refused(error: BaseException) -> bool:
    """Whether the connection was refused, i.e. no byte of the request reached a server."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        if isinstance(current, OSError) and current.errno == errno.ECONNREFUSED:
            return True
        # geventhttpclient wraps the error it gave up on as ``original``
        current = getattr(current, "original", None) or current.__cause__ or current.__context__
    return False
