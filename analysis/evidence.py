"""Turning DataFrame rows into the evidence a result record carries: plain, JSON-ready Python values.

Every result in ``analysis`` is a dict of built-in types only (int, float, str, bool, None, list,
dict), so that ``summary.json`` is deterministic: floats are rounded here, NaN and <NA> become None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

EXAMPLES = 5
"""How many examples each anomaly class keeps (the first ones in time order)."""

FLOAT_DIGITS = 3
"""Decimal places of every float in a result (ms to the microsecond, rates to the tenth of a percent
would be 3 too; error rates use :data:`RATE_DIGITS`)."""

RATE_DIGITS = 6


def native(value: Any, digits: int = FLOAT_DIGITS) -> Any:
    """A JSON-ready copy of ``value``: numpy scalars to Python, NaN/NA to None, floats rounded."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            return None
        rounded = round(value, digits)
        return 0.0 if rounded == 0 else rounded  # no "-0.0"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {str(k): native(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [native(v, digits) for v in value]
    return str(value)


def examples(frame: pd.DataFrame, columns: Iterable[str], limit: int = EXAMPLES) -> list[dict[str, Any]]:
    """The first ``limit`` rows of ``frame`` (already in evidence order) as dicts of ``columns``."""
    head = frame.head(limit)
    cols = list(columns)
    return [
        {c: native(v) for c, v in zip(cols, row, strict=True)}
        for row in head[cols].itertuples(index=False, name=None)
    ]


def anomaly(count: int, severity: str, sample: list[dict[str, Any]], violations: int | None = None) -> dict:
    """One anomaly class: how many, how many are violations, its default severity, first examples.

    ``severity`` is ``violation`` (invalidates the run), ``warning`` (reported, not counted against the
    run) or ``note`` (expected behaviour worth showing, such as an indeterminate write that was applied).
    """
    if violations is None:
        violations = count if severity == "violation" else 0
    return {"count": int(count), "violations": int(violations), "severity": severity, "examples": sample}
