"""Hand-made histories with known anomalies; each test asserts the exact counts."""

from __future__ import annotations

from history import applied, final, inc, load, read

from analysis.consistency import ANOMALY_CLASSES, check_counter


def counter(tmp_path, ops, server_ops=None, reads="strong"):
    run = load(tmp_path, ops, server_ops=server_ops, reads=reads)
    return check_counter(run.ops, run.server_ops, run.reads)


def counts(result):
    return {name: a["count"] for name, a in result["anomalies"].items() if a["count"]}


def test_clean_history_flags_nothing(tmp_path):
    ops = [
        inc("a", 0, 10, value=1),
        inc("b", 5, 30, value=2, endpoint="lambda"),
        read(12, 14, 1),
        read(31, 40, 2, endpoint="lambda"),
        inc("c", 50, 60, "fail"),
        final(1000, 1001, 2),
        final(1000, 1002, 2, endpoint="lambda"),
    ]
    ledger = [applied("a", 1, 5), applied("b", 2, 20)]
    result = counter(tmp_path, ops, ledger)
    assert result["valid"] is True
    assert counts(result) == {}
    assert (result["attempted"], result["ok"], result["failed"], result["indeterminate"]) == (3, 2, 1, 0)
    assert result["final_value"] == 2
    assert result["bounds"] == {"lower": 2, "upper": 2, "holds": True, "lost_min": 0, "overcount_min": 0}
    assert (result["lost"], result["duplicated"], result["unexpected"], result["recovered"]) == (0, 0, 0, 0)
    assert result["read_violations"] == 0
    assert list(result["anomalies"]) == list(ANOMALY_CLASSES)


def test_lost_write_is_an_ok_key_missing_from_the_ledger(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=2), inc("c", 40, 50, value=3), final(100, 101, 2)]
    ledger = [applied("a", 1, 5), applied("b", 2, 25)]
    result = counter(tmp_path, ops, ledger)
    assert result["valid"] is False
    assert result["lost"] == 1
    assert counts(result) == {"lost": 1, "bounds": 1}
    assert result["bounds"]["lost_min"] == 1 and result["bounds"]["holds"] is False
    (example,) = result["anomalies"]["lost"]["examples"]
    assert example["op_id"] == "c"
    assert example["start_ns"] == 1_700_000_000_040_000_000
    assert example["value"] == 3 and example["applied_ns"] is None


def test_key_applied_twice_is_duplicated(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=3), final(100, 101, 3)]
    ledger = [applied("a", 1, 5), applied("a", 2, 8), applied("b", 3, 25)]
    result = counter(tmp_path, ops, ledger)
    assert result["duplicated"] == 1
    assert result["applied"] == 3 and result["applied_keys"] == 2
    # V = 3 = |A| (ledger rows) and L = 2 <= 3 <= U = 2 fails: the bounds see the extra application too.
    assert counts(result) == {"duplicated": 1, "bounds": 1}
    (example,) = result["anomalies"]["duplicated"]["examples"]
    assert example == {
        "op_id": "a",
        "applications": 2,
        "applied_ns": 1_700_000_000_005_000_000,
        "value_after": 1,
        "outcome": "ok",
        "attempts": 1,
    }


def test_application_without_a_ledger_entry_is_duplicated(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=2), final(100, 101, 3)]
    ledger = [applied("a", 1, 5), applied("b", 2, 25)]
    result = counter(tmp_path, ops, ledger)
    assert result["duplicated"] == 1
    assert counts(result) == {"duplicated": 1, "final_ledger_mismatch": 1, "bounds": 1}
    assert result["bounds"]["overcount_min"] == 1
    assert result["anomalies"]["duplicated"]["examples"][0] == {
        "unledgered": 1,
        "final_value": 3,
        "applied": 2,
    }


def test_unexpected_key_was_applied_but_never_attempted(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=3), final(100, 101, 3)]
    ledger = [applied("a", 1, 5), applied("ghost", 2, 15), applied("b", 3, 25)]
    result = counter(tmp_path, ops, ledger)
    assert result["unexpected"] == 1 and result["duplicated"] == 0 and result["lost"] == 0
    assert counts(result) == {"unexpected": 1, "bounds": 1}
    (example,) = result["anomalies"]["unexpected"]["examples"]
    assert example["op_id"] == "ghost" and example["value_after"] == 2


def test_indeterminate_key_found_applied_is_recovered_not_an_error(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 5000, "info", error="timeout"), final(6000, 6001, 2)]
    ledger = [applied("a", 1, 5), applied("b", 2, 25)]
    result = counter(tmp_path, ops, ledger)
    assert result["valid"] is True
    assert result["recovered"] == 1
    assert counts(result) == {"recovered": 1}
    assert result["anomalies"]["recovered"]["severity"] == "note"
    assert result["anomalies"]["recovered"]["examples"][0]["op_id"] == "b"
    assert result["bounds"] == {"lower": 1, "upper": 2, "holds": True, "lost_min": 0, "overcount_min": 0}


def test_failed_key_found_applied_is_a_violation(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, "fail", status=429), final(100, 101, 2)]
    ledger = [applied("a", 1, 5), applied("b", 2, 25)]
    result = counter(tmp_path, ops, ledger)
    assert counts(result) == {"failed_applied": 1, "bounds": 1}
    assert result["valid"] is False


def test_stale_read(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=2), read(40, 45, 1), final(100, 101, 2)]
    ledger = [applied("a", 1, 5), applied("b", 2, 25)]
    result = counter(tmp_path, ops, ledger)
    assert counts(result) == {"stale_read": 1}
    assert result["read_violations"] == 1 and result["valid"] is False
    (example,) = result["anomalies"]["stale_read"]["examples"]
    assert (example["value"], example["lower"], example["kind"]) == (1, 2, "read")


def test_stale_read_is_only_a_warning_for_eventual_reads(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=2), read(40, 45, 1), final(100, 101, 2)]
    ledger = [applied("a", 1, 5), applied("b", 2, 25)]
    result = counter(tmp_path, ops, ledger, reads="eventual")
    stale = result["anomalies"]["stale_read"]
    assert (stale["count"], stale["violations"], stale["severity"]) == (1, 0, "warning")
    assert result["read_violations"] == 0 and result["valid"] is True


def test_impossible_read(tmp_path):
    ops = [inc("a", 0, 10, value=1), read(5, 8, 2), inc("b", 20, 30, value=2), final(100, 101, 2)]
    ledger = [applied("a", 1, 5), applied("b", 2, 25)]
    result = counter(tmp_path, ops, ledger)
    assert counts(result) == {"impossible_read": 1}
    assert result["read_violations"] == 1
    assert result["anomalies"]["impossible_read"]["examples"][0]["upper"] == 1


def test_info_increment_raises_the_upper_bound_of_a_read(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 12, 5000, "info"), read(20, 30, 2), final(6000, 6001, 2)]
    ledger = [applied("a", 1, 5), applied("b", 2, 15)]
    assert counts(counter(tmp_path, ops, ledger)) == {"recovered": 1}


def test_non_monotonic_read_pair(tmp_path):
    # Both increments are in flight during both reads: 2 then 1 are each within bounds, not in order.
    ops = [inc("a", 0, 100, value=1), inc("b", 0, 100, value=2), read(10, 20, 2), read(30, 40, 1)]
    ops.append(final(200, 201, 2))
    ledger = [applied("a", 1, 15), applied("b", 2, 16)]
    result = counter(tmp_path, ops, ledger)
    assert counts(result) == {"non_monotonic_read": 1}
    assert result["read_violations"] == 1
    (pair,) = result["anomalies"]["non_monotonic_read"]["examples"]
    assert (pair["value"], pair["earlier_value"]) == (1, 2)
    assert pair["earlier_end_ns"] < pair["start_ns"]


def test_overlapping_reads_may_disagree(tmp_path):
    ops = [inc("a", 0, 100, value=1), inc("b", 0, 100, value=2), read(10, 35, 2), read(30, 40, 1)]
    ops.append(final(200, 201, 2))
    ledger = [applied("a", 1, 15), applied("b", 2, 16)]
    assert counts(counter(tmp_path, ops, ledger)) == {}


def test_final_read_lower_than_an_earlier_read_is_non_monotonic(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 0, 10, "info"), read(20, 30, 2), final(100, 101, 1)]
    result = counter(tmp_path, ops, [applied("a", 1, 5), applied("b", 2, 6)], reads="eventual")
    assert counts(result) == {"non_monotonic_read": 1, "final_ledger_mismatch": 1, "recovered": 1}
    # Eventual reads may go back, but a final read is strongly consistent: still a violation.
    assert result["anomalies"]["non_monotonic_read"]["violations"] == 1


def test_duplicate_returned_values(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=1), inc("c", 40, 50, value=3), final(100, 101, 3)]
    ledger = [applied("a", 1, 5), applied("b", 2, 25), applied("c", 3, 45)]
    result = counter(tmp_path, ops, ledger)
    assert counts(result) == {"duplicate_value": 1, "value_mismatch": 1}
    (example,) = result["anomalies"]["duplicate_value"]["examples"]
    assert example["value"] == 1 and example["keys"] == 2
    assert [o["op_id"] for o in example["ops"]] == ["a", "b"]
    (mismatch,) = result["anomalies"]["value_mismatch"]["examples"]
    assert (mismatch["op_id"], mismatch["value"], mismatch["value_after"]) == ("b", 1, 2)


def test_duplicate_values_without_a_ledger(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=1), final(100, 101, 2)]
    result = counter(tmp_path, ops)
    assert counts(result) == {"duplicate_value": 1}


def test_retries_share_a_key_and_the_key_is_the_unit(tmp_path):
    ops = [
        inc("a", 0, 10, "info", status=502),
        inc("a", 20, 30, value=1),  # a: ok (one attempt ok)
        inc("b", 40, 50, "fail", status=429),
        inc("b", 60, 70, "fail", status=429),  # b: fail (every attempt failed)
        inc("c", 80, 90, "fail", status=429),
        inc("c", 100, 110, "info", status=0),  # c: info
        final(200, 201, 1),
    ]
    result = counter(tmp_path, ops, [applied("a", 1, 25)])
    assert (result["attempted"], result["attempts"]) == (3, 6)
    assert (result["ok"], result["failed"], result["indeterminate"]) == (1, 1, 1)
    assert result["bounds"] == {"lower": 1, "upper": 2, "holds": True, "lost_min": 0, "overcount_min": 0}
    assert counts(result) == {}


def test_bounds_without_a_ledger(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=2), inc("c", 40, 50, "info"), final(100, 101, 1)]
    low = counter(tmp_path / "low", ops)
    assert low["ledger"] is False
    assert (low["lost"], low["duplicated"], low["unexpected"], low["recovered"]) == (None, None, None, None)
    assert low["bounds"] == {"lower": 2, "upper": 3, "holds": False, "lost_min": 1, "overcount_min": 0}
    assert counts(low) == {"bounds": 1} and low["valid"] is False

    high = counter(tmp_path / "high", [*ops[:-1], final(100, 101, 5)])
    assert high["bounds"] == {"lower": 2, "upper": 3, "holds": False, "lost_min": 0, "overcount_min": 2}

    inside = counter(tmp_path / "inside", [*ops[:-1], final(100, 101, 3)])
    assert inside["bounds"]["holds"] is True and inside["valid"] is True


def test_final_reads_that_disagree(tmp_path):
    ops = [inc("a", 0, 10, value=1), final(100, 101, 1), final(100, 102, 2, endpoint="lambda")]
    result = counter(tmp_path, ops)
    assert result["final_value"] is None
    assert counts(result) == {"final_mismatch": 1}
    assert [r["value"] for r in result["anomalies"]["final_mismatch"]["examples"]] == [1, 2]
    assert result["bounds"]["holds"] is None and result["valid"] is False


def test_no_ok_final_read(tmp_path):
    ops = [inc("a", 0, 10, value=1), final(100, 101, None, "info", status=0, error="timeout")]
    result = counter(tmp_path, ops)
    assert counts(result) == {"final_missing": 1}
    assert result["final_reads"] == 1 and result["valid"] is False
    # The counts, then the attempts that answered no value.
    assert result["anomalies"]["final_missing"]["examples"] == [
        {"final_reads": 1, "ok_reads": 0},
        {
            "endpoint": "fleet",
            "start_ns": 1_700_000_000_100_000_000,
            "end_ns": 1_700_000_000_101_000_000,
            "status": 0,
            "outcome": "info",
            "error": "timeout",
        },
    ]


def test_one_failed_final_read_does_not_matter_when_another_succeeded(tmp_path):
    ops = [
        inc("a", 0, 10, value=1),
        final(100, 101, None, "info", status=0),
        final(100, 102, 1, endpoint="lambda"),
    ]
    result = counter(tmp_path, ops)
    assert result["final_value"] == 1 and result["valid"] is True


def test_first_five_examples_in_time_order(tmp_path):
    ops = [inc(f"k{i:02d}", i * 10, i * 10 + 5, value=i + 1) for i in range(8)]
    ops.append(final(1000, 1001, 0))
    result = counter(tmp_path, ops, [])
    lost = result["anomalies"]["lost"]
    assert lost["count"] == 8
    assert [e["op_id"] for e in lost["examples"]] == ["k00", "k01", "k02", "k03", "k04"]


def test_a_key_applied_twice_must_return_one_of_its_values(tmp_path):
    ops = [inc("a", 0, 10, value=7), inc("b", 20, 30, value=2), final(100, 101, 3)]
    ledger = [applied("a", 1, 5), applied("a", 3, 8), applied("b", 2, 25)]
    result = counter(tmp_path, ops, ledger)
    assert result["anomalies"]["value_mismatch"]["count"] == 1
    (example,) = result["anomalies"]["value_mismatch"]["examples"]
    assert (example["op_id"], example["value"], example["value_after"]) == ("a", 7, 1)


def test_value_mismatch_examples_keep_exact_nanoseconds(tmp_path):
    # Regression: with a key missing from the ledger (<NA> in the key table) the examples' applied_ns
    # and value_after went through float64, so applied_ns lost its last digits and values became floats.
    ops = [
        inc("a", 0, 10, value=9),
        inc("b", 20, 30, value=2),
        inc("lost", 40, 50, value=3),
        final(100, 101, 2),
    ]
    ledger = [applied("a", 1, 5.000123), applied("b", 2, 25)]
    result = counter(tmp_path, ops, ledger)
    (example,) = result["anomalies"]["value_mismatch"]["examples"]
    assert example["applied_ns"] == 1_700_000_000_005_000_123
    assert type(example["applied_ns"]) is int and type(example["value_after"]) is int
    assert (example["op_id"], example["value"], example["value_after"]) == ("a", 9, 1)


def test_duplicated_examples_are_capped_with_the_unledgered_record_first(tmp_path):
    ops = [inc(f"k{i}", i * 10, i * 10 + 5, value=2 * i + 1) for i in range(6)]
    ledger = [
        row
        for i in range(6)
        for row in (applied(f"k{i}", 2 * i + 1, i * 10 + 1), applied(f"k{i}", 2 * i + 2, i * 10 + 2))
    ]
    result = counter(tmp_path, [*ops, final(1000, 1001, 14)], ledger)
    duplicated = result["anomalies"]["duplicated"]
    assert duplicated["count"] == 2 + 6  # V - |A| = 14 - 12 unledgered, 6 keys applied twice
    assert len(duplicated["examples"]) == 5
    assert duplicated["examples"][0] == {"unledgered": 2, "final_value": 14, "applied": 12}
    assert [e["op_id"] for e in duplicated["examples"][1:]] == ["k0", "k1", "k2", "k3"]


# -- stale reads: how far behind ------------------------------------------------------------------


def test_stale_read_lag_in_increments_and_time(tmp_path):
    # ok increments end at 10, 30, 50 ms. A read starting at 80 ms that returns 1 is 2 increments
    # behind (lower = 3); the lower bound first exceeded 1 when the 2nd ok increment ended (30 ms):
    # 50 ms ago.
    ops = [
        inc("a", 0, 10, value=1),
        inc("b", 20, 30, value=2),
        inc("c", 40, 50, value=3),
        read(80, 85, 1),
        final(100, 101, 3),
    ]
    ledger = [applied("a", 1, 5), applied("b", 2, 25), applied("c", 3, 45)]
    result = counter(tmp_path, ops, ledger, reads="eventual")
    stale = result["anomalies"]["stale_read"]
    assert (stale["count"], stale["violations"], stale["severity"]) == (1, 0, "warning")
    (example,) = stale["examples"]
    assert (example["value"], example["lower"], example["lag_increments"], example["lag_ms"]) == (
        1,
        3,
        2,
        50.0,
    )
    assert (example["lag_op_id"], example["lag_since_ns"]) == ("b", 1_700_000_000_030_000_000)
    assert stale["lag"] == {
        "count": 1,
        "max_increments": 2,
        "p99_increments": 2,
        "max_ms": 50.0,
        "p99_ms": 50.0,
    }


def test_stale_read_lag_counts_keys_by_their_earliest_ok_end_and_ignores_other_outcomes(tmp_path):
    # a's first ok attempt ends at 40 ms (its replay at 60); b ends first, at 20 ms. c is info, d fail.
    # A read at 100 ms returning 0: lower = 2, so 2 behind, since b ended (20 ms): 80 ms. Returning 1:
    # 1 behind, since a's earliest ok end (40 ms): 60 ms.
    ops = [
        inc("a", 0, 40, value=2),
        inc("a", 50, 60, value=2, status=200),
        inc("b", 5, 20, value=1),
        inc("c", 0, 30, "info", status=504),
        inc("d", 0, 30, "fail", status=429),
        read(100, 110, 0),
        read(100, 120, 1, endpoint="lambda"),
        final(200, 201, 2),
    ]
    ledger = [applied("b", 1, 10), applied("a", 2, 30)]
    result = counter(tmp_path, ops, ledger, reads="eventual")
    stale = result["anomalies"]["stale_read"]
    lags = [(e["value"], e["lag_increments"], e["lag_ms"], e["lag_op_id"]) for e in stale["examples"]]
    assert lags == [(0, 2, 80.0, "b"), (1, 1, 60.0, "a")]
    assert stale["lag"] == {
        "count": 2,
        "max_increments": 2,
        "p99_increments": 2,
        "max_ms": 80.0,
        "p99_ms": 80.0,
    }
    assert result["valid"] is True


def test_stale_read_lag_percentiles_are_nearest_rank(tmp_path):
    # 100 ok increments, one every 10 ms (ending at 10*i + 5); 100 stale reads at 2000 ms returning
    # 0..99, so read v is 100 - v behind, since the (v+1)-th increment ended: 2000 - (10*v + 5) ms.
    ops = [inc(f"k{i:03d}", 10 * i, 10 * i + 5, value=i + 1) for i in range(100)]
    ops += [read(2000, 2001 + v, v) for v in range(100)]
    ops.append(final(3000, 3001, 100))
    ledger = [applied(f"k{i:03d}", i + 1, 10 * i + 1) for i in range(100)]
    stale = counter(tmp_path, ops, ledger, reads="eventual")["anomalies"]["stale_read"]
    assert stale["count"] == 100
    # Nearest rank: p99 of 100 samples is the 99th smallest.
    assert stale["lag"] == {
        "count": 100,
        "max_increments": 100,
        "p99_increments": 99,
        "max_ms": 1995.0,
        "p99_ms": 1985.0,
    }


def test_no_stale_read_no_lag(tmp_path):
    ops = [inc("a", 0, 10, value=1), read(20, 30, 1), final(100, 101, 1)]
    stale = counter(tmp_path, ops, [applied("a", 1, 5)])["anomalies"]["stale_read"]
    assert stale["lag"] == {
        "count": 0,
        "max_increments": None,
        "p99_increments": None,
        "max_ms": None,
        "p99_ms": None,
    }
    assert stale["examples"] == []


def test_stale_read_lag_is_measured_for_strong_reads_too(tmp_path):
    ops = [inc("a", 0, 10, value=1), inc("b", 20, 30, value=2), read(40, 45, 1), final(100, 101, 2)]
    ledger = [applied("a", 1, 5), applied("b", 2, 25)]
    stale = counter(tmp_path, ops, ledger)["anomalies"]["stale_read"]
    assert (stale["violations"], stale["lag"]["max_increments"], stale["lag"]["max_ms"]) == (1, 1, 10.0)
