"""How many counter operations per second the local stack carries on this machine.

Starts a local stack (3 instances, Lambda reserved concurrency 12), drives both tiers with one
headless Locust process (FastHttpUser, 10 users per tier by default, no wait time) for a bounded time,
and prints requests/s and p50/p99 per tier. The last line is ``stack_rps: <requests/s, both tiers>``.
Everything stays on 127.0.0.1; the run is bounded by ``--duration`` (and a hard subprocess timeout).

    /work/venv/bin/python benchmarks/stack_throughput.py --duration 15
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from counter.local.client import LocalStack
from counter.local.config import StackConfig

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load (default 15)")
    parser.add_argument("--fleet-users", type=int, default=10)
    parser.add_argument("--lambda-users", type=int, default=10)
    parser.add_argument("--reserved", type=int, default=12, help="Lambda reserved concurrency")
    parser.add_argument("--instances", type=int, default=3)
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 300:
        parser.error("--duration must be between 1 and 300 seconds")

    config = StackConfig.model_validate(
        {
            "fleet": {"desired": args.instances, "max": max(6, args.instances)},
            "lambda": {"reserved_concurrency": args.reserved, "account_concurrency": max(16, args.reserved)},
        }
    )
    users = args.fleet_users + args.lambda_users
    with tempfile.TemporaryDirectory(prefix="stack-bench-") as tmp:
        workdir = Path(tmp)
        with LocalStack.start(config, workdir / "counter.db", log_path=workdir / "stack.log") as stack:
            env = dict(
                os.environ,
                BENCH_FLEET_URL=stack.fleet_url,
                BENCH_LAMBDA_URL=stack.lambda_url,
                BENCH_FLEET_USERS=str(args.fleet_users),
                BENCH_LAMBDA_USERS=str(args.lambda_users),
            )
            locust = Path(sys.executable).with_name("locust")
            command = [
                str(locust),
                "-f",
                str(HERE / "locust_counter.py"),
                "--headless",
                "-u",
                str(users),
                "-r",
                str(users),
                "-t",
                f"{args.duration}s",
                "--stop-timeout",
                "2",
                "--only-summary",
                "--json-file",
                str(workdir / "bench"),
                "--loglevel",
                "WARNING",
            ]
            print(f"$ {' '.join(command[1:])}  (fleet {stack.fleet_url}, lambda {stack.lambda_url})")
            subprocess.run(
                command,
                env=env,
                timeout=args.duration + 60,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            state = stack.control.state()
        entries = json.loads((workdir / "bench.json").read_text())

    print(f"{'endpoint':<12}{'requests':>10}{'failures':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    rows = {entry["name"]: entry for entry in entries}
    rows["both tiers"] = _combined(entries)
    for name in ("fleet", "lambda", "both tiers"):
        row = rows.get(name)
        if row is None or not row["num_requests"]:
            print(f"{name:<12} (no requests)")
            continue
        print(
            f"{name:<12}{row['num_requests']:>10}{row['num_failures']:>10}{_rps(row):>10.0f}"
            f"{_percentile(row, 0.50):>9}{_percentile(row, 0.99):>9}"
        )
    fleet, lam = state["fleet"], state["lambda"]
    print(
        f"stack: fleet requests {fleet['requests']} errors {fleet['errors']}; lambda requests "
        f"{lam['requests']} throttles {lam['throttles']} cold starts {lam['cold_starts']} "
        f"errors {lam['errors']}"
    )
    print(f"stack_rps: {_rps(rows['both tiers']):.0f}")
    return 0


def _combined(entries: list[dict[str, Any]]) -> dict[str, Any]:
    times: Counter[int] = Counter()
    for entry in entries:
        times.update({int(k): v for k, v in entry["response_times"].items()})
    return {
        "num_requests": sum(e["num_requests"] for e in entries),
        "num_failures": sum(e["num_failures"] for e in entries),
        "start_time": min((e["start_time"] for e in entries), default=0.0),
        "last_request_timestamp": max((e["last_request_timestamp"] or 0.0 for e in entries), default=0.0),
        "response_times": times,
    }


def _rps(row: dict[str, Any]) -> float:
    """Requests per second over the test: count divided by first-to-last request time."""
    elapsed = (row["last_request_timestamp"] or 0.0) - row["start_time"]
    return row["num_requests"] / elapsed if elapsed > 0 else 0.0


def _percentile(row: dict[str, Any], fraction: float) -> int:
    """Percentile in ms from Locust's response-time buckets (about two significant digits)."""
    times = sorted((int(k), v) for k, v in row["response_times"].items())
    target = fraction * sum(v for _, v in times)
    seen = 0
    for ms, count in times:
        seen += count
        if seen >= target:
            return ms
    return times[-1][0] if times else 0


if __name__ == "__main__":
    sys.exit(main())
