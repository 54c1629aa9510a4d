"""Does the load process's memory stay flat over a long run? RSS of one Locust process over a soak.

Starts a local stack (3 instances, Lambda reserved concurrency 20), runs the chaoscheck locustfile
(one headless Locust process, recorder on) against both endpoints at a steady rate for ``--minutes``
(default 10), and samples the Locust process's VmRSS from /proc/<pid>/status every second. The
recorder writes a row group every 2 s, so after the first minute (imports, connection pools, Locust's
statistics buckets filled) the resident set should stay flat.

The steady rate comes from the scenario's open-model ``load.rate`` (``--rate``, default 1000/s, with
``--users`` 50 at most in flight). When the load side does not honour ``rate`` (detected before the
run, checked after it), the script falls back to Locust's own pacing: ``paced_locustfile.py`` gives
each user ``constant_throughput(rate / users)``, and says so.

Prints the peak RSS at one minute into the load and at the end, a per-minute table, what was
recorded, and last ``recorder_memory_growth_mb: <peak at the end minus peak at one minute>``
(target < 50). ``--minutes 1`` is a quick check of the script only (both points then coincide).

    /work/venv/bin/python benchmarks/soak_memory.py            # 10 minutes
    /work/venv/bin/python benchmarks/soak_memory.py --minutes 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from loadgen_common import REPO, locust_command, machine, stop_process, write_scenario

from counter.local.client import LocalStack
from counter.local.config import StackConfig

HERE = Path(__file__).resolve().parent
REFERENCE_S = 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load (default 10)")
    parser.add_argument("--rate", type=float, default=1000.0, help="operations per second (default 1000)")
    parser.add_argument("--users", type=int, default=50, help="Locust users (default 50)")
    parser.add_argument(
        "--model",
        choices=("auto", "rate", "pacing"),
        default="auto",
        help="rate: the scenario's open-model load.rate; pacing: Locust's constant_throughput; "
        "auto (default): rate when the load side honours it",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.minutes <= 60:
        parser.error("--minutes must be between 1 and 60")

    duration_s = round(args.minutes * 60)
    with tempfile.TemporaryDirectory(prefix="soak-memory-") as tmp:
        work = Path(tmp)
        load = {
            "users": args.users,
            "duration": f"{duration_s}s",
            "mix": {"increment": 9, "read": 1},
            "endpoints": {"fleet": 1, "lambda": 1},
            "timeout": "5s",
            "rate": args.rate,
        }
        scenario = write_scenario(work / "scenario.yaml", "soak-memory", load)
        model = args.model
        if model == "auto":
            model = "rate" if _rate_honoured(scenario) else "pacing"
        env = dict(os.environ)
        locustfile = REPO / "loadtests" / "locustfile.py"
        if model == "pacing":
            del load["rate"]
            write_scenario(scenario, "soak-memory", load)
            locustfile = HERE / "paced_locustfile.py"
            env["SOAK_USER_RATE"] = repr(args.rate / args.users)
            why = (
                "--model pacing"
                if args.model == "pacing"
                else "FALLBACK: loadtests/ does not honour load.rate"
            )
            print(
                f"model: pacing ({why}; each of {args.users} users paced by Locust's "
                f"constant_throughput({args.rate / args.users:g}))"
            )
        else:
            print(f"model: open (scenario load.rate {args.rate:g}/s, at most {args.users} users)")

        config = StackConfig.model_validate(
            {"fleet": {"desired": 3}, "lambda": {"reserved_concurrency": 20, "account_concurrency": 32}}
        )
        run_dir = work / "run"
        counter = f"soak-{uuid.uuid4().hex[:12]}"
        with LocalStack.start(config, work / "counter.db", log_path=work / "stack.log") as stack:
            command = locust_command(
                args.users,
                duration_s,
                scenario=scenario,
                counter=counter,
                run_dir=run_dir,
                fleet_url=stack.fleet_url,
                lambda_url=stack.lambda_url,
                locustfile=locustfile,
            )
            print(f"$ locust {' '.join(command[1:])}")
            print(f"machine: {machine()}")
            with open(work / "locust.log", "wb") as locust_log:
                process = subprocess.Popen(
                    command, cwd=REPO, env=env, stdout=locust_log, stderr=subprocess.STDOUT
                )
                samples, load_start = _sample(process, run_dir, duration_s + 60)
                code = stop_process(process, timeout=60)
            state = stack.control.state()
        log_tail = (work / "locust.log").read_text(errors="replace").strip().splitlines()[-5:]
        ledger = _ledger_summary(run_dir / "ops.parquet")

    if code not in (0, 1) or not ledger["rows"]:  # 1: some requests failed (e.g. throttles)
        print(f"locust exited with {code}; last lines of its log:", *log_tail, sep="\n  ")
    if not samples or not ledger["rows"]:
        print("error: the load did not run (no RSS sample or no ledger row); see above", file=sys.stderr)
        return 1

    at_reference = [rss for t, rss, _ in samples if t <= REFERENCE_S]
    peak_reference = max(at_reference) if at_reference else samples[0][1]
    peak_end = max(rss for _, rss, _ in samples)
    hwm_end = samples[-1][2]
    print(f"{'minute':>6}{'peak RSS MB':>13}{'last RSS MB':>13}")
    by_minute: dict[int, list[float]] = {}
    for t, rss, _ in samples:
        by_minute.setdefault(max(0, int(t // 60)), []).append(rss)
    for minute, values in sorted(by_minute.items()):
        print(f"{minute:>6}{max(values):>13.1f}{values[-1]:>13.1f}")

    elapsed = ledger["span_s"] or duration_s
    print(
        f"ledger: {ledger['rows']} rows in {ledger['row_groups']} row groups over {elapsed:.0f} s "
        f"= {ledger['rows'] / elapsed:.0f} ops/s (target {args.rate:g}); statuses {ledger['statuses']}; "
        f"omitted {ledger['omitted']}"
    )
    if model == "rate" and not 0.8 * args.rate <= ledger["rows"] / elapsed <= 1.2 * args.rate:
        print("warning: the recorded rate is not the scenario's rate: load.rate may not be honoured")
    fleet, lam = state["fleet"], state["lambda"]
    print(
        f"stack: fleet requests {fleet['requests']} errors {fleet['errors']}; lambda requests "
        f"{lam['requests']} throttles {lam['throttles']} errors {lam['errors']}"
    )
    print(
        f"load started {load_start:.1f} s after Locust; {len(samples)} RSS samples; locust exit code {code}"
    )
    print(f"peak RSS at one minute: {peak_reference:.1f} MB")
    print(f"peak RSS at the end: {peak_end:.1f} MB (VmHWM {hwm_end:.1f} MB)")
    if duration_s <= REFERENCE_S:
        print("note: a run of one minute or less only checks the script; both points coincide")
    print(f"recorder_memory_growth_mb: {peak_end - peak_reference:.1f}")
    return 0


def _rate_honoured(scenario: Path) -> bool:
    """Whether loadtests/ reads the open-model ``rate`` key (settings or plugin), before running it."""
    sys.path.insert(0, str(REPO))
    from loadtests.settings import settings_from_scenario

    settings = settings_from_scenario(scenario, None)
    if re.search(r"\brate", repr(settings)):
        return True
    source = "".join(p.read_text() for p in (REPO / "loadtests").glob("*.py"))
    return re.search(r"""\[["']rate["']\]|get\(["']rate["']""", source) is not None


def _sample(
    process: subprocess.Popen[bytes], run_dir: Path, timeout_s: float
) -> tuple[list[tuple[float, float, float]], float]:
    """(seconds into the load, VmRSS MB, VmHWM MB) every second until the process ends."""
    started = time.monotonic()
    deadline = started + timeout_s
    load_start_ns: int | None = None
    raw: list[tuple[int, float, float]] = []
    next_at = started
    while process.poll() is None and time.monotonic() < deadline:
        status = _status(process.pid)
        if status is not None:
            raw.append((time.time_ns(), status["VmRSS"], status["VmHWM"]))
        if load_start_ns is None:
            load_start_ns = _load_started_ns(run_dir)
        next_at += 1.0
        time.sleep(max(0.0, next_at - time.monotonic()))
    if load_start_ns is None:
        load_start_ns = raw[0][0] if raw else time.time_ns()
    first = raw[0][0] if raw else load_start_ns
    samples = [((ns - load_start_ns) / 1e9, rss, hwm) for ns, rss, hwm in raw]
    return samples, (load_start_ns - first) / 1e9


def _status(pid: int) -> dict[str, float] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB -> MB
    return values if len(values) == 2 else None


def _load_started_ns(run_dir: Path) -> int | None:
    try:
        return int(json.loads((run_dir / "load.json").read_text())["started_ns"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _ledger_summary(path: Path) -> dict:
    if not path.exists():
        return {"rows": 0, "row_groups": 0, "span_s": 0.0, "statuses": {}, "omitted": 0}
    meta = pq.ParquetFile(path).metadata
    table = pq.read_table(path, columns=["kind", "start_ns", "status"])
    kinds = Counter(table.column("kind").to_pylist())
    starts = table.column("start_ns").to_pylist()
    statuses = Counter(table.column("status").to_pylist())
    return {
        "rows": meta.num_rows,
        "row_groups": meta.num_row_groups,
        "span_s": (max(starts) - min(starts)) / 1e9 if starts else 0.0,
        "statuses": dict(sorted(statuses.items(), key=lambda kv: -kv[1])),
        "omitted": kinds.get("omitted", 0),
    }


if __name__ == "__main__":
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    sys.exit(main())
