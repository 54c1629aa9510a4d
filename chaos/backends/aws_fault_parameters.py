"""The fault parameters in SSM Parameter Store that the counter's Lambda handler reads.

This is how ``lambda-latency`` and ``lambda-errors`` reach a function on AWS (as failure-lambda does):
one String parameter per function and fault kind, which the handler reads (cached for about a
second) on each invocation. Absent means "no fault". The format is a contract with the handler
(``docs/chaos-aws.md``):

- ``{prefix}/{function}/lambda-latency``: ``{"delay_ms": 300, "percent": 50.0}``: sleep ``delay_ms``
  before serving, for ``percent`` of the invocations;
- ``{prefix}/{function}/lambda-errors``: ``{"status": 503, "percent": 20.0}``: answer ``status``
  without touching the store, for ``percent`` of the invocations.

``prefix`` defaults to ``/chaoscheck``; ``function`` is the function's name (``AWS_LAMBDA_FUNCTION_NAME``
inside the function). A reader should ignore keys it does not know, so the format can grow. The one
reader is the handler's (``counter.fault_setting.parse``, which imports nothing from ``chaos``);
``read_value`` here calls it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chaos.actions import LAMBDA_ERRORS, LAMBDA_LATENCY, LambdaErrorsParams, LambdaLatencyParams
from counter.fault_setting import parse

DEFAULT_PREFIX = "/chaoscheck"
KINDS = (LAMBDA_LATENCY.name, LAMBDA_ERRORS.name)

_PREFIX = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is a valid SSM path such as ``/chaoscheck``, else ``ValueError`` (one line)."""
    if not _PREFIX.match(prefix):
        raise ValueError(
            f"expected a parameter prefix such as /chaoscheck (/ then a-z, 0-9, _.-), got {prefix!r}"
        )
    return prefix


def parameter_name(prefix: str, function: str, kind: str) -> str:
    """``/chaoscheck/counter/lambda-latency`` for the function ``counter`` and the kind ``lambda-latency``."""
    if kind not in KINDS:
        raise ValueError(f"expected one of {', '.join(KINDS)}, got {kind!r}")
    return f"{check_prefix(prefix)}/{function}/{kind}"


def parameter_value(kind: str, params: dict[str, Any]) -> str:
    """The JSON the handler reads for the action ``kind`` with these (validated) parameters."""
    if kind == LAMBDA_LATENCY.name:
        latency = LambdaLatencyParams.model_validate(params)
        value: dict[str, Any] = {"delay_ms": round(latency.delay * 1000), "percent": float(latency.percent)}
    elif kind == LAMBDA_ERRORS.name:
        errors = LambdaErrorsParams.model_validate(params)
        value = {"status": errors.status, "percent": float(errors.percent)}
    else:
        raise ValueError(f"expected one of {', '.join(KINDS)}, got {kind!r}")
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def read_value(kind: str, text: str | None) -> dict[str, Any] | None:
    """What the handler makes of a parameter's text: the fault as a dict, or ``None`` for no fault.

    This is the handler's own reader (``counter.fault_setting.parse``), so the writer above and the
    function cannot drift apart: lenient as a handler must be, unreadable JSON, a wrong shape or a
    percent of 0 mean no fault.
    """
    return parse(kind, text)
