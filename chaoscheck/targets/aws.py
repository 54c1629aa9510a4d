"""The counter service deployed on AWS (``counter/template.yaml``), found from its CloudFormation stack.

``AwsTarget(stack_name, region=..., profile=...)`` reads the stack's outputs (``DescribeStacks``) and
gives the run what the local target gives it:

- ``endpoints()``: ``fleet`` (the ALB, ``FleetUrl``) and ``lambda`` (the function URL ``LambdaUrl``, or
  the HTTP API ``HttpApiUrl`` with ``lambda_endpoint="http-api"``);
- ``chaos_backend()``: ``chaos.backends.aws.AwsBackend`` on the stack's group and function
  (``GroupName``, ``FunctionName``) with the scenario's safety settings (``max_share``, ``accounts``,
  ``regions``, ``seed``) and ``allow_untagged``;
- ``alarm_state(name)``: a CloudWatch alarm's state, for ``safety.stop_conditions`` ``alarm:``;
- ``timeline(since_ns)``: ``chaos.backends.aws_timeline.AwsTimeline``, sampled from ``start`` to ``stop``,
  and ``activities(since_ns)``: the group's scaling activities it saw (``scaling.parquet``);
- ``server_ops(counter)``: the DynamoDB table's applied keys of the run's counter (``TableName``);
- X-Ray: at ``stop``, when the target knows its run directory, the traces of the run's requests
  (the ``trace_id`` column of ``ops.parquet``) are fetched with ``BatchGetTraces`` (5 ids a call) into
  ``xray.jsonl``, one segment document per line.

Clients are made the ordinary boto3 way (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``...), as
the AWS backend makes them. Every problem finding the stack is a ``UserError`` with one line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from chaos.backends.aws_clients import AwsClients, make_session, one_line
from chaos.backends.interface import InjectionError
from chaos.blast_radius import DEFAULT_MAX_SHARE
from chaoscheck import runformat
from chaoscheck.errors import UserError
from chaoscheck.runformat import SCALING_SCHEMA, SERVER_OPS_SCHEMA, TIMELINE_SCHEMA

log = logging.getLogger(__name__)

REQUIRED_OUTPUTS = ("FleetUrl", "LambdaUrl", "GroupName", "FunctionName", "TableName")
OPTIONAL_OUTPUTS = ("HttpApiUrl", "TargetGroupArn", "LoadBalancerFullName", "FaultParameterPrefix")
USABLE_STATUSES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
)
LAMBDA_ENDPOINTS = ("url", "http-api")

XRAY_FILE = "xray.jsonl"
"""The run directory's X-Ray segment file (also written locally by ``counter.xray_collector``)."""
TRACES_PER_CALL = 5
"""``BatchGetTraces`` takes at most 5 trace ids per call."""
XRAY_MAX_TRACES = 1000
XRAY_SETTLE_S = 10.0
"""X-Ray makes a trace readable some seconds after its segments arrive: wait this long first."""
TRACE_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")


@dataclass(frozen=True)
class StackOutputs:
    """What chaoscheck needs from the stack, from its CloudFormation outputs."""

    stack: str
    region: str | None
    status: str
    fleet_url: str
    lambda_url: str
    group_name: str
    function_name: str
    table_name: str
    http_api_url: str | None = None
    target_group_arn: str | None = None
    load_balancer: str | None = None
    parameter_prefix: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_stack(cls, data: dict[str, Any], region: str | None) -> StackOutputs:
        name = data.get("StackName", "?")
        status = str(data.get("StackStatus", ""))
        if status not in USABLE_STATUSES:
            raise UserError(
                f"--stack {name}: expected a deployed stack ({', '.join(sorted(USABLE_STATUSES))}), "
                f"got status {status}"
            )
        outputs = {o["OutputKey"]: str(o.get("OutputValue", "")) for o in data.get("Outputs") or []}
        missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
        if missing:
            raise UserError(
                f"--stack {name}: expected the outputs {', '.join(REQUIRED_OUTPUTS)} "
                f"(counter/template.yaml), missing {', '.join(missing)}"
            )
        return cls(
            stack=name,
            region=region,
            status=status,
            fleet_url=outputs["FleetUrl"].rstrip("/"),
            lambda_url=outputs["LambdaUrl"].rstrip("/"),
            group_name=outputs["GroupName"],
            function_name=outputs["FunctionName"],
            table_name=outputs["TableName"],
            http_api_url=(outputs.get("HttpApiUrl") or "").rstrip("/") or None,
            target_group_arn=outputs.get("TargetGroupArn") or None,
            load_balancer=outputs.get("LoadBalancerFullName") or None,
            parameter_prefix=outputs.get("FaultParameterPrefix") or None,
            outputs=outputs,
        )


def read_stack(clients: AwsClients, stack_name: str) -> StackOutputs:
    """The outputs of ``stack_name`` (``cloudformation:DescribeStacks``), or ``UserError`` (one line)."""
    try:
        found = clients.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except InjectionError as exc:
        raise UserError(f"--stack {stack_name}: {exc}") from None
    except Exception as exc:
        text = one_line(exc)
        if "does not exist" in text:
            raise UserError(
                f"--stack {stack_name}: expected a CloudFormation stack of that name in "
                f"{clients.region}, found none"
            ) from None
        raise UserError(f"--stack {stack_name}: cloudformation DescribeStacks: {text}") from None
    if not found:
        raise UserError(f"--stack {stack_name}: expected a CloudFormation stack of that name, found none")
    return StackOutputs.from_stack(found[0], clients.region)


# X-Ray ----------------------------------------------------------------------------------------------


def fetch_traces(client: Any, trace_ids: Iterable[str], per_call: int = TRACES_PER_CALL) -> Iterator[dict]:
    """The segment documents of ``trace_ids`` (``xray:BatchGetTraces``, ``per_call`` ids a call).

    Yields each segment's document (parsed JSON) once; ids X-Ray does not know (not sampled, expired,
    not processed yet) simply yield nothing. Invalid ids are skipped before any call.
    """
    wanted = list(dict.fromkeys(t for t in trace_ids if t and TRACE_ID.match(t)))
    seen: set[str] = set()
    for start in range(0, len(wanted), per_call):
        chunk = wanted[start : start + per_call]
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"TraceIds": chunk}
            if token:
                kwargs["NextToken"] = token
            page = client.batch_get_traces(**kwargs)
            for trace in page.get("Traces", []):
                for segment in trace.get("Segments", []):
                    if segment.get("Id") in seen:
                        continue
                    seen.add(segment.get("Id"))
                    try:
                        document = json.loads(segment["Document"])
                    except (KeyError, TypeError, ValueError):
                        continue
                    if isinstance(document, dict):
                        yield document
            token = page.get("NextToken")
            if not token:
                break


def run_trace_ids(ops: pa.Table, limit: int = XRAY_MAX_TRACES) -> list[str]:
    """The trace ids of a run's requests (``ops.parquet``), at most ``limit``: every failed or
    indeterminate request first (those are the ones worth a trace), then an even sample of the rest."""
    if "trace_id" not in ops.column_names or limit <= 0:
        return []
    ids = ops.column("trace_id").to_pylist()
    outcomes = ops.column("outcome").to_pylist() if "outcome" in ops.column_names else [None] * len(ids)
    bad = list(dict.fromkeys(t for t, o in zip(ids, outcomes, strict=True) if t and o != runformat.OK))
    good = list(dict.fromkeys(t for t, o in zip(ids, outcomes, strict=True) if t and o == runformat.OK))
    chosen = bad[:limit]
    room = limit - len(chosen)
    if room > 0 and good:
        step = max(1, len(good) / room)
        chosen += [good[int(i * step)] for i in range(min(room, len(good)))]
    return chosen


def write_jsonl(path: Path, documents: Iterable[dict]) -> int:
    """Write ``documents`` one per line, atomically; returns how many."""
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as out:
        for document in documents:
            out.write(json.dumps(document, separators=(",", ":")) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


# scaling activities ---------------------------------------------------------------------------------

_STATUSES = {"Successful": "successful", "Failed": "failed", "Cancelled": "cancelled"}
_CAPACITY = re.compile(r"from (\d+) to (\d+)")
_INSTANCE = re.compile(r"\bi-[0-9a-f]{8,17}\b")


def scaling_row(entry: dict[str, Any]) -> dict[str, Any]:
    """One ``AwsTimeline.activities`` entry as a ``scaling.parquet`` row: ``launch`` or ``terminate``
    of the instance its description names; the capacities from its cause ("... changing the desired
    capacity from 3 to 4"), else the same number twice (a replacement keeps the capacity)."""
    description = str(entry.get("description") or "")
    cause = str(entry.get("cause") or "")
    capacity = _CAPACITY.search(cause)
    before, after = (int(capacity.group(1)), int(capacity.group(2))) if capacity else (0, 0)
    instance = _INSTANCE.search(description)
    return {
        "activity_id": entry["activity_id"],
        "resource": "fleet",
        "kind": "terminate" if description.lower().startswith("terminat") else "launch",
        "cause": cause or description,
        "from_capacity": before,
        "to_capacity": after if capacity else before,
        "start_ns": int(entry["ts_ns"]),
        "end_ns": entry.get("end_ns"),
        "status": _STATUSES.get(str(entry.get("status")), "in_progress"),
        "subject": instance.group(0) if instance else None,
        "replaces": None,
        "parent": None,
        "metric": None,
    }


# the target -----------------------------------------------------------------------------------------


class AwsTarget:
    """The deployed stack as a run target (see the module docstring)."""

    name = "aws"
    has_chaos = True

    def __init__(
        self,
        stack_name: str,
        *,
        region: str | None = None,
        profile: str | None = None,
        session: Any | None = None,
        allow_untagged: bool = False,
        seed: int | None = None,
        max_share: float = DEFAULT_MAX_SHARE,
        accounts: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        run_dir: Path | None = None,
        lambda_endpoint: str = "url",
        timeline_interval: float = 1.0,
        metrics_interval: float = 60.0,
        xray_max_traces: int = XRAY_MAX_TRACES,
        xray_settle_s: float = XRAY_SETTLE_S,
    ) -> None:
        if not stack_name:
            raise UserError("--target aws: expected --stack NAME (the CloudFormation stack of the counter)")
        if lambda_endpoint not in LAMBDA_ENDPOINTS:
            raise UserError(
                f"expected a lambda endpoint of {', '.join(LAMBDA_ENDPOINTS)}, got {lambda_endpoint!r}"
            )
        try:
            self._session = session if session is not None else make_session(profile, region)
        except InjectionError as exc:
            raise UserError(f"--profile: {exc}") from None
        self._clients = AwsClients(self._session, region)
        self.stack_name = stack_name
        self.profile = profile
        self.allow_untagged = allow_untagged
        self.seed = seed
        self.max_share = max_share
        self.accounts = list(accounts) if accounts is not None else None
        self.regions = list(regions) if regions is not None else None
        self.run_dir = run_dir
        self.lambda_endpoint = lambda_endpoint
        self.timeline_interval = timeline_interval
        self.metrics_interval = metrics_interval
        self.xray_max_traces = xray_max_traces
        self.xray_settle_s = xray_settle_s
        self.outputs: StackOutputs | None = None
        self._timeline: Any | None = None
        self._backend: Any | None = None
        self._xray_done = False

    @property
    def region(self) -> str | None:
        return self._clients.region

    # finding the stack -------------------------------------------------------------------------------

    def resolve(self) -> StackOutputs:
        """Read the stack's outputs (once); nothing is started."""
        if self.outputs is None:
            if self.region is None:
                raise UserError(
                    "--region: expected an AWS region (--region, AWS_REGION or AWS_DEFAULT_REGION)"
                )
            self.outputs = read_stack(self._clients, self.stack_name)
        return self.outputs

    def _resolved(self) -> StackOutputs:
        if self.outputs is None:
            raise RuntimeError("the AWS target is not started")
        return self.outputs

    def describe(self) -> list[str]:
        """The resolved stack as lines of text (for ``--dry-run``)."""
        out = self._resolved()
        endpoints = self.endpoints()
        lines = [f"stack {out.stack} in {out.region} ({out.status})"]
        lines += [f"  {tier:<7}{url}" for tier, url in endpoints.items()]
        lines.append(f"  group {out.group_name}, function {out.function_name}, table {out.table_name}")
        return lines

    # the Target interface ----------------------------------------------------------------------------

    def start(self) -> AwsTarget:
        out = self.resolve()
        from chaos.backends.aws_timeline import AwsTimeline

        self._timeline = AwsTimeline(
            self._session,
            group_name=out.group_name,
            function_name=out.function_name,
            region=self.region,
            target_group_arn=out.target_group_arn,
            load_balancer=out.load_balancer,
            interval=self.timeline_interval,
            metrics_interval=self.metrics_interval,
        )
        self._timeline.start()
        return self

    def endpoints(self) -> dict[str, str]:
        out = self._resolved()
        lambda_url = out.lambda_url
        if self.lambda_endpoint == "http-api":
            if not out.http_api_url:
                raise UserError(f"--stack {out.stack}: expected an HttpApiUrl output, found none")
            lambda_url = out.http_api_url
        return {"fleet": out.fleet_url, "lambda": lambda_url}

    def chaos_backend(self) -> Any:
        if self._backend is None:
            from chaos.backends.aws import AwsBackend
            from chaos.backends.aws_fault_parameters import DEFAULT_PREFIX

            out = self._resolved()
            self._backend = AwsBackend(
                self._session,
                region=self.region,
                profile=self.profile,
                group_name=out.group_name,
                function_name=out.function_name,
                allow_untagged=self.allow_untagged,
                max_share=self.max_share,
                seed=self.seed,
                accounts=self.accounts,
                regions=self.regions,
                parameter_prefix=out.parameter_prefix or DEFAULT_PREFIX,
            )
        return self._backend

    def alarm_state(self, alarm_name: str) -> str:
        """A CloudWatch alarm's state (``OK``, ``ALARM``, ``INSUFFICIENT_DATA``) in the stack's region."""
        from chaos.backends.aws import alarm_state

        return alarm_state(self._clients.client("cloudwatch"), alarm_name)

    def wait_quiet(self, timeout: float) -> bool:
        """Nothing to ask AWS: Locust has stopped, so nothing of ours is in flight."""
        return True

    def timeline(self, since_ns: int) -> pa.Table | None:
        if self._timeline is None:
            return None
        rows = [row for row in self._timeline.since() if row["ts_ns"] >= since_ns]
        return pa.Table.from_pylist(rows, schema=TIMELINE_SCHEMA)

    def activities(self, since_ns: int) -> pa.Table | None:
        """The group's scaling activities seen by the timeline (``SCALING_SCHEMA``), the latest state of
        each: EC2 Auto Scaling reports launches and terminations, each with the desired-capacity change
        behind it in its cause. Lambda's environments are not visible on AWS: no ``lambda`` rows."""
        if self._timeline is None:
            return None
        latest: dict[str, dict[str, Any]] = {}
        for entry in self._timeline.activities:
            latest[entry["activity_id"]] = entry  # later entries are later states
        rows = [scaling_row(e) for e in latest.values() if (e["end_ns"] or e["ts_ns"]) >= since_ns]
        rows.sort(key=lambda row: row["start_ns"])
        return pa.Table.from_pylist(rows, schema=SCALING_SCHEMA)

    def server_ops(self, counter: str) -> pa.Table | None:
        """The table's applied keys of ``counter`` (``dynamodb:Query``, strongly consistent)."""
        from counter.dynamodb_store import DynamoDBStore

        out = self._resolved()
        try:
            store = DynamoDBStore(out.table_name, self._clients.client("dynamodb"))
            ops = store.applied_ops(counter)
        except Exception as exc:  # the run's other records still deserve to be kept
            log.warning(
                "cannot read the ledger of %s from table %s: %s", counter, out.table_name, one_line(exc)
            )
            return None
        return pa.Table.from_pydict(
            {
                "op_id": [op.key for op in ops],
                "counter": [op.name for op in ops],
                "value_after": [op.value_after for op in ops],
                "applied_ns": [op.applied_ns for op in ops],
            },
            schema=SERVER_OPS_SCHEMA,
        )

    def xray_segments(self, trace_ids: Iterable[str]) -> list[dict]:
        """The segment documents of ``trace_ids`` as X-Ray has them now."""
        return list(fetch_traces(self._clients.client("xray"), trace_ids))

    def collect_xray(self, run_dir: Path, settle_s: float | None = None) -> int | None:
        """Fetch the traces of the run's requests into ``run_dir/xray.jsonl``; how many segments (None:
        nothing to fetch, or X-Ray refused: logged, the run goes on without traces)."""
        ops_path = run_dir / runformat.OPS
        if not ops_path.exists():
            return None
        import pyarrow.parquet as pq

        ids = run_trace_ids(pq.read_table(ops_path, columns=["trace_id", "outcome"]), self.xray_max_traces)
        if not ids:
            return None
        time.sleep(self.xray_settle_s if settle_s is None else settle_s)
        try:
            count = write_jsonl(run_dir / XRAY_FILE, fetch_traces(self._clients.client("xray"), ids))
        except Exception as exc:
            log.warning("cannot fetch the run's X-Ray traces: %s", one_line(exc))
            return None
        log.info("xray: %d segment(s) for %d trace id(s)", count, len(ids))
        return count

    def log_paths(self) -> list[Path]:
        return []

    def stop(self) -> None:
        """Stop the timeline, then (once, with a run directory) fetch the run's traces. Idempotent."""
        if self._timeline is not None:
            self._timeline.stop()
        if self.run_dir is not None and self.outputs is not None and not self._xray_done:
            self._xray_done = True
            self.collect_xray(self.run_dir)
