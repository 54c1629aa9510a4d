"""Locust as a child process, started the way a person would start it.

Locust monkey-patches its whole process with gevent, so the orchestrator (threads, signal handling,
subprocesses of the stack) keeps it at arm's length: ``python -m locust -f loadtests/locustfile.py
--headless ...`` in a process of its own, in a new session so that a terminal's Ctrl-C reaches only
the orchestrator, which then stops Locust in order. If the orchestrator dies, the kernel kills
Locust too (parent-death signal), so no load keeps running on its own.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import loadtests
from chaoscheck import runformat
from chaoscheck.errors import UserError
from chaoscheck.processes import die_with_parent

LOCUSTFILE = Path(loadtests.__file__).resolve().parent / "locustfile.py"


class LocustProcess:
    """One headless Locust run writing its ledger into a run directory."""

    def __init__(self, run_dir: Path, args: list[str]) -> None:
        self.run_dir = run_dir
        self.marker = run_dir / runformat.LOAD
        self._log = open(run_dir / runformat.LOCUST_LOG, "ab")  # noqa: SIM115 (closed in wait/stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--run-dir", str(run_dir), *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def wait_started(self, timeout: float) -> int:
        """Epoch ns at which Locust started the test; a clear error if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.marker.exists():
                started = json.loads(self.marker.read_text()).get("started_ns")
                if started:
                    return int(started)
            if self.proc.poll() is not None:
                raise UserError(
                    f"Locust exited with status {self.proc.returncode} before the load started; "
                    f"see {self.run_dir / runformat.LOCUST_LOG}"
                )
            time.sleep(0.005)
        raise UserError(f"Locust did not start the load within {timeout:.0f} s")

    def wait(self, timeout: float, until: threading.Event | None = None) -> int:
        """Wait for Locust to finish by itself; stop it if it overruns or ``until`` is set (a halt).

        Returns its exit status.
        """
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or (until is not None and until.is_set()):
                    return self.stop()
                try:
                    return self.proc.wait(timeout=min(left, 0.1) if until is not None else left)
                except subprocess.TimeoutExpired:
                    continue
        finally:
            self._log.close()

    def stop(self, grace: float = 15.0) -> int:
        """Ask Locust to quit (it writes its ledger on the way out); kill it if it does not."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def load_info(self) -> dict:
        """What the plugin wrote in ``load.json`` (start, stop, rows)."""
        try:
            return json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return {}
