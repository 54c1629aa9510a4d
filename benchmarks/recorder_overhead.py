"""What recording every request costs the load generator: throughput with the ledger over without it.

One instance server on 127.0.0.1 (``counter.instance_server``, the fastest target on this machine),
driven by one headless Locust process running the chaoscheck locustfile (FastHttpUser counter users,
fleet endpoint only through ``--fleet-url``, increments only, ``--users`` 20 with no wait). Runs
alternate with the ledger recorder on and off (``--no-ledger``): with, without, with, without, ...
for ``--pairs`` pairs (default 7). Each run is measured over a steady window of ``--duration``
seconds (default 10) that starts 1.5 s after the first increment reached the server; throughput is the
server's own count of applied increments in that window (every increment carries a fresh key, so
applied increments = successful requests). Locust's and the server's CPU shares in the window are
printed too: when Locust is not the saturated side, the ratio understates the recorder's cost, and
the CPU per request is the more sensitive figure.

The machine is shared (tests, builds): before each pair the script waits (up to 2 min) for the cores
to be quiet, and a pair during which other processes used more than ``--max-others`` of a core
(default 0.12) is discarded, reported, and run again (at most 4 x ``--pairs`` attempts).

Prints each run, each pair's ratio, and last ``recorder_throughput_ratio: <median of the pairs'
with/without ratios>`` (target >= 0.95).

    /work/venv/bin/python benchmarks/recorder_overhead.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from loadgen_common import (
    REPO,
    InstanceServer,
    increments_only,
    locust_command,
    machine,
    measure_window,
    median,
    stop_process,
    wait_quiet,
    write_scenario,
)

WARMUP_S = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=7, help="with/without pairs (default 7, at least 5)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--users", type=int, default=20, help="Locust users (default 20)")
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.12,
        help="a pair in which other processes used more CPU than this (cores) is discarded and "
        "run again (default 0.12; the machine is shared)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.pairs <= 30 or not 2 <= args.duration <= 120:
        parser.error("--pairs must be 1-30 and --duration 2-120 s")
    if "--no-ledger" not in (REPO / "loadtests" / "plugin.py").read_text():
        print("error: loadtests/plugin.py has no --no-ledger option yet; nothing to compare", file=sys.stderr)
        return 2

    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}")
    rows: list[dict] = []
    discarded = 0
    with tempfile.TemporaryDirectory(prefix="recorder-overhead-") as tmp:
        work = Path(tmp)
        load = increments_only(args.users, args.duration)
        scenario = write_scenario(work / "scenario.yaml", "recorder-overhead", load)
        with InstanceServer(work / "counter.db", work / "instance.log") as server:
            print(
                f"target: instance server {server.url} (pid {server.pid}); "
                f"{args.users} users, increments only"
            )
            attempt = 0
            while len(rows) < 2 * args.pairs and attempt < 4 * args.pairs:
                wait_quiet(args.max_others, timeout_s=120)
                pair = [_run(work, scenario, server, args, attempt, recording) for recording in (True, False)]
                for row in pair:
                    _print_row(row)
                busiest = max(row["others_cpu"] for row in pair)
                if busiest > args.max_others:
                    discarded += 1
                    print(f"  pair {attempt} discarded: other processes used {busiest * 100:.0f}% CPU")
                else:
                    rows.extend(pair)
                attempt += 1
    if len(rows) < 2 * args.pairs:
        print(f"warning: only {len(rows) // 2} clean pairs of {args.pairs} (the machine stayed busy)")
    if not rows:
        print("error: no clean pair", file=sys.stderr)
        return 1

    ratios = [w["rate"] / o["rate"] if o["rate"] else 0.0 for w, o in zip(rows[::2], rows[1::2], strict=True)]
    cost = [
        w["locust_us"] - o["locust_us"]
        for w, o in zip(rows[::2], rows[1::2], strict=True)
        if w["locust_us"] and o["locust_us"]
    ]
    print(
        f"{len(ratios)} clean pairs ({discarded} discarded); ratios (with / without): "
        + ", ".join(f"{r:.3f}" for r in ratios)
    )
    for label, recording in (("with", True), ("without", False)):
        runs = [r for r in rows if r["recording"] is recording]
        print(
            f"median {label:<8} ledger: {median([r['rate'] for r in runs]):,.0f} increments/s; Locust "
            f"{median([r['locust_cpu'] for r in runs]) * 100:.0f}% CPU, "
            f"{median([r['locust_us'] for r in runs]):.1f} CPU-us/request; server "
            f"{median([r['server_cpu'] for r in runs]) * 100:.0f}% CPU"
        )
    print(f"recorder CPU cost in Locust (median of pairs): {median(cost):.1f} us per request")
    print(f"recorder_throughput_ratio: {median(ratios):.3f}")
    return 0


def _run(
    work: Path, scenario: Path, server: InstanceServer, args: argparse.Namespace, pair: int, recording: bool
) -> dict:
    label = "with" if recording else "without"
    counter = f"ro-{pair}-{label}-{uuid.uuid4().hex[:8]}"
    run_dir = work / f"run-{pair}-{label}"
    run_time = WARMUP_S + args.duration + 2.0
    command = locust_command(
        args.users,
        run_time,
        scenario=scenario,
        counter=counter,
        run_dir=run_dir,
        fleet_url=server.url,
        extra=[] if recording else ["--no-ledger"],
    )
    if pair == 0 and not recording:
        print("  (the same with --no-ledger for the runs without recording)", flush=True)
    if pair == 0 and recording:
        print(f"$ locust {' '.join(command[1:])}", flush=True)
    log_path = work / f"locust-{pair}-{label}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            window = measure_window(
                server.url,
                counter,
                process,
                WARMUP_S,
                args.duration,
                {"locust": process.pid, "server": server.pid},
            )
        except RuntimeError:
            print(*log_path.read_text(errors="replace").strip().splitlines()[-10:], sep="\n  ")
            raise
        finally:
            code = stop_process(process, timeout=run_time + 60)
    if code != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        print(f"locust exited with {code}:", *tail, sep="\n  ")
    stats = json.loads((run_dir / "locust-stats.json").read_text())
    ledger = run_dir / "ops.parquet"
    return {
        "pair": pair,
        "recording": recording,
        "rate": window.rate,
        "locust_cpu": window.cpu["locust"],
        "server_cpu": window.cpu["server"],
        "others_cpu": window.cpu["others"],
        "locust_us": window.cpu["locust"] / window.rate * 1e6 if window.rate else 0.0,
        "requests": sum(e["num_requests"] for e in stats),
        "failures": sum(e["num_failures"] for e in stats),
        "ledger_rows": pq.ParquetFile(ledger).metadata.num_rows if ledger.exists() else None,
        "code": code,
    }


def _print_row(row: dict) -> None:
    ledger = "no ledger" if row["ledger_rows"] is None else f"ledger {row['ledger_rows']} rows"
    print(
        f"pair {row['pair']} {'with   ' if row['recording'] else 'without'}: {row['rate']:>7,.0f} "
        f"increments/s in the window; Locust {row['locust_cpu'] * 100:3.0f}% CPU "
        f"({row['locust_us']:.1f} us/request), "
        f"server {row['server_cpu'] * 100:3.0f}% CPU, others {row['others_cpu'] * 100:3.0f}%; "
        f"whole run {row['requests']} requests, "
        f"{row['failures']} failures, {ledger}"
    )


if __name__ == "__main__":
    sys.exit(main())
