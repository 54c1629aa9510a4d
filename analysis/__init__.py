"""Analysis of a run directory: pure functions from its tables to result records.

One module per property, Jepsen style (each result carries its evidence, not just a boolean):
``consistency`` (the counter checker), ``phases`` (phases from the fault journal and their request
statistics, latency raw and corrected for coordinated omission), ``series`` (per-second buckets for
charts), ``xray`` (X-Ray segments joined to the ledger), ``checks`` (SLO thresholds), composed by
``summary`` into ``summary.json``. ``rundir`` is the one reader of the run directory.

For notebooks (docs/analysis.md, "For notebook users")::

    import analysis
    run = analysis.load_run("runs/20261128T221021Z-smoke")   # analysis.RunFormatError if invalid
    frames = analysis.tables(run)                             # {"ops": DataFrame, "server_ops": ..., ...}
    result = analysis.check(run, "consistency")               # one check's record, with its evidence
    analysis.check(run, "baseline.p95_ms")                    # an SLO check, with the phase it measured
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.rundir import Run, RunFormatError, load_run
from analysis.summary import Analysis, analyze, summarize, write_summary

__all__ = [
    "CHECKS",
    "Analysis",
    "Run",
    "RunFormatError",
    "analyze",
    "check",
    "load_run",
    "summarize",
    "tables",
    "write_summary",
]

CHECKS = ("consistency", "latency", "xray")
"""Checks :func:`check` runs by themselves; any other name is one of ``summary.json``'s checks."""


def tables(run: Run | str | Path) -> dict[str, pd.DataFrame]:
    """The run's tables as DataFrames: ``ops``, ``faults`` and, when the run has them, ``server_ops``,
    ``timeline`` and ``xray`` (one row per X-Ray segment). ``run`` is a :class:`Run` or a path."""
    run = _run(run)
    frames = {"ops": run.ops, "faults": run.faults}
    for name in ("server_ops", "timeline", "xray"):
        frame = getattr(run, name)
        if frame is not None:
            frames[name] = frame
    return frames


def check(run: Run | str | Path, name: str) -> dict:
    """One check of a run, as a JSON-ready record with its evidence.

    * ``consistency``: the counter checker's record (``analysis.consistency.check_counter``):
      ``valid``, the counts, and for every anomaly class its count and first examples.
    * ``latency``: ``{"method", "phases", "load", "notes"}``: per phase and endpoint the exact
      percentiles, raw and corrected for coordinated omission, and the omission detectors.
    * ``xray``: the X-Ray join (``analysis.xray.xray_summary``); ``None`` without ``xray.jsonl``.
    * any name in ``summary.json``'s ``checks`` (``consistency.valid``, ``baseline.p95_ms``,
      ``fault-1.error_rate``, ...): that check record, plus ``evidence``: the phase record it
      measured, or the consistency record for ``consistency.*``, or the fault for ``<fault>.*``.

    Raises ``KeyError`` naming the checks there are when ``name`` is none of them.
    """
    from analysis import summary as summary_module

    run = _run(run)
    if name == "consistency":
        from analysis.consistency import check_counter

        return check_counter(run.ops, run.server_ops, run.reads)
    lo, hi = run.meta["load_started_ns"], run.meta["load_ended_ns"]
    from analysis.phases import fault_windows, phases_from_journal

    phase_list = phases_from_journal(fault_windows(run.faults), lo, hi)
    if name == "latency":
        phases, overall, method, notes = summary_module._latency(run, phase_list)
        return {"method": method, "phases": phases, "load": overall, "notes": notes}
    if name == "xray":
        return summary_module._xray(run, phase_list)
    summary = summarize(run)
    found = {c["name"]: c for c in summary["checks"]}
    if name not in found:
        known = ", ".join([*CHECKS, *found])
        raise KeyError(f"no check {name!r} in this run; there are: {known}")
    record = dict(found[name])
    prefix = name.split(".", 1)[0]
    if prefix == "consistency":
        record["evidence"] = summary["consistency"]
    else:
        phases = {p["name"]: p for p in summary["phases"]}
        faults = {f["name"]: f for f in summary["faults"]}
        record["evidence"] = phases.get(record.get("phase") or prefix) or faults.get(prefix)
    return record


def _run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(run)
