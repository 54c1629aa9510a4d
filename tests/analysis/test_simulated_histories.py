"""Properties of the consistency checker over simulated histories (``simulator.py``).

* A correct counter (any concurrency, failures, indeterminate increments applied late or never,
  retries of one key, strong or eventual reads, with or without the store's ledger) is never flagged,
  and the key counts are the model's.
* Each injector's anomaly class is found with its exact count k and nothing else is (the ``recovered``
  note aside), and every example points at real rows.
* A stale read's lag is the one the injector built.
* The frames are those ``load_run`` reads, and the verdict does not depend on the order of rows.

Hypothesis is derandomized (the same examples on every run, no example database) and bounded
(:data:`PROFILE`), so CI is reproducible and the file takes about 15 s on one core: a failure
prints the drawn history as a ``simulate(Config(...), seed)`` call to replay.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from history import write_run
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from simulator import (
    Config,
    History,
    apply_twice,
    apply_unattempted,
    apply_unledgered,
    disagreeing_final,
    drop_finals,
    fail_applied,
    impossible_reads,
    lose_acknowledged,
    lose_at_end,
    misreport_values,
    non_monotonic_reads,
    overapply_at_end,
    roll_back_at_end,
    share_values,
    simulate,
    stale_reads,
)

from analysis.consistency import check_counter
from analysis.evidence import EXAMPLES
from analysis.percentiles import percentile
from analysis.rundir import load_run

PROFILE = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
INJECTOR_PROFILE = settings(PROFILE, max_examples=20)
"""Per injector (15 of them: 300 corrupted histories in all), so that the file stays well under 30 s:
each example costs a check_counter call (~25 ms however small the history)."""

READ_CLASSES = ("stale_read", "impossible_read", "non_monotonic_read")


def configs(**fixed) -> st.SearchStrategy[Config]:
    draws = {
        "clients": st.integers(1, 4),
        "ops": st.integers(0, 6),
        "rounds": st.integers(1, 3),
        "read_share": st.sampled_from((0.0, 0.3, 0.6)),
        "fail": st.sampled_from((0.0, 0.1, 0.3)),
        "info": st.sampled_from((0.0, 0.15, 0.4)),
        "info_applied": st.sampled_from((0.0, 0.5, 1.0)),
        "info_late": st.sampled_from((0.0, 0.5, 1.0)),
        "retries": st.integers(0, 2),
        "retry_fail": st.sampled_from((0.0, 0.5)),
        "reads": st.sampled_from(("strong", "eventual")),
        "ledger": st.booleans(),
        "final_failures": st.sampled_from((0.0, 0.5)),
    }
    draws.update({name: st.just(value) for name, value in fixed.items()})
    return st.builds(Config, **draws)


def histories(**fixed) -> st.SearchStrategy[History]:
    return st.builds(simulate, configs(**fixed), st.integers(0, 2**32 - 1))


def judge(history: History, reads: str | None = None) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    ops, server_ops = history.frames()
    return check_counter(ops, server_ops, reads or history.reads), ops, server_ops


def flagged(result: dict) -> dict[str, int]:
    return {n: a["count"] for n, a in result["anomalies"].items() if a["count"] and n != "recovered"}


# -- the correct simulator ------------------------------------------------------------------------------


@PROFILE
@given(histories())
def test_a_correct_counter_is_never_flagged(history):
    result, ops, server_ops = judge(history)
    assert result["valid"] is True
    assert {n: a["violations"] for n, a in result["anomalies"].items() if a["violations"]} == {}
    assert result["read_violations"] == 0
    assert result["bounds"]["holds"] is True
    if history.reads == "strong":
        assert flagged(result) == {}
    else:  # an eventual read may be stale or go back in time: a warning, never a violation
        assert set(flagged(result)) <= {"stale_read", "non_monotonic_read"}

    outcomes = history.key_outcomes()
    by_outcome = {o: sum(1 for v in outcomes.values() if v == o) for o in ("ok", "fail", "info")}
    assert (result["ok"], result["failed"], result["indeterminate"]) == (
        by_outcome["ok"],
        by_outcome["fail"],
        by_outcome["info"],
    )
    assert result["attempted"] == len(outcomes)
    assert result["attempts"] == sum(1 for op in history.ops if op.kind == "increment")
    assert result["final_value"] == history.final_value() == len(history.events)
    if history.ledger:
        applied = history.applied_keys()
        assert (result["applied"], result["applied_keys"]) == (len(applied), len(applied))
        assert (result["lost"], result["duplicated"], result["unexpected"]) == (0, 0, 0)
        assert result["recovered"] == sum(1 for k in applied if outcomes[k] == "info")
    else:
        assert result["applied"] is None and result["recovered"] is None
    assert_examples_are_real(result, ops, server_ops)


@settings(PROFILE, max_examples=10)
@given(histories(), st.integers(0, 10**6))
def test_the_frames_are_those_load_run_reads(tmp_path_factory, history, n):
    """The simulator's frames equal what load_run reads back from a run directory of the same rows."""
    path = write_run(
        tmp_path_factory.mktemp(f"run{n}"),
        history.rows(),
        server_ops=history.ledger_rows() if history.ledger else None,
        reads=history.reads,
    )
    run = load_run(path)
    ops, server_ops = history.frames()
    pd.testing.assert_frame_equal(ops, run.ops)
    if history.ledger:
        pd.testing.assert_frame_equal(server_ops, run.server_ops)
    else:
        assert run.server_ops is None and server_ops is None
    assert run.reads == history.reads
    assert check_counter(ops, server_ops, history.reads) == check_counter(run.ops, run.server_ops, run.reads)


def test_the_simulator_makes_what_it_is_asked_for():
    """Concurrency, retries of one key, late applications, replays and eventual staleness all occur."""
    history = simulate(Config(clients=4, ops=12, rounds=2, info=0.3, retries=2, reads="eventual"), seed=7)
    ops = [op for op in history.ops if op.kind == "increment"]
    overlapping = any(a.start < b.end and b.start < a.end for a in ops for b in ops if a is not b)
    assert overlapping
    assert max(op.attempt for op in ops) == 2
    ends = {}
    for op in ops:
        ends[op.key] = max(ends.get(op.key, 0), op.end)
    assert any(e.at > ends[e.key] for e in history.events), "an info attempt applied after its answer"
    replays = [op for op in ops if op.outcome == "ok" and op.attempt > 0]
    assert replays
    result, _, _ = judge(history)
    assert result["anomalies"]["stale_read"]["count"] > 0 and result["valid"] is True
    assert len(history.quiet) == 3


# -- injectors ------------------------------------------------------------------------------------------


def _quiet_index(history, data):
    return data.draw(st.integers(0, len(history.quiet) - 1), label="at")


INJECTORS = {
    "lost": lambda h, k, rng, data: lose_acknowledged(h, k, rng),
    "duplicated (applied twice)": lambda h, k, rng, data: apply_twice(h, k, rng),
    "duplicated (unledgered)": lambda h, k, rng, data: apply_unledgered(h, k, rng),
    "unexpected": lambda h, k, rng, data: apply_unattempted(h, k, rng),
    "failed_applied": lambda h, k, rng, data: fail_applied(h, k, rng),
    "final_ledger_mismatch": lambda h, k, rng, data: roll_back_at_end(h, k, rng),
    "bounds (lost_min)": lambda h, k, rng, data: lose_at_end(h, k, rng),
    "bounds (overcount_min)": lambda h, k, rng, data: overapply_at_end(h, k, rng),
    "duplicate_value": lambda h, k, rng, data: share_values(h, k, rng),
    "value_mismatch": lambda h, k, rng, data: misreport_values(h, k, rng),
    "final_missing": lambda h, k, rng, data: drop_finals(h, rng),
    "final_mismatch": lambda h, k, rng, data: disagreeing_final(h, rng),
    "stale_read": lambda h, k, rng, data: stale_reads(
        h, k, data.draw(st.integers(1, 4), label="depth"), _quiet_index(h, data), rng
    ),
    "impossible_read": lambda h, k, rng, data: impossible_reads(
        h, k, data.draw(st.integers(1, 4), label="depth"), _quiet_index(h, data), rng
    ),
    "non_monotonic_read": lambda h, k, rng, data: non_monotonic_reads(h, k, _quiet_index(h, data), rng),
}
_READ_INJECTORS = {"stale_read", "impossible_read", "non_monotonic_read"}


@pytest.mark.parametrize("name", list(INJECTORS))
@INJECTOR_PROFILE
@given(data=st.data(), k=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_each_injector_is_found_exactly(name, data, k, seed):
    # Read anomalies are spliced into strong histories: an eventual history's own warnings would move.
    base = data.draw(histories(reads="strong") if name in _READ_INJECTORS else histories(), label="base")
    injected = INJECTORS[name](base, k, random.Random(seed), data)
    assume(injected is not None)
    history = injected.history
    judged_as = (
        data.draw(st.sampled_from(("strong", "eventual")), label="reads") if name in _READ_INJECTORS else None
    )
    result, ops, server_ops = judge(history, judged_as)
    reads = judged_as or history.reads

    expected = injected.expected
    got = flagged(result)
    if reads == "strong" or name in _READ_INJECTORS:
        assert got == expected
    else:  # eventual reads of the base history may be stale or go back: warnings, not violations
        assert {n: c for n, c in got.items() if n not in READ_CLASSES} == expected
    warnings = {"stale_read", "non_monotonic_read"} if reads == "eventual" else set()
    assert {n: a["violations"] for n, a in result["anomalies"].items() if a["violations"]} == {
        n: c for n, c in expected.items() if n not in warnings
    }
    assert result["valid"] is (not set(expected) - warnings)

    bounds = result["bounds"]
    if "lost_min" in injected.facts:
        assert (bounds["lost_min"], bounds["overcount_min"]) == (
            injected.facts["lost_min"],
            injected.facts["overcount_min"],
        )
    if "keys" in injected.facts and expected:
        _assert_first_keys(result["anomalies"][next(iter(expected))], injected.facts["keys"], ops)
    if name == "stale_read":
        _assert_lag_summary(result["anomalies"]["stale_read"], injected.facts["lags"])
    if name == "impossible_read":
        assert {e["upper"] for e in result["anomalies"]["impossible_read"]["examples"]} == {
            injected.facts["upper"]
        }
    if name == "non_monotonic_read":
        assert {e["earlier_value"] for e in result["anomalies"]["non_monotonic_read"]["examples"]} == {
            injected.facts["earlier_value"]
        }
    assert_examples_are_real(result, ops, server_ops)


@settings(PROFILE, max_examples=20)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_the_verdict_does_not_depend_on_the_order_of_rows(data, seed):
    """Shuffling ops.parquet and server_ops.parquet changes nothing but, for ties in time, which of
    equal candidates an example shows: counts, figures and the set of examples stay."""
    name = data.draw(st.sampled_from(sorted(INJECTORS)), label="injector")
    base = data.draw(histories(reads="strong") if name in _READ_INJECTORS else histories(), label="base")
    injected = INJECTORS[name](base, data.draw(st.integers(1, 8), label="k"), random.Random(seed), data)
    assume(injected is not None)
    ops, server_ops = injected.history.frames()
    result = check_counter(ops, server_ops, injected.history.reads)
    rng = np.random.default_rng(seed)
    shuffled_ops = ops.iloc[rng.permutation(len(ops))].reset_index(drop=True)
    shuffled_ledger = None
    if server_ops is not None:
        shuffled_ledger = server_ops.iloc[rng.permutation(len(server_ops))].reset_index(drop=True)
    shuffled = check_counter(shuffled_ops, shuffled_ledger, injected.history.reads)
    for record in (result, shuffled):
        for anomaly in record["anomalies"].values():
            anomaly["examples"] = sorted(json.dumps(e, sort_keys=True) for e in anomaly["examples"])
    assert shuffled == result


@pytest.mark.parametrize("name", ["lost", "duplicated (applied twice)", "unexpected", "failed_applied"])
def test_ledger_classes_scale_past_the_examples_cap(name):
    """With many anomalies (more than 4 x 5, the cutoff of the partial sort) the count stays exact and
    the examples are still the first five in time order."""
    base = simulate(Config(clients=4, ops=10, rounds=2, fail=0.0, info=0.1, read_share=0.2), seed=3)
    injected = INJECTORS[name](base, 30, random.Random(1), None)
    result, ops, server_ops = judge(injected.history)
    assert flagged(result) == injected.expected
    assert min(injected.expected.values()) > 4 * EXAMPLES
    if "keys" in injected.facts:
        _assert_first_keys(result["anomalies"][name], injected.facts["keys"], ops)
    assert_examples_are_real(result, ops, server_ops)


def _assert_first_keys(record, keys, ops):
    """The examples are the class's first keys in time order (first attempt's start, then op_id)."""
    first_start = {}
    for key, start in zip(ops["op_id"].tolist(), ops["start_ns"].tolist(), strict=True):
        if key is not None and not pd.isna(key):
            first_start[key] = min(first_start.get(key, start), start)
    want = sorted(keys, key=lambda key: (first_start[key], key))[:EXAMPLES]
    assert [e["op_id"] for e in record["examples"]] == want


def _assert_lag_summary(record, lags):
    lag = record["lag"]
    assert lag["count"] == len(lags) == record["count"]
    steps = np.array([n for n, _ in lags])
    ms = np.array([m for _, m in lags])
    assert lag["max_increments"] == steps.max()
    assert lag["p99_increments"] == percentile(steps, 990)
    assert lag["max_ms"] == pytest.approx(ms.max(), abs=1e-3)
    assert lag["p99_ms"] == pytest.approx(percentile(ms, 990), abs=1e-3)
    got = sorted((e["lag_increments"], e["lag_ms"]) for e in record["examples"])
    built = sorted((n, round(m, 3)) for n, m in lags)
    assert all(example in built for example in got)


# -- examples point at real rows -------------------------------------------------------------------


def assert_examples_are_real(result: dict, ops: pd.DataFrame, server_ops: pd.DataFrame | None) -> None:
    """Every class with a count has examples (at most EXAMPLES), a class without none; each example's
    op_id, times and values are those of a real ops row (or ledger row, for the ledger's side)."""
    cols = {
        c: ops[c].tolist() for c in ("op_id", "kind", "endpoint", "start_ns", "end_ns", "value", "outcome")
    }
    cols["status"] = ops["status"].tolist()
    rows = list(zip(*cols.values(), strict=True))
    names = list(cols)
    rows = [dict(zip(names, r, strict=True)) for r in rows]
    inc = [r for r in rows if r["kind"] == "increment"]
    client_keys = {r["op_id"] for r in inc}
    attempts = {(r["op_id"], r["start_ns"]) for r in inc}
    attempt_ends = {(r["op_id"], r["end_ns"]) for r in inc}
    ok_ends = {(r["op_id"], r["end_ns"]) for r in inc if r["outcome"] == "ok"}
    valued = [r for r in rows if r["kind"] in ("read", "final") and not pd.isna(r["value"])]
    reads = {(r["kind"], r["endpoint"], r["start_ns"], r["end_ns"], r["value"]) for r in valued}
    finals = {
        (r["endpoint"], r["start_ns"], r["end_ns"], r["status"], r["outcome"])
        for r in rows
        if r["kind"] == "final"
    }
    applications = set()
    if server_ops is not None:
        applications = set(
            zip(
                server_ops["op_id"].tolist(),
                server_ops["applied_ns"].tolist(),
                server_ops["value_after"].tolist(),
                strict=True,
            )
        )
    ledger_keys = {a[0] for a in applications}

    for name, record in result["anomalies"].items():
        examples = record["examples"]
        assert (record["count"] == 0) == (examples == []), name
        assert len(examples) <= EXAMPLES, name
        for e in examples:
            where = (name, e)
            if name in ("lost", "failed_applied", "recovered", "value_mismatch"):
                assert e["op_id"] in client_keys, where
                assert (e["op_id"], e["start_ns"]) in attempts, where
                assert (e["op_id"], e["end_ns"]) in attempt_ends, where
            if name in ("failed_applied", "recovered", "value_mismatch", "unexpected") or (
                name == "duplicated" and "op_id" in e
            ):
                assert (e["op_id"], e["applied_ns"], e["value_after"]) in applications, where
            if name == "unexpected":
                assert e["op_id"] in ledger_keys - client_keys, where
            if name == "duplicate_value":
                assert e["keys"] == len(e["ops"]) >= 2
                for holder in e["ops"]:
                    assert (holder["op_id"], holder["start_ns"]) in attempts, (name, holder)
            if name in READ_CLASSES or name == "final_mismatch":
                kind = e.get("kind", "final")
                assert (kind, e["endpoint"], e["start_ns"], e["end_ns"], e["value"]) in reads, where
            if name == "final_missing" and "endpoint" in e:
                assert (e["endpoint"], e["start_ns"], e["end_ns"], e["status"], e["outcome"]) in finals, where
            if name == "bounds":
                assert e == {"final_value": result["final_value"], **result["bounds"]}
            if name == "non_monotonic_read":
                earlier = (
                    e["earlier_kind"],
                    e["earlier_endpoint"],
                    e["earlier_start_ns"],
                    e["earlier_end_ns"],
                )
                assert (*earlier, e["earlier_value"]) in reads, where
                assert e["earlier_end_ns"] < e["start_ns"] and e["value"] < e["earlier_value"]
            if name == "stale_read":
                assert (e["lag_op_id"], e["lag_since_ns"]) in ok_ends, where
                assert (
                    e["lag_since_ns"] < e["start_ns"] and e["lag_increments"] == e["lower"] - e["value"] > 0
                )
