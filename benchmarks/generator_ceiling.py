"""How close one Locust process (the chaoscheck counter user, recorder on) comes to wrk's request rate.

Both generators send increments with a fresh ``Idempotency-Key`` each (``POST /counters/<name>/
increment``; wrk through a Lua ``request()`` that numbers its keys), with the same number of
connections (Locust ``-u 20`` users, wrk ``-c 20 -t 2``), against (a) one instance server directly and
(b) the fleet endpoint of a local stack of 3 instances. Each run warms up for ``--warmup`` seconds
(default 3) after the first increment reached the server, then is measured for ``--duration`` seconds
(default 10): the count is the server's own number of applied increments in that window, the same
measure for both generators, and it counts only successful requests (a key is applied once, and only
a 2xx answer says so). Runs alternate Locust, wrk, Locust, wrk ... for ``--rounds`` rounds (default
3); each generator's figure is the median of its rounds.

The machine is shared: each run waits (up to 2 min) for quiet cores, and a run during which other
processes used more than ``--max-others`` of a core (default 0.12) is discarded, reported and run
again (at most 3 more times; the last attempt is kept and flagged).

Prints both ratios (Locust / wrk) and last ``generator_vs_wrk: <the lower of the two>`` (target >= 0.8).
Needs ``wrk`` (Debian package ``wrk``).

    /work/venv/bin/python benchmarks/generator_ceiling.py
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from loadgen_common import (
    REPO,
    InstanceServer,
    Window,
    increments_only,
    locust_command,
    machine,
    measure_window,
    median,
    stop_process,
    wait_quiet,
    write_scenario,
)

from counter.local.client import LocalStack
from counter.local.config import StackConfig

WRK_SCRIPT = """\
-- One increment per request, each with a key never used before: <counter>:w<thread>.<n>
local counter = os.getenv("WRK_COUNTER")
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end

function init(args)
  n = 0
  path = "/counters/" .. counter .. "/increment"
  prefix = counter .. ":w" .. tid .. "."
end

function request()
  n = n + 1
  return wrk.format("POST", path, {["Idempotency-Key"] = prefix .. n}, "")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d status_errors=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring (default 3)")
    parser.add_argument("--connections", type=int, default=20, help="Locust users = wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="Locust/wrk rounds per target (default 3)")
    parser.add_argument("--targets", default="instance,fleet", help="instance, fleet or both (default)")
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.12,
        help="a run in which other processes used more CPU than this (cores) is discarded and run "
        "again, up to 3 times (default 0.12; the machine is shared)",
    )
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print("error: wrk is not installed; install it with: apt-get install -y wrk", file=sys.stderr)
        return 2
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not targets or set(targets) - {"instance", "fleet"}:
        parser.error("--targets: instance, fleet or instance,fleet")
    if not 1 <= args.rounds <= 20 or not 2 <= args.duration <= 120 or not 0 <= args.warmup <= 30:
        parser.error("--rounds 1-20, --duration 2-120 s, --warmup 0-30 s")

    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}")
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="generator-ceiling-") as tmp:
        work = Path(tmp)
        (work / "unique_keys.lua").write_text(WRK_SCRIPT)
        load = increments_only(args.connections, args.warmup + args.duration)
        scenario = write_scenario(work / "scenario.yaml", "generator-ceiling", load)
        for target in targets:
            with _target(target, work) as (url, pids):
                print(f"\n[{target}] {url}")
                results: dict[str, list[float]] = {"locust": [], "wrk": []}
                for round_ in range(args.rounds):
                    for generator in ("locust", "wrk"):

                        def run(tag: str, show: bool, generator: str = generator) -> Window:
                            if generator == "locust":
                                return _locust_run(work, scenario, url, pids, args, tag, show)
                            return _wrk_run(wrk, work, url, pids, args, tag, show)

                        window = _clean_run(run, f"{target}-{round_}", round_ == 0, args.max_others)
                        results[generator].append(window.rate)
                locust_rate, wrk_rate = median(results["locust"]), median(results["wrk"])
                ratios[target] = locust_rate / wrk_rate if wrk_rate else 0.0
                print(
                    f"[{target}] median successful increments/s: Locust {locust_rate:,.0f}, "
                    f"wrk {wrk_rate:,.0f}; Locust / wrk = {ratios[target]:.3f}"
                )
    print()
    for target, ratio in ratios.items():
        print(f"generator_vs_wrk_{target}: {ratio:.3f}")
    print(f"generator_vs_wrk: {min(ratios.values()):.3f}")
    return 0


def _clean_run(run: Callable[[str, bool], Window], tag: str, show: bool, max_others: float) -> Window:
    """A run while the cores are quiet; run again (at most 3 times) if other processes got busy."""
    for attempt in range(4):
        wait_quiet(max_others, timeout_s=120)
        window = run(f"{tag}-{attempt}", show and attempt == 0)
        if window.cpu["others"] <= max_others:
            return window
        if attempt < 3:
            print(f"    discarded: other processes used {window.cpu['others'] * 100:.0f}% CPU")
    print("    kept although the machine stayed busy (4 attempts)")
    return window


@contextmanager
def _target(target: str, work: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """The URL to drive and the pids whose CPU is worth printing (the server side)."""
    if target == "instance":
        with InstanceServer(work / "instance.db", work / "instance.log") as server:
            yield server.url, {"instance": server.pid}
        return
    config = StackConfig.model_validate({"fleet": {"desired": 3}})
    with LocalStack.start(config, work / "stack.db", log_path=work / "stack.log") as stack:
        instances = stack.control.state()["fleet"]["instances"]
        pids = {"stack": stack.pid}
        pids.update({i["id"]: i["pid"] for i in instances if i.get("pid") and i["state"] == "in_service"})
        yield stack.fleet_url, pids


def _locust_run(
    work: Path, scenario: Path, url: str, pids: dict[str, int], args: argparse.Namespace, tag: str, show: bool
) -> Window:
    counter = f"gc-locust-{uuid.uuid4().hex[:10]}"
    run_dir = work / f"locust-{tag}"
    run_time = args.warmup + args.duration + 3.0
    command = locust_command(
        args.connections, run_time, scenario=scenario, counter=counter, run_dir=run_dir, fleet_url=url
    )
    if show:
        print(f"$ locust {' '.join(command[1:])}")
    log_path = work / f"locust-{tag}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            window = measure_window(
                url, counter, process, args.warmup, args.duration, {"generator": process.pid, **pids}
            )
        except RuntimeError:
            print(*log_path.read_text(errors="replace").strip().splitlines()[-10:], sep="\n  ")
            raise
        finally:
            code = stop_process(process, timeout=run_time + 60)
    ledger = pq.read_table(run_dir / "ops.parquet", columns=["status"])
    ok = pc.sum(pc.and_(pc.greater_equal(ledger["status"], 200), pc.less(ledger["status"], 300))).as_py()
    print(
        f"  Locust -u {args.connections}: {window.rate:>7,.0f} successful increments/s in the window; "
        f"{_cpu_text(window.cpu)}; ledger {ledger.num_rows} rows, {ok} 2xx; exit {code}"
    )
    if code not in (0, 1):
        print(*log_path.read_text(errors="replace").strip().splitlines()[-5:], sep="\n  ")
    return window


def _wrk_run(
    wrk: str, work: Path, url: str, pids: dict[str, int], args: argparse.Namespace, tag: str, show: bool
) -> Window:
    counter = f"gc-wrk-{uuid.uuid4().hex[:10]}"
    run_time = args.warmup + args.duration + 3.0
    command = [
        wrk,
        "-t", str(args.threads),
        "-c", str(args.connections),
        "-d", f"{math.ceil(run_time)}s",
        "-s", str(work / "unique_keys.lua"),
        url,
    ]  # fmt: skip
    if show:
        print(f"$ wrk {' '.join(command[1:])}  (WRK_COUNTER=<fresh counter>)")
    env = dict(os.environ, WRK_COUNTER=counter)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        window = measure_window(
            url, counter, process, args.warmup, args.duration, {"generator": process.pid, **pids}
        )
    finally:
        stop_process(process, timeout=run_time + 30)
    output = process.stdout.read() if process.stdout else ""
    match = re.search(r"WRK requests=(\d+) duration_us=(\d+) status_errors=(\d+) (.*)", output)
    if match:
        total, duration_us, non_2xx = int(match[1]), int(match[2]), int(match[3])
        per_s = (total - non_2xx) / duration_us * 1e6
        whole = f"whole run {total - non_2xx} 2xx of {total} ({per_s:,.0f}/s), {match[4]}"
    else:
        whole = "no summary from wrk: " + " | ".join(output.strip().splitlines()[-3:])
    print(
        f"  wrk -c {args.connections} -t {args.threads}: {window.rate:>7,.0f} successful increments/s in the "
        f"window; {_cpu_text(window.cpu)}; {whole}"
    )
    return window


def _cpu_text(cpu: dict[str, float]) -> str:
    """CPU shares in the window: the generator, the server side (balancer process separately) and
    everything else on the machine."""
    instances = sum(v for k, v in cpu.items() if k not in ("generator", "others", "stack"))
    server = f"instances {instances * 100:.0f}%"
    if "stack" in cpu:
        server = f"stack process (balancer) {cpu['stack'] * 100:.0f}%, {server}"
    return (
        f"CPU generator {cpu['generator'] * 100:.0f}%, {server}, other processes {cpu['others'] * 100:.0f}%"
    )


if __name__ == "__main__":
    sys.exit(main())
