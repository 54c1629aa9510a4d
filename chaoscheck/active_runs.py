"""The runs in progress on this machine, so that ``chaoscheck halt`` can reach every one of them.

Each run (CLI or Locust web UI) registers itself while its faults may be in force: one small file per
run under ``$CHAOSCHECK_STATE_DIR`` (default ``$XDG_STATE_HOME/chaoscheck``, else
``~/.local/state/chaoscheck``) in ``active/``, holding the runner's pid, the process's start time (so
a recycled pid is never mistaken for the runner) and the run directory. Nothing secret is in it. A
runner that dies without unregistering leaves its file behind; ``halt`` and ``rollback --all`` treat
such an entry as dead and restore its faults from the journal.

``SIGUSR1`` is the halt request: a registered runner answers it by rolling back every fault, writing
a ``halt`` line and stopping its load.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

HALT_SIGNAL = signal.SIGUSR1


def state_dir() -> Path:
    """Where chaoscheck keeps per-machine state (the active runs)."""
    explicit = os.environ.get("CHAOSCHECK_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "chaoscheck"


@dataclass(frozen=True)
class ActiveRun:
    """One registered run."""

    path: Path
    pid: int
    started: str
    run_dir: Path

    @property
    def alive(self) -> bool:
        """Whether the registering process still runs (same pid and same start time)."""
        return _start_time(self.pid) == self.started


def register(run_dir: Path, pid: int | None = None) -> Path:
    """Record that the process ``pid`` (default: this one) runs ``run_dir``; returns the entry's path."""
    pid = os.getpid() if pid is None else pid
    directory = state_dir() / "active"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    entry = directory / f"{pid}-{run_dir.name}.json"
    tmp = entry.with_name(entry.name + ".tmp")
    tmp.write_text(json.dumps({"pid": pid, "started": _start_time(pid), "run_dir": str(run_dir.resolve())}))
    os.replace(tmp, entry)
    return entry


def unregister(entry: Path) -> None:
    entry.unlink(missing_ok=True)


def active_runs() -> list[ActiveRun]:
    """Every registered run, alive or left behind by a dead runner; unreadable entries are skipped."""
    directory = state_dir() / "active"
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            found.append(ActiveRun(path, int(data["pid"]), str(data["started"]), Path(data["run_dir"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22); "" if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]
