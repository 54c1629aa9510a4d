"""The embedded local stack as a run target: real processes on 127.0.0.1 and a real SQLite store."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from chaos.backends.local import LocalBackend
from chaos.blast_radius import DEFAULT_MAX_SHARE
from chaoscheck.runformat import SCALING_SCHEMA, SERVER_OPS_SCHEMA, TIMELINE_SCHEMA
from counter.local.client import LocalStack
from counter.local.config import StackConfig
from counter.sqlite_store import SQLiteStore
from counter.xray_collector import XRayCollector


class LocalTarget:
    """The local stack for one run: started for it, or one already running (``chaoscheck stack up``).

    A stack started here is stopped with the run and its store deleted (the run directory keeps the
    store's ledger); an attached stack is left running, as it was found.
    """

    name = "local"
    has_chaos = True

    def __init__(
        self,
        config: StackConfig,
        log_path: Path | None = None,
        seed: int | None = None,
        max_share: float = DEFAULT_MAX_SHARE,
        xray_path: Path | None = None,
    ) -> None:
        self._workdir: Path | None = None
        self.db_path: Path | None = None
        self._log_path = log_path
        self.stack: LocalStack | None = None
        self.config = config
        self.seed = seed
        self.max_share = max_share
        self._xray_path = xray_path if config.xray else None
        self._collector: XRayCollector | None = None
        self._state_file: Path | None = None

    @classmethod
    def attached(
        cls, state_file: Path, seed: int | None = None, max_share: float = DEFAULT_MAX_SHARE
    ) -> LocalTarget:
        """A target on the stack described by ``state_file`` (written by ``chaoscheck stack up``)."""
        target = cls(StackConfig(), seed=seed, max_share=max_share)
        target._state_file = state_file
        return target

    def start(self) -> LocalTarget:
        if self._state_file is not None:
            self.stack = LocalStack.from_state_file(self._state_file)
            self.db_path = Path(self.stack.control.info()["db"])
            return self
        self._workdir = Path(tempfile.mkdtemp(prefix="chaoscheck-store-"))
        self.db_path = self._workdir / "counter.sqlite"
        env: dict[str, str] = {}
        if self._xray_path is not None:
            # Instances and Lambda environments send their segments here; the file is the run's.
            self._collector = XRayCollector(self._xray_path).start()
            env = self._collector.environment()
        try:
            self.stack = LocalStack.start(self.config, db_path=self.db_path, log_path=self._log_path, env=env)
        except BaseException:
            self._stop_collector()
            raise
        return self

    def _stop_collector(self) -> None:
        if self._collector is not None:
            self._collector.stop()
            self._collector = None

    def _running(self) -> LocalStack:
        if self.stack is None:
            raise RuntimeError("the local stack is not started")
        return self.stack

    def endpoints(self) -> dict[str, str]:
        stack = self._running()
        return {"fleet": stack.fleet_url, "lambda": stack.lambda_url}

    def chaos_backend(self) -> LocalBackend:
        return LocalBackend(
            self._running().control, seed=self.seed, max_share=self.max_share, state_file=self._state_file
        )

    def wait_quiet(self, timeout: float) -> bool:
        control = self._running().control
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = control.state()
            if state["fleet"].get("in_flight", 0) == 0 and state["lambda"].get("active", 0) == 0:
                return True
            time.sleep(0.05)
        return False

    def timeline(self, since_ns: int) -> pa.Table | None:
        samples = [s for s in self._running().control.timeline() if s["ts_ns"] >= since_ns]
        columns = {name: [s.get(name) for s in samples] for name in TIMELINE_SCHEMA.names}
        return pa.Table.from_pydict(columns, schema=TIMELINE_SCHEMA)

    def activities(self, since_ns: int) -> pa.Table | None:
        rows = self._running().control.activities(since_ns)
        columns = {name: [row.get(name) for row in rows] for name in SCALING_SCHEMA.names}
        return pa.Table.from_pydict(columns, schema=SCALING_SCHEMA)

    def server_ops(self, counter: str) -> pa.Table | None:
        if self.db_path is None:
            return None
        store = SQLiteStore(self.db_path)
        try:
            rows = store.applied_ops(counter)
        finally:
            store.close()
        keys, names, values, applied = (
            (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [])
        )
        return pa.Table.from_pydict(
            {"op_id": keys, "counter": names, "value_after": values, "applied_ns": applied},
            schema=SERVER_OPS_SCHEMA,
        )

    def log_paths(self) -> list[Path]:
        return [self._log_path] if self._log_path else []

    def stop(self) -> None:
        if self._state_file is not None:
            return  # not ours to stop
        if self.stack is not None:
            self.stack.stop()
        self._stop_collector()  # after every sender is gone, so nothing sent is lost
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
