"""How close to their schedule faults fire and end on the local stack, under load, from the journal.

Runs ``chaoscheck run`` on a generated scenario: 20 users against both tiers for ``--duration``
seconds (default 40) and one fault every ``--every`` seconds (default 1.5 s) cycling through the
lasting actions (throttle-lambda, lambda-latency, lambda-errors, set-capacity, stop-instance) with a
duration of ``--hold`` seconds (default 0.7 s), so each run has ~25 injections and as many rollbacks.
For every ``inject`` line the error is its time minus the scheduled time (load start + ``at``); for
every ``rollback`` line, its time minus the scheduled end (+ ``duration``). The inject line is written
after the target was read and the victims chosen, just before the change (write-ahead); the rollback
line after the undo finished; so both errors include the backend's own calls.

Prints the count, median, p99 and max of each, and last ``fault_schedule_error_p99_ms: <p99 of both
together>`` (target: at most 100). Loopback only, bounded by the scenario.

    /work/venv/bin/python benchmarks/fault_timing.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ACTIONS = [
    "{action: throttle-lambda, reserved_concurrency: 2}",
    "{action: lambda-latency, delay: 50ms, percent: 50}",
    "{action: lambda-errors, status: 500, percent: 10}",
    "{action: set-capacity, desired: 4}",
    "{action: stop-instance, count: 1}",
]


def scenario_text(duration: float, every: float, hold: float) -> str:
    faults = []
    at, i = 2.0, 0
    while at + hold < duration - 2:
        entry = ACTIONS[i % len(ACTIONS)].rstrip("}")
        faults.append(f"  - {entry}, at: {at:.3f}s, duration: {hold:.3f}s}}")
        at += every
        i += 1
    return (
        "name: fault-timing\n"
        f"load: {{users: 20, duration: {duration:g}s, timeout: 3s}}\n"
        "stack:\n"
        "  fleet: {desired: 3, min: 1, max: 6, health_interval: 0.5s, boot_delay: 0.5s}\n"
        "  lambda: {reserved_concurrency: 12, cold_start: 50ms}\n"
        "faults:\n" + "\n".join(faults) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=40.0)
    parser.add_argument("--every", type=float, default=1.5)
    parser.add_argument("--hold", type=float, default=0.7)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="chaoscheck-fault-timing-"))
    scenario = work / "fault-timing.yaml"
    scenario.write_text(scenario_text(args.duration, args.every, args.hold))
    out = work / "run"
    done = subprocess.run(
        [sys.executable, "-m", "chaoscheck", "run", str(scenario), "--out", str(out)],
        capture_output=True, text=True, timeout=args.duration + 300,
    )  # fmt: skip
    meta_path = out / "run.json"
    if not meta_path.exists():
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        return 1
    started = json.loads(meta_path.read_text())["load_started_ns"]
    lines = [json.loads(line) for line in (out / "faults.jsonl").read_text().splitlines()]
    injects = {line["fault_id"]: line for line in lines if line["event"] == "inject"}
    aborts = [line for line in lines if line["event"] == "abort"]
    inject_err = [(line["ts_ns"] - started) / 1e6 - line["at_s"] * 1e3 for line in injects.values()]
    rollback_err = [
        (line["ts_ns"] - started) / 1e6
        - (injects[line["fault_id"]]["at_s"] + injects[line["fault_id"]]["window_s"]) * 1e3
        for line in lines
        if line["event"] == "rollback" and line["fault_id"] in injects
    ]
    print(f"run directory: {out}  (exit {done.returncode})")
    print(f"faults scheduled: {len(injects) + len(aborts)}, injected: {len(injects)}, aborted: {len(aborts)}")
    for error in aborts:
        print(f"  aborted fault {error['fault_id']} ({error['action']}): {error.get('error')}")
    for name, values in (("inject", inject_err), ("rollback", rollback_err)):
        if values:
            arr = np.array(values)
            print(
                f"{name}: n={len(arr)} median {np.median(arr):.1f} ms, p99 {np.percentile(arr, 99):.1f} ms, "
                f"max {arr.max():.1f} ms, min {arr.min():.1f} ms"
            )
    both = np.array(inject_err + rollback_err)
    if both.size == 0:
        print("no fault was injected", file=sys.stderr)
        return 1
    print(f"fault_schedule_error_p99_ms: {np.percentile(both, 99):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
