"""Helpers shared by the load-generator benchmarks (recorder_overhead, generator_ceiling, soak_memory).

Not a benchmark itself. Everything here stays on 127.0.0.1: a directly served instance (the fast
uvicorn server of ``counter.instance_server`` on a listening socket this process opens and hands
down), scenario files for ``loadtests/locustfile.py``, the Locust command line, reading a counter's
value from the server (the server-side count of applied increments), and CPU time of a process from
``/proc``.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def locust_executable() -> str:
    """The ``locust`` script of the interpreter running the benchmark (the venv's)."""
    return str(Path(sys.executable).with_name("locust"))


def increments_only(users: int, duration_s: float) -> dict[str, Any]:
    """A closed-loop load of increments to the fleet endpoint only, for throughput benchmarks."""
    return {
        "users": users,
        "duration": f"{duration_s:g}s",
        "mix": {"increment": 1, "read": 0},
        "endpoints": {"fleet": 1, "lambda": 0},
        "timeout": "5s",
    }


def write_scenario(path: Path, name: str, load: dict[str, Any]) -> Path:
    """A scenario file whose ``load`` section the chaoscheck plugin reads (``--scenario``)."""
    document = {"version": 1, "name": name, "description": f"benchmark: {name}", "load": load}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def locust_command(
    users: int,
    run_time_s: float,
    *,
    scenario: Path,
    counter: str,
    run_dir: Path,
    fleet_url: str = "",
    lambda_url: str = "",
    locustfile: Path = LOCUSTFILE,
    extra: list[str] | None = None,
) -> list[str]:
    """One headless Locust process running the chaoscheck locustfile, all users started at once."""
    command = [
        locust_executable(),
        "-f", str(locustfile),
        "--headless",
        "-u", str(users),
        "-r", str(users),
        "-t", f"{math.ceil(run_time_s)}s",  # Locust takes whole seconds
        "--stop-timeout", "5",
        "--only-summary",
        "--loglevel", "WARNING",
        "--scenario", str(scenario),
        "--counter", counter,
        "--run-dir", str(run_dir),
        "--json-file", str(run_dir / "locust-stats"),
    ]  # fmt: skip
    if fleet_url:
        command += ["--fleet-url", fleet_url]
    if lambda_url:
        command += ["--lambda-url", lambda_url]
    return command + (extra or [])


class InstanceServer:
    """``python -m counter.instance_server --fd N --db PATH`` on a socket opened here (no port race)."""

    def __init__(self, db_path: Path, log_path: Path) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        fd = self._sock.fileno()
        env = dict(os.environ, CHAOSCHECK_INSTANCE_ID="i-bench")
        self._log = open(log_path, "ab")  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "counter.instance_server", "--fd", str(fd), "--db", str(db_path)],
            pass_fds=(fd,),
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid
        deadline = time.monotonic() + 20
        while True:
            try:
                status, _ = http_get(self.url, "/health", timeout=1.0)
                if status == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"instance server did not start; see {log_path}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._sock.close()
        self._log.close()

    def __enter__(self) -> InstanceServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def http_get(base_url: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def counter_value(base_url: str, counter: str) -> int:
    """The counter's value as the store has it: increments applied so far (each key once)."""
    status, body = http_get(base_url, f"/counters/{counter}")
    if status != 200:
        raise RuntimeError(f"GET /counters/{counter} answered {status}: {body[:120]!r}")
    return int(json.loads(body)["value"])


def wait_for_first_increment(base_url: str, counter: str, timeout: float, process: Any = None) -> float:
    """Poll until the counter moves; returns the monotonic time it was first seen above 0."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if counter_value(base_url, counter) > 0:
            return time.monotonic()
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.02)
    if process is not None and process.poll() is not None:
        raise RuntimeError(f"the load generator exited with {process.returncode} before any increment")
    raise RuntimeError(f"no increment reached counter {counter} within {timeout:g} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (not idle, not waiting for I/O), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / CLOCK_TICKS


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))


def stop_process(process: subprocess.Popen[Any], timeout: float) -> int:
    """Wait for a process to end; SIGTERM, then SIGKILL, if it overstays."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def machine() -> str:
    """A one-line description of the machine, for the figures' record."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {mem_gib:.0f} GiB, Python {sys.version.split()[0]}"


class Window:
    """Applied increments per second over a steady window, and each process's CPU share in it."""

    def __init__(self, increments: int, seconds: float, cpu: dict[str, float]) -> None:
        self.increments = increments
        self.seconds = seconds
        self.rate = increments / seconds if seconds > 0 else 0.0
        self.cpu = cpu  # name -> CPU seconds per wall second (1.0 = one core); "others": the rest


def measure_window(
    base_url: str,
    counter: str,
    process: subprocess.Popen[Any],
    warmup_s: float,
    duration_s: float,
    pids: dict[str, int],
    start_timeout_s: float = 30.0,
) -> Window:
    """Wait for the first increment, let ``warmup_s`` pass, then count the server's applied increments
    (its counter value) and the CPU time of ``pids`` over ``duration_s``."""
    first = wait_for_first_increment(base_url, counter, start_timeout_s, process)
    sleep_until(first + warmup_s)
    busy0, cpu0 = machine_busy_seconds(), {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0, v0 = time.monotonic(), counter_value(base_url, counter)
    sleep_until(t0 + duration_s)
    t1, v1 = time.monotonic(), counter_value(base_url, counter)
    busy1, cpu1 = machine_busy_seconds(), {name: cpu_seconds(pid) for name, pid in pids.items()}
    seconds = t1 - t0
    cpu = {name: (cpu1[name] - cpu0[name]) / seconds for name in pids}
    cpu["others"] = max(0.0, (busy1 - busy0) / seconds - sum(cpu.values()))
    return Window(v1 - v0, seconds, cpu)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def wait_quiet(max_busy: float, timeout_s: float) -> float:
    """Wait (at most ``timeout_s``) until the machine's busy CPU over 2 s is below ``max_busy`` cores,
    so that a run does not start while other work (tests, builds) shares the cores. Returns the last
    busy figure."""
    deadline = time.monotonic() + timeout_s
    while True:
        before = machine_busy_seconds()
        time.sleep(2.0)
        busy = (machine_busy_seconds() - before) / 2.0
        if busy < max_busy or time.monotonic() >= deadline:
            return busy
