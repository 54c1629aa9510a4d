"""The one reader of a run directory.

``load_run(path)`` reads every file that analysis needs, checks it against the contract in
``chaoscheck.runformat`` and returns a :class:`Run`. Anything that does not match raises
:class:`RunFormatError` with a single-line message naming the file (and column, line or key) and what
was expected, so the CLI can print it as it is and exit 2.

Required: ``run.json``, ``scenario.yaml``, ``ops.parquet``, ``faults.jsonl`` (may be empty).
Optional: ``timeline.parquet``, ``server_ops.parquet``, ``xray.jsonl`` (``analysis.xray``), and the
ledger columns added after the first run format (``intended_ns``, ``attempt``, ``trace_id``). What is
missing is analysed without and listed in :attr:`Run.notes`, as are an aborted run, a load window
that ``run.json`` left null (taken from the ledger) and workers whose last rows never arrived. A
malformed ``xray.jsonl`` is a note too: X-Ray figures are never needed for the verdict.
Extra columns in a table are ignored, so writers may add columns before readers use them.

Low-cardinality string columns (:data:`OPS_CATEGORICAL`) are read as pandas categoricals with sorted
categories (they compare, sort and group like strings, at one byte per row); the keys (``op_id``,
``trace_id``) stay Arrow-backed strings. No Python object is made per row.
"""

from __future__ import annotations

import ctypes
import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from chaoscheck import runformat as rf

READS_MODES = ("strong", "eventual")
"""Values of ``reads`` in the scenario: how the load's ``read`` operations read the counter."""

CONSISTENCY_SLO_KEYS = ("lost", "duplicated", "unexpected", "read_violations")
"""Keys of ``slo.consistency``: each a maximum count over the whole run."""

PHASE_SLO_KEYS = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "error_rate", "min_rps")
"""Keys of ``slo.baseline|fault|recovery``: maxima, except ``min_rps`` which is a minimum."""

PHASE_SLO_SECTIONS = ("baseline", "fault", "recovery")

AVAILABILITY_SLO = "availability"
"""``slo.availability``: the error budget's target, a share strictly between 0 and 1 (or null)."""

RESILIENCE_SLO = "resilience"
RESILIENCE_SLO_KEYS = ("stability_window", "ttr_s", "max_degradation_rs", "min_availability")
"""Numbers of ``slo.resilience``: seconds, seconds, request-seconds, a share. ``health`` and ``compare``
are mappings of :data:`HEALTH_SLO_KEYS` and :data:`COMPARE_SLO_KEYS`."""

HEALTH_SLO_KEYS = ("p99_ms", "error_rate", "min_rps")
"""Keys of ``slo.resilience.health``: limits of a healthy 1 s bucket (missing ones: ``slo.baseline``'s)."""

COMPARE_SLO_KEYS = ("p99_ms", "error_rate", "alpha")
"""Keys of ``slo.resilience.compare``: a ratio >= 1, an increase in [0, 1], a significance level in (0, 1)."""

SCALING_SLO = "scaling"
SCALING_SLO_KEYS = (
    "stability_window",
    "p95_ms",
    "reaction_s",
    "in_service_s",
    "p95_recovered_s",
    "replacement_in_service_s",
    "replacement_first_2xx_s",
    "lambda_cold_starts",
    "lambda_cold_start_ms",
    "lambda_throttle_rate",
)
"""Keys of ``slo.scaling`` (``analysis.scaling``): seconds, milliseconds, a count and a share."""

SLO_SECTIONS = ("consistency", *PHASE_SLO_SECTIONS, AVAILABILITY_SLO, RESILIENCE_SLO, SCALING_SLO)

_REQUIRED_META: dict[str, type | tuple[type, ...]] = {
    "run_id": str,
    "scenario": str,
    "target": str,
    "started_at": str,
    "ended_at": str,
}
_OPTIONAL_META: dict[str, type | tuple[type, ...]] = {
    "counter": str,
    "endpoints": dict,
    "aborted": bool,
    "load_started_ns": int,
    "load_ended_ns": int,
}

FAULT_COLUMNS = (
    "ts",
    "ts_ns",
    "fault_id",
    "event",
    "action",
    "target",
    "params",
    "window_s",
    "error",
    "line",
)
"""Columns of :attr:`Run.faults`, one row per journal line in file order (``line`` is 1-based)."""


class RunFormatError(Exception):
    """A run directory file is missing, unreadable or does not follow ``chaoscheck.runformat``.

    The message is one line that names the file and what was expected.
    """


@dataclass(frozen=True)
class Run:
    """Everything analysis reads from one run directory, checked against the contract."""

    path: Path
    meta: dict[str, Any]
    """``run.json`` as written, with ``aborted`` defaulted to False."""
    scenario: dict[str, Any]
    """``scenario.yaml`` as written (the resolved scenario)."""
    slo: dict[str, dict[str, float]]
    """``scenario.slo``, checked: sections and keys are known, thresholds are non-negative numbers.
    Null sections and null thresholds (the resolved scenario writes every key) are left out."""
    reads: str
    """``strong`` or ``eventual``."""
    ops: pd.DataFrame
    """``ops.parquet``: the columns of ``OPS_SCHEMA`` (``trace_id`` left out by ``load_run(lean=True)``
    when there is no ``xray.jsonl``); ``value`` and ``intended_ns`` are nullable ``Int64``, the columns
    of :data:`OPS_CATEGORICAL` categoricals, ``op_id`` and ``trace_id`` Arrow-backed strings."""
    faults: pd.DataFrame
    """``faults.jsonl``: columns :data:`FAULT_COLUMNS`, one row per line, file order."""
    timeline: pd.DataFrame | None = None
    """``timeline.parquet`` or None when the run has none."""
    server_ops: pd.DataFrame | None = None
    """``server_ops.parquet`` restricted to the run's counter, or None when the run has none."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Things the reader noticed that are not errors (e.g. ledger rows of other counters dropped), and
    what the run directory lacks (each one line, naming the file)."""
    xray: pd.DataFrame | None = None
    """``xray.jsonl`` as one row per segment (``analysis.xray.SEGMENT_COLUMNS``), or None."""
    xray_error: str | None = None
    """The one-line error of a malformed ``xray.jsonl`` (then ``xray`` is None)."""


def load_run(path: str | Path, *, lean: bool = False) -> Run:
    """Read and check the run directory at ``path``; raise :class:`RunFormatError` if it is not valid.

    ``lean=True`` leaves out what the analysis would not use: the ``trace_id`` column of ``ops``
    when the run has no ``xray.jsonl`` (at ten million rows, 0.4 GiB and half a second).
    """
    root = Path(path)
    if not root.is_dir():
        raise RunFormatError(f"{root}: not a run directory (expected a directory holding {rf.RUN_META})")
    notes: list[str] = []
    meta = _read_meta(root / rf.RUN_META)
    scenario = _read_scenario(root / rf.SCENARIO)
    slo = _check_slo(scenario.get("slo"))
    reads = scenario.get("reads", "strong")
    if reads not in READS_MODES:
        raise RunFormatError(f"{rf.SCENARIO}: reads: expected one of {', '.join(READS_MODES)}, got {reads!r}")
    if not (root / rf.OPS).exists() and (root / f"{rf.OPS}.partial").exists():
        raise RunFormatError(
            f"{rf.OPS}: missing; {rf.OPS}.partial is there: the run was killed before its ledger was "
            "closed, and a Parquet file without its footer cannot be read"
        )
    from analysis.xray import XRAY  # analysis.xray imports this module

    skip = ("trace_id",) if lean and not (root / XRAY).exists() else ()
    ops = _read_ops(root / rf.OPS, notes, skip=skip)
    _fill_load_window(meta, ops, notes)
    faults = _read_faults(root / rf.FAULTS)
    timeline = None
    if (root / rf.TIMELINE).exists():
        timeline = _read_table(root / rf.TIMELINE, rf.TIMELINE_SCHEMA)
    else:
        notes.append(f"{rf.TIMELINE}: missing: no capacity chart and no scaling times for this run")
    server_ops = None
    if (root / rf.SERVER_OPS).exists():
        server_ops = _read_table(root / rf.SERVER_OPS, rf.SERVER_OPS_SCHEMA, categorical=("counter",))
        counter = meta.get("counter")
        if counter is not None:
            mine = (server_ops["counter"] == counter).to_numpy(dtype=bool)
            if not mine.all():
                notes.append(f"{rf.SERVER_OPS}: ignored {int((~mine).sum())} rows of other counters")
                server_ops = server_ops.loc[mine].reset_index(drop=True)
    else:
        notes.append(
            f"{rf.SERVER_OPS}: missing: no store ledger, so lost and duplicated increments are only "
            "bounded (L <= V <= U), not counted"
        )
    if meta["aborted"]:
        notes.append(f"{rf.RUN_META}: the run was aborted: analysed with the rows recorded until it stopped")
    notes.extend(_load_notes(root / rf.LOAD))
    xray, xray_error = _read_xray(root, notes)
    return Run(
        path=root,
        meta=meta,
        scenario=scenario,
        slo=slo,
        reads=reads,
        ops=ops,
        faults=faults,
        timeline=timeline,
        server_ops=server_ops,
        notes=tuple(notes),
        xray=xray,
        xray_error=xray_error,
    )


def _fill_load_window(meta: dict[str, Any], ops: pd.DataFrame, notes: list[str]) -> None:
    """A load window that run.json left null (the load never reported it) is taken from the ledger."""
    missing = [key for key in ("load_started_ns", "load_ended_ns") if meta.get(key) is None]
    if not missing:
        return
    load = ops["kind"].isin(("increment", "read", "omitted")).to_numpy(dtype=bool)
    start = ops["start_ns"].to_numpy(dtype=np.int64)[load]
    first, last = (int(start.min()), int(start.max()) + 1) if len(start) else (0, 0)
    if meta.get("load_started_ns") is None:
        meta["load_started_ns"] = first
    if meta.get("load_ended_ns") is None:
        meta["load_ended_ns"] = max(last, meta["load_started_ns"])
    notes.append(
        f"{rf.RUN_META}: {' and '.join(missing)} null (the load never reported {_it(missing)}): "
        "the load window is taken from the ledger, from its first request to its last"
    )


def _it(items: list[str]) -> str:
    return "them" if len(items) > 1 else "it"


def _load_notes(path: Path) -> list[str]:
    """Notes from ``load.json``: workers whose last rows never reached the ledger."""
    if not path.exists():
        return []
    try:
        load = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return [f"{rf.LOAD}: unreadable, ignored"]
    workers = load.get("incomplete_workers") if isinstance(load, dict) else None
    if not workers:
        return []
    names = ", ".join(str(w) for w in workers) if isinstance(workers, list) else str(workers)
    return [f"{rf.LOAD}: the last rows of {names} never reached the ledger: the ledger is incomplete"]


def _read_xray(root: Path, notes: list[str]) -> tuple[pd.DataFrame | None, str | None]:
    from analysis.xray import XRAY, read_xray  # analysis.xray imports this module

    if not (root / XRAY).exists():
        return None, None
    try:
        return read_xray(root / XRAY), None
    except RunFormatError as exc:
        notes.append(f"{exc}; X-Ray figures left out")
        return None, str(exc)


# -- run.json -----------------------------------------------------------------------------------------


def _read_meta(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFormatError(f"{path.name}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise RunFormatError(f"{path.name}: expected a JSON object, got {type(meta).__name__}")
    for key, kind in _REQUIRED_META.items():
        if key not in meta:
            raise RunFormatError(f"{path.name}: missing key {key!r} (expected {_type_name(kind)})")
        _check_type(path.name, key, meta[key], kind)
    for key, kind in _OPTIONAL_META.items():
        if meta.get(key) is not None:
            _check_type(path.name, key, meta[key], kind)
    started, ended = meta.get("load_started_ns"), meta.get("load_ended_ns")
    if started is not None and ended is not None and ended < started:
        raise RunFormatError(f"{path.name}: load_ended_ns is before load_started_ns")
    meta = dict(meta)
    meta["aborted"] = bool(meta.get("aborted") or False)
    return meta


def _check_type(file: str, key: str, value: Any, kind: type | tuple[type, ...]) -> None:
    # bool is an int in Python; a boolean where a number is expected is a writer bug.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise RunFormatError(
            f"{file}: key {key!r}: expected {_type_name(kind)}, got {type(value).__name__} {value!r:.60}"
        )


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", dict: "an object", bool: "a boolean", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


# -- scenario.yaml -------------------------------------------------------------------------------------


def _read_scenario(path: Path) -> dict[str, Any]:
    text = _read_text(path)
    try:
        scenario = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFormatError(f"{path.name}: not valid YAML ({first})") from None
    if not isinstance(scenario, dict):
        raise RunFormatError(
            f"{path.name}: expected a mapping at the top level, got {type(scenario).__name__}"
        )
    return scenario


def _check_slo(slo: Any) -> dict[str, Any]:
    """``slo`` checked: known sections and keys, numbers in range; null sections are empty, null keys dropped.

    Phase and consistency sections become ``{key: number}``; ``availability`` a number (absent when
    null); ``resilience`` ``{key: number, "health": {...}, "compare": {...}}``.
    """
    if slo is None:
        return {}
    if not isinstance(slo, dict):
        raise RunFormatError(f"{rf.SCENARIO}: slo: expected a mapping, got {type(slo).__name__}")
    checked: dict[str, Any] = {}
    for section, limits in slo.items():
        where = f"{rf.SCENARIO}: slo.{section}"
        if section == AVAILABILITY_SLO:
            if limits is not None:
                checked[section] = _slo_number(where, limits, low=0, high=1, open_bounds=True)
            continue
        if section == SCALING_SLO:
            checked[section] = _check_scaling_slo(where, limits)
            continue
        if section == "consistency":
            allowed: tuple[str, ...] = CONSISTENCY_SLO_KEYS
        elif section in PHASE_SLO_SECTIONS:
            allowed = PHASE_SLO_KEYS
        elif section == RESILIENCE_SLO:
            allowed = (*RESILIENCE_SLO_KEYS, "health", "compare")
        else:
            raise RunFormatError(f"{where}: unknown section, expected one of {', '.join(SLO_SECTIONS)}")
        limits = _slo_mapping(where, limits, allowed)
        if section != RESILIENCE_SLO:
            checked[section] = {
                key: _slo_number(f"{where}.{key}", value, high=1 if key == "error_rate" else None)
                for key, value in limits.items()
            }
            continue
        resilience: dict[str, Any] = {}
        for key, value in limits.items():
            if key in ("health", "compare"):
                continue
            if key == "stability_window":
                resilience[key] = _slo_number(f"{where}.{key}", value, open_bounds=True)
            else:
                resilience[key] = _slo_number(
                    f"{where}.{key}", value, high=1 if key == "min_availability" else None
                )
        health = _slo_mapping(f"{where}.health", limits.get("health"), HEALTH_SLO_KEYS)
        resilience["health"] = {
            key: _slo_number(f"{where}.health.{key}", value, high=1 if key == "error_rate" else None)
            for key, value in health.items()
        }
        compare = _slo_mapping(f"{where}.compare", limits.get("compare"), COMPARE_SLO_KEYS)
        bounds: dict[str, dict[str, Any]] = {
            "p99_ms": {"low": 1},
            "error_rate": {"high": 1},
            "alpha": {"high": 1, "open_bounds": True},
        }
        resilience["compare"] = {
            key: _slo_number(f"{where}.compare.{key}", value, **bounds[key]) for key, value in compare.items()
        }
        checked[section] = resilience
    return checked


def _slo_mapping(where: str, limits: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The keys of one SLO mapping whose value is not null; null or absent is an empty mapping."""
    if limits is None:
        return {}
    if not isinstance(limits, dict):
        raise RunFormatError(f"{where}: expected a mapping of thresholds")
    for key in limits:
        if key not in allowed:
            raise RunFormatError(f"{where}.{key}: unknown key, expected one of {', '.join(allowed)}")
    # the resolved scenario writes every key; null means "not checked"
    return {key: value for key, value in limits.items() if value is not None}


def _slo_number(
    where: str, value: Any, *, low: float = 0, high: float | None = None, open_bounds: bool = False
) -> float:
    """``value`` if it is a finite number in [low, high] (or (low, high) when ``open_bounds``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RunFormatError(f"{where}: expected a number, got {value!r}")
    if open_bounds:
        inside = low < value and (high is None or value < high)
        bound = f"between {low} and {high}, exclusive" if high is not None else f"above {low}"
    else:
        inside = low <= value and (high is None or value <= high)
        if high is not None:
            bound = f"between {low} and {high}"
        else:
            bound = "not negative" if low == 0 else f"at least {low}"
    if not inside:
        raise RunFormatError(f"{where}: expected {bound}, got {value!r}")
    return value


# -- parquet tables --------------------------------------------------------------------------------


OPS_ADDED_COLUMNS: dict[str, Any] = {"intended_ns": None, "attempt": 0, "trace_id": None}
"""Ledger columns added after the first run format, with the value a ledger without them means."""

_ADDED_COLUMN_NOTES = {
    "intended_ns": "no due times: latency is corrected for coordinated omission only by back-fill "
    "when the scenario has load.pacing",
    "attempt": "every row is taken as a first attempt",
    "trace_id": "X-Ray segments cannot be joined to requests",
}

OPS_CATEGORICAL = ("kind", "endpoint", "counter", "outcome", "error", "served_by", "worker")
"""String columns of ``ops.parquet`` with few distinct values: read as categoricals (sorted categories)."""


def _read_ops(path: Path, notes: list[str] | None = None, skip: tuple[str, ...] = ()) -> pd.DataFrame:
    ops = _read_table(
        path, rf.OPS_SCHEMA, defaults=OPS_ADDED_COLUMNS, categorical=OPS_CATEGORICAL, notes=notes, skip=skip
    )
    for column, allowed in (("kind", rf.KINDS), ("outcome", rf.OUTCOMES)):
        bad = ~ops[column].isin(allowed).to_numpy(dtype=bool)
        if bad.any():
            sample = ops[column].iloc[int(np.argmax(bad))]
            raise RunFormatError(
                f"{path.name}: column {column!r}: expected one of {', '.join(allowed)}, "
                f"got {sample!r} on {int(bad.sum())} rows"
            )
    missing_key = ops["op_id"].isna().to_numpy(dtype=bool) & (ops["kind"] == "increment").to_numpy(dtype=bool)
    if missing_key.any():
        raise RunFormatError(
            f"{path.name}: column 'op_id': null on {int(missing_key.sum())} increment rows "
            "(expected the idempotency key)"
        )
    return ops


def _read_table(
    path: Path,
    schema: pa.Schema,
    defaults: dict[str, Any] | None = None,
    categorical: tuple[str, ...] = (),
    notes: list[str] | None = None,
    skip: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read a parquet file, keep the schema's columns, cast to the schema's types, check nulls.

    A column named in ``defaults`` may be absent (older run directories); it is then filled with its
    default value, and a line goes to ``notes``. String columns named in ``categorical`` become
    categoricals with sorted categories. A file that is not Parquet, is truncated or has a corrupt
    page raises :class:`RunFormatError` naming the file (and the column, when one is at fault).
    Columns in ``skip`` are neither read nor returned.
    """
    if not path.exists():
        raise RunFormatError(f"{path.name}: missing (expected a Parquet file in the run directory)")
    try:
        with pq.ParquetFile(path) as parquet:
            file_schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise RunFormatError(f"{path.name}: not a readable Parquet file ({_reason(exc)})") from None
    schema = pa.schema([spec for spec in schema if spec.name not in skip])
    present = [spec.name for spec in schema if spec.name in file_schema.names]
    for spec in schema:
        if spec.name not in present and (defaults is None or spec.name not in defaults):
            raise RunFormatError(f"{path.name}: missing column {spec.name!r} (expected {spec.type})")
    as_dictionary = [
        name for name in categorical if name in present and pa.types.is_string(file_schema.field(name).type)
    ]
    table = _read_columns(path, present, as_dictionary)
    columns: dict[str, pd.Series] = {}
    for spec in schema:
        if spec.name not in present:
            default = defaults[spec.name]  # type: ignore[index]
            if notes is not None:
                notes.append(
                    f"{path.name}: no column {spec.name!r} (a ledger from before it): "
                    f"{_ADDED_COLUMN_NOTES.get(spec.name, 'taken as ' + repr(default))}"
                )
            if default is None:
                column = pa.nulls(table.num_rows, spec.type)
            else:
                column = pa.array(np.full(table.num_rows, default), type=spec.type)
        else:
            column = table.column(spec.name)
        if not spec.nullable and column.null_count:
            raise RunFormatError(
                f"{path.name}: column {spec.name!r}: {column.null_count} null values (expected none)"
            )
        if spec.name in as_dictionary:
            series = column.to_pandas()
            columns[spec.name] = series.cat.reorder_categories(sorted(series.cat.categories))
            continue
        if column.type != spec.type:
            try:
                column = column.cast(spec.type)
            except (pa.ArrowException, ValueError):
                raise RunFormatError(
                    f"{path.name}: column {spec.name!r}: expected {spec.type}, got {column.type}"
                ) from None
        if pa.types.is_integer(spec.type) and spec.nullable:
            columns[spec.name] = column.to_pandas(types_mapper={spec.type: pd.Int64Dtype()}.get)
        else:
            columns[spec.name] = column.to_pandas()
    del table
    pa.default_memory_pool().release_unused()  # the decoding buffers: back to the system, not kept
    return pd.DataFrame(columns, copy=False)


def _read_columns(path: Path, columns: list[str], as_dictionary: list[str]) -> pa.Table:
    """The columns of a Parquet file; a column that cannot be decoded is named in the error."""
    try:
        return pq.read_table(path, columns=columns, read_dictionary=as_dictionary)
    except (pa.ArrowException, OSError) as exc:
        reason = _reason(exc)
    for name in columns:  # which column is at fault?
        try:
            pq.read_table(path, columns=[name])
        except (pa.ArrowException, OSError) as exc:
            raise RunFormatError(f"{path.name}: column {name!r}: unreadable ({_reason(exc)})") from None
    raise RunFormatError(f"{path.name}: not a readable Parquet file ({reason})")


LARGE_LEDGER_BYTES = 64 * 2**20
"""An ``ops.parquet`` at least this large (about 1.5 million rows) is analysed in
:func:`keep_freed_memory`."""

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters (malloc.h)


@contextmanager
def keep_freed_memory(enabled: bool = True) -> Iterator[None]:
    """Within: freed memory stays in the process for the next allocation (glibc only; else nothing).

    By default glibc hands every large block (a numpy array of a million rows) back to the kernel
    when it is freed, and the next one is faulted in and zeroed afresh; Arrow's pool keeps its own
    pages apart from numpy's. At ten million rows that zeroing was 40 % of the analysis's time
    (``docs/performance.md``). Inside, glibc serves every block from its heap and keeps what is
    freed, and Arrow allocates through glibc too; on the way out the defaults come back and the
    heap is trimmed, so a long-lived process (a notebook) gets its memory back.
    """
    libc = _glibc() if enabled else None
    if libc is None:
        yield
        return
    pool = pa.default_memory_pool()
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**40)
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(pool)
        libc.mallopt(_M_MMAP_MAX, 65536)  # glibc's defaults
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
        libc.malloc_trim(0)


def _glibc() -> Any:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 (musl has no such symbol)
        return libc
    except (OSError, AttributeError):
        return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- faults.jsonl ----------------------------------------------------------------------------------


def _read_faults(path: Path) -> pd.DataFrame:
    text = _read_text(path)
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path.name}: line {number}"
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RunFormatError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(line, dict):
            raise RunFormatError(f"{where}: expected a JSON object, got {type(line).__name__}")
        for key, kind in (("ts_ns", int), ("fault_id", int), ("event", str)):
            if key not in line:
                raise RunFormatError(f"{where}: missing field {key!r} (expected {_type_name(kind)})")
            _check_type(where, key, line[key], kind)
        if line["event"] not in rf.JOURNAL_EVENTS:
            raise RunFormatError(
                f"{where}: event: expected one of {', '.join(rf.JOURNAL_EVENTS)}, got {line['event']!r}"
            )
        window = line.get("window_s")
        if line["event"] == "inject":
            if window is None:
                raise RunFormatError(f"{where}: missing field 'window_s' (expected a number on inject lines)")
            _check_type(where, "window_s", window, (int, float))
            if not math.isfinite(window) or window < 0:
                raise RunFormatError(f"{where}: window_s: expected a non-negative number, got {window!r}")
        params = line.get("params")
        rows.append(
            {
                "ts": str(line.get("ts", "")),
                "ts_ns": line["ts_ns"],
                "fault_id": line["fault_id"],
                "event": line["event"],
                "action": str(line.get("action", "")),
                "target": str(line.get("target", "")),
                "params": params if isinstance(params, dict) else {},
                "window_s": float(window) if window is not None else math.nan,
                "error": str(line["error"]) if line.get("error") is not None else None,
                "line": number,
            }
        )
    frame = pd.DataFrame(rows, columns=list(FAULT_COLUMNS))
    return frame.astype({"ts_ns": "int64", "fault_id": "int64", "window_s": "float64", "line": "int64"})


def _read_text(path: Path) -> str:
    if not path.exists():
        raise RunFormatError(f"{path.name}: missing (expected it in the run directory {path.parent})")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFormatError(f"{path.name}: unreadable ({type(exc).__name__}: {exc})") from None


# -- scaling: slo.scaling and scaling.parquet (analysis.scaling) -----------------------------------


def _check_scaling_slo(where: str, limits: Any) -> dict[str, float]:
    """``slo.scaling`` checked: known keys, numbers >= 0 (``stability_window`` and ``p95_ms`` above 0,
    ``lambda_throttle_rate`` at most 1); null keys dropped, a null section is empty."""
    limits = _slo_mapping(where, limits, SCALING_SLO_KEYS)
    checked = {}
    for key, value in limits.items():
        strict = key in ("stability_window", "p95_ms", "lambda_cold_start_ms")
        high = 1 if key == "lambda_throttle_rate" else None
        checked[key] = _slo_number(f"{where}.{key}", value, high=high, open_bounds=strict and high is None)
    return checked


def read_scaling(path: str | Path) -> pd.DataFrame | None:
    """``scaling.parquet`` of the run directory at ``path`` (``SCALING_SCHEMA``), None when it has none.

    Optional: only targets that record scaling activities (the local stack) write it. Raises
    :class:`RunFormatError` when the file is there but does not follow the schema.
    """
    file = Path(path) / rf.SCALING
    if not file.exists():
        return None
    activities = _read_table(file, rf.SCALING_SCHEMA)
    for column, allowed in (("resource", rf.SCALING_RESOURCES), ("status", rf.SCALING_STATUSES)):
        bad = ~activities[column].isin(allowed)
        if bad.any():
            raise RunFormatError(
                f"{file.name}: column {column!r}: expected one of {', '.join(allowed)}, "
                f"got {activities.loc[bad, column].iloc[0]!r} on {int(bad.sum())} rows"
            )
    return activities.sort_values(["start_ns", "activity_id"], kind="stable").reset_index(drop=True)
