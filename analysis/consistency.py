"""Counter consistency: Jepsen's counter checker, extended with the server's ledger.

Definitions (``shared/reference/verification.md``; Jepsen ``checker/counter``):

* The idempotency key, not the attempt, is the unit checked. A key's outcome is ``ok`` if any of its
  attempts was ok, ``fail`` if every attempt definitely failed, ``info`` (indeterminate) otherwise.
* L = ok keys, U = ok + info keys, V = the value of the ok ``final`` reads (made after the load
  stopped and the system quiesced). Bounds hold iff L <= V <= U; lost_min = max(0, L - V),
  overcount_min = max(0, V - U).
* With the server's ledger A (``server_ops.parquet``, one row per application of a key):
  lost = ok keys not in A; unexpected = keys in A never attempted; recovered = info keys in A (a note,
  not an error: an indeterminate write may take effect); failed_applied = keys whose every attempt
  definitely failed but which A shows applied (the client's "fail" rule was wrong, or the server
  applied after answering an error). |A| counts ledger rows (applications), so
  duplicated = max(0, V - |A|) (applications the ledger does not show) + sum(applications - 1) over
  keys applied more than once, and V must equal |A|.
* Returned values: an increment returns the new value, so two different keys must not get the same
  value among ok responses (``duplicate_value``; a replay of the same key may return its old value),
  and each ok value must equal the ledger's ``value_after`` for that key (``value_mismatch``).
* Reads (ok rows of kind ``read`` and ``final`` that carry a value): lower(r) = ok keys whose first
  ok attempt ended strictly before r started; upper(r) = non-fail keys whose first non-fail attempt
  started at or before r ended. For a ``read`` row, value < lower is a stale read (a violation when
  ``reads: strong``, a warning for eventual reads) and value > upper an impossible read (always a
  violation). A ``final`` row's bounds are L and U, so it is judged once, by the ``bounds`` class.
  If r1 ended strictly before r2 started, r2 < r1 is a non-monotonic read, over reads and finals
  together: a violation when reads are strong or r2 is a final read, else a warning (eventually
  consistent reads may go back in time).

Everything is vectorised: per-key outcomes are one groupby, read bounds are ``np.searchsorted`` on
sorted end and start times, monotonicity is a running maximum over reads sorted by end time.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.columns import labels
from analysis.evidence import EXAMPLES, anomaly, examples, native
from analysis.percentiles import percentiles
from chaoscheck.runformat import FAIL, INFO, OK

_NEVER = np.iinfo(np.int64).max

ANOMALY_CLASSES = (
    "final_missing",
    "final_mismatch",
    "bounds",
    "lost",
    "duplicated",
    "unexpected",
    "failed_applied",
    "final_ledger_mismatch",
    "recovered",
    "duplicate_value",
    "value_mismatch",
    "stale_read",
    "impossible_read",
    "non_monotonic_read",
)
"""Every anomaly class the checker reports, in the order a report shows them."""

_KEY_COLUMNS = ["op_id", "outcome", "attempts", "start_ns", "end_ns", "value", "endpoint"]
_LEDGER_COLUMNS = ["op_id", "applications", "applied_ns", "value_after"]
_READ_COLUMNS = ["kind", "endpoint", "start_ns", "end_ns", "value"]


def check_counter(ops: pd.DataFrame, server_ops: pd.DataFrame | None = None, reads: str = "strong") -> dict:
    """Check one counter's history (``ops``) and, if given, the store's ledger (``server_ops``).

    Returns a JSON-ready record: ``valid``, the key counts, ``final_value``, ``bounds``, the ledger
    counts (None without a ledger), ``read_violations``, and ``anomalies``: for each class in
    :data:`ANOMALY_CLASSES` its count, violations, severity and first examples.
    """
    table = key_table(ops, server_ops)
    keys, outcome = table.keys, table.outcome
    n_ok = int((outcome == _OK).sum())
    n_fail = int((outcome == _FAIL).sum())
    n_info = int((outcome == _INFO).sum())
    lower, upper = n_ok, n_ok + n_info

    anomalies: dict[str, dict] = {}
    final_value, final_evidence = _final_value(ops)
    missing = final_evidence["ok_reads"] == 0
    disagree = not missing and final_value is None
    anomalies["final_missing"] = anomaly(
        int(missing),
        "violation",
        [{"final_reads": final_evidence["reads_total"], "ok_reads": 0}, *final_evidence["failed"]]
        if missing
        else [],
    )
    anomalies["final_mismatch"] = anomaly(
        int(disagree), "violation", final_evidence["reads"] if disagree else []
    )

    bounds: dict[str, Any] = {"lower": lower, "upper": upper, "holds": None, "lost_min": None}
    bounds["overcount_min"] = None
    if final_value is not None:
        bounds["holds"] = bool(lower <= final_value <= upper)
        bounds["lost_min"] = max(0, lower - final_value)
        bounds["overcount_min"] = max(0, final_value - upper)
    broken = bounds["holds"] is False
    anomalies["bounds"] = anomaly(
        int(broken), "violation", [{"final_value": final_value, **bounds}] if broken else []
    )

    ledger = _ledger(keys, outcome, server_ops, final_value, anomalies)
    anomalies.update(_returned_values(ops, table, server_ops))
    anomalies.update(_reads(ops, keys, outcome, reads))

    read_violations = sum(
        anomalies[c]["violations"] for c in ("stale_read", "impossible_read", "non_monotonic_read")
    )
    violations = sum(a["violations"] for a in anomalies.values())
    return {
        "valid": violations == 0,
        "reads": reads,
        "attempted": n_ok + n_fail + n_info,
        "attempts": int((ops["kind"] == "increment").sum()),
        "ok": n_ok,
        "failed": n_fail,
        "indeterminate": n_info,
        "final_value": final_value,
        "final_reads": final_evidence["reads_total"],
        "bounds": bounds,
        "ledger": ledger["present"],
        "applied": ledger["applied"],
        "applied_keys": ledger["applied_keys"],
        "lost": ledger["lost"],
        "duplicated": ledger["duplicated"],
        "unexpected": ledger["unexpected"],
        "recovered": ledger["recovered"],
        "read_violations": int(read_violations),
        "anomalies": {name: anomalies[name] for name in ANOMALY_CLASSES},
    }


class KeyTable(NamedTuple):
    keys: pd.DataFrame
    """One row per key; the row number is the key's integer code."""
    inc_codes: np.ndarray
    """The code of every increment row, in ``ops`` order."""
    ledger_codes: np.ndarray
    """The code of every ledger row, in ``server_ops`` order (empty without a ledger)."""
    outcome: np.ndarray
    """Each key's outcome as an int8 code: 0 never attempted, 1 ok, 2 info, 3 fail (see
    :data:`_OUTCOMES`); the checker compares these instead of the strings of ``keys["outcome"]``."""


_OUTCOMES = ("", OK, INFO, FAIL)
"""The outcome of each code of :attr:`KeyTable.outcome`."""
_NONE, _OK, _INFO, _FAIL = range(4)


def key_table(ops: pd.DataFrame, server_ops: pd.DataFrame | None = None) -> KeyTable:
    """One row per key seen in the increments or the ledger; the row number is the key's code.

    Keys are factorized once into integer codes (the increments' and the ledger's keys against one
    dictionary), and everything after that is integer arrays (``np.bincount``, ``ufunc.at``
    scatters), which is what keeps a run of millions of rows fast.
    Columns: ``op_id``; ``attempts`` (0 for a key only the ledger knows); ``outcome`` (ok, fail, info,
    or "" when never attempted); ``start_ns`` (first attempt), ``end_ns`` (last attempt);
    ``ok_end_ns`` (end of the earliest-ending ok attempt) and ``nonfail_start_ns`` (start of the first
    non-fail attempt), int64 max when there is none; ``value`` (returned by the first ok attempt,
    nullable); ``endpoint`` (of the first attempt); ``applications``, ``applied_ns`` (first
    application, nullable) and ``value_after`` (of that application, nullable) from the ledger (0
    and null without one). "First" is by start (or application) time, the earlier row on a tie.

    Only the columns used are taken from ``ops``, as numpy arrays (no copy of whole rows, no filtered
    Series and their indexes); ``op_id`` keeps the dtype of the keys (Arrow-backed strings from
    ``load_run``), ``outcome`` and ``endpoint`` are categoricals (or object arrays built from their
    few values), so no Python string is made per row; the frame is built without copying its columns.
    """
    is_inc = (ops["kind"] == "increment").to_numpy(dtype=bool)
    # Factorize the whole op_id column when only increments carry keys (the rule of the ledger), so
    # no filtered copy of millions of strings is made; the keys and their order are the same.
    whole = not (ops["op_id"].notna().to_numpy(dtype=bool) & ~is_inc).any()
    first_ids = ops["op_id"] if whole else ops["op_id"][is_inc]
    n_first = len(first_ids)
    ids = [first_ids] + ([server_ops["op_id"]] if server_ops is not None else [])
    codes, uniques = pd.factorize(pd.concat(ids, ignore_index=True) if len(ids) > 1 else ids[0])
    del first_ids, ids
    # Arrow's pool keeps the hash table's pages for itself; numpy cannot reuse them: hand them back
    # (at ten million keys this lowers the peak by about 1 GiB and saves faulting the pages in again).
    pa.default_memory_pool().release_unused()
    codes = np.asarray(codes, dtype=np.int64)
    n = len(uniques)
    inc_codes = codes[:n_first][is_inc] if whole else codes[:n_first].copy()
    ledger_codes = codes[n_first:].copy() if server_ops is not None else codes[:0].copy()
    del codes

    start = ops["start_ns"].to_numpy(dtype=np.int64)[is_inc]
    end = ops["end_ns"].to_numpy(dtype=np.int64)[is_inc]
    is_ok = (ops["outcome"] == OK).to_numpy(dtype=bool)[is_inc]
    not_fail = (ops["outcome"] != FAIL).to_numpy(dtype=bool)[is_inc]
    attempts = np.bincount(inc_codes, minlength=n)
    outcome = np.full(n, _FAIL, dtype=np.int8)
    outcome[attempts == 0] = _NONE
    outcome[inc_codes[not_fail]] = _INFO
    outcome[inc_codes[is_ok]] = _OK

    start_ns, first_row = _first_per_code(n, inc_codes, start)
    attempted = np.flatnonzero(attempts)
    columns: dict[str, Any] = {
        "op_id": pd.Series(uniques, copy=False),  # Arrow-backed strings stay so: no object per key
        "attempts": attempts,
        "outcome": pd.Categorical.from_codes(outcome, categories=list(_OUTCOMES)),
        "start_ns": start_ns,
        "end_ns": _extreme_per_code(n, inc_codes, end, np.maximum, 0),
        "ok_end_ns": _extreme_per_code(n, inc_codes[is_ok], end[is_ok], np.minimum, _NEVER),
        "nonfail_start_ns": _extreme_per_code(n, inc_codes[not_fail], start[not_fail], np.minimum, _NEVER),
        "endpoint": _endpoints(ops["endpoint"], is_inc, attempted, first_row[attempted], n),
    }
    del not_fail, first_row, attempted

    value_column = ops["value"]
    has_value = is_ok & value_column.notna().to_numpy(dtype=bool)[is_inc]
    valued = np.flatnonzero(has_value)
    del has_value, is_ok, end
    _, first_valued = _first_per_code(n, inc_codes[valued], start[valued])
    del start
    columns["value"] = _nullable_per_code(
        first_valued, value_column.to_numpy(dtype=np.int64, na_value=0)[is_inc][valued]
    )
    del valued, first_valued

    applications = np.zeros(n, dtype=np.int64)
    first_applied = np.full(n, -1, dtype=np.int64)
    at = after = np.zeros(0, dtype=np.int64)
    if server_ops is not None:
        applications = np.bincount(ledger_codes, minlength=n)
        at = server_ops["applied_ns"].to_numpy(dtype=np.int64)
        after = server_ops["value_after"].to_numpy(dtype=np.int64)
        first_applied = _first_per_code(n, ledger_codes, at)[1]
    columns["applications"] = applications
    columns["applied_ns"] = _nullable_per_code(first_applied, at)
    columns["value_after"] = _nullable_per_code(first_applied, after)
    keys = pd.DataFrame(columns, copy=False)
    return KeyTable(keys, inc_codes, ledger_codes, outcome)


def _first_per_code(n: int, codes: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(earliest time, its row) per code, int64 max and -1 for a code without rows.

    The row is the first one at that time (what a stable sort by time would put first), found by
    two scatters instead of a sort.
    """
    earliest = _extreme_per_code(n, codes, times, np.minimum, _NEVER)
    rows = np.flatnonzero(times == earliest[codes])
    first = _extreme_per_code(n, codes[rows], rows, np.minimum, len(codes))
    first[first == len(codes)] = -1
    return earliest, first


def _nullable_per_code(first: np.ndarray, values: np.ndarray) -> pd.arrays.IntegerArray:
    """``values[first]`` per code as a nullable Int64 array, <NA> where ``first`` is -1."""
    missing = first < 0
    data = values[np.where(missing, 0, first)] if len(values) else np.zeros(len(first), dtype=np.int64)
    data[missing] = 0
    return pd.arrays.IntegerArray(data, missing)


def _endpoints(column: pd.Series, rows: np.ndarray, keys: np.ndarray, picks: np.ndarray, n: int) -> Any:
    """The endpoint of ``column[rows][picks]`` for each of ``keys`` (null for the other codes).

    From a categorical's codes (no string per row or per key) when the column is one."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        per_key = np.full(n, -1, dtype=column.cat.codes.dtype)
        per_key[keys] = column.cat.codes.to_numpy()[rows][picks]
        return pd.Categorical.from_codes(per_key, dtype=column.dtype)
    values = labels(column, np.flatnonzero(rows)[picks])
    return pd.Series(_per_code(n, keys, values, None), dtype=object, copy=False)


def _duplicated_pairs(values: np.ndarray, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """``DataFrame.duplicated`` of (value, code) pairs (first kept), hashing one int64 per pair."""
    if not len(values):
        return np.zeros(0, dtype=bool)
    low, span = int(values.min()), int(values.max()) - int(values.min()) + 1
    if span * max(n_codes, 1) >= 2**62:
        return pd.DataFrame({"value": values, "code": codes}).duplicated().to_numpy()
    key = (values - low) * np.int64(max(n_codes, 1)) + codes
    return pd.Series(key, copy=False).duplicated().to_numpy()


def _keys_per_shared_value(values: np.ndarray, codes: np.ndarray, n_codes: int) -> pd.Series:
    """How many distinct keys returned each value that two or more keys returned, by value.

    A value returned by one response has one key, and in a history without anomalies nearly every
    value is returned once: only the values returned more than once are paired with their keys."""
    if len(values) and int(values.max()) - int(values.min()) < 4 * len(values) + 1024:
        offset = values - int(values.min())
        again = np.bincount(offset)[offset] > 1
        del offset
        values, codes = values[again], codes[again]
    keys_per_value = _counts_by_value(values[~_duplicated_pairs(values, codes, n_codes)])
    return keys_per_value.loc[keys_per_value > 1]


def _counts_by_value(values: np.ndarray) -> pd.Series:
    """Rows per distinct value, by value (``groupby(value).size()``): a ``bincount`` over a dense range."""
    if len(values) and int(values.max()) - int(values.min()) < 4 * len(values) + 1024:
        low = int(values.min())
        counts = np.bincount(values - low)
        present = np.flatnonzero(counts)
        return pd.Series(counts[present], index=present + low)
    distinct, counts = np.unique(values, return_counts=True)
    return pd.Series(counts, index=distinct)


class _Taken:
    """``values[rows]`` without taking it: indexing picks ``values[rows[i]]`` (for a few examples)."""

    def __init__(self, values: Any, rows: np.ndarray) -> None:
        self.values, self.rows = values, rows

    def __getitem__(self, index: Any) -> Any:
        return self.values[self.rows[index]]


def _per_code(n: int, codes: np.ndarray, values: np.ndarray, fill: Any) -> np.ndarray:
    out = np.full(n, fill, dtype=values.dtype if fill is not None else object)
    out[codes] = values
    return out


def _extreme_per_code(
    n: int, codes: np.ndarray, values: np.ndarray, ufunc: np.ufunc, fill: int
) -> np.ndarray:
    """``ufunc`` (minimum or maximum) of ``values`` per code, ``fill`` for a code without rows.

    ``ufunc.at`` costs tens of nanoseconds per row; a code with one row (a key tried once: nearly
    every key) is written by a plain scatter instead, and only the codes with several rows (retried
    keys) go through ``ufunc.at``."""
    out = np.full(n, fill, dtype=np.int64)
    several = np.bincount(codes, minlength=n)[codes] > 1
    if not several.any():
        out[codes] = values
        return out
    once = ~several
    out[codes[once]] = values[once]
    ufunc.at(out, codes[several], values[several])
    return out


def _earliest(frame: pd.DataFrame, by: list[str], limit: int = EXAMPLES) -> pd.DataFrame:
    """The first ``limit`` rows of ``frame`` in ``by`` order, without sorting all of a large frame."""
    if len(frame) > 4 * limit:
        cutoff = np.partition(frame[by[0]].to_numpy(), limit - 1)[limit - 1]
        frame = frame.loc[frame[by[0]].to_numpy() <= cutoff]
    return frame.sort_values(by, kind="stable").head(limit)


def _final_value(ops: pd.DataFrame) -> tuple[int | None, dict]:
    """V from the ok final reads; None when there is none or they disagree."""
    # Only the columns used: taking a row of ``op_id`` (Arrow strings) concatenates its whole column.
    used = ["kind", "endpoint", "start_ns", "end_ns", "status", "outcome", "error", "value"]
    finals = ops.loc[ops["kind"] == "final", used].sort_values(["end_ns", "endpoint"], kind="stable")
    ok = finals.loc[(finals["outcome"] == OK) & finals["value"].notna()]
    values = sorted({int(v) for v in ok["value"]})
    evidence = {
        "reads_total": len(finals),
        "ok_reads": len(ok),
        "reads": examples(ok, ["endpoint", "start_ns", "end_ns", "value"]),
        # The attempts that did not answer a value, for final_missing (after its counts, so 4).
        "failed": examples(
            finals.loc[~finals.index.isin(ok.index)],
            ["endpoint", "start_ns", "end_ns", "status", "outcome", "error"],
            EXAMPLES - 1,
        ),
    }
    return (values[0] if len(values) == 1 else None), evidence


def _ledger(
    keys: pd.DataFrame,
    outcome: np.ndarray,
    server_ops: pd.DataFrame | None,
    final_value: int | None,
    anomalies: dict,
) -> dict:
    names = ("lost", "duplicated", "unexpected", "failed_applied", "final_ledger_mismatch", "recovered")
    if server_ops is None:
        for name in names:
            anomalies[name] = anomaly(0, "note" if name == "recovered" else "violation", [])
        return dict.fromkeys(("applied", "applied_keys", *names), None) | {"present": False}

    apps = keys["applications"].to_numpy()
    in_ledger = apps > 0
    by_time = ["start_ns", "op_id"]
    key_cols = [*_KEY_COLUMNS, "applied_ns", "value_after"]

    lost = keys.loc[(outcome == _OK) & ~in_ledger]
    recovered = keys.loc[(outcome == _INFO) & in_ledger]
    failed_applied = keys.loc[(outcome == _FAIL) & in_ledger]
    unexpected = keys.loc[(outcome == _NONE) & in_ledger]
    multi = keys.loc[apps > 1]

    applied = int(apps.sum())
    extra = int((multi["applications"] - 1).sum())
    unledgered = max(0, final_value - applied) if final_value is not None else 0
    # The unledgered applications first (one record), then the keys applied more than once.
    duplicated_examples = examples(
        _earliest(multi, ["applied_ns", "op_id"]),
        [*_LEDGER_COLUMNS, "outcome", "attempts"],
        EXAMPLES - 1 if unledgered else EXAMPLES,
    )
    if unledgered:
        duplicated_examples.insert(
            0, {"unledgered": unledgered, "final_value": final_value, "applied": applied}
        )

    anomalies["lost"] = anomaly(len(lost), "violation", examples(_earliest(lost, by_time), key_cols))
    anomalies["duplicated"] = anomaly(unledgered + extra, "violation", duplicated_examples)
    anomalies["unexpected"] = anomaly(
        len(unexpected),
        "violation",
        examples(_earliest(unexpected, ["applied_ns", "op_id"]), _LEDGER_COLUMNS),
    )
    anomalies["failed_applied"] = anomaly(
        len(failed_applied), "violation", examples(_earliest(failed_applied, by_time), key_cols)
    )
    mismatch = final_value is not None and final_value != applied
    anomalies["final_ledger_mismatch"] = anomaly(
        int(mismatch), "violation", [{"final_value": final_value, "applied": applied}] if mismatch else []
    )
    anomalies["recovered"] = anomaly(
        len(recovered), "note", examples(_earliest(recovered, by_time), key_cols)
    )
    return {
        "present": True,
        "applied": applied,
        "applied_keys": int(in_ledger.sum()),
        "lost": len(lost),
        "duplicated": unledgered + extra,
        "unexpected": len(unexpected),
        "failed_applied": len(failed_applied),
        "final_ledger_mismatch": mismatch,
        "recovered": len(recovered),
    }


def _returned_values(ops: pd.DataFrame, table: KeyTable, server_ops: pd.DataFrame | None) -> dict[str, dict]:
    """``duplicate_value`` and ``value_mismatch`` over ok increment responses that carry a value.

    Everything is numpy arrays over those responses; a frame is built only for the few rows an
    example shows, and only those rows are sorted.
    """
    keys = table.keys
    is_inc = (ops["kind"] == "increment").to_numpy(dtype=bool)
    ok_valued = (ops["outcome"] == OK).to_numpy(dtype=bool) & ops["value"].notna().to_numpy(dtype=bool)
    chosen = ok_valued[is_inc]
    at = np.flatnonzero(is_inc)[chosen]  # the responses' rows in ``ops``
    code = table.inc_codes[chosen]
    value = ops["value"].to_numpy(dtype=np.int64, na_value=0)[at]
    del is_inc, ok_valued, chosen
    names = keys["op_id"].array  # indexed by code below, for the few examples only

    def rows(picks: np.ndarray) -> pd.DataFrame:
        """The responses ``picks`` (positions among them), as the frame the examples are made of."""
        return pd.DataFrame(
            {
                "code": code[picks],
                "value": value[picks],
                "start_ns": ops["start_ns"].to_numpy(dtype=np.int64)[at[picks]],
                "end_ns": ops["end_ns"].to_numpy(dtype=np.int64)[at[picks]],
                "endpoint": pd.Series(labels(ops["endpoint"], at[picks]), dtype=object),
            }
        )

    # Distinct (value, key) pairs per value: which response of a pair is kept does not change the
    # counts, so they are taken in row order; the examples' values are then ordered by time.
    shared = _keys_per_shared_value(value, code, len(keys))
    sample = []
    if len(shared):
        picked = rows(np.flatnonzero(np.isin(value, shared.index[:EXAMPLES].to_numpy())))
        pairs = picked.sort_values(["start_ns", "end_ns"], kind="stable")
        pairs = pairs.loc[~_duplicated_pairs(pairs["value"].to_numpy(), pairs["code"].to_numpy(), len(keys))]
        for shared_value in shared.index[:EXAMPLES]:
            holders = pairs.loc[pairs["value"] == shared_value].assign(
                op_id=lambda f: names[f["code"].to_numpy()]
            )
            sample.append(
                {
                    "value": native(shared_value),
                    "keys": len(holders),
                    "ops": examples(holders, ["op_id", "start_ns", "end_ns", "endpoint"]),
                }
            )
    out = {"duplicate_value": anomaly(len(shared), "violation", sample)}

    if server_ops is None:
        out["value_mismatch"] = anomaly(0, "violation", [])
        return out
    # Keys applied once: compare with their one value_after. Keys applied more than once: the
    # response must match one of their applications.
    apps = keys["applications"].to_numpy()[code]
    first_after = keys["value_after"].to_numpy(dtype=np.int64, na_value=0)[code]
    bad = (apps == 1) & (value != first_after)
    del first_after
    several = np.flatnonzero(apps > 1)
    del apps
    if len(several):
        ledger = pd.DataFrame(
            {
                "code": table.ledger_codes,
                "value_after": server_ops["value_after"].to_numpy(dtype=np.int64),
            }
        )
        candidates = pd.DataFrame({"code": code[several], "value": value[several], "row": several}).merge(
            ledger, on="code"
        )
        matched = (candidates["value"] == candidates["value_after"]).groupby(candidates["row"]).any()
        bad[matched.index[~matched.to_numpy()].to_numpy()] = True
    # ``.array[...]`` keeps the nullable Int64: ``to_numpy()`` of a column with <NA> is float64, which
    # rounds epoch nanoseconds (and turns values into floats).
    mismatched = rows(np.flatnonzero(bad)).assign(
        op_id=lambda f: names[f["code"].to_numpy()],
        value_after=lambda f: keys["value_after"].array[f["code"].to_numpy()],
        applied_ns=lambda f: keys["applied_ns"].array[f["code"].to_numpy()],
    )
    cols = ["op_id", "start_ns", "end_ns", "endpoint", "value", "value_after", "applied_ns"]
    out["value_mismatch"] = anomaly(
        len(mismatched), "violation", examples(_earliest(mismatched, ["start_ns", "op_id"]), cols)
    )
    return out


def _reads(ops: pd.DataFrame, keys: pd.DataFrame, outcome: np.ndarray, reads: str) -> dict[str, dict]:
    """Stale, impossible and non-monotonic reads among the ok reads that carry a value."""
    is_read = ops["kind"].isin(("read", "final")) & (ops["outcome"] == OK) & ops["value"].notna()
    rd = ops.loc[is_read, _READ_COLUMNS]  # not ``op_id``: taking from it concatenates the whole column
    rd = rd.sort_values(["end_ns", "start_ns"], kind="stable")
    frame = pd.DataFrame(
        {
            "kind": rd["kind"].to_numpy(dtype=object),
            "endpoint": rd["endpoint"].to_numpy(dtype=object),
            "start_ns": rd["start_ns"].to_numpy(dtype=np.int64),
            "end_ns": rd["end_ns"].to_numpy(dtype=np.int64),
            "value": rd["value"].to_numpy(dtype=np.int64),
        }
    )
    start, end, value = frame["start_ns"].to_numpy(), frame["end_ns"].to_numpy(), frame["value"].to_numpy()
    is_final = frame["kind"].to_numpy() == "final"
    frame["violation"] = (reads == "strong") | is_final
    severity = "violation" if reads == "strong" else "warning"

    # Bounds of each read: two binary searches over the keys' sorted end and start times.
    is_ok = outcome == _OK
    by_ok_end = np.argsort(keys["ok_end_ns"].to_numpy()[is_ok], kind="stable")
    ok_ends = keys["ok_end_ns"].to_numpy()[is_ok][by_ok_end]
    ok_ids = _Taken(keys["op_id"].array, np.flatnonzero(is_ok)[by_ok_end])
    nonfail_starts = np.sort(keys["nonfail_start_ns"].to_numpy()[(outcome == _OK) | (outcome == _INFO)])
    frame["lower"] = np.searchsorted(ok_ends, start, side="left")  # ok keys that ended before r started
    frame["upper"] = np.searchsorted(nonfail_starts, end, side="right")  # non-fail keys started by r's end
    # A final read's bounds are L and U: it is judged by the ``bounds`` class, not counted twice here.
    plain = frame.loc[~is_final]
    stale = _stale_lag(plain.loc[plain["value"] < plain["lower"]], ok_ends, ok_ids)
    impossible = plain.loc[plain["value"] > plain["upper"]]
    out = {
        "stale_read": anomaly(
            len(stale),
            severity,
            examples(stale, [*_READ_COLUMNS, "lower", *_LAG_COLUMNS]),
            int(stale["violation"].sum()),
        )
        | {"lag": _lag_summary(stale)},
        "impossible_read": anomaly(
            len(impossible), "violation", examples(impossible, [*_READ_COLUMNS, "upper"])
        ),
    }

    # Reads sorted by end: those that ended strictly before r started are a prefix of length k; r is
    # behind if its value is below the running maximum of that prefix. ``holder`` is the position of
    # the read that set the running maximum (the latest one that equals it), for the evidence.
    running_max = np.maximum.accumulate(value)
    holder = np.maximum.accumulate(np.where(value == running_max, np.arange(len(value)), 0))
    k = np.searchsorted(end, start, side="left")
    prior = np.maximum(k - 1, 0)
    behind = (k > 0) & (value < running_max[prior])
    later = frame.loc[behind, [*_READ_COLUMNS, "violation"]].reset_index(drop=True)
    earlier = frame.iloc[holder[prior[behind]]][_READ_COLUMNS].reset_index(drop=True)
    pairs = later.join(earlier.add_prefix("earlier_"))
    out["non_monotonic_read"] = anomaly(
        len(pairs), severity, examples(pairs, list(pairs.columns)), int(pairs["violation"].sum())
    )
    return out


_LAG_COLUMNS = ["lag_increments", "lag_ms", "lag_op_id", "lag_since_ns"]


def _stale_lag(stale: pd.DataFrame, ok_ends: np.ndarray, ok_ids: np.ndarray) -> pd.DataFrame:
    """How far behind each stale read was: in increments, and in time.

    lag_increments = lower(r) - value. The lower bound at an instant t counts the ok keys that ended
    before t, so it first exceeded the value v when the (v+1)-th ok key (by the end of its earliest
    ok attempt, ``ok_ends[v]``) ended: since then the counter is known to be above v.
    lag_ms = (r.start - that end) / 1e6, always > 0; ``lag_op_id`` and ``lag_since_ns`` name that key
    and that end. A value below 0 (never a count) is measured from the first ok key.
    """
    passed = np.clip(stale["value"].to_numpy(dtype=np.int64), 0, None)
    since = ok_ends[passed] if len(passed) else np.zeros(0, dtype=np.int64)
    return stale.assign(
        lag_increments=(stale["lower"] - stale["value"]).to_numpy(dtype=np.int64),
        lag_ms=(stale["start_ns"].to_numpy(dtype=np.int64) - since) / 1e6,
        lag_op_id=ok_ids[passed] if len(passed) else np.zeros(0, dtype=object),
        lag_since_ns=since,
    )


def _lag_summary(stale: pd.DataFrame) -> dict[str, Any]:
    """Count, max and nearest-rank p99 of the stale reads' lags (None when there is no stale read)."""
    steps = stale["lag_increments"].to_numpy()
    ms = stale["lag_ms"].to_numpy()
    p_steps = percentiles(steps, {"p99": 990})["p99"]
    return {
        "count": len(stale),
        "max_increments": native(steps.max()) if len(steps) else None,
        "p99_increments": native(int(p_steps)) if p_steps is not None else None,
        "max_ms": native(ms.max()) if len(ms) else None,
        "p99_ms": native(percentiles(ms, {"p99": 990})["p99"]),
    }
