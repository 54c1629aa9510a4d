"""The operation ledger: every request of a run, one row each, streamed to ``ops.parquet``.

The recorder sits on Locust's request path, so appending is a single ``list.append`` of a tuple
(about 2 us); rows become Arrow tables only in ``flush``, which the plugin calls every few seconds
(so few Python objects stay alive), and those tables are written as one Parquet row group once they
hold ``row_group_rows`` rows or are ``row_group_age_s`` old. Few, large row groups matter in a long
run: pyarrow's writer keeps about 12 KB of metadata per row group in memory until the file is
closed (a row group every 2 s grew a soak's memory by about 22 MB an hour).

Rows are written to ``ops.parquet.partial`` and the file is renamed to ``ops.parquet`` when the
ledger is closed, so a reader never sees a half-written ledger under the final name, and a crashed
run still leaves every written row group behind.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from chaoscheck.runformat import OPS_SCHEMA

Row = tuple
"""A ledger row: the values of ``OPS_SCHEMA``'s columns, in its order."""

COLUMNS = tuple(OPS_SCHEMA.names)


def rows_to_table(rows: list[Row]) -> pa.Table:
    """Build an ``OPS_SCHEMA`` table from row tuples (columnar conversion, no per-cell Python work)."""
    if not rows:
        return OPS_SCHEMA.empty_table()
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(col, type=field.type) for col, field in zip(columns, OPS_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=OPS_SCHEMA)


class LedgerRecorder:
    """Collects ledger rows in memory and streams them to a Parquet file in batches."""

    def __init__(self, path: Path, row_group_rows: int = 65_536, row_group_age_s: float = 30.0) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.rows: list[Row] = []
        self.written = 0
        self.row_group_rows = row_group_rows
        self.row_group_age_s = row_group_age_s
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_since = 0.0
        self._writer: pq.ParquetWriter | None = None
        self.closed = False

    def append(self, row: Row) -> None:
        """Record one operation. Called on the request path: keep it an append."""
        self.rows.append(row)

    def flush(self, force: bool = False) -> int:
        """Convert the rows collected so far; write a row group when enough has accumulated (or
        ``force``). Returns how many rows were written to the file by this call."""
        if self.closed:
            return 0
        if self.rows:
            rows, self.rows = self.rows, []
            if not self._pending:
                self._pending_since = time.monotonic()
            self._pending.append(rows_to_table(rows))
            self._pending_rows += len(rows)
        due = self._pending_rows >= self.row_group_rows or (
            self._pending and time.monotonic() - self._pending_since >= self.row_group_age_s
        )
        if not self._pending or not (force or due):
            return 0
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.partial, OPS_SCHEMA, compression="zstd")
        self._writer.write_table(table, row_group_size=max(len(table), 1))
        self.written += len(table)
        return len(table)

    def close(self) -> int:
        """Write the rest and publish ``ops.parquet``; returns the total number of rows."""
        if self.closed:
            return self.written
        self.flush(force=True)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(OPS_SCHEMA.empty_table(), self.partial)
        else:
            self._writer.close()
        os.replace(self.partial, self.path)
        self.closed = True
        return self.written


def append_rows(path: Path, rows: list[Row]) -> None:
    """Add rows to a closed ledger, atomically (used for the ``final`` reads after the load)."""
    table = pq.read_table(path, schema=OPS_SCHEMA)
    combined = pa.concat_tables([table, rows_to_table(rows)])
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    pq.write_table(combined, tmp, compression="zstd")
    os.replace(tmp, path)
