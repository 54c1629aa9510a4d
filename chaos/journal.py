"""The fault journal, ``faults.jsonl``: one JSON object per line, each on disk before anything follows.

Every line has ``ts`` (ISO-8601 UTC, microseconds, ``Z``), ``ts_ns`` (epoch ns), ``fault_id`` (index of
the fault in the scenario), ``event`` (``inject`` | ``rollback`` | ``abort``), ``action``, ``target`` and
``params``. Then, by event:

- ``inject``: ``window_s`` (the fault's duration, or its settling window when one-shot), ``undo`` (the
  state to restore, captured before the change; ``null`` when there is nothing to undo), ``at_s`` (the
  scheduled offset from the start of the load), ``backend`` and ``backend_config`` (the backend's
  ``descriptor()``: how to reach the target again, never a credential). It is written *before* the change is
  made (write-ahead), so a runner killed at any moment leaves what ``rollback_from_journal`` needs.
- ``rollback``: ``result``, what the backend restored. Written after the undo succeeded.
- ``abort``: ``error``, one line. The injection failed; a preceding ``inject`` line, if any, stays open
  until its ``rollback`` line, because a failed change may have partly happened.
- ``halt``: the whole run was stopped early (``fault_id`` -1, empty ``action`` and ``target``):
  ``error`` says why (a stop condition's breach, ``chaoscheck halt``), ``source`` who stopped it. It
  is written after every open fault was rolled back; nothing is injected after it.

A fault is *open* from an ``inject`` line with a non-null ``undo`` until a ``rollback`` line of the same
``fault_id``. Each line is flushed and fsynced before ``write`` returns. No secret is written: values
under secret-looking keys and credential-looking text in errors are replaced by ``[redacted]``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from chaoscheck import runformat

log = logging.getLogger(__name__)

INJECT, ROLLBACK, ABORT, HALT = runformat.JOURNAL_EVENTS
REDACTED = "[redacted]"
MAX_ERROR_CHARS = 500

_SECRET_KEY = re.compile(r"secret|token|passw|credential|authorization|api[_-]?key|session", re.IGNORECASE)
_SECRET_TEXT = [
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), REDACTED),  # AWS access key ids
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    (
        re.compile(
            r"(?i)\b([\w-]*(?:secret|token|passw\w*|api[_-]?key|signature|credential)[\w-]*)(\s*[=:]\s*)[^\s,;&'\"]+"
        ),
        rf"\1\2{REDACTED}",
    ),
]


def utc_timestamp(ts_ns: int) -> str:
    """``2024-05-01T12:00:00.123456Z`` for an epoch in nanoseconds (microseconds kept, not rounded)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def redact(value: Any) -> Any:
    """``value`` with secret-looking keys' values and credential-looking text replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and _SECRET_KEY.search(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        for pattern, replacement in _SECRET_TEXT:
            value = pattern.sub(replacement, value)
    return value


def error_line(exc: BaseException) -> str:
    """An exception as one short line for the journal: type and message, no traceback, no secrets."""
    text = " ".join(str(exc).split()) or "(no message)"
    text = f"{type(exc).__name__}: {text}"
    text = redact(text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def read_journal(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The lines of a journal as dicts, skipping a torn last line left by a crash mid-write.

    Only the last line can be torn, and a torn ``inject`` line was never followed by its change (the
    change waits for the line to be on disk), so skipping it loses nothing that needs undoing.
    """
    entries: list[dict[str, Any]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not line.endswith("\n"):
                log.warning("%s: skipping a torn last line (%d bytes)", path, len(line))
                continue
            raise ValueError(f"{os.fspath(path)}:{number}: expected one JSON object per line") from None
        if not isinstance(entry, dict):
            raise ValueError(f"{os.fspath(path)}:{number}: expected one JSON object per line")
        entries.append(entry)
    return entries


def open_injections(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``inject`` lines that still need a rollback, in the order they were injected."""
    open_: dict[int, dict[str, Any]] = {}
    for entry in entries:
        if entry.get("event") == INJECT and entry.get("undo") is not None:
            open_[entry["fault_id"]] = entry
        elif entry.get("event") == ROLLBACK:
            open_.pop(entry.get("fault_id"), None)
    return list(open_.values())


class Journal:
    """Appends lines to ``faults.jsonl`` and knows which faults are still open.

    Opening an existing journal (to roll back after a crash) reads its lines first and drops a torn
    last line, so that new lines start on a line of their own. Thread-safe: the scheduler's thread and
    the thread that stops the run both write. Re-entrant, so a signal handler may write too.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        existing = self.path.exists()
        self._entries: list[dict[str, Any]] = read_journal(self.path) if existing else []
        if existing:
            self._drop_torn_tail()
        self._file = self.path.open("a", encoding="utf-8")
        if not existing:
            _fsync_directory(self.path.parent)

    def _drop_torn_tail(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.path.open("r+b") as handle:
                handle.truncate(keep)
                handle.flush()
                os.fsync(handle.fileno())

    # writing -----------------------------------------------------------------------------------------

    def write(
        self,
        event: str,
        *,
        fault_id: int,
        action: str,
        target: str,
        params: dict[str, Any],
        **fields: Any,
    ) -> dict[str, Any]:
        """Append one line and return it once it is on disk (flushed and fsynced)."""
        if event not in runformat.JOURNAL_EVENTS:
            raise ValueError(f"expected one of {runformat.JOURNAL_EVENTS}, got {event!r}")
        with self._lock:
            ts_ns = time.time_ns()
            entry = redact(
                {
                    "ts": utc_timestamp(ts_ns),
                    "ts_ns": ts_ns,
                    "fault_id": fault_id,
                    "event": event,
                    "action": action,
                    "target": target,
                    "params": params,
                    **fields,
                }
            )
            line = json.dumps(entry, separators=(",", ":"), allow_nan=False)
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            self._entries.append(entry)
            return entry

    def inject(
        self,
        fault_id: int,
        action: str,
        target: str,
        params: dict[str, Any],
        *,
        window_s: float,
        undo: dict[str, Any] | None,
        at_s: float | None = None,
        backend: str | None = None,
        backend_config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record, before the change, that a fault is about to be injected and how to undo it.

        ``backend_config`` is the backend's ``descriptor()``: how to reach the target again from this
        line alone, for a rollback after the runner died.
        """
        return self.write(
            INJECT,
            fault_id=fault_id,
            action=action,
            target=target,
            params=params,
            window_s=window_s,
            undo=undo,
            at_s=at_s,
            backend=backend,
            backend_config=backend_config or {},
        )

    def rollback(
        self, fault_id: int, action: str, target: str, params: dict[str, Any], *, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Record that a fault's prior state was restored."""
        return self.write(
            ROLLBACK, fault_id=fault_id, action=action, target=target, params=params, result=result
        )

    def abort(
        self, fault_id: int, action: str, target: str, params: dict[str, Any], *, error: str
    ) -> dict[str, Any]:
        """Record that an injection failed, with a one-line ``error`` (see ``error_line``)."""
        return self.write(ABORT, fault_id=fault_id, action=action, target=target, params=params, error=error)

    def halt(self, reason: str, *, source: str, **fields: Any) -> dict[str, Any]:
        """Record that the run was stopped early: no fault is injected after this line."""
        return self.write(
            HALT,
            fault_id=runformat.HALT_FAULT_ID,
            action="",
            target="",
            params={},
            error=reason,
            source=source,
            **fields,
        )

    def halted(self) -> bool:
        """Whether a ``halt`` line was written (by this process or, read at opening, by an earlier one)."""
        with self._lock:
            return any(entry["event"] == HALT for entry in self._entries)

    # reading -----------------------------------------------------------------------------------------

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Every line of the journal, those found at opening and those written since."""
        with self._lock:
            return list(self._entries)

    def open_injections(self) -> list[dict[str, Any]]:
        """The ``inject`` lines without a ``rollback`` yet, in injection order."""
        with self._lock:
            return open_injections(self._entries)

    def is_open(self, fault_id: int) -> bool:
        """Whether ``fault_id`` was injected with something to undo and not rolled back yet."""
        return any(entry["fault_id"] == fault_id for entry in self.open_injections())

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _fsync_directory(directory: Path) -> None:
    """Make a new file's directory entry durable too (POSIX; a no-op where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
