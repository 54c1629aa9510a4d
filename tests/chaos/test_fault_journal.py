"""faults.jsonl: the line format, one fsync per line, redaction, torn lines, open faults."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chaos import journal as journal_module
from chaos.journal import Journal, error_line, open_injections, read_journal, redact, utc_timestamp
from chaoscheck import runformat

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
COMMON = {"ts", "ts_ns", "fault_id", "event", "action", "target", "params"}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_event_has_the_common_fields_and_its_own(tmp_path: Path) -> None:
    path = tmp_path / runformat.FAULTS
    with Journal(path) as journal:
        journal.inject(
            1, "throttle-lambda", "lambda", {"reserved_concurrency": 0},
            window_s=5.0, undo={"reserved_concurrency": None}, at_s=28.0, backend="local",
        )  # fmt: skip
        journal.rollback(1, "throttle-lambda", "lambda", {"reserved_concurrency": 0}, result={"x": 1})
        journal.abort(0, "terminate-instance", "fleet", {"count": 1}, error="InjectionError: none in service")
    inject, rollback, abort = _lines(path)
    for line in (inject, rollback, abort):
        assert set(line) >= COMMON
        assert TS.match(line["ts"]) and isinstance(line["ts_ns"], int)
        assert line["event"] in runformat.JOURNAL_EVENTS
    assert inject == inject | {
        "fault_id": 1,
        "event": "inject",
        "action": "throttle-lambda",
        "target": "lambda",
        "params": {"reserved_concurrency": 0},
        "window_s": 5.0,
        "undo": {"reserved_concurrency": None},
        "at_s": 28.0,
        "backend": "local",
    }
    assert rollback["event"] == "rollback" and rollback["result"] == {"x": 1}
    assert abort["event"] == "abort" and abort["error"] == "InjectionError: none in service"
    assert inject["ts_ns"] <= rollback["ts_ns"] <= abort["ts_ns"]


def test_ts_is_ts_ns_in_utc_with_microseconds() -> None:
    ts_ns = 1_764_365_412_004_211_987
    assert utc_timestamp(ts_ns) == "2025-11-28T21:30:12.004211Z"
    parsed = datetime.strptime(utc_timestamp(ts_ns), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert int(parsed.timestamp()) == ts_ns // 1_000_000_000


def test_each_line_is_flushed_and_fsynced_before_write_returns(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / runformat.FAULTS
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(len(path.read_text().splitlines()))  # what is in the file when fsync is asked
        real_fsync(fd)

    monkeypatch.setattr(journal_module.os, "fsync", fsync)
    journal = Journal(path)
    synced.clear()  # opening a new journal fsyncs its directory
    for fault_id in range(3):
        journal.abort(fault_id, "terminate-instance", "fleet", {}, error="x")
        assert synced[-1] == fault_id + 1  # the line was flushed to the file before its fsync
        assert len(_lines(path)) == fault_id + 1  # and is there when write returns
    assert synced == [1, 2, 3]
    journal.close()


def test_an_unknown_event_is_refused(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.jsonl") as journal, pytest.raises(ValueError, match="expected one of"):
        journal.write("explode", fault_id=0, action="a", target="t", params={})


def test_no_secret_reaches_the_journal(tmp_path: Path) -> None:
    path = tmp_path / runformat.FAULTS
    secret_error = RuntimeError(
        "denied for AKIAABCDEFGHIJKLMNOP: Authorization: Bearer abc.def token=s3cr3t password: hunter2"
    )
    with Journal(path) as journal:
        journal.inject(
            0, "throttle-lambda", "lambda", {"reserved_concurrency": 0, "api_key": "k-123"},
            window_s=1.0, undo={"reserved_concurrency": 3, "session_token": "tok"},
        )  # fmt: skip
        journal.abort(0, "throttle-lambda", "lambda", {}, error=error_line(secret_error))
    text = path.read_text()
    for secret in ("AKIAABCDEFGHIJKLMNOP", "abc.def", "s3cr3t", "hunter2", "k-123", '"tok"'):
        assert secret not in text
    inject, abort = _lines(path)
    assert inject["params"] == {"reserved_concurrency": 0, "api_key": "[redacted]"}
    assert inject["undo"]["reserved_concurrency"] == 3
    assert "Bearer [redacted]" in abort["error"] and "token=[redacted]" in abort["error"]


def test_redact_leaves_ordinary_data_alone() -> None:
    data = {"reserved_concurrency": None, "target": "i-0001,i-0002", "error": "TimeoutError: timed out"}
    assert redact(data) == data


def test_error_line_is_one_short_line_without_a_traceback() -> None:
    try:
        raise ValueError("first\nsecond\n  third")
    except ValueError as exc:
        line = error_line(exc)
    assert line == "ValueError: first second third"
    long = error_line(RuntimeError("x" * 2000))
    assert len(long) == journal_module.MAX_ERROR_CHARS and "\n" not in long


def test_open_injections_are_injects_with_an_undo_and_no_rollback() -> None:
    entries = [
        {"event": "inject", "fault_id": 0, "undo": None},  # one-shot: nothing to undo
        {"event": "inject", "fault_id": 1, "undo": {"reserved_concurrency": 2}},
        {"event": "rollback", "fault_id": 1},
        {"event": "inject", "fault_id": 2, "undo": {"reserved_concurrency": None}},
        {"event": "abort", "fault_id": 2, "error": "x"},  # a failed apply stays open until rolled back
        {"event": "abort", "fault_id": 3, "error": "x"},  # failed before anything changed
    ]
    assert [e["fault_id"] for e in open_injections(entries)] == [2]


def test_a_torn_last_line_is_skipped_and_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / runformat.FAULTS
    with Journal(path) as journal:
        journal.abort(0, "terminate-instance", "fleet", {}, error="x")
    with path.open("a") as handle:
        handle.write('{"ts": "2026-')  # the runner died in the middle of a write
    assert len(read_journal(path)) == 1
    with Journal(path) as journal:
        assert len(journal.entries) == 1
        journal.abort(1, "terminate-instance", "fleet", {}, error="y")
    assert [line["fault_id"] for line in _lines(path)] == [0, 1]


def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / runformat.FAULTS
    path.write_text('{"fault_id": 0}\nnot json\n{"fault_id": 1}\n')
    with pytest.raises(ValueError, match=r"faults.jsonl:2: expected one JSON object per line"):
        read_journal(path)


def test_reopening_knows_what_is_open(tmp_path: Path) -> None:
    path = tmp_path / runformat.FAULTS
    with Journal(path) as journal:
        journal.inject(0, "throttle-lambda", "lambda", {}, window_s=1.0, undo={"reserved_concurrency": 1})
        assert journal.is_open(0)
    with Journal(path) as journal:
        assert journal.is_open(0)
        journal.rollback(0, "throttle-lambda", "lambda", {}, result={})
        assert not journal.is_open(0)
