"""How the analysis scales: ``chaoscheck analyze`` on synthetic run directories of 1M, 3M, 10M operations.

For each size N a run directory is generated with numpy and pyarrow (no Python loop over rows): an
open-model load of N scheduled operations at 10,000 per second over two tiers (fleet, lambda; 90 %
increments, 10 % reads; two load processes), three faults in the journal (a kill with a settle
window that turns 3 % of fleet requests into 502s, a Lambda throttle with a rollback that answers
40 % of Lambda requests 429, a Lambda latency fault with a rollback that adds 200 ms and makes the
generator fall behind, 2 % of its due operations omitted), retries of every indeterminate increment
with the same key (``attempt`` 1), a few timeouts, reads whose values the ledger explains, two final
reads, a store ledger (``server_ops.parquet``) consistent with all of it (30 % of the increments left
indeterminate were applied), and a timeline. Rows are written in completion order, 65,536 rows per
row group, zstd, like the load's ledger.

Then, per size, as subprocesses: ``chaoscheck analyze RUN_DIR`` (wall time and peak RSS from
``os.wait4``, Python's start and the imports included), and two plain reads, timed inside their
subprocess: ``files``, the same Parquet files whole (``pyarrow.parquet.read_table(path).to_pandas()``
of ``ops``, ``server_ops`` and ``timeline``: what ``pandas.read_parquet`` does), and ``lean``, only
the columns ``analyze`` loads from them for a run without X-Ray (every column but ``trace_id``),
read the same plain way. The best of ``--repeat`` runs counts; every run is printed with the load
average at its start.

Prints one line per size, and last ``analyze_vs_read_ratio: <analyze wall / files read at the
largest size>`` (the issue's "time needed just to read the same parquet files"); the ratio to the
``lean`` read is printed beside it. Targets on the project's 2-core machine at 10M: analyze <= 20 s
wall, <= 4 GiB peak RSS, ratio <= 4, time and memory roughly linear in N.

    /work/venv/bin/python benchmarks/analysis_scale.py                 # 1M, 3M, 10M
    /work/venv/bin/python benchmarks/analysis_scale.py --sizes 200000 --repeat 1
    /work/venv/bin/python benchmarks/analysis_scale.py --sizes 10000000 --keep /tmp/scale --reuse
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaoscheck import runformat as rf

T0 = 1_795_900_000_000_000_000
"""Load start of every synthetic run (epoch ns, 2026-11-28)."""
RATE = 10_000
"""Scheduled operations per second, both tiers together."""
MS = 1_000_000
S = 1_000_000_000
COUNTER = "scale-c0ffee"
WORKERS = ("bench:1001", "bench:1002")
KEY_PREFIXES = (f"{COUNTER}:a97f08f6.", f"{COUNTER}:b1c2d3e4.")
ROW_GROUP = 65_536

LEAN_OPS_COLUMNS = [name for name in rf.OPS_SCHEMA.names if name != "trace_id"]
"""Columns of ``ops.parquet`` that ``analyze`` loads for a run without ``xray.jsonl`` (the ``lean`` read)."""

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _strings(values: list[str], codes: np.ndarray) -> pa.Array:
    """A plain string column from a few distinct ``values`` and one code per row (taken in C++)."""
    return pc.take(pa.array(values, pa.string()), pa.array(codes.astype(np.int32)))


def _hex(values: np.ndarray, digits: int) -> np.ndarray:
    """(n, digits) uint8 matrix of the lower-case hex digits of unsigned ``values``."""
    shifts = np.arange(digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    nibbles = (values.astype(np.uint64)[:, None] >> shifts[None, :]) & np.uint64(15)
    return _HEX[nibbles.astype(np.int64)]


def trace_ids(start_ns: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """``1-<8 hex epoch seconds>-<24 hex random>`` per row, built as one byte matrix."""
    n = len(start_ns)
    out = np.empty((n, 35), dtype=np.uint8)
    out[:, 0], out[:, 1], out[:, 10] = ord("1"), ord("-"), ord("-")
    out[:, 2:10] = _hex(start_ns // S, 8)
    out[:, 11:23] = _hex(rng.integers(0, 2**48, n, dtype=np.uint64), 12)
    out[:, 23:35] = _hex(rng.integers(0, 2**48, n, dtype=np.uint64), 12)
    return pa.array(out.view("S35").ravel()).cast(pa.string())


def make_run(path: Path, n: int, seed: int = 7) -> dict:
    """Write a synthetic run directory of about ``n`` operations at ``path``; return its figures."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    duration_s = max(30, round(n / RATE))
    lo, hi = T0, T0 + duration_s * S
    at = lambda share: T0 + round(share * duration_s * S)  # noqa: E731
    kill, kill_end = at(0.20), at(0.25)
    throttle, throttle_end = at(0.45), at(0.55)
    slow, slow_end = at(0.70), at(0.80)

    # -- the schedule: due times, tier, kind, process -------------------------------------------------
    intended = np.sort(rng.integers(lo, hi, n, dtype=np.int64))
    lam = rng.random(n) < 0.5
    inc = rng.random(n) < 0.9
    worker = (rng.random(n) < 0.5).astype(np.int64)
    in_kill = (intended >= kill) & (intended < kill_end) & ~lam
    in_throttle = (intended >= throttle) & (intended < throttle_end) & lam
    in_slow = (intended >= slow) & (intended < slow_end) & lam

    lag = rng.exponential(0.001 * MS, n).astype(np.int64)
    lag[in_slow] += rng.exponential(5 * MS, int(in_slow.sum())).astype(np.int64)
    start = intended + lag
    latency = rng.lognormal(np.log(3 * MS), 0.5, n).astype(np.int64)
    latency[in_slow] += 200 * MS
    status = np.full(n, 200, dtype=np.int32)
    outcome = np.zeros(n, dtype=np.int8)  # 0 ok, 1 fail, 2 info
    error = np.full(n, -1, dtype=np.int64)  # index into ERRORS, -1 none
    errors = ["502 Bad Gateway: upstream connection refused", '429 {"message":"Rate Exceeded."}',
              "timeout: no response after 5.0 s"]  # fmt: skip
    bad = in_kill & (rng.random(n) < 0.03)
    status[bad], outcome[bad], error[bad], latency[bad] = 502, 2, 0, MS
    bad = in_throttle & (rng.random(n) < 0.4)
    status[bad], outcome[bad], error[bad], latency[bad] = 429, 1, 1, MS
    bad = (rng.random(n) < 0.0001) & (status == 200)
    status[bad], outcome[bad], error[bad], latency[bad] = 0, 2, 2, 5 * S
    kind = np.where(inc, 0, 1).astype(np.int8)  # 0 increment, 1 read, 2 final, 3 omitted
    omitted = in_slow & (rng.random(n) < 0.02)
    kind[omitted] = 3
    start[omitted] = intended[omitted] + S + rng.integers(0, 50 * MS, int(omitted.sum()))
    latency[omitted] = 0
    status[omitted], outcome[omitted], error[omitted] = 0, 1, -1
    end = start + latency

    # -- keys and retries: every indeterminate increment is retried once with the same key -----------
    is_inc = kind == 0
    key = np.full(n, -1, dtype=np.int64)
    key[is_inc] = np.arange(int(is_inc.sum()))
    retry_of = np.flatnonzero(is_inc & (outcome == 2))
    m = len(retry_of)
    r_intended = end[retry_of] + (rng.uniform(0.5, 1.5, m) * 50 * MS).astype(np.int64)
    r_start = r_intended + rng.exponential(0.001 * MS, m).astype(np.int64)
    r_latency = rng.lognormal(np.log(3 * MS), 0.5, m).astype(np.int64)
    r_outcome = np.where(rng.random(m) < 0.95, 0, 2).astype(np.int8)
    r_status = np.where(r_outcome == 0, 200, 502).astype(np.int32)

    cat = lambda a, b: np.concatenate([a, b])  # noqa: E731
    intended, start = cat(intended, r_intended), cat(start, r_start)
    end = cat(end, r_start + r_latency)
    lam, worker, kind = cat(lam, lam[retry_of]), cat(worker, worker[retry_of]), cat(kind, kind[retry_of])
    status, outcome = cat(status, r_status), cat(outcome, r_outcome)
    error = cat(error, np.where(r_outcome == 0, -1, 0))
    key = cat(key, key[retry_of])
    attempt = cat(np.zeros(n, np.int32), np.ones(m, np.int32))
    total = n + m

    # -- the store's ledger: keys with an ok attempt, and 30 % of the indeterminate ones --------------
    n_keys = int(is_inc.sum())
    rows_inc = np.flatnonzero(kind == 0)
    ok_rows = rows_inc[outcome[rows_inc] == 0]
    applied_at = np.full(n_keys, -1, dtype=np.int64)
    applied_at[key[ok_rows]] = (start[ok_rows] + end[ok_rows]) // 2
    info_first = rows_inc[(outcome[rows_inc] == 2) & (attempt[rows_inc] == 0)]
    lucky = info_first[(applied_at[key[info_first]] < 0) & (rng.random(len(info_first)) < 0.3)]
    applied_at[key[lucky]] = start[lucky] + 1
    applied_keys = np.flatnonzero(applied_at >= 0)
    order = np.argsort(applied_at[applied_keys], kind="stable")
    applied_keys = applied_keys[order]
    value_after = np.zeros(n_keys, dtype=np.int64)
    value_after[applied_keys] = np.arange(1, len(applied_keys) + 1)
    applied_sorted = applied_at[applied_keys]

    value = np.zeros(total, dtype=np.int64)
    has_value = np.zeros(total, dtype=bool)
    has_value[ok_rows] = True
    value[ok_rows] = value_after[key[ok_rows]]
    read_ok = (kind == 1) & (outcome == 0)
    value[read_ok] = np.searchsorted(applied_sorted, start[read_ok], side="left")
    has_value |= read_ok

    # -- in completion order (the recorder appends as requests finish), then the final reads -------
    order = np.argsort(end, kind="stable")
    final_start = hi + 2 * S
    n_final = 2

    def col(a: np.ndarray, extra: list) -> np.ndarray:
        return np.concatenate([a[order], np.asarray(extra, dtype=a.dtype)])

    k_start, k_end = (
        col(start, [final_start, final_start + 5 * MS]),
        col(end, [final_start + 2 * MS, final_start + 7 * MS]),
    )
    k_lam = col(lam, [False, True])
    k_kind = col(kind, [2, 2])
    k_key, k_worker = col(key, [-1, -1]), col(worker, [0, 0])
    k_outcome, k_status = col(outcome, [0, 0]), col(status, [200, 200])
    k_value = col(value, [len(applied_keys)] * 2)
    k_has_value = col(has_value, [True, True])
    k_error = col(error, [-1, -1])
    k_intended = col(intended, [0, 0])
    k_has_intended = np.ones(total + n_final, dtype=bool)
    k_has_intended[total:] = False
    k_attempt = col(attempt, [0, 0])

    seq = np.where(k_key >= 0, k_key, 0)
    op_id = pc.binary_join_element_wise(
        _strings(list(KEY_PREFIXES), k_worker), pc.cast(pa.array(seq), pa.string()), ""
    )
    op_id = pc.if_else(pa.array(k_key >= 0), op_id, pa.scalar(None, pa.string()))
    is_omitted = k_kind == 3
    lag_ms = np.where(is_omitted, (k_start - k_intended) // MS, 0)
    omitted_text = pc.binary_join_element_wise(
        "omitted: ", pc.cast(pa.array(lag_ms), pa.string()), " ms behind schedule, every user was busy", ""
    )
    error_col = pc.if_else(
        pa.array(is_omitted),
        omitted_text,
        pc.take(pa.array([*errors, None], pa.string()), pa.array(np.where(k_error < 0, 3, k_error))),
    )
    instance = np.where(
        k_start < kill, rng.integers(0, 3, total + n_final), rng.integers(1, 4, total + n_final)
    )
    served_code = np.where(k_lam, 4 + rng.integers(0, 20, total + n_final), instance)
    served_code = np.where(k_status == 502, 24, np.where(k_status == 429, 25, served_code))
    served_code = np.where(is_omitted | (k_status == 0), 26, served_code)
    served = ["i-0a1b2c3d4e5f60", "i-0a1b2c3d4e5f61", "i-0a1b2c3d4e5f62", "i-0a1b2c3d4e5f63"]
    served += [f"2026/11/28/[$LATEST]{k:032x}" for k in range(20)] + ["balancer", "function-url", None]
    worker_text = _strings([*WORKERS, "bench:final"], np.where(k_kind == 2, 2, k_worker))
    trace = pc.if_else(pa.array(is_omitted), pa.scalar(None, pa.string()), trace_ids(k_start, rng))

    table = pa.table(
        {
            "op_id": op_id,
            "kind": _strings(["increment", "read", "final", "omitted"], k_kind),
            "endpoint": _strings(["fleet", "lambda"], k_lam),
            "counter": _strings([COUNTER], np.zeros(total + n_final, np.int64)),
            "start_ns": pa.array(k_start),
            "end_ns": pa.array(k_end),
            "status": pa.array(k_status.astype(np.int32)),
            "outcome": _strings(["ok", "fail", "info"], k_outcome),
            "value": pa.array(k_value, mask=~k_has_value),
            "error": error_col,
            "served_by": _strings(served, served_code),
            "worker": worker_text,
            "intended_ns": pa.array(k_intended, mask=~k_has_intended),
            "attempt": pa.array(k_attempt.astype(np.int32)),
            "trace_id": trace,
        },
        schema=rf.OPS_SCHEMA,
    )
    pq.write_table(table, path / rf.OPS, compression="zstd", row_group_size=ROW_GROUP)

    keys_text = pc.binary_join_element_wise(
        _strings(list(KEY_PREFIXES), _worker_of_keys(key, worker, kind, n_keys)[applied_keys]),
        pc.cast(pa.array(applied_keys), pa.string()),
        "",
    )
    ledger = pa.table(
        {
            "op_id": keys_text,
            "counter": _strings([COUNTER], np.zeros(len(applied_keys), np.int64)),
            "value_after": pa.array(value_after[applied_keys]),
            "applied_ns": pa.array(applied_sorted),
        },
        schema=rf.SERVER_OPS_SCHEMA,
    )
    pq.write_table(ledger, path / rf.SERVER_OPS, compression="zstd", row_group_size=ROW_GROUP)

    ts = np.arange(lo - 2 * S, hi, S // 5, dtype=np.int64)
    k = len(ts)
    in_service = np.where((ts >= kill) & (ts < kill_end), 2, 3).astype(np.int32)
    timeline = pa.table(
        {
            "ts_ns": ts,
            "fleet_desired": np.full(k, 3, np.int32),
            "fleet_pending": (3 - in_service).astype(np.int32),
            "fleet_in_service": in_service,
            "fleet_unhealthy": np.zeros(k, np.int32),
            "fleet_requests": np.arange(k, dtype=np.int64) * RATE // 10,
            "fleet_errors": np.zeros(k, np.int64),
            "lambda_reserved": pa.array(np.full(k, 12, np.int32),
                                        mask=~((ts >= throttle) & (ts < throttle_end))),
            "lambda_active": np.full(k, 8, np.int32),
            "lambda_environments": np.full(k, 20, np.int32),
            "lambda_requests": np.arange(k, dtype=np.int64) * RATE // 10,
            "lambda_throttles": np.zeros(k, np.int64),
            "lambda_cold_starts": np.full(k, 20, np.int64),
        },
        schema=rf.TIMELINE_SCHEMA,
    )  # fmt: skip
    pq.write_table(timeline, path / rf.TIMELINE, compression="zstd")

    def line(fault_id: int, ts_ns: int, event: str, action: str, target: str, **extra) -> str:
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ns // S)) + f".{ts_ns % S // 1000:06d}Z"
        fields = {"ts": iso, "ts_ns": ts_ns, "fault_id": fault_id, "event": event, "action": action,
                  "target": target, "params": {}, **extra}  # fmt: skip
        return json.dumps(fields) + "\n"

    journal = [
        line(0, kill, "inject", "terminate-instance", "i-0a1b2c3d4e5f60", window_s=(kill_end - kill) / S),
        line(1, throttle, "inject", "throttle-lambda", "counter-fn", window_s=(throttle_end - throttle) / S),
        line(1, throttle_end, "rollback", "throttle-lambda", "counter-fn"),
        line(2, slow, "inject", "lambda-latency", "counter-fn", window_s=(slow_end - slow) / S),
        line(2, slow_end, "rollback", "lambda-latency", "counter-fn"),
    ]
    (path / rf.FAULTS).write_text("".join(journal), encoding="utf-8")
    scenario = {
        "name": "analysis-scale",
        "reads": "strong",
        "load": {"users": 400, "rate": RATE, "max_lag": 1.0, "retries": 1, "duration": duration_s,
                 "mix": {"increment": 9, "read": 1}, "endpoints": {"fleet": 1, "lambda": 1}},
        "slo": {
            "consistency": {"lost": 0, "duplicated": 0, "unexpected": 0, "read_violations": 0},
            "baseline": {"p99_ms": 50, "error_rate": 0.01},
            "fault": {"error_rate": 0.5},
            "recovery": {"error_rate": 0.01},
        },
    }  # fmt: skip
    (path / rf.SCENARIO).write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    meta = {
        "run_id": f"analysis-scale-{n}",
        "scenario": "analysis-scale",
        "target": "local",
        "counter": COUNTER,
        "started_at": "2026-11-28T12:00:00.000000Z",
        "ended_at": "2026-11-28T13:00:00.000000Z",
        "load_started_ns": lo,
        "load_ended_ns": hi,
        "endpoints": {"fleet": "http://127.0.0.1:8080", "lambda": "http://127.0.0.1:9000"},
        "aborted": False,
    }
    (path / rf.RUN_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return {"rows": total + n_final, "retries": m, "applied": len(applied_keys), "duration_s": duration_s}


def _worker_of_keys(key: np.ndarray, worker: np.ndarray, kind: np.ndarray, n_keys: int) -> np.ndarray:
    out = np.zeros(n_keys, dtype=np.int64)
    first = kind == 0
    out[key[first]] = worker[first]
    return out


_READ_SCRIPT = """
import json, sys, time
import pyarrow.parquet as pq
run, ops_cols = sys.argv[1], json.loads(sys.argv[2])
t = time.perf_counter()
ops = pq.read_table(run + "/ops.parquet", columns=ops_cols).to_pandas()
server = pq.read_table(run + "/server_ops.parquet").to_pandas()
timeline = pq.read_table(run + "/timeline.parquet").to_pandas()
print(json.dumps({"read_s": time.perf_counter() - t, "rows": len(ops) + len(server) + len(timeline)}))
"""
READS = {"files": None, "lean": LEAN_OPS_COLUMNS}
"""The two read baselines: ``ops.parquet``'s columns each reads (None: all); the other files whole."""


TUNED_ENV = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(2**40),
    "ARROW_DEFAULT_MEMORY_POOL": "system",
}
"""Allocator settings for ``--tuned``: glibc keeps freed memory for reuse instead of handing it back
(and Arrow allocates through glibc too), so fresh pages are not faulted in and zeroed again and again."""


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """(wall s, peak RSS GiB, exit status, output) of one subprocess; RSS of that child alone.

    A forked child's peak RSS counts the parent's pages until it execs, so this process never holds
    a run in memory: run directories are generated by a child too (``--generate``).
    """
    with tempfile.TemporaryFile("w+") as sink:
        t = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=sink, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        sink.seek(0)
        output = sink.read()
    return wall, usage.ru_maxrss / 2**20, proc.returncode, output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,3000000,10000000",
                        help="comma-separated operation counts (default 1M, 3M, 10M)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="analyze and read runs per size (best counts)")
    parser.add_argument("--keep", type=Path, help="keep the run directories under this directory")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: measure the run directory there instead of making it")  # fmt: skip
    parser.add_argument("--generate", nargs=2, metavar=("DIR", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--tuned", action="store_true",
                        help="also time analyze with the allocator settings of TUNED_ENV")  # fmt: skip
    args = parser.parse_args(argv)
    if args.generate:  # in a child process, so that the parent stays small (see run_measured)
        print(json.dumps(make_run(Path(args.generate[0]), int(args.generate[1]))))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    base = args.keep or Path(tempfile.mkdtemp(prefix="chaoscheck-analysis-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"pyarrow {pa.__version__}; run directories under {base}")  # fmt: skip
    ratio = None
    try:
        for n in sizes:
            run_dir = base / f"run-{n}"
            made, figures_file = 0.0, base / f"run-{n}.json"
            if not (args.reuse and args.keep and figures_file.exists() and run_dir.is_dir()):
                shutil.rmtree(run_dir, ignore_errors=True)
                t = time.perf_counter()
                made_by = subprocess.run(
                    [sys.executable, __file__, "--generate", str(run_dir), str(n)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                figures_file.write_text(made_by.stdout.strip().splitlines()[-1], encoding="utf-8")
                made = time.perf_counter() - t
            figures = json.loads(figures_file.read_text(encoding="utf-8"))
            size_mb = sum(p.stat().st_size for p in run_dir.iterdir()) / 2**20
            print(f"n={n:,}: {figures['rows']:,} ledger rows ({figures['retries']:,} retries), "
                  f"{figures['applied']:,} applied, {figures['duration_s']} s of load; "
                  f"generated in {made:.1f} s, {size_mb:.0f} MiB on disk", flush=True)  # fmt: skip
            analyses, tuned = [], []
            reads: dict[str, list[tuple[float, float, float]]] = {name: [] for name in READS}
            for _ in range(args.repeat):
                if args.tuned:
                    load = os.getloadavg()[0]
                    wall, rss, code, output = run_measured(
                        [sys.executable, "-m", "chaoscheck", "analyze", str(run_dir)], TUNED_ENV
                    )
                    tuned.append((wall, rss, load))
                load = os.getloadavg()[0]
                wall, rss, code, output = run_measured(
                    [sys.executable, "-m", "chaoscheck", "analyze", str(run_dir)]
                )
                if code not in (0, 1):
                    print(output, file=sys.stderr)
                    return 1
                analyses.append((wall, rss, load))
                for name, columns in READS.items():
                    load = os.getloadavg()[0]
                    cmd = [sys.executable, "-c", _READ_SCRIPT, str(run_dir), json.dumps(columns)]
                    _, read_rss, code, output = run_measured(cmd)
                    if code != 0:
                        print(output, file=sys.stderr)
                        return 1
                    read_s = json.loads(output.strip().splitlines()[-1])["read_s"]
                    reads[name].append((read_s, read_rss, load))
            best = min(analyses)
            best_read, best_lean = min(reads["files"]), min(reads["lean"])
            verdict = json.loads((run_dir / rf.SUMMARY).read_text())["verdict"]
            ratio = best[0] / best_read[0]
            runs = ", ".join(f"{w:.2f} s/{r:.2f} GiB (load {lo:.2f})" for w, r, lo in analyses)
            print(f"  analyze: {runs}; verdict {verdict}")
            for name, measured in reads.items():
                read_runs = ", ".join(f"{w:.2f} s/{r:.2f} GiB (load {lo:.2f})" for w, r, lo in measured)
                print(f"  read {name}: {read_runs}")
            if tuned:
                best_tuned = min(tuned)
                tuned_runs = ", ".join(f"{w:.2f} s/{r:.2f} GiB (load {lo:.2f})" for w, r, lo in tuned)
                print(f"  analyze with TUNED_ENV: {tuned_runs}; best {best_tuned[0]:.2f} s, "
                      f"ratio {best_tuned[0] / best_read[0]:.2f}")  # fmt: skip
            print(f"  n={n:,}: analyze {best[0]:.2f} s wall, {best[1]:.2f} GiB peak; "
                  f"read files {best_read[0]:.2f} s, {best_read[1]:.2f} GiB; ratio {ratio:.2f}; "
                  f"read lean {best_lean[0]:.2f} s, ratio {best[0] / best_lean[0]:.2f}; "
                  f"{best[0] / figures['rows'] * 1e6:.2f} us/row", flush=True)  # fmt: skip
            if args.keep is None:
                shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(f"analyze_vs_read_ratio: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
