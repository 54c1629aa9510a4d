"""Analysis of a run directory: pure functions from its tables to result records.

One module per property, Jepsen style (each result carries its evidence, not just a boolean):
``consistency`` (the counter checker), ``phases`` (phases from the fault journal and their request
statistics), ``series`` (per-second buckets for charts), ``checks`` (SLO thresholds), composed by
``summary`` into ``summary.json``. ``rundir`` is the one reader of the run directory.
"""

from analysis.rundir import Run, RunFormatError, load_run
from analysis.summary import Analysis, analyze, summarize, write_summary

__all__ = ["Analysis", "Run", "RunFormatError", "analyze", "load_run", "summarize", "write_summary"]
