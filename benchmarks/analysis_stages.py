"""Where ``chaoscheck analyze`` spends its time and memory: its stages timed one after another in one
process, with the resident set sampled every 2 ms by a thread.

Run it on a run directory, e.g. one kept by ``analysis_scale.py --keep /tmp/scale``. It wraps the
stages ``analysis.summary`` calls (the counter checker, the phases, recovery, budget, comparison,
scaling, top errors, X-Ray) by name, so what it times is the code ``analyze`` runs, then the
per-second series and the report files. Prints one line per stage (wall seconds, peak RSS during
it, RSS after it) and last ``analysis_stages_peak_gib: <peak RSS of the whole process>``.

    /work/venv/bin/python benchmarks/analysis_stages.py /tmp/scale/run-10000000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAGE = os.sysconf("SC_PAGE_SIZE")
WRAPPED = ("check_counter", "load_arrays", "_latency", "load_events", "health_buckets", "recovery_by_fault",
           "error_budget", "compare_recovery", "scaling_analysis", "top_errors", "_xray")  # fmt: skip
"""The functions of ``analysis.summary`` timed as stages (looked up in its namespace)."""


class Stages:
    """The current stage's name, its start, and the highest RSS seen during each stage."""

    def __init__(self) -> None:
        self.name, self.started, self.peaks = "starting and importing", time.perf_counter(), {}
        self.rows: list[tuple[str, float, float, float]] = []
        threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def rss() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * PAGE / 2**30

    def _sample(self) -> None:
        while True:
            name, now = self.name, self.rss()
            self.peaks[name] = max(self.peaks.get(name, 0.0), now)
            time.sleep(0.002)

    def next(self, name: str) -> None:
        now = time.perf_counter()
        self.rows.append((self.name, now - self.started, self.peaks.get(self.name, 0.0), self.rss()))
        self.name, self.started = name, time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (its report files are rewritten)")
    args = parser.parse_args(argv)
    stages = Stages()

    import analysis.summary as summary_module
    from analysis.rundir import keep_freed_memory, load_run
    from analysis.series import per_second
    from reports.html import write_report
    from reports.junit import write_junit
    from reports.markdown import write_markdown

    def timed(name: str) -> None:
        inner = getattr(summary_module, name)

        def wrapper(*a: object, **k: object) -> object:
            stages.next(name)
            try:
                return inner(*a, **k)
            finally:
                stages.next("summary: the rest")

        setattr(summary_module, name, wrapper)

    for name in WRAPPED:
        timed(name)
    stages.next("load_run")
    with keep_freed_memory(True):  # as analyze does for a large ledger
        run = load_run(args.run_dir, lean=True)
        stages.next("summary: the rest")
        summary, arrays = summary_module._summarize(run, None)
        stages.next("per_second")
        series = per_second(run.ops, run.meta["load_started_ns"], run.meta["load_ended_ns"], arrays=arrays)
        stages.next("report files")
        write_junit(args.run_dir, summary)
        write_markdown(args.run_dir, summary)
        write_report(args.run_dir, summary_module.Analysis(run=run, summary=summary, series=series))
        stages.next("end")
    merged: dict[str, list[float]] = {}
    for name, wall, peak, after in stages.rows:
        if wall < 0.005 and name == "summary: the rest":
            continue
        row = merged.setdefault(name, [0.0, 0.0, 0.0])
        row[0] += wall
        row[1] = max(row[1], peak)
        row[2] = after
    print(f"{'stage':26s} {'wall s':>7s} {'peak GiB':>9s} {'after GiB':>10s}")
    for name, (wall, peak, after) in merged.items():
        print(f"{name:26s} {wall:7.2f} {peak:9.2f} {after:10.2f}")
    print(f"total {time.perf_counter() - started:.2f} s (the sampler thread adds a little)")
    print(f"analysis_stages_peak_gib: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
