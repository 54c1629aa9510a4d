"""X-Ray segments joined to the ledger by trace id: server against client time, coverage, cold starts;
a malformed file is one line naming the file and the line, and never touches the verdict."""

from __future__ import annotations

import json

import pytest
from history import T0, final, inc, inject, ns, write_run

from analysis.rundir import RunFormatError, load_run
from analysis.summary import summarize
from analysis.xray import XRAY, read_xray


def trace(i: int) -> str:
    return f"1-{T0 // 10**9:08x}-{i:024x}"


def seconds(ms: float) -> float:
    return ns(ms) / 1e9


def lambda_segments(i: int, start_ms: float, server_ms: float, init_ms: float | None = None) -> list[dict]:
    """The two documents of a Lambda invocation: the service's segment and the function's."""
    service = {
        "id": f"a{i:015x}",
        "trace_id": trace(i),
        "name": "counter-fn",
        "origin": "AWS::Lambda",
        "start_time": seconds(start_ms),
        "end_time": seconds(start_ms + server_ms),
        "http": {"response": {"status": 200}},
    }
    subsegments = [
        {"name": "Invocation", "start_time": seconds(start_ms + 1), "end_time": seconds(start_ms + 2)}
    ]
    if init_ms is not None:
        subsegments.insert(
            0,
            {
                "name": "Initialization",
                "start_time": seconds(start_ms),
                "end_time": seconds(start_ms + init_ms),
            },
        )
    function = {
        "id": f"b{i:015x}",
        "trace_id": trace(i),
        "parent_id": service["id"],
        "name": "counter-fn",
        "origin": "AWS::Lambda::Function",
        "start_time": seconds(start_ms + 0.5),
        "end_time": seconds(start_ms + server_ms - 0.5),
        "subsegments": subsegments,
    }
    return [service, function]


def ec2_segment(i: int, start_ms: float, server_ms: float, **flags) -> dict:
    return {
        "id": f"c{i:015x}",
        "trace_id": trace(i),
        "name": "counter-instance",
        "origin": "AWS::EC2::Instance",
        "start_time": seconds(start_ms),
        "end_time": seconds(start_ms + server_ms),
        **flags,
    }


def xray_run(tmp_path, documents: list[dict] | None = None):
    # 10 lambda requests of 20 ms client time (server 12 ms) and 10 fleet ones of 10 ms (server 9 ms);
    # a fault phase from 5 s. Rows 0 and 10 start cold (Initialization 150 ms and 80 ms).
    ops = []
    docs: list[dict] = []
    for i in range(10):
        start = i * 1_000.0
        ops.append({**inc(f"l{i}", start, start + 20, endpoint="lambda"), "trace_id": trace(i)})
        docs += lambda_segments(i, start + 4, 12, init_ms=150 if i == 0 else 80 if i == 5 else None)
        ops.append({**inc(f"f{i}", start + 1, start + 11), "trace_id": trace(100 + i)})
        if i != 9:  # one fleet request was not sampled
            docs.append(ec2_segment(100 + i, start + 1.5, 9, fault=i == 8))
    docs.append(ec2_segment(999, 500, 1))  # a trace nobody sent
    docs.append({**ec2_segment(998, 600, 1), "in_progress": True, "end_time": None})
    del docs[-1]["end_time"]
    ops.append(final(20_000, 20_001, 20))
    path = write_run(tmp_path, ops, load_ms=(0, 10_000), faults=[inject(0, 5_000, 5.0)])
    lines = [json.dumps(d) for d in (docs if documents is None else documents)]
    (path / XRAY).write_text("\n".join(lines) + "\n")
    return path


def test_server_against_client_time_coverage_and_cold_starts(tmp_path):
    run = load_run(xray_run(tmp_path))
    assert len(run.xray) == 10 * 2 + 9 + 2
    xray = summarize(run)["xray"]
    assert (xray["segments"], xray["in_progress"], xray["traces"]) == (31, 1, 20)
    assert (xray["rows"], xray["joined"], xray["coverage"]) == (20, 19, 0.95)
    assert xray["unmatched_traces"] == 1 and xray["negative_overhead"] == 0 and xray["cold_starts"] == 2
    baseline, fault, load = xray["phases"]
    assert [p["name"] for p in xray["phases"]] == ["baseline", "fault-1", "load"]
    lam = baseline["endpoints"]["lambda"]
    assert (lam["rows"], lam["joined"], lam["coverage"]) == (5, 5, 1.0)
    assert lam["client"]["p50_ms"] == 20.0 and lam["server"]["p99_ms"] == 12.0
    assert lam["overhead"]["p50_ms"] == 8.0 and lam["overhead"]["max_ms"] == 8.0
    fleet = fault["endpoints"]["fleet"]
    assert (fleet["rows"], fleet["joined"], fleet["coverage"]) == (5, 4, 0.8)
    assert fleet["server"]["max_ms"] == 9.0 and fleet["overhead"]["p50_ms"] == 1.0
    assert fleet["faults"] == 1 and baseline["endpoints"]["fleet"]["faults"] == 0
    assert baseline["cold_starts"] == {
        "count": 1,
        "p50_ms": 150.0,
        "p90_ms": 150.0,
        "p95_ms": 150.0,
        "p99_ms": 150.0,
        "p999_ms": 150.0,
        "max_ms": 150.0,
    }
    assert fault["cold_starts"]["count"] == 1 and fault["cold_starts"]["max_ms"] == 80.0
    assert load["joined"] == 19 and load["cold_starts"]["count"] == 2


def test_the_verdict_never_depends_on_xray(tmp_path):
    path = xray_run(tmp_path)
    with_xray = summarize(load_run(path))
    (path / XRAY).write_text('{"id": "x", "trace_id": "1-0-0", "name": "broken"\n')
    broken = summarize(load_run(path))
    (path / XRAY).unlink()
    without = summarize(load_run(path))
    assert without["xray"] is None
    assert broken["xray"]["error"].startswith("xray.jsonl: line 1: not valid JSON (")
    assert any(n.startswith("xray.jsonl: line 1: not valid JSON") for n in broken["notes"])
    for summary in (with_xray, broken):
        assert summary["verdict"] == without["verdict"] and summary["checks"] == without["checks"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "xray.jsonl: line 2: expected a JSON object (a segment document), got list"),
        (
            '{"id": "a", "name": "n", "start_time": 1, "end_time": 2}',
            "xray.jsonl: line 2: trace_id: expected a string, got nothing",
        ),
        (
            '{"id": "a", "trace_id": "Root=1-2-3", "name": "n", "start_time": 1, "end_time": 2}',
            "xray.jsonl: line 2: trace_id: expected 1-<8 hex digits>-<24 hex digits>, got 'Root=1-2-3'",
        ),
        (
            json.dumps({**ec2_segment(1, 0, 1), "end_time": "later"}),
            "xray.jsonl: line 2: end_time: expected epoch seconds (a number), got str 'later'",
        ),
        (
            json.dumps({**ec2_segment(1, 0, 1), "fault": "yes"}),
            "xray.jsonl: line 2: fault: expected true or false, got str 'yes'",
        ),
        (
            json.dumps(
                {**ec2_segment(1, 0, 1), "subsegments": [{"name": "Initialization", "start_time": 1}]}
            ),
            "xray.jsonl: line 2: subsegments[0]: end_time: expected epoch seconds (a number), got nothing",
        ),
    ],
)
def test_a_malformed_line_is_one_line_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / XRAY
    path.write_text(json.dumps(ec2_segment(0, 0, 1)) + "\n" + line + "\n")
    with pytest.raises(RunFormatError) as caught:
        read_xray(path)
    assert str(caught.value) == message and "\n" not in str(caught.value)


def test_blank_lines_and_separate_initialization_documents(tmp_path):
    init = {
        "id": "d1",
        "trace_id": trace(7),
        "type": "subsegment",
        "parent_id": "b7",
        "name": "Initialization",
        "start_time": seconds(100),
        "end_time": seconds(350),
    }
    path = tmp_path / XRAY
    path.write_text("\n" + json.dumps(ec2_segment(7, 100, 5)) + "\n\n" + json.dumps(init) + "\n")
    frame = read_xray(path)
    assert list(frame["line"]) == [2, 4]
    assert list(frame["init_ns"]) == [-1, 250 * 10**6]
