"""Fetching a run's traces from X-Ray by trace id: BatchGetTraces in chunks of 5, against moto."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pyarrow as pa
import pytest
from awstier import REGION

from chaoscheck.targets.aws import TRACES_PER_CALL, fetch_traces, run_trace_ids


class Counting:
    """A client that counts its BatchGetTraces calls and the ids of each."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[list[str]] = []

    def batch_get_traces(self, **kwargs: Any) -> Any:
        self.calls.append(list(kwargs["TraceIds"]))
        return self.client.batch_get_traces(**kwargs)


def put_traces(xray: Any, count: int, segments_each: int = 1) -> list[str]:
    now = time.time()
    ids = [f"1-{int(now):08x}-{i:024x}" for i in range(count)]
    documents = [
        {"name": "svc", "id": f"{i:08x}{s:08x}", "trace_id": trace_id, "start_time": now,
         "end_time": now + 0.002,
         "subsegments": [{"name": "store.increment", "id": f"{s:08x}{i:08x}", "start_time": now,
                          "end_time": now + 0.001}]}
        for i, trace_id in enumerate(ids)
        for s in range(segments_each)
    ]  # fmt: skip
    for start in range(0, len(documents), 20):
        xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in documents[start : start + 20]])
    return ids


def test_traces_are_fetched_five_ids_a_call_one_document_per_segment(aws: None) -> None:
    xray = boto3.client("xray", region_name=REGION)
    ids = put_traces(xray, 12, segments_each=2)
    client = Counting(xray)
    unknown = "1-00000001-000000000000000000000000"
    documents = list(fetch_traces(client, [*ids, ids[0], unknown, "not-a-trace-id", ""]))
    assert [len(call) for call in client.calls] == [5, 5, 3]  # duplicates and invalid ids never sent
    assert all(len(call) <= TRACES_PER_CALL for call in client.calls)
    assert len(documents) == 24 and len({d["id"] for d in documents}) == 24
    assert {d["trace_id"] for d in documents} == set(ids)
    assert all(d["subsegments"][0]["name"] == "store.increment" for d in documents)
    assert list(fetch_traces(client, [])) == []


def test_pages_of_one_call_are_followed() -> None:
    pages = [
        {"Traces": [{"Id": "t", "Segments": [{"Id": "a", "Document": '{"id": "a"}'}]}], "NextToken": "n"},
        {"Traces": [{"Id": "t", "Segments": [{"Id": "a", "Document": '{"id": "a"}'},
                                             {"Id": "b", "Document": "broken"},
                                             {"Id": "c", "Document": '{"id": "c"}'}]}]},
    ]  # fmt: skip
    tokens: list[str | None] = []

    class Paged:
        def batch_get_traces(self, **kwargs: Any) -> Any:
            tokens.append(kwargs.get("NextToken"))
            return pages[len(tokens) - 1]

    assert [d["id"] for d in fetch_traces(Paged(), ["1-00000001-000000000000000000000001"])] == ["a", "c"]
    assert tokens == [None, "n"]


@pytest.mark.parametrize("limit", [0, 3, 5, 100])
def test_the_runs_trace_ids_put_failures_first_then_an_even_sample(limit: int) -> None:
    ok = [f"1-00000001-{i:024x}" for i in range(10)]
    bad = ["1-00000002-000000000000000000000001", "1-00000002-000000000000000000000002"]
    table = pa.table(
        {
            "trace_id": [*ok[:5], bad[0], *ok[5:], bad[1], None, ok[0]],
            "outcome": ["ok"] * 5 + ["fail"] + ["ok"] * 5 + ["info", "ok", "ok"],
        }
    )
    chosen = run_trace_ids(table, limit)
    assert len(chosen) == min(limit, 12) and len(set(chosen)) == len(chosen)
    assert chosen[: min(limit, 2)] == bad[: min(limit, 2)]
    assert set(chosen) <= set(ok) | set(bad)
    if limit == 5:
        assert chosen[2:] == [ok[0], ok[3], ok[6]]  # spread over the run, not its first seconds
    assert run_trace_ids(pa.table({"op_id": ["x"]}), limit) == []
