"""Property: a correct counter, simulated with arbitrary concurrency and outcomes, is never flagged."""

from __future__ import annotations

import tempfile
from pathlib import Path

from history import applied, final, inc, load, read
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.consistency import check_counter

_op = st.tuples(
    st.sampled_from(["increment", "increment", "increment", "read"]),
    st.sampled_from(["ok", "ok", "ok", "fail", "info"]),
    st.integers(0, 40),  # how long before its linearization point the request started (ms)
    st.integers(0, 40),  # how long after it the response came (ms)
    st.sampled_from(["fleet", "lambda"]),
    st.booleans(),  # info increment: applied?
    st.integers(0, 5),  # info increment: applied this many slots later (it may take effect later)
)


def simulate(plan):
    """A linearizable counter: op i takes effect at 10*i ms (info ones maybe later, or never)."""
    effects = []  # (time, order, op index)
    for i, (kind, outcome, _, _, _, applies, later) in enumerate(plan):
        if kind == "read" or outcome == "ok":
            effects.append((10 * i, 0, i))
        elif outcome == "info" and applies and kind == "increment":
            effects.append((10 * (i + later) + 5, 1, i))
    value, seen, ledger = 0, {}, []
    for at, _, i in sorted(effects):
        if plan[i][0] == "increment":
            value += 1
            ledger.append(applied(f"k{i}", value, at))
        seen[i] = value
    ops = []
    for i, (kind, outcome, before, after, endpoint, _, _) in enumerate(plan):
        start, end = 10 * i - before, 10 * i + after
        if kind == "increment":
            returned = seen.get(i) if outcome == "ok" else None
            ops.append(inc(f"k{i}", start, end, outcome, returned, endpoint=endpoint))
        else:
            ops.append(read(start, end, seen.get(i) if outcome == "ok" else None, outcome, endpoint=endpoint))
    quiet = 10 * (len(plan) + 10)
    ops += [final(quiet, quiet + 1, value), final(quiet, quiet + 2, value, endpoint="lambda")]
    return ops, ledger


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(_op, max_size=40), st.sampled_from(["strong", "eventual"]))
def test_correct_counter_is_never_flagged(plan, reads):
    ops, ledger = simulate(plan)
    with tempfile.TemporaryDirectory() as tmp:
        for server_ops in (ledger, None):
            run = load(Path(tmp) / str(server_ops is None), ops, server_ops=server_ops, reads=reads)
            result = check_counter(run.ops, run.server_ops, run.reads)
            flagged = {
                n: a["count"] for n, a in result["anomalies"].items() if a["count"] and n != "recovered"
            }
            assert flagged == {}
            assert result["valid"] is True
            assert result["bounds"]["holds"] is True


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.lists(_op, min_size=1, max_size=30))
def test_a_dropped_acknowledged_write_is_always_found(plan):
    plan = [("increment", "ok", 0, 0, "fleet", False, 0), *plan]
    ops, ledger = simulate(plan)
    ledger = [row for row in ledger if row["op_id"] != "k0"]
    for row in ops:
        if row["kind"] == "final":
            row["value"] -= 1
    with tempfile.TemporaryDirectory() as tmp:
        run = load(Path(tmp), ops, server_ops=ledger)
        result = check_counter(run.ops, run.server_ops, run.reads)
    assert result["lost"] == 1
    assert result["anomalies"]["lost"]["examples"][0]["op_id"] == "k0"
    assert result["valid"] is False
