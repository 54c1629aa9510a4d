"""The ledger recorder: streamed in row groups, published under its final name only when complete."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from chaoscheck.runformat import OPS_SCHEMA
from loadtests.ledger import LedgerRecorder, append_rows, rows_to_table


def _row(n: int, kind: str = "increment", value: int | None = None) -> tuple:
    key = f"c:{n}" if kind == "increment" else None
    return (key, kind, "fleet", "c", 1_000 + n, 2_000 + n, 200, "ok", value if value is not None else n, None,
            "i-1", "host:1", None, 0, None)  # fmt: skip


def test_rows_become_a_table_with_the_schema() -> None:
    table = rows_to_table([_row(1), _row(2, "read", 7)])
    assert table.schema == OPS_SCHEMA
    assert table.column("op_id").to_pylist() == ["c:1", None]
    assert table.column("value").to_pylist() == [1, 7]


def test_streamed_rows_are_published_only_on_close(tmp_path) -> None:
    path = tmp_path / "ops.parquet"
    recorder = LedgerRecorder(path, row_group_rows=4)
    for n in range(5):
        recorder.append(_row(n))
    assert recorder.flush() == 5, "five rows are enough for a row group of four"
    assert not path.exists() and recorder.partial.exists()
    for n in range(5, 8):
        recorder.append(_row(n))
    assert recorder.flush() == 0, "three rows wait for more"
    assert recorder.close() == 8
    assert not recorder.partial.exists()
    table = pq.read_table(path)
    assert table.num_rows == 8
    assert pq.ParquetFile(path).num_row_groups == 2
    assert table.column("op_id").to_pylist() == [f"c:{n}" for n in range(8)]
    assert recorder.close() == 8  # closing twice is harmless


def test_frequent_flushes_make_few_row_groups(tmp_path) -> None:
    """A row group per flush would grow the writer's memory all run long; they are batched."""
    path = tmp_path / "ops.parquet"
    recorder = LedgerRecorder(path, row_group_rows=1_000)
    for flush in range(30):
        for n in range(100):
            recorder.append(_row(flush * 100 + n))
        recorder.flush()
    recorder.close()
    assert pq.read_table(path).num_rows == 3_000
    assert pq.ParquetFile(path).num_row_groups == 3


def test_old_rows_are_written_even_when_few(tmp_path) -> None:
    recorder = LedgerRecorder(tmp_path / "ops.parquet", row_group_rows=10**6, row_group_age_s=0.0)
    recorder.append(_row(1))
    assert recorder.flush() == 1


def test_a_run_without_requests_still_writes_an_empty_ledger(tmp_path) -> None:
    path = tmp_path / "ops.parquet"
    assert LedgerRecorder(path).close() == 0
    assert pq.read_table(path).num_rows == 0


def test_final_rows_are_appended_atomically(tmp_path) -> None:
    path = tmp_path / "ops.parquet"
    recorder = LedgerRecorder(path)
    recorder.append(_row(1))
    recorder.close()
    append_rows(path, [_row(9, "final", 1)])
    table = pq.read_table(path)
    assert table.column("kind").to_pylist() == ["increment", "final"]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_row_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError):
        rows_to_table([_row(1)[:-1]])
