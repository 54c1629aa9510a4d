"""The walking skeleton's acceptance figures, measured from a real ``chaoscheck run``.

Runs ``scenarios/smoke.yaml`` (or ``--scenario``) end to end on the local stack, exactly as a user
would, then reads the run directory and prints: operations recorded, load duration, operations per
second, wall time of the whole command, consistency figures, the 502s after the kill and the 429s
during the throttle. The last line is ``smoke_ops_per_s: <value>`` (target: at least 1,000, with at
least 20,000 operations). Loopback only; the scenario bounds the run.

    .venv/bin/python benchmarks/smoke_run.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "smoke.yaml")
    parser.add_argument("--out", type=Path, help="keep the run directory here (default: a temporary one)")
    args = parser.parse_args(argv)

    out = args.out or Path(tempfile.mkdtemp(prefix="chaoscheck-bench-")) / "run"
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "chaoscheck", "run", str(args.scenario), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    wall = time.monotonic() - began
    if not (out / "summary.json").exists():
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        print(f"no summary.json in {out}", file=sys.stderr)
        return 1

    summary = json.loads((out / "summary.json").read_text())
    ops = pd.read_parquet(out / "ops.parquet")
    journal = [json.loads(line) for line in (out / "faults.jsonl").read_text().splitlines()]
    load = ops[ops.kind != "final"]
    duration_s = summary["duration_s"]
    consistency = summary["consistency"]

    print(f"scenario: {args.scenario.name}  run directory: {out}")
    print(f"exit status: {done.returncode}  verdict: {summary['verdict']}")
    print(f"wall time of 'chaoscheck run': {wall:.1f} s")
    print(f"operations: {len(load)} in {duration_s:.1f} s of load")
    for endpoint, group in load.groupby("endpoint"):
        counts = group.status.value_counts().sort_index()
        print(f"  {endpoint}: {len(group)} ({', '.join(f'{s}: {n}' for s, n in counts.items())})")
    print(
        f"increments attempted {consistency['attempted']}, ok {consistency['ok']}, "
        f"indeterminate {consistency['indeterminate']}, final value {consistency['final_value']}, "
        f"lost {consistency['lost']}, duplicated {consistency['duplicated']}, "
        f"unexpected {consistency['unexpected']}, read violations {consistency['read_violations']}"
    )
    for event in (e for e in journal if e["event"] == "inject"):
        start = event["ts_ns"]
        end = next(
            (e["ts_ns"] for e in journal if e["event"] == "rollback" and e["fault_id"] == event["fault_id"]),
            start + int(event["window_s"] * 1e9),
        )
        window = load[(load.start_ns >= start) & (load.start_ns < end)]
        n502, n429 = int((window.status == 502).sum()), int((window.status == 429).sum())
        print(
            f"fault {event['fault_id'] + 1} {event['action']} at {event.get('at_s')} s: "
            f"{n502} x 502, {n429} x 429 in its window"
        )
    print(f"smoke_ops_per_s: {len(load) / duration_s:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
