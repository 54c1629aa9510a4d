"""The summary of a run: every checker composed into one record, written as ``summary.json``.

``summarize(run)`` is pure. ``write_summary(run_dir)`` and ``analyze(run_dir)`` read the run
directory and write ``summary.json`` atomically (a temporary file in the same directory, then a
rename). The output is deterministic: the same files give a byte-identical ``summary.json`` (keys
sorted, floats rounded by ``analysis.evidence``, no wall-clock time, no absolute paths).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.budget import error_budget
from analysis.checks import evaluate_checks
from analysis.compare import compare_recovery
from analysis.consistency import check_counter
from analysis.evidence import RATE_DIGITS, native
from analysis.phases import (
    LoadArrays,
    Phase,
    fault_windows,
    iso,
    latency_method,
    load_arrays,
    phase_notes,
    phase_stats,
    phases_from_journal,
    request_stats,
    scenario_pacing_s,
)
from analysis.recovery import health_buckets, load_events, recovery_by_fault
from analysis.rundir import LARGE_LEDGER_BYTES, Run, keep_freed_memory, load_run
from analysis.scaling import scaling_analysis, scaling_checks
from analysis.series import per_second
from analysis.xray import XRAY, xray_summary
from chaoscheck import runformat as rf

SCHEMA_VERSION = 1
TOP_ERRORS = 10
"""How many distinct error texts the summary lists (most frequent first)."""
ERROR_CHARS = 300
"""Error texts are cut to this many characters in the summary."""


@dataclass(frozen=True)
class Analysis:
    """What ``analyze`` produced: the run it read, its summary and its per-second series."""

    run: Run
    summary: dict
    series: pd.DataFrame


def summarize(run: Run, *, arrays: LoadArrays | None = None) -> dict:
    """Compose consistency, phases and checks into the summary record (see docs/run-format.md).

    ``arrays`` (``analysis.phases.load_arrays(run.ops)``) saves converting the rows once more."""
    return _summarize(run, arrays)[0]


def _summarize(run: Run, arrays: LoadArrays | None) -> tuple[dict, LoadArrays]:
    """The summary, and the load's arrays it was computed from (for the per-second series)."""
    meta = run.meta
    lo, hi = meta["load_started_ns"], meta["load_ended_ns"]
    consistency = check_counter(run.ops, run.server_ops, run.reads)
    # The arrays only now: the consistency check's key table sets the peak of memory of a large
    # run, and these would be held on top of it.
    arrays = arrays if arrays is not None else load_arrays(run.ops)
    windows = fault_windows(run.faults)
    phases, overall, latency, latency_notes = _latency(run, phases_from_journal(windows, lo, hi), arrays)
    aborted_faults = sum(not w.effective for w in windows)
    halts = run.faults.loc[run.faults["event"] == "halt"]
    halted = None
    if not halts.empty:
        first = halts.sort_values(["ts_ns", "line"]).iloc[0]
        halted = {"at": first["ts"], "ts_ns": int(first["ts_ns"]), "reason": first["error"]}
    aborted = bool(meta["aborted"] or halted is not None)
    # recovery, error budget, baseline versus recovery: one pass over the rows, then 1 s buckets
    events = load_events(run.ops)
    buckets = health_buckets(events, lo, hi)
    recoveries = recovery_by_fault(events, buckets, windows, phases, run.slo, lo, hi)
    faults = [{**_fault_record(w, lo), "recovery": recoveries.get(w.fault_id)} for w in windows]
    budget = error_budget(events, phases, run.slo.get("availability"), lo, hi)
    comparison = compare_recovery(buckets, phases, run.slo)
    checks = evaluate_checks(
        run.slo,
        consistency,
        phases,
        aborted=aborted,
        aborted_faults=aborted_faults,
        abort_reason=halted["reason"] if halted else None,
        faults=faults,
        budget=budget,
        comparison=comparison,
    )
    scaling = scaling_analysis(run, arrays=arrays)
    checks += scaling_checks(scaling, run.slo)
    failed = [c["name"] for c in checks if not c["passed"]]
    summary = {
        "schema_version": SCHEMA_VERSION,
        "run_id": meta["run_id"],
        "scenario": meta["scenario"],
        "target": meta["target"],
        "counter": meta.get("counter"),
        "started_at": meta["started_at"],
        "ended_at": meta["ended_at"],
        "load_started": iso(lo),
        "load_ended": iso(hi),
        "load_started_ns": lo,
        "load_ended_ns": hi,
        "duration_s": (hi - lo) / 1e9,
        "aborted": aborted,
        "halted": halted,
        "reads": run.reads,
        "slo": run.slo,
        "verdict": "fail" if failed else "pass",
        "failed_checks": failed,
        "checks": checks,
        "consistency": consistency,
        "load": overall if overall is not None else request_stats(_empty_rows(), 0.0),
        "phases": phases,
        "faults": faults,
        "budget": budget,
        "comparison": comparison,
        # Shown when the target recorded scaling activities; the checks above run either way.
        "scaling": scaling if (Path(run.path) / rf.SCALING).exists() else None,
        "errors": top_errors(run.ops),
        "latency": latency,
        "xray": _xray(run, phases_from_journal(windows, lo, hi)),
        "notes": [*run.notes, *latency_notes],
    }
    return native(summary, RATE_DIGITS), arrays


def _latency(
    run: Run, phase_list: list[Phase], arrays: LoadArrays | None = None
) -> tuple[list[dict], dict | None, dict, list[str]]:
    """Phase figures, the whole load's figures, ``summary.latency`` and the phases' notes, in one pass
    over the rows (analysis.phases)."""
    lo, hi = run.meta["load_started_ns"], run.meta["load_ended_ns"]
    arrays = arrays if arrays is not None else load_arrays(run.ops)
    pacing = scenario_pacing_s(run.scenario)
    whole = [Phase("load", "load", lo, hi)] if hi > lo else []
    stats = phase_stats(run.ops, [*phase_list, *whole], lo, pacing_s=pacing, arrays=arrays)
    phases, overall = (stats[:-1], stats[-1]) if whole else (stats, None)
    method = latency_method(arrays, pacing)
    notes = phase_notes(phases)
    if method["corrected"] is None and len(arrays.start):
        notes.append(
            "latency: no due times (intended_ns) and no load.pacing: a closed-loop run, latency is raw "
            "only and under-samples slow periods (coordinated omission)"
        )
    elif method["corrected"] == "backfill":
        notes.append(
            f"latency: no due times (intended_ns): corrected by HdrHistogram's back-fill at the "
            f"load.pacing interval of {method['interval_ms']} ms"
        )
    return phases, overall, method, notes


def _xray(run: Run, phase_list: list[Phase]) -> dict | None:
    """``summary.xray``: None without ``xray.jsonl``; ``{"error": ...}`` when it is malformed."""
    if run.xray_error is not None:
        return {"file": XRAY, "error": run.xray_error}
    if run.xray is None:
        return None
    lo, hi = run.meta["load_started_ns"], run.meta["load_ended_ns"]
    whole = [Phase("load", "load", lo, hi)] if hi > lo else []
    return xray_summary(run.ops, run.xray, [*phase_list, *whole])


def top_errors(ops: pd.DataFrame, limit: int = TOP_ERRORS) -> list[dict]:
    """The most frequent error texts over all rows: count, kinds, endpoints, first time seen."""
    rows = ops.loc[ops["error"].notna(), ["error", "kind", "endpoint", "status", "start_ns"]]
    if rows.empty:
        return []
    rows = rows.assign(error=rows["error"].astype(str).str.slice(0, ERROR_CHARS))
    grouped = rows.groupby("error", sort=True)
    table = grouped.agg(count=("start_ns", "size"), first_ns=("start_ns", "min")).reset_index()
    table = table.sort_values(["count", "error"], ascending=[False, True], kind="stable").head(limit)
    statuses = rows.groupby(["error", "status"], sort=True).size()
    endpoints = rows.groupby(["error", "endpoint"], sort=True).size()
    return [
        {
            "error": error,
            "count": int(count),
            "first_ns": int(first_ns),
            "first_at": iso(first_ns),
            "statuses": {str(int(s)): int(n) for s, n in statuses.loc[error].items()},
            "endpoints": {str(e): int(n) for e, n in endpoints.loc[error].items()},
        }
        for error, count, first_ns in table.itertuples(index=False, name=None)
    ]


def dumps(summary: dict) -> str:
    """The canonical text of ``summary.json``: sorted keys, 2-space indent, UTF-8, final newline."""
    return json.dumps(summary, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_summary(run_dir: str | Path, run: Run | None = None) -> dict:
    """Load the run (unless given), summarize it and write ``summary.json`` atomically; return it."""
    run = run if run is not None else load_run(run_dir)
    summary = summarize(run)
    write_atomic(Path(run_dir) / rf.SUMMARY, dumps(summary))
    return summary


def analyze(run_dir: str | Path) -> Analysis:
    """The CLI's entry: read the run directory, write ``summary.json``, return everything computed.

    Raises ``analysis.RunFormatError`` (one-line message) when the run directory is not valid.
    ``reports.write_report(run_dir, analysis)`` renders the report from the result without rereading.
    """
    ledger = Path(run_dir) / rf.OPS
    with keep_freed_memory(ledger.exists() and ledger.stat().st_size >= LARGE_LEDGER_BYTES):
        run = load_run(run_dir, lean=True)  # without trace ids unless there are X-Ray segments to join
        summary, arrays = _summarize(run, None)  # the load's rows as arrays, once for both
        write_atomic(Path(run_dir) / rf.SUMMARY, dumps(summary))
        series = per_second(run.ops, run.meta["load_started_ns"], run.meta["load_ended_ns"], arrays=arrays)
    return Analysis(run=run, summary=summary, series=series)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename.

    The temporary file is created like any other file (mode from the umask), so the result has the
    same permissions as the rest of the run directory.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fault_record(window, load_started_ns: int) -> dict:
    return {
        "fault_id": window.fault_id,
        "name": f"fault-{window.fault_id + 1}",
        "action": window.action,
        "target": window.target,
        "params": window.params,
        "effective": window.effective,
        "rolled_back": window.rolled_back,
        "window_s": window.window_s,
        "inject": iso(window.inject_ns),
        "end": iso(window.end_ns),
        "inject_ns": window.inject_ns,
        "end_ns": window.end_ns,
        "inject_s": (window.inject_ns - load_started_ns) / 1e9,
        "end_s": (window.end_ns - load_started_ns) / 1e9,
        "error": window.error,
    }


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame({"outcome": [], "latency_ms": [], "corrected_ms": [], "status": []})
