"""Latency honesty: exact percentiles per phase and endpoint, raw beside corrected for coordinated
omission (from due times, or HdrHistogram's back-fill at the pacing interval), and the omitted-request
and generator-lag detectors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from history import MS, definition_rank, inc, inject, load, ns, op, read, write_run
from hypothesis import given
from hypothesis import strategies as st

from analysis.percentiles import LATENCY_PERCENTILES, Backfill, union_percentiles
from analysis.phases import fault_windows, phase_stats, phases_from_journal
from analysis.rundir import load_run
from analysis.summary import summarize
from chaoscheck import runformat as rf

KEYS = {"p50_ms": 50, "p90_ms": 90, "p95_ms": 95, "p99_ms": 99, "p999_ms": 99.9}


def nearest_rank(values, q):
    return round(float(definition_rank(values, round(q * 10))), 3)


def java_backfill(values_ns, interval_ns):
    """HdrHistogram (Java) recordValueWithExpectedInterval, literally: the oracle."""
    out = []
    for v in values_ns:
        out.append(v)
        missing = v - interval_ns
        while missing >= interval_ns:
            out.append(missing)
            missing -= interval_ns
    return out


def stats_of(run):
    lo, hi = run.meta["load_started_ns"], run.meta["load_ended_ns"]
    from analysis.phases import scenario_pacing_s

    phases = phases_from_journal(fault_windows(run.faults), lo, hi)
    return phase_stats(run.ops, phases, lo, pacing_s=scenario_pacing_s(run.scenario))


def test_exact_percentiles_per_phase_and_endpoint_raw_and_corrected(tmp_path):
    rng = np.random.default_rng(3)
    ops, expected = [], {}
    for i in range(600):
        due = i * 15.0
        lag = float(rng.integers(0, 40)) if i % 7 == 0 else 0.0
        lat = float(rng.integers(1, 5000)) / 10
        endpoint = "lambda" if i % 3 else "fleet"
        ops.append({**inc(f"k{i}", due + lag, due + lag + lat, endpoint=endpoint), "intended_ns": ns(due)})
        phase = "baseline" if due + lag < 3_000 else "fault-1" if due + lag < 6_000 else "recovery-1"
        expected.setdefault((phase, endpoint), []).append((lat, lag + lat))
    run = load(tmp_path, ops, load_ms=(0, 9_100), faults=[inject(0, 3_000, 3.0)])
    for phase in stats_of(run):
        both = [pair for (name, _), pairs in expected.items() if name == phase["name"] for pair in pairs]
        groups = [(phase, both)] + [
            (phase["endpoints"][e], expected[(phase["name"], e)]) for e in ("fleet", "lambda")
        ]
        for record, pairs in groups:
            raw = [p[0] for p in pairs]
            corrected = [p[1] for p in pairs]
            for key, q in KEYS.items():
                assert record[key] == nearest_rank(raw, q), (phase["name"], key)
                assert record["corrected"][key] == nearest_rank(corrected, q), (phase["name"], key)
            assert record["max_ms"] == max(raw) and record["corrected"]["max_ms"] == max(corrected)
            assert record["corrected"]["method"] == "intended_ns"
            assert record["corrected"]["requests"] == len(pairs) == record["requests"]


def paced(path, seconds):
    scenario = yaml.safe_load((path / rf.SCENARIO).read_text())
    scenario["load"]["pacing"] = seconds
    (path / rf.SCENARIO).write_text(yaml.safe_dump(scenario))
    return path


def test_backfill_at_the_pacing_interval_follows_the_java_rule(tmp_path):
    latencies_ms = [5, 5, 7, 99.5, 100, 199.999, 200, 250, 1000, 3, 4, 5000]
    ops = [inc(f"k{i}", i * 10, i * 10 + lat, endpoint="fleet") for i, lat in enumerate(latencies_ms)]
    run = load_run(paced(write_run(tmp_path, ops, load_ms=(0, 1_000)), 0.1))
    (phase,) = stats_of(run)
    interval = 100 * MS
    samples = java_backfill([round(v * MS) for v in latencies_ms], interval)
    corrected = phase["corrected"]
    assert corrected["method"] == "backfill" and corrected["interval_ms"] == 100.0
    assert corrected["requests"] == len(latencies_ms)
    assert corrected["samples"] == len(samples)
    assert corrected["backfilled"] == len(samples) - len(latencies_ms) == 0 + 1 + 1 + 9 + 49
    for key, q in KEYS.items():
        assert corrected[key] == nearest_rank(np.array(samples) / MS, q), key
    assert corrected["max_ms"] == 5000.0 and phase["max_ms"] == 5000.0
    assert phase["p50_ms"] == nearest_rank(latencies_ms, 50), "raw figures are untouched"
    summary = summarize(run)
    assert summary["latency"]["corrected"] == "backfill" and summary["latency"]["interval_ms"] == 100.0
    assert any("back-fill" in note for note in summary["notes"])


def test_due_times_win_over_backfill(tmp_path):
    ops = [{**inc("a", 10, 20), "intended_ns": ns(0)}]
    run = load_run(paced(write_run(tmp_path, ops, load_ms=(0, 1_000)), 0.1))
    (phase,) = stats_of(run)
    assert phase["corrected"]["method"] == "intended_ns" and phase["corrected"]["max_ms"] == 20.0


def test_a_closed_loop_run_has_raw_latency_only_and_says_so(tmp_path):
    run = load(tmp_path, [inc("a", 1, 2), read(3, 5, 1)], load_ms=(0, 1_000))
    summary = summarize(run)
    assert "corrected" not in summary["load"] and "omission" not in summary["load"]
    assert summary["latency"]["corrected"] is None
    assert any("closed-loop run" in note for note in summary["notes"])
    assert summary["load"]["p999_ms"] == 2.0 and summary["load"]["p90_ms"] == 2.0


def omitted_row(due_ms, dropped_ms, endpoint="fleet", worker="w1"):
    row = op(
        "omitted", None, dropped_ms, dropped_ms, "fail", endpoint=endpoint, served_by=None, worker=worker
    )
    return {**row, "intended_ns": ns(due_ms)}


def detector_run(tmp_path, pacing=None):
    """Due every 100 ms for 10 s; from 5 s every tenth operation is omitted and the rest go 20 ms late."""
    ops = []
    for i in range(100):
        due = i * 100.0
        if i >= 50 and i % 10 == 0:
            ops.append(omitted_row(due, due + 1_500))
            continue
        lag = 20.0 if i >= 50 else 0.0
        ops.append({**inc(f"k{i}", due + lag, due + lag + 3), "intended_ns": ns(due)})
    path = write_run(tmp_path, ops, load_ms=(0, 10_000), faults=[inject(0, 5_000, 5.0)])
    return load_run(paced(path, pacing) if pacing else path)


@pytest.mark.parametrize("pacing", [None, 0.1])
def test_omitted_share_and_generator_lag_per_phase(tmp_path, pacing):
    run = detector_run(tmp_path, pacing)
    baseline, fault = stats_of(run)
    assert baseline["omission"] == {
        "due": 50,
        "omitted": 0,
        "omitted_share": 0.0,
        "lag_s": 0.0,
        "interval_s": 4.9 if pacing is None else 5.0,  # the first operation has no interval before it
        "generator_lag": 0.0,
        "behind": False,
    }
    omission = fault["omission"]
    assert (omission["due"], omission["omitted"], omission["omitted_share"]) == (50, 5, 0.1)
    assert omission["lag_s"] == 0.9 and omission["interval_s"] == 5.0  # 45 sent 20 ms late; 9.9 s - 4.9 s
    assert omission["generator_lag"] == 0.18 and omission["behind"] is True
    assert fault["endpoints"]["fleet"]["omission"] == omission
    notes = summarize(run)["notes"]
    assert any("fell behind" in n and "fault-1 (18.0%)" in n and "baseline" not in n for n in notes)
    assert any("never sent" in n and "fault-1 (5 of 50)" in n for n in notes)


def test_the_open_models_schedules_are_per_process_and_endpoint(tmp_path):
    # two processes, each due every 200 ms, interleaved: per schedule the interval is 200 ms, so a
    # 2 ms lag is 1 % of it (not 2 % as one merged schedule of 100 ms would say)
    ops = []
    for i in range(40):
        worker = "w1" if i % 2 == 0 else "w2"
        due = i * 100.0
        ops.append({**inc(f"k{i}", due + 2, due + 5, worker=worker), "intended_ns": ns(due)})
    run = load(tmp_path, ops, load_ms=(0, 4_000))
    (phase,) = stats_of(run)
    assert phase["omission"]["interval_s"] == 7.6  # 2 x (3.8 s - 0 s)
    assert phase["omission"]["generator_lag"] == round(40 * 2 / 7600, 6)


@given(
    st.lists(st.lists(st.integers(0, 10_000), max_size=40), min_size=1, max_size=4),
    st.sampled_from([None, 1, 7, 100, 2_500]),
)
def test_union_percentiles_with_backfill_equal_the_materialised_samples(parts, interval):
    arrays = [np.sort(np.array(p, dtype=np.int64)) for p in parts]
    values = [v for p in parts for v in p]
    fill = Backfill(np.concatenate(arrays), interval) if interval else None
    n, got, maximum = union_percentiles(arrays, LATENCY_PERCENTILES, fill)
    samples = java_backfill(values, interval) if interval else values
    assert n == len(samples)
    if not samples:
        assert maximum is None and all(v is None for v in got.values())
        return
    assert maximum == max(values)
    for name, permille in LATENCY_PERCENTILES.items():
        assert got[name] == definition_rank(samples, permille), name


def test_p999_at_an_exact_rank_is_that_sample_not_the_next():
    # 68,000 samples: 0.999 n = 67,932 exactly, so p99.9 is the 67,932nd sample (found by hypothesis,
    # where numpy's float q chose the 67,933rd)
    values = np.arange(68_000, dtype=np.int64)
    assert union_percentiles([values], {"p999": 999})[1]["p999"] == 67_931
    assert union_percentiles([values[::2], values[1::2]], {"p999": 999})[1]["p999"] == 67_931


def test_union_percentiles_of_many_parts():
    rng = np.random.default_rng(5)
    parts = [np.sort(rng.integers(0, 10**9, int(rng.integers(0, 50)))) for _ in range(80)]
    values = np.concatenate(parts)
    n, got, maximum = union_percentiles(parts, LATENCY_PERCENTILES)
    assert n == len(values) and maximum == values.max()
    for name, permille in LATENCY_PERCENTILES.items():
        assert got[name] == definition_rank(values, permille)
