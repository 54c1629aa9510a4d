"""The AWS target's timeline: the group, the function and their CloudWatch metrics, sampled on a thread.

Each sample is one row with exactly the columns of ``chaoscheck.runformat.TIMELINE_SCHEMA``, the same
as the local stack's ``counter.local.timeline`` rows, so one analysis reads both. Where AWS cannot
say what the local stack says, the column holds what is known and ``docs/chaos-aws.md`` says so:

- ``fleet_desired``: the group's ``DesiredCapacity``;
- ``fleet_pending`` / ``fleet_in_service`` / ``fleet_unhealthy``: from the group's instances
  (``Pending*``; ``InService`` and ``Healthy``; ``Unhealthy`` not yet terminating), or, with
  ``target_group_arn``, from the load balancer's view (``initial`` plus the group's pending;
  ``healthy``; ``unhealthy``), which is what "receiving traffic" means;
- ``fleet_requests`` / ``fleet_errors``: with ``load_balancer`` (the ``app/<name>/<id>`` dimension),
  the sums of ``RequestCount`` and ``HTTPCode_ELB_5XX_Count`` since the sampler started; else 0;
- ``lambda_reserved``: ``GetFunctionConcurrency`` (null: unreserved);
- ``lambda_active``: the latest ``ConcurrentExecutions`` maximum; ``lambda_throttles``: the sum of
  ``Throttles`` since the start; ``lambda_requests``: ``Invocations`` plus ``Throttles`` (asked for);
- ``lambda_environments`` and ``lambda_cold_starts``: 0, AWS does not publish them as metrics.

CloudWatch figures arrive per minute and a few minutes late, so they are queried every
``metrics_interval`` (default 60 s, each query costs money) and are approximate. Scaling activities
(``DescribeScalingActivities``) are kept in ``activities``: one entry each time an activity is first
seen or changes status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from chaos.backends.aws_clients import AwsClients, aws_call, error_code, make_session

log = logging.getLogger(__name__)

MIN_INTERVAL_S, MAX_INTERVAL_S = 0.2, 300.0
MAX_ROWS = 200_000
"""Rows kept (a day at 0.5 s); the oldest go first."""

_PENDING = ("Pending", "Pending:Wait", "Pending:Proceed")
_LEAVING = ("Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated")
_DONE = frozenset({"Successful", "Failed", "Cancelled"})

# (query id, namespace, metric, statistic)
_LAMBDA_METRICS = [
    ("throttles", "AWS/Lambda", "Throttles", "Sum"),
    ("invocations", "AWS/Lambda", "Invocations", "Sum"),
    ("concurrent", "AWS/Lambda", "ConcurrentExecutions", "Maximum"),
]
_ALB_METRICS = [
    ("requests", "AWS/ApplicationELB", "RequestCount", "Sum"),
    ("elb5xx", "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "Sum"),
]


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


class AwsTimeline:
    """Samples one Auto Scaling group and one Lambda function; ``start``/``stop`` run it on a thread.

    ``sample_once`` takes one sample synchronously (no thread, no sleep) and returns its row, which is
    also appended to ``rows``. Either ``group_name`` or ``function_name`` may be left out; its columns
    are then 0 (and ``lambda_reserved`` null).
    """

    def __init__(
        self,
        session: boto3.Session | None = None,
        *,
        group_name: str | None = None,
        function_name: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        target_group_arn: str | None = None,
        load_balancer: str | None = None,
        interval: float = 1.0,
        metrics_interval: float = 60.0,
        clock: Any = time.time_ns,
    ) -> None:
        if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
            raise ValueError(
                f"expected an interval from {MIN_INTERVAL_S} to {MAX_INTERVAL_S} s, got {interval!r}"
            )
        if metrics_interval < 0:
            raise ValueError(f"expected metrics_interval >= 0, got {metrics_interval!r}")
        self._clients = AwsClients(session if session is not None else make_session(profile, region), region)
        self.group_name = group_name
        self.function_name = function_name
        self.target_group_arn = target_group_arn
        self.load_balancer = load_balancer
        self.interval = float(interval)
        self.metrics_interval = float(metrics_interval)
        self._clock = clock
        self.rows: deque[dict[str, Any]] = deque(maxlen=MAX_ROWS)
        self.activities: list[dict[str, Any]] = []
        self._activity_status: dict[str, str] = {}
        self._metrics: dict[str, float] = {}
        self._metrics_at_ns: int | None = None
        self._started_ns: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0

    # one sample --------------------------------------------------------------------------------------

    def sample_once(self) -> dict[str, Any]:
        """Poll everything once and return the row (also kept in ``rows``)."""
        with self._lock:
            now_ns = int(self._clock())
            if self._started_ns is None:
                self._started_ns = now_ns
            row: dict[str, Any] = {"ts_ns": now_ns, **self._fleet(), **self._function()}
            self._refresh_metrics(now_ns)
            row["fleet_requests"] = int(self._metrics.get("requests", 0))
            row["fleet_errors"] = int(self._metrics.get("elb5xx", 0))
            throttles = int(self._metrics.get("throttles", 0))
            row["lambda_active"] = int(self._metrics.get("concurrent", 0))
            row["lambda_requests"] = int(self._metrics.get("invocations", 0)) + throttles
            row["lambda_throttles"] = throttles
            row["lambda_environments"] = 0
            row["lambda_cold_starts"] = 0
            self._poll_activities()
            self.rows.append(row)
            return row

    def _fleet(self) -> dict[str, Any]:
        counts = {"fleet_desired": 0, "fleet_pending": 0, "fleet_in_service": 0, "fleet_unhealthy": 0}
        if self.group_name is None:
            return counts
        with aws_call("autoscaling DescribeAutoScalingGroups"):
            groups = self._clients.client("autoscaling").describe_auto_scaling_groups(
                AutoScalingGroupNames=[self.group_name]
            )["AutoScalingGroups"]
        if not groups:
            return counts
        group = groups[0]
        instances = group.get("Instances", [])
        counts["fleet_desired"] = int(group["DesiredCapacity"])
        pending = sum(1 for i in instances if i.get("LifecycleState") in _PENDING)
        if self.target_group_arn is None:
            counts["fleet_pending"] = pending
            counts["fleet_in_service"] = sum(
                1
                for i in instances
                if i.get("LifecycleState") == "InService" and i.get("HealthStatus") == "Healthy"
            )
            counts["fleet_unhealthy"] = sum(
                1
                for i in instances
                if i.get("HealthStatus") == "Unhealthy" and i.get("LifecycleState") not in _LEAVING
            )
            return counts
        with aws_call("elbv2 DescribeTargetHealth"):
            targets = self._clients.client("elbv2").describe_target_health(
                TargetGroupArn=self.target_group_arn
            )["TargetHealthDescriptions"]
        states = [t.get("TargetHealth", {}).get("State") for t in targets]
        counts["fleet_pending"] = pending + states.count("initial")
        counts["fleet_in_service"] = states.count("healthy")
        counts["fleet_unhealthy"] = states.count("unhealthy")
        return counts

    def _function(self) -> dict[str, Any]:
        if self.function_name is None:
            return {"lambda_reserved": None}
        with aws_call("lambda GetFunctionConcurrency"):
            data = self._clients.client("lambda").get_function_concurrency(FunctionName=self.function_name)
        value = data.get("ReservedConcurrentExecutions")
        return {"lambda_reserved": None if value is None else int(value)}

    def _refresh_metrics(self, now_ns: int) -> None:
        """Re-query CloudWatch when ``metrics_interval`` has passed; keep the last figures on failure."""
        due = self._metrics_at_ns is None or now_ns - self._metrics_at_ns >= self.metrics_interval * 1e9
        queries = []
        if self.function_name is not None:
            queries += [(q, ns, m, s, "FunctionName", self.function_name) for q, ns, m, s in _LAMBDA_METRICS]
        if self.load_balancer is not None:
            queries += [(q, ns, m, s, "LoadBalancer", self.load_balancer) for q, ns, m, s in _ALB_METRICS]
        if not due or not queries:
            return
        self._metrics_at_ns = now_ns
        assert self._started_ns is not None
        start = datetime.fromtimestamp(self._started_ns / 1e9, UTC).replace(second=0, microsecond=0)
        end = datetime.fromtimestamp(now_ns / 1e9, UTC) + timedelta(minutes=1)
        try:
            with aws_call("cloudwatch GetMetricData"):
                pages = (
                    self._clients.client("cloudwatch")
                    .get_paginator("get_metric_data")
                    .paginate(
                        MetricDataQueries=[
                            {
                                "Id": query_id,
                                "MetricStat": {
                                    "Metric": {
                                        "Namespace": namespace,
                                        "MetricName": metric,
                                        "Dimensions": [{"Name": dimension, "Value": value}],
                                    },
                                    "Period": 60,
                                    "Stat": stat,
                                },
                            }
                            for query_id, namespace, metric, stat, dimension, value in queries
                        ],
                        StartTime=start,
                        EndTime=end,
                        ScanBy="TimestampDescending",
                    )
                )
                series: dict[str, list[float]] = {}
                for page in pages:
                    for result in page.get("MetricDataResults", []):
                        series.setdefault(result["Id"], []).extend(result.get("Values", []))
        except Exception as exc:  # metrics are a bonus: never lose the sample for them
            log.warning("CloudWatch metrics unavailable, keeping the last figures: %s", exc)
            return
        for query_id, _, _, stat, _, _ in queries:
            values = series.get(query_id, [])
            if stat == "Maximum":  # a level, not a count: the latest minute (results come newest first)
                self._metrics[query_id] = values[0] if values else 0.0
            else:
                self._metrics[query_id] = float(sum(values))

    def _poll_activities(self) -> None:
        if self.group_name is None:
            return
        try:
            data = self._clients.client("autoscaling").describe_scaling_activities(
                AutoScalingGroupName=self.group_name, MaxRecords=100
            )
        except Exception as exc:
            log.warning("scaling activities unavailable: %s %s", error_code(exc), exc)
            return
        assert self._started_ns is not None
        for activity in reversed(data.get("Activities", [])):  # oldest first
            status = str(activity.get("StatusCode", ""))
            activity_id = str(activity["ActivityId"])
            started_ns = _ns(activity["StartTime"])
            if self._activity_status.get(activity_id) == status:
                continue
            if activity_id not in self._activity_status and started_ns < self._started_ns and status in _DONE:
                self._activity_status[activity_id] = status  # finished before we started: not this run's
                continue
            self._activity_status[activity_id] = status
            end = activity.get("EndTime")
            self.activities.append(
                {
                    "ts_ns": started_ns,
                    "end_ns": _ns(end) if end is not None and status in _DONE else None,
                    "seen_ns": self.rows[-1]["ts_ns"] if self.rows else self._started_ns,
                    "activity_id": activity_id,
                    "status": status,
                    "description": activity.get("Description", ""),
                    "cause": activity.get("Cause", ""),
                    "progress": activity.get("Progress"),
                }
            )

    # reading -----------------------------------------------------------------------------------------

    def since(self, ts_ns: int | None = None) -> list[dict[str, Any]]:
        """The rows after ``ts_ns`` (all of them without one), oldest first."""
        with self._lock:
            return [row for row in self.rows if ts_ns is None or row["ts_ns"] > ts_ns]

    def to_table(self) -> Any:
        """The rows as a ``pyarrow.Table`` with ``TIMELINE_SCHEMA``, ready for ``timeline.parquet``."""
        import pyarrow as pa

        from chaoscheck.runformat import TIMELINE_SCHEMA

        return pa.Table.from_pylist(self.since(), schema=TIMELINE_SCHEMA)

    # the thread --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Sample every ``interval`` on a daemon thread until ``stop``."""
        if self._thread is not None:
            raise RuntimeError("the AWS timeline was already started")
        self._thread = threading.Thread(target=self._run, name="aws-timeline", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop sampling and wait (bounded) for a sample in flight. Idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("the AWS timeline is still in an AWS call after %.1f s", timeout_s)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_once()
                self._failures = 0
            except Exception as exc:  # a failed sample is a gap in the timeline, not the end of it
                self._failures += 1
                if self._failures == 1 or self._failures % 60 == 0:
                    log.warning("AWS timeline sample failed (%d in a row): %s", self._failures, exc)
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (slow calls): skip the missed slots rather than burst
                next_at = time.monotonic() + self.interval
                delay = self.interval
            self._stop.wait(delay)
