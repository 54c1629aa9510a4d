"""The run directory reader: what it accepts, and one-line errors naming the file for what it does not."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from history import applied, final, inc, inject, write_run

from analysis.rundir import RunFormatError, load_run
from chaoscheck import runformat as rf


@pytest.fixture
def run_dir(tmp_path):
    return write_run(
        tmp_path / "run", [inc("a", 0, 10, value=1), final(100, 101, 1)], faults=[inject(0, 50, 1.0)]
    )


def error_of(path) -> str:
    with pytest.raises(RunFormatError) as caught:
        load_run(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_reads_a_valid_run(run_dir):
    run = load_run(run_dir)
    assert run.meta["run_id"] == "run-test" and run.reads == "strong" and run.slo == {}
    assert list(run.ops.columns) == rf.OPS_SCHEMA.names
    assert str(run.ops["value"].dtype) == "Int64" and str(run.ops["start_ns"].dtype) == "int64"
    assert len(run.faults) == 1
    assert run.timeline is None and run.server_ops is None


@pytest.mark.parametrize("name", [rf.OPS, rf.RUN_META, rf.SCENARIO, rf.FAULTS])
def test_missing_required_file(run_dir, name):
    (run_dir / name).unlink()
    assert error_of(run_dir).startswith(f"{name}: missing")


def test_missing_column(run_dir):
    table = pq.read_table(run_dir / rf.OPS).drop_columns(["outcome"])
    pq.write_table(table, run_dir / rf.OPS)
    assert error_of(run_dir) == "ops.parquet: missing column 'outcome' (expected string)"


def test_corrupt_parquet(run_dir):
    (run_dir / rf.OPS).write_bytes(b"PAR1 this is not parquet at all")
    assert error_of(run_dir).startswith("ops.parquet: not a readable Parquet file (")


def test_column_of_the_wrong_type(run_dir):
    table = pq.read_table(run_dir / rf.OPS)
    index = table.schema.get_field_index("start_ns")
    table = table.set_column(index, "start_ns", pa.array(["soon"] * len(table)))
    pq.write_table(table, run_dir / rf.OPS)
    assert error_of(run_dir) == "ops.parquet: column 'start_ns': expected int64, got string"


def test_nulls_in_a_required_column(run_dir):
    table = pq.read_table(run_dir / rf.OPS)
    index = table.schema.get_field_index("worker")
    table = table.set_column(
        index, pa.field("worker", pa.string()), pa.array([None] * len(table), pa.string())
    )
    pq.write_table(table, run_dir / rf.OPS)
    assert error_of(run_dir) == "ops.parquet: column 'worker': 2 null values (expected none)"


def test_unknown_outcome(tmp_path):
    path = write_run(tmp_path, [inc("a", 0, 10, "maybe")])
    assert (
        error_of(path)
        == "ops.parquet: column 'outcome': expected one of ok, fail, info, got 'maybe' on 1 rows"
    )


def test_extra_columns_are_ignored(run_dir):
    table = pq.read_table(run_dir / rf.OPS)
    pq.write_table(table.append_column("intended_start_ns", pa.array([0] * len(table))), run_dir / rf.OPS)
    assert "intended_start_ns" not in load_run(run_dir).ops.columns


def test_run_json_missing_key_and_bad_type(run_dir):
    meta = json.loads((run_dir / rf.RUN_META).read_text())
    del meta["run_id"]
    (run_dir / rf.RUN_META).write_text(json.dumps(meta))
    assert error_of(run_dir) == "run.json: missing key 'run_id' (expected a string)"
    meta["run_id"] = "run-test"
    meta["load_started_ns"] = "yesterday"
    (run_dir / rf.RUN_META).write_text(json.dumps(meta))
    assert error_of(run_dir) == "run.json: key 'load_started_ns': expected an integer, got str 'yesterday'"


def test_run_json_corrupt(run_dir):
    (run_dir / rf.RUN_META).write_text("{not json")
    assert error_of(run_dir).startswith("run.json: not valid JSON (")


def test_journal_line_errors(run_dir):
    journal = run_dir / rf.FAULTS
    journal.write_text(json.dumps(inject(0, 1, 1.0)) + "\n\n{oops\n")
    assert error_of(run_dir).startswith("faults.jsonl: line 3: not valid JSON (")
    journal.write_text(json.dumps({**inject(0, 1, 1.0), "event": "explode"}) + "\n")
    assert (
        error_of(run_dir)
        == "faults.jsonl: line 1: event: expected one of inject, rollback, abort, halt, got 'explode'"
    )
    line = inject(0, 1, 1.0)
    del line["window_s"]
    journal.write_text(json.dumps(line) + "\n")
    assert (
        error_of(run_dir)
        == "faults.jsonl: line 1: missing field 'window_s' (expected a number on inject lines)"
    )


def test_empty_journal_is_a_run_without_faults(run_dir):
    (run_dir / rf.FAULTS).write_text("")
    assert load_run(run_dir).faults.empty


def write_scenario(run_dir, scenario):
    (run_dir / rf.SCENARIO).write_text(yaml.safe_dump(scenario))


def test_slo_as_the_resolved_scenario_writes_it(run_dir):
    slo = {
        "consistency": {"lost": 0, "duplicated": 0, "unexpected": 0, "read_violations": 0},
        "baseline": {"p50_ms": None, "p95_ms": 150.0, "p99_ms": None, "error_rate": 0.01, "min_rps": None},
        "fault": None,
        "recovery": None,
    }
    write_scenario(run_dir, {"name": "x", "reads": "eventual", "slo": slo})
    run = load_run(run_dir)
    assert run.reads == "eventual"
    assert run.slo == {
        "consistency": {"lost": 0, "duplicated": 0, "unexpected": 0, "read_violations": 0},
        "baseline": {"p95_ms": 150.0, "error_rate": 0.01},
        "fault": {},
        "recovery": {},
    }


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        (
            {"slo": {"baseline": {"p90_ms": 1}}},
            "scenario.yaml: slo.baseline.p90_ms: unknown key, expected one of",
        ),
        ({"slo": {"steady": {}}}, "scenario.yaml: slo.steady: unknown section, expected one of"),
        (
            {"slo": {"fault": {"error_rate": 2}}},
            "scenario.yaml: slo.fault.error_rate: expected between 0 and 1, got 2",
        ),
        (
            {"slo": {"fault": {"p95_ms": "fast"}}},
            "scenario.yaml: slo.fault.p95_ms: expected a number, got 'fast'",
        ),
        ({"reads": "sometimes"}, "scenario.yaml: reads: expected one of strong, eventual, got 'sometimes'"),
    ],
)
def test_bad_scenario(run_dir, scenario, message):
    write_scenario(run_dir, scenario)
    assert error_of(run_dir).startswith(message)


def test_scenario_not_yaml(run_dir):
    (run_dir / rf.SCENARIO).write_text("slo: [unclosed\n")
    assert error_of(run_dir).startswith("scenario.yaml: not valid YAML (")


def test_server_ledger_keeps_this_runs_counter(tmp_path):
    ledger = [applied("a", 1, 5), applied("x", 7, 6, counter="other")]
    run = load_run(write_run(tmp_path, [inc("a", 0, 10, value=1)], server_ops=ledger))
    assert list(run.server_ops["op_id"]) == ["a"]
    assert "server_ops.parquet: ignored 1 rows of other counters" in run.notes


def test_not_a_directory(tmp_path):
    assert "not a run directory" in error_of(tmp_path / "nowhere")


def test_a_ledger_from_before_the_open_model_still_reads(tmp_path):
    import pyarrow.parquet as pq
    from history import inc, write_run

    from analysis.rundir import load_run

    run_dir = write_run(tmp_path, [inc("a", 1, 2, value=1)])
    table = pq.read_table(run_dir / "ops.parquet").drop_columns(["intended_ns", "attempt", "trace_id"])
    pq.write_table(table, run_dir / "ops.parquet")
    ops = load_run(run_dir).ops
    assert ops["attempt"].tolist() == [0]
    assert ops["intended_ns"].isna().all() and ops["trace_id"].isna().all()


# -- robustness: what a run lacks is analysed without and noted; broken tables are one line --------


def big_run(tmp_path, n=5_000):
    ops = [inc(f"k{i}", i, i + 2, value=i + 1) for i in range(n)] + [final(n + 10, n + 11, n)]
    return write_run(tmp_path / "big", ops, load_ms=(0, n + 5))


def test_a_truncated_parquet_file_is_one_line(tmp_path):
    path = big_run(tmp_path)
    data = (path / rf.OPS).read_bytes()
    (path / rf.OPS).write_bytes(data[: len(data) // 2])
    assert error_of(path).startswith("ops.parquet: not a readable Parquet file (")


def test_a_corrupt_page_names_its_column(tmp_path):
    path = big_run(tmp_path)
    chunk = (
        pq.ParquetFile(path / rf.OPS).metadata.row_group(0).column(rf.OPS_SCHEMA.get_field_index("end_ns"))
    )
    data = bytearray((path / rf.OPS).read_bytes())
    start = (chunk.dictionary_page_offset or chunk.data_page_offset) + 20  # past the first page header
    end = (chunk.dictionary_page_offset or chunk.data_page_offset) + chunk.total_compressed_size
    data[start:end] = b"\xff" * (end - start)
    (path / rf.OPS).write_bytes(bytes(data))
    assert error_of(path).startswith("ops.parquet: column 'end_ns': unreadable (")


def test_a_column_of_the_wrong_type_in_the_ledger(tmp_path):
    path = write_run(tmp_path, [inc("a", 1, 2, value=1)], server_ops=[applied("a", 1, 1)])
    table = pq.read_table(path / rf.SERVER_OPS)
    index = table.schema.get_field_index("value_after")
    pq.write_table(table.set_column(index, "value_after", pa.array([1.5])), path / rf.SERVER_OPS)
    assert error_of(path) == "server_ops.parquet: column 'value_after': expected int64, got double"
    pq.write_table(table.drop_columns(["applied_ns"]), path / rf.SERVER_OPS)
    assert error_of(path) == "server_ops.parquet: missing column 'applied_ns' (expected int64)"


def test_what_is_missing_is_listed_in_the_notes(tmp_path):
    run_dir = write_run(tmp_path, [inc("a", 1, 2, value=1), final(100, 101, 1)])
    table = pq.read_table(run_dir / rf.OPS).drop_columns(["intended_ns", "trace_id"])
    pq.write_table(table, run_dir / rf.OPS)
    from analysis.summary import summarize

    summary = summarize(load_run(run_dir))
    notes = "\n".join(summary["notes"])
    assert "timeline.parquet: missing" in notes
    assert "server_ops.parquet: missing: no store ledger" in notes
    assert "ops.parquet: no column 'intended_ns'" in notes and "ops.parquet: no column 'trace_id'" in notes
    assert "closed-loop run" in notes
    assert summary["verdict"] == "pass" and summary["consistency"]["ledger"] is False


def test_an_aborted_run_without_a_load_window_is_analysed_from_its_ledger(tmp_path):
    ops = [inc(f"k{i}", 100 + i * 10, 105 + i * 10, value=i + 1) for i in range(20)]
    run_dir = write_run(tmp_path, ops, meta={"aborted": True, "load_started_ns": None, "load_ended_ns": None})
    (run_dir / rf.LOAD).write_text(json.dumps({"incomplete_workers": ["host:42"]}))
    run = load_run(run_dir)
    assert run.meta["load_started_ns"] == ops[0]["start_ns"]
    assert run.meta["load_ended_ns"] == ops[-1]["start_ns"] + 1
    notes = "\n".join(run.notes)
    assert "run.json: load_started_ns and load_ended_ns null" in notes
    assert "run.json: the run was aborted" in notes
    assert "load.json: the last rows of host:42 never reached the ledger" in notes
    from analysis.summary import summarize

    summary = summarize(run)
    assert summary["load"]["requests"] == 20 and summary["aborted"] is True
    assert summary["consistency"]["anomalies"]["final_missing"]["count"] == 1


def test_a_ledger_left_partial_by_a_killed_run(run_dir):
    (run_dir / rf.OPS).rename(run_dir / f"{rf.OPS}.partial")
    assert error_of(run_dir).startswith("ops.parquet: missing; ops.parquet.partial is there")


def test_string_columns_with_few_values_are_categoricals_that_compare_like_strings(run_dir):
    ops = load_run(run_dir).ops
    assert str(ops["kind"].dtype) == "category" and list(ops["kind"].cat.categories) == ["final", "increment"]
    assert (ops["kind"] == "increment").tolist() == [True, False]
    assert ops["op_id"].iloc[0] == "a" and str(ops["op_id"].dtype) != "category"


def test_keep_freed_memory_restores_the_allocators():
    from analysis.rundir import keep_freed_memory

    pool = pa.default_memory_pool()
    with keep_freed_memory():
        data = pa.array(range(1000))
        assert sum(data.to_pylist()) == 499500
    assert pa.default_memory_pool().backend_name == pool.backend_name
    with keep_freed_memory(enabled=False):
        assert pa.default_memory_pool().backend_name == pool.backend_name
