"""AWS X-Ray segments joined to the ledger: server time against client time, and cold starts.

``xray.jsonl`` holds one X-Ray segment document per line, as the X-Ray daemon receives them: ``id``,
``trace_id`` (the Root ``1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy`` the load sent in ``X-Amzn-Trace-Id``),
``name``, ``start_time`` and ``end_time`` (epoch seconds), and optionally ``origin``
(``AWS::Lambda::Function``, ``AWS::EC2::Instance``, ...), ``error``/``fault``/``throttle`` flags,
``http.response.status``, ``subsegments`` (``Initialization``, ``Invocation``, store calls), and
``in_progress`` (a segment still open: no ``end_time``; it is skipped and counted). Times are kept
to the microsecond (a double holds epoch seconds to about 0.2 us). Documents of
``type: subsegment`` (sent apart from their segment) only contribute ``Initialization`` times.

**Join.** A request's server time is the span of its trace as X-Ray saw it: the latest ``end_time``
minus the earliest ``start_time`` over the trace's segments (a Lambda invocation has two: the service
and the function). Each ledger row carries its own trace id (retries too), so the join is one to one:
``client_ms`` is the row's latency (``end_ns - start_ns``), ``server_ms`` the trace's span, and
``overhead_ms = client_ms - server_ms`` is what the network, the balancer or function URL and the
queues added (negative when the two clocks disagree by more than that: counted, not hidden).
``coverage`` is the share of the load's rows that found their trace (X-Ray samples, so a low share
is normal); ``unmatched_traces`` are traces no row sent.

**Cold starts.** Every ``Initialization`` subsegment is an execution environment starting; its
duration (end - start) is counted in the phase in which it started. On AWS Lambda writes it into the
function segment of an environment's first invocation; in the local stack each environment adds it
to its first traced request's segment (``counter.xray``), from the runtime's start to ready, so it
leaves out the process spawn that ``scaling.parquet``'s cold-start activity includes.

Figures are per phase (by the row's ``start_ns``, like the phase table) and endpoint, exact
nearest-rank percentiles. Nothing here enters a check: the verdict never depends on X-Ray.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.evidence import RATE_DIGITS, native
from analysis.percentiles import LATENCY_PERCENTILES, percentiles
from analysis.phases import LOAD_KINDS, Phase
from analysis.rundir import RunFormatError
from chaoscheck import runformat as rf

XRAY = rf.XRAY
"""The run directory's X-Ray segment file (``chaoscheck.runformat.XRAY``)."""

TRACE_ID = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
"""An X-Ray trace id (the Root of ``X-Amzn-Trace-Id``): version 1, epoch seconds, 96 random bits."""

SEGMENT_COLUMNS = (
    "trace_id",
    "id",
    "name",
    "origin",
    "type",
    "start_ns",
    "end_ns",
    "in_progress",
    "error",
    "fault",
    "throttle",
    "status",
    "init_start_ns",
    "init_ns",
    "line",
)
"""Columns of :func:`read_xray`'s frame. ``end_ns`` is -1 for an in-progress segment; ``status`` -1
without ``http.response.status``; ``init_start_ns``/``init_ns`` the first ``Initialization``
subsegment's start and duration (-1 without one); ``line`` is 1-based."""

_FLAGS = ("error", "fault", "throttle")


def read_xray(path: str | Path) -> pd.DataFrame:
    """The segments of an ``xray.jsonl`` file, one row per document (blank lines skipped).

    Raises :class:`analysis.RunFormatError` with one line naming the file and the line for a
    document that is not JSON, not an object, or lacks or mistypes a field used here.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFormatError(f"{path.name}: unreadable ({type(exc).__name__}: {exc})") from None
    rows: list[tuple] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            rows.append(_segment_row(raw, f"{path.name}: line {number}", number))
    frame = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    ints = ("start_ns", "end_ns", "status", "init_start_ns", "init_ns", "line")
    return frame.astype({**dict.fromkeys(ints, "int64"), **dict.fromkeys(("in_progress", *_FLAGS), bool)})


def _segment_row(raw: str, where: str, number: int) -> tuple:
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RunFormatError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RunFormatError(
            f"{where}: expected a JSON object (a segment document), got {type(doc).__name__}"
        )
    for key in ("id", "trace_id", "name"):
        if not isinstance(doc.get(key), str):
            raise RunFormatError(f"{where}: {key}: expected a string, got {_shown(doc.get(key))}")
    if not TRACE_ID.fullmatch(doc["trace_id"]):
        raise RunFormatError(
            f"{where}: trace_id: expected 1-<8 hex digits>-<24 hex digits>, got {doc['trace_id']!r:.60}"
        )
    in_progress = doc.get("in_progress") is True
    start = _seconds(doc, "start_time", where)
    end = -1 if in_progress and "end_time" not in doc else _seconds(doc, "end_time", where)
    if end != -1 and end < start:
        raise RunFormatError(f"{where}: end_time is before start_time")
    flags = []
    for flag in _FLAGS:
        value = doc.get(flag, False)
        if not isinstance(value, bool):
            raise RunFormatError(f"{where}: {flag}: expected true or false, got {_shown(value)}")
        flags.append(value)
    status = -1
    http = doc.get("http")
    if http is not None:
        response = http.get("response") if isinstance(http, dict) else None
        code = response.get("status") if isinstance(response, dict) else None
        if code is not None:
            if isinstance(code, bool) or not isinstance(code, int):
                raise RunFormatError(
                    f"{where}: http.response.status: expected an integer, got {_shown(code)}"
                )
            status = code
    init_start, init = _initialization(doc, where)
    return (
        doc["trace_id"],
        doc["id"],
        doc["name"],
        str(doc.get("origin") or ""),
        str(doc.get("type") or "segment"),
        start,
        end,
        in_progress,
        *flags,
        status,
        init_start,
        init,
        number,
    )


def _initialization(doc: dict, where: str) -> tuple[int, int]:
    """(start, duration) in ns of the first ``Initialization`` (sub)segment in ``doc``, or (-1, -1)."""
    if doc["name"] == "Initialization" and doc.get("type") == "subsegment" and "end_time" in doc:
        start = _seconds(doc, "start_time", where)
        return start, _seconds(doc, "end_time", where) - start
    stack = [(doc.get("subsegments"), "subsegments")]
    while stack:
        subsegments, label = stack.pop()
        if subsegments is None:
            continue
        if not isinstance(subsegments, list):
            raise RunFormatError(f"{where}: {label}: expected a list, got {_shown(subsegments)}")
        for i, sub in enumerate(subsegments):
            here = f"{label}[{i}]"
            if not isinstance(sub, dict) or not isinstance(sub.get("name"), str):
                raise RunFormatError(f"{where}: {here}: expected an object with a name")
            if sub["name"] == "Initialization":
                start = _seconds(sub, "start_time", f"{where}: {here}")
                end = _seconds(sub, "end_time", f"{where}: {here}")
                return start, end - start
            stack.append((sub.get("subsegments"), f"{here}.subsegments"))
    return -1, -1


def _seconds(doc: dict, key: str, where: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RunFormatError(f"{where}: {key}: expected epoch seconds (a number), got {_shown(value)}")
    return round(value * 1e6) * 1000  # a double holds epoch seconds to about 0.2 us: keep whole us


def _shown(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r:.40}"


# -- the join ------------------------------------------------------------------------------------------


def xray_summary(ops: pd.DataFrame, segments: pd.DataFrame, phases: list[Phase]) -> dict:
    """The X-Ray figures of ``summary.json`` (module doc): join counts, per-phase times, cold starts."""
    closed = segments.loc[(segments["type"] != "subsegment").to_numpy() & ~segments["in_progress"].to_numpy()]
    spans = closed.groupby("trace_id", sort=True).agg(
        server_start=("start_ns", "min"),
        server_end=("end_ns", "max"),
        fault=("fault", "any"),
        error=("error", "any"),
        throttle=("throttle", "any"),
    )
    load = ops.loc[
        ops["kind"].isin(LOAD_KINDS).to_numpy(dtype=bool), ["trace_id", "endpoint", "start_ns", "end_ns"]
    ]
    traced = load.loc[load["trace_id"].notna().to_numpy(dtype=bool)]
    where = pd.Index(spans.index).get_indexer(traced["trace_id"].astype(object))
    hit = where >= 0
    rows = traced.loc[hit]
    span = spans.iloc[where[hit]]
    client = rows["end_ns"].to_numpy(dtype=np.int64) - rows["start_ns"].to_numpy(dtype=np.int64)
    server = span["server_end"].to_numpy(dtype=np.int64) - span["server_start"].to_numpy(dtype=np.int64)
    joined = pd.DataFrame(
        {
            "endpoint": rows["endpoint"].astype(str).to_numpy(dtype=object),
            "start_ns": rows["start_ns"].to_numpy(dtype=np.int64),
            "client_ms": client / 1e6,
            "server_ms": server / 1e6,
            "overhead_ms": (client - server) / 1e6,
            "fault": span["fault"].to_numpy(dtype=bool),
            "error": span["error"].to_numpy(dtype=bool),
            "throttle": span["throttle"].to_numpy(dtype=bool),
        }
    )
    matched = set(rows["trace_id"].astype(str))
    inits = segments.loc[segments["init_ns"].to_numpy() >= 0, ["init_start_ns", "init_ns"]]
    endpoints = sorted({str(e) for e in ops["endpoint"].unique() if e is not None})
    out = []
    for phase in phases:
        inside = (joined["start_ns"] >= phase.start_ns) & (joined["start_ns"] < phase.end_ns)
        part = joined.loc[inside.to_numpy()]
        rows_in = int(((load["start_ns"] >= phase.start_ns) & (load["start_ns"] < phase.end_ns)).sum())
        record = {"name": phase.name, **_times(part, rows_in)}
        record["endpoints"] = {}
        for name in endpoints:
            of_endpoint = (load["endpoint"] == name).to_numpy(dtype=bool)
            starts = load["start_ns"].to_numpy(dtype=np.int64)[of_endpoint]
            rows_e = int(((starts >= phase.start_ns) & (starts < phase.end_ns)).sum())
            record["endpoints"][name] = _times(part.loc[(part["endpoint"] == name).to_numpy()], rows_e)
        started = inits["init_start_ns"].to_numpy()
        init_ms = inits["init_ns"].to_numpy()[(started >= phase.start_ns) & (started < phase.end_ns)] / 1e6
        record["cold_starts"] = {
            "count": len(init_ms),
            **{f"{k}_ms": native(v) for k, v in percentiles(init_ms, LATENCY_PERCENTILES).items()},
            "max_ms": native(init_ms.max()) if len(init_ms) else None,
        }
        out.append(record)
    n_rows = len(load)
    return native(
        {
            "file": XRAY,
            "segments": len(segments),
            "in_progress": int(segments["in_progress"].sum()),
            "traces": len(spans),
            "rows": n_rows,
            "joined": len(joined),
            "coverage": len(joined) / n_rows if n_rows else None,
            "unmatched_traces": len(spans) - len(matched),
            "negative_overhead": int((joined["overhead_ms"] < 0).sum()),
            "cold_starts": len(inits),
            "phases": out,
        },
        RATE_DIGITS,
    )


def _times(part: pd.DataFrame, rows: int) -> dict:
    record: dict[str, Any] = {
        "rows": rows,
        "joined": len(part),
        "coverage": native(len(part) / rows, RATE_DIGITS) if rows else None,
        "faults": int(part["fault"].sum()),
        "errors": int(part["error"].sum()),
        "throttles": int(part["throttle"].sum()),
    }
    for column in ("client", "server", "overhead"):
        values = part[f"{column}_ms"].to_numpy(dtype=np.float64)
        record[column] = {
            **{f"{k}_ms": native(v) for k, v in percentiles(values, LATENCY_PERCENTILES).items()},
            "max_ms": native(values.max()) if len(values) else None,
        }
    return record
