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

from typing import Any

import numpy as np
import pandas as pd

from analysis.evidence import anomaly, examples, native
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
_READ_COLUMNS = ["kind", "endpoint", "start_ns", "end_ns", "value"]


def check_counter(ops: pd.DataFrame, server_ops: pd.DataFrame | None = None, reads: str = "strong") -> dict:
    """Check one counter's history (``ops``) and, if given, the store's ledger (``server_ops``).

    Returns a JSON-ready record: ``valid``, the key counts, ``final_value``, ``bounds``, the ledger
    counts (None without a ledger), ``read_violations``, and ``anomalies``: for each class in
    :data:`ANOMALY_CLASSES` its count, violations, severity and first examples.
    """
    keys = key_outcomes(ops)
    outcome = keys["outcome"].to_numpy()
    n_ok = int((outcome == OK).sum())
    n_fail = int((outcome == FAIL).sum())
    n_info = int((outcome == INFO).sum())
    lower, upper = n_ok, n_ok + n_info

    anomalies: dict[str, dict] = {}
    final_value, final_evidence = _final_value(ops)
    missing = final_evidence["ok_reads"] == 0
    disagree = not missing and final_value is None
    anomalies["final_missing"] = anomaly(
        int(missing),
        "violation",
        [{"final_reads": final_evidence["reads_total"], "ok_reads": 0}] if missing else [],
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

    ledger = _ledger(keys, server_ops, final_value, anomalies)
    anomalies.update(_returned_values(ops, server_ops))
    anomalies.update(_reads(ops, keys, reads))

    read_violations = sum(
        anomalies[c]["violations"] for c in ("stale_read", "impossible_read", "non_monotonic_read")
    )
    violations = sum(a["violations"] for a in anomalies.values())
    return {
        "valid": violations == 0,
        "reads": reads,
        "attempted": len(keys),
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


def key_outcomes(ops: pd.DataFrame) -> pd.DataFrame:
    """One row per increment key (index: op_id, sorted), with its outcome and times.

    Columns: ``op_id``, ``outcome``, ``attempts``, ``start_ns`` (first attempt), ``end_ns`` (last
    attempt), ``ok_end_ns`` (end of the first ok attempt, int64 max if none), ``nonfail_start_ns``
    (start of the first non-fail attempt, int64 max if none), ``value`` (of the first ok attempt, in
    start order), ``endpoint`` (of the first attempt).
    """
    inc = ops.loc[ops["kind"] == "increment"].sort_values(["start_ns", "end_ns"], kind="stable")
    is_ok = (inc["outcome"] == OK).to_numpy()
    not_fail = (inc["outcome"] != FAIL).to_numpy()
    start = inc["start_ns"].to_numpy(dtype=np.int64)
    end = inc["end_ns"].to_numpy(dtype=np.int64)
    frame = pd.DataFrame(
        {
            "op_id": inc["op_id"].to_numpy(dtype=object),
            "any_ok": is_ok,
            "any_nonfail": not_fail,
            "start_ns": start,
            "end_ns": end,
            "ok_end_ns": np.where(is_ok, end, _NEVER),
            "nonfail_start_ns": np.where(not_fail, start, _NEVER),
            "endpoint": inc["endpoint"].to_numpy(dtype=object),
        }
    )
    grouped = frame.groupby("op_id", sort=True)
    keys = grouped.agg(
        any_ok=("any_ok", "any"),
        any_nonfail=("any_nonfail", "any"),
        attempts=("any_ok", "size"),
        start_ns=("start_ns", "min"),
        end_ns=("end_ns", "max"),
        ok_end_ns=("ok_end_ns", "min"),
        nonfail_start_ns=("nonfail_start_ns", "min"),
        endpoint=("endpoint", "first"),
    )
    ok_rows = inc.loc[is_ok]
    first_value = ok_rows.groupby(ok_rows["op_id"].to_numpy(dtype=object), sort=False)["value"].first()
    keys["value"] = first_value.reindex(keys.index).astype("Int64")
    keys["outcome"] = np.where(keys["any_ok"], OK, np.where(keys["any_nonfail"], INFO, FAIL))
    keys["op_id"] = keys.index.to_numpy(dtype=object)
    return keys.drop(columns=["any_ok", "any_nonfail"]).rename_axis(None)


def _final_value(ops: pd.DataFrame) -> tuple[int | None, dict]:
    """V from the ok final reads; None when there is none or they disagree."""
    finals = ops.loc[ops["kind"] == "final"].sort_values(["end_ns", "endpoint"], kind="stable")
    ok = finals.loc[(finals["outcome"] == OK) & finals["value"].notna()]
    values = sorted({int(v) for v in ok["value"]})
    evidence = {
        "reads_total": len(finals),
        "ok_reads": len(ok),
        "reads": examples(ok, ["endpoint", "start_ns", "end_ns", "value"]),
    }
    return (values[0] if len(values) == 1 else None), evidence


def _ledger(
    keys: pd.DataFrame, server_ops: pd.DataFrame | None, final_value: int | None, anomalies: dict
) -> dict:
    names = ("lost", "duplicated", "unexpected", "failed_applied", "final_ledger_mismatch", "recovered")
    if server_ops is None:
        for name in names:
            anomalies[name] = anomaly(0, "note" if name == "recovered" else "violation", [])
        return dict.fromkeys(("applied", "applied_keys", *names), None) | {"present": False}

    ledger = server_ops.sort_values(["applied_ns", "op_id"], kind="stable")
    applications = (
        ledger.groupby("op_id", sort=True)
        .agg(
            applications=("applied_ns", "size"),
            applied_ns=("applied_ns", "min"),
            value_after=("value_after", "first"),
        )
        .rename_axis(None)
    )
    # Nullable ints, so that the left join below keeps exact epoch nanoseconds (no float64 detour).
    applications = applications.astype({"applied_ns": "Int64", "value_after": "Int64"})
    outcome = keys["outcome"]
    in_ledger = keys.index.isin(applications.index)
    joined = keys.join(applications, how="left")
    by_time = ["start_ns", "op_id"]
    key_cols = [*_KEY_COLUMNS, "applied_ns", "value_after"]

    lost = joined.loc[(outcome == OK).to_numpy() & ~in_ledger].sort_values(by_time)
    recovered = joined.loc[(outcome == INFO).to_numpy() & in_ledger].sort_values(by_time)
    failed_applied = joined.loc[(outcome == FAIL).to_numpy() & in_ledger].sort_values(by_time)
    unexpected = applications.loc[~applications.index.isin(keys.index)].assign(op_id=lambda f: f.index)
    unexpected = unexpected.sort_values(["applied_ns", "op_id"])

    applied = len(ledger)
    multi = applications.loc[applications["applications"] > 1].assign(op_id=lambda f: f.index)
    multi = multi.sort_values(["applied_ns", "op_id"])
    extra = int((multi["applications"] - 1).sum())
    unledgered = max(0, final_value - applied) if final_value is not None else 0
    duplicated_examples = examples(multi, ["op_id", "applications", "applied_ns", "value_after"])
    if unledgered:
        duplicated_examples.insert(
            0, {"unledgered": unledgered, "final_value": final_value, "applied": applied}
        )

    anomalies["lost"] = anomaly(len(lost), "violation", examples(lost, key_cols))
    anomalies["duplicated"] = anomaly(unledgered + extra, "violation", duplicated_examples)
    anomalies["unexpected"] = anomaly(
        len(unexpected),
        "violation",
        examples(unexpected, ["op_id", "applications", "applied_ns", "value_after"]),
    )
    anomalies["failed_applied"] = anomaly(
        len(failed_applied), "violation", examples(failed_applied, key_cols)
    )
    mismatch = final_value is not None and final_value != applied
    anomalies["final_ledger_mismatch"] = anomaly(
        int(mismatch), "violation", [{"final_value": final_value, "applied": applied}] if mismatch else []
    )
    anomalies["recovered"] = anomaly(len(recovered), "note", examples(recovered, key_cols))
    return {
        "present": True,
        "applied": applied,
        "applied_keys": len(applications),
        "lost": len(lost),
        "duplicated": unledgered + extra,
        "unexpected": len(unexpected),
        "failed_applied": len(failed_applied),
        "final_ledger_mismatch": mismatch,
        "recovered": len(recovered),
    }


def _returned_values(ops: pd.DataFrame, server_ops: pd.DataFrame | None) -> dict[str, dict]:
    """``duplicate_value`` and ``value_mismatch`` over ok increment responses that carry a value."""
    inc = ops.loc[(ops["kind"] == "increment") & (ops["outcome"] == OK) & ops["value"].notna()]
    inc = inc.sort_values(["start_ns", "end_ns"], kind="stable")
    rows = pd.DataFrame(
        {
            "op_id": inc["op_id"].to_numpy(dtype=object),
            "value": inc["value"].to_numpy(dtype=np.int64),
            "start_ns": inc["start_ns"].to_numpy(dtype=np.int64),
            "end_ns": inc["end_ns"].to_numpy(dtype=np.int64),
            "endpoint": inc["endpoint"].to_numpy(dtype=object),
        }
    )
    pairs = rows.drop_duplicates(["value", "op_id"])
    keys_per_value = pairs.groupby("value", sort=True)["op_id"].size()
    shared = keys_per_value.loc[keys_per_value > 1]
    sample = []
    for value in shared.index[:5]:
        holders = pairs.loc[pairs["value"] == value]
        sample.append(
            {
                "value": native(value),
                "keys": len(holders),
                "ops": examples(holders, ["op_id", "start_ns", "end_ns", "endpoint"]),
            }
        )
    out = {"duplicate_value": anomaly(len(shared), "violation", sample)}

    if server_ops is None:
        out["value_mismatch"] = anomaly(0, "violation", [])
        return out
    rows["row"] = np.arange(len(rows))
    ledger = pd.DataFrame(
        {
            "op_id": server_ops["op_id"].to_numpy(dtype=object),
            "value_after": server_ops["value_after"].to_numpy(dtype=np.int64),
            "applied_ns": server_ops["applied_ns"].to_numpy(dtype=np.int64),
        }
    )
    merged = rows.merge(ledger, on="op_id", how="inner")
    merged["match"] = merged["value"] == merged["value_after"]
    matched = merged.groupby("row", sort=True).agg(
        match=("match", "any"), value_after=("value_after", "min"), applied_ns=("applied_ns", "min")
    )
    bad = matched.loc[~matched["match"]]
    mismatched = rows.iloc[bad.index.to_numpy()].assign(
        value_after=bad["value_after"].to_numpy(), applied_ns=bad["applied_ns"].to_numpy()
    )
    cols = ["op_id", "start_ns", "end_ns", "endpoint", "value", "value_after", "applied_ns"]
    out["value_mismatch"] = anomaly(len(mismatched), "violation", examples(mismatched, cols))
    return out


def _reads(ops: pd.DataFrame, keys: pd.DataFrame, reads: str) -> dict[str, dict]:
    """Stale, impossible and non-monotonic reads among the ok reads that carry a value."""
    rd = ops.loc[ops["kind"].isin(("read", "final")) & (ops["outcome"] == OK) & ops["value"].notna()]
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
    outcome = keys["outcome"].to_numpy()
    ok_ends = np.sort(keys["ok_end_ns"].to_numpy()[outcome == OK])
    nonfail_starts = np.sort(keys["nonfail_start_ns"].to_numpy()[outcome != FAIL])
    frame["lower"] = np.searchsorted(ok_ends, start, side="left")  # ok keys that ended before r started
    frame["upper"] = np.searchsorted(nonfail_starts, end, side="right")  # non-fail keys started by r's end
    # A final read's bounds are L and U: it is judged by the ``bounds`` class, not counted twice here.
    plain = frame.loc[~is_final]
    stale = plain.loc[plain["value"] < plain["lower"]]
    impossible = plain.loc[plain["value"] > plain["upper"]]
    out = {
        "stale_read": anomaly(
            len(stale), severity, examples(stale, [*_READ_COLUMNS, "lower"]), int(stale["violation"].sum())
        ),
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
