"""Helpers of the web UI tests: Locust with its web UI as a child process, driven over HTTP.

Locust runs as ``python -m locust -f loadtests/locustfile.py`` in a temporary working directory (its
``runs/`` stay there), on 127.0.0.1 only. Every wait is bounded; ``LocustUI.stop`` ends the process
it started, by its own pid.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chaoscheck.locust_process import LOCUSTFILE
from counter.local.client import LocalStack

STACK = {
    "fleet": {"desired": 2, "health_interval": 0.2, "unhealthy_threshold": 2, "boot_delay": 0.3},
    "lambda": {"reserved_concurrency": 6, "cold_start": 0.02},
    "sample_interval": 0.1,
}
RESERVED = STACK["lambda"]["reserved_concurrency"]

SCENARIO = """\
version: 1
name: webui-test
description: a small load, one throttle a second in, for one second
load: {users: 4, duration: 30s, timeout: 2s}
faults:
  - {at: 1s, action: throttle-lambda, reserved_concurrency: 0, duration: 1s}
"""

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Straight to 127.0.0.1, whatever proxy the environment names."""

CONTRACT = ("wait_ledger_closed", "live_counts")
"""What the web UI calls in ``loadtests.plugin`` (docs/webui.md, "Contract with the load plugin")."""


def missing_from_load_plugin() -> list[str]:
    """The contract functions ``loadtests/plugin.py`` does not define (read, not imported: importing
    it would import Locust, whose gevent monkey-patching must stay out of the pytest process)."""
    tree = ast.parse((LOCUSTFILE.parent / "plugin.py").read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    return [name for name in CONTRACT if name not in defined]


def require_load_plugin() -> None:
    missing = missing_from_load_plugin()
    if missing:
        pytest.skip(
            f"loadtests.plugin does not define {', '.join(missing)} yet: the web UI's contract with the "
            "load plugin (docs/webui.md) has not landed"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


class LocustUI:
    """One ``locust -f loadtests/locustfile.py`` with its web UI on 127.0.0.1."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"locust-{self.port}.out"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *self.web_args(), *args],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._ready, 30, "the web UI to answer")

    def web_args(self) -> list[str]:
        return ["--web-host", "127.0.0.1", "--web-port", str(self.port)]

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"Locust exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return self.get("/").status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def request(
        self, method: str, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        try:
            with NO_PROXY.open(req, timeout=15) as resp:
                return Answer(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.headers, exc.read())

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post_form(self, path: str, fields: dict[str, Any]) -> Answer:
        return self.request("POST", path, urllib.parse.urlencode(fields).encode())

    def post_json(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Answer:
        headers = {"Content-Type": "application/json", **(headers or {})}
        return self.request("POST", path, json.dumps(body).encode(), headers)

    def state(self) -> dict[str, Any]:
        answer = self.get("/chaos/state")
        assert answer.status == 200, answer.body[:500]
        return answer.json()

    def wait_run(self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict:
        def run() -> dict | None:
            current = self.state()["run"]
            return current if current is not None and predicate(current) else None

        return wait_for(run, timeout, what, interval=0.2)

    def inject(self, action: str, **params: Any) -> Answer:
        return self.post_json("/chaos/inject", {"action": action, "params": params})

    def swarm(self, **fields: Any) -> Answer:
        form = {"user_count": 4, "spawn_rate": 4, "run_time": "", **fields}
        return self.post_form("/swarm", form)

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, group_grace: float = 10.0) -> None:
        """Quit Locust (SIGTERM) and wait for it. Then give the rest of the process group it was started
        in (its workers, with ``--processes``) ``group_grace`` seconds to exit; ``left_behind`` counts
        those still alive then, which are killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        group = self.proc.pid  # start_new_session: the group's id is Locust's pid
        deadline = time.monotonic() + group_grace
        while self._group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.left_behind = len(self._group_alive(group))
        if self.left_behind:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self._log.close()

    @staticmethod
    def _group_alive(group: int) -> list[str]:
        listed = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(group)], capture_output=True, text=True)
        return [line.split()[0] for line in listed.stdout.splitlines() if line.split()[1:2] != ["Z"]]


def reserved_concurrency(stack: LocalStack) -> int | None:
    return stack.control.state()["lambda"]["reserved_concurrency"]
