"""Scenario files: one YAML file per experiment, validated into a ``Scenario``.

A scenario is data, as in Chaos Toolkit: the load to drive, the stack to start, the faults to inject
and the SLOs the run is judged by. ``load_scenario`` is the only way in from a file, and every problem
it finds becomes one line ``FILE:LINE: FIELD.PATH: what was expected, got what``, so that a user can
jump to the line without reading a traceback. Pydantic does the field checks; turning its errors
into lines at the right place is ``chaos.scenario_problems``'s job.

Rules that span several fields (a fault must end before the load ends, a throttle needs a duration,
two faults of one action must not overlap on one target) are checked in the models too, and raise
errors located at the field to change, so they come out in the same one-line form.
"""

from __future__ import annotations

import functools
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)

from chaos.actions import ACTIONS, action_names, get_action
from chaos.scenario_problems import (
    ROOT_LABEL,
    Loc,
    ScenarioError,
    describe,
    duplicate_keys,
    in_line_order,
    line_of,
    parse_yaml,
    rule_error,
    show_value,
    value_at,
)
from counter.local.config import Duration, StackConfig

__all__ = ["Fault", "Load", "Scenario", "ScenarioError", "fault_model", "load_scenario", "parse_scenario"]

VERSION = 1
DEFAULT_SETTLE_S = 10.0
"""Observation window of a one-shot fault when the scenario gives no ``settle``."""

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

PositiveDuration = Annotated[Duration, Field(gt=0)]


def _seconds(value: float) -> str:
    """``45.0`` -> ``45s``, for messages that talk in the units of the file."""
    return f"{value:g}s"


class _Strict(BaseModel):
    """Closed, immutable, no type coercion: ``users: "20"`` is an error, not a silent conversion."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class _Weights(_Strict):
    """Named weights that can also be read like a mapping by their names in the file.

    The orchestrator and the load side treat ``mix`` and ``endpoints`` as plain mappings
    (``load.endpoints.get("lambda", 0)``), as they appear in the resolved scenario.
    """

    def as_dict(self) -> dict[str, int]:
        """The weights by their names in the file (``lambda``, not ``lambda_``)."""
        return self.model_dump(by_alias=True)

    def get(self, name: str, default: int = 0) -> int:
        """The weight called ``name`` in the file, ``default`` for an unknown name."""
        return self.as_dict().get(name, default)


class Mix(_Weights):
    """Relative weights of the operations each simulated user performs."""

    increment: int = Field(0, ge=0)
    read: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _some_work(self) -> Mix:
        if self.increment == 0 and self.read == 0:
            raise ValueError("expected at least one weight above 0, got increment 0 and read 0")
        return self


class Endpoints(_Weights):
    """Relative weights of the two ways into the counter: the EC2 fleet and the Lambda function URL."""

    fleet: int = Field(0, ge=0)
    lambda_: int = Field(0, ge=0, alias="lambda")

    @model_validator(mode="after")
    def _some_endpoint(self) -> Endpoints:
        if self.fleet == 0 and self.lambda_ == 0:
            raise ValueError("expected at least one weight above 0, got fleet 0 and lambda 0")
        return self


def _rate_stages(value: Any) -> Any:
    """``rate: 200`` is one stage at 200 operations per second for the whole run."""
    if isinstance(value, bool):
        raise ValueError("expected a number of operations per second or a list of stages")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"expected a rate above 0, got {value}")
        return [{"rate": float(value)}]
    if value is None or isinstance(value, list):
        return value
    raise ValueError("expected a number of operations per second or a list of stages")


class RateStage(_Strict):
    """One stretch of the open model's schedule: ``rate`` operations per second, or a ramp to ``to``."""

    duration: PositiveDuration | None = Field(None, description="length of the stage; null: until the end")
    rate: float = Field(ge=0, description="total operations per second at the start of the stage")
    to: float | None = Field(None, ge=0, description="ramp linearly to this rate by the end of the stage")


class Load(_Strict):
    """The load to drive: Locust users, how fast they arrive, for how long and what they do.

    Closed model (the default): each user sends its next operation when the last one answered, or
    on a fixed ``pacing``. Open model: ``rate`` schedules operations whatever the answers, and the
    users (at most ``users`` in flight) send them; an operation that falls more than ``max_lag``
    behind its schedule is recorded as omitted instead of sent.
    """

    @model_validator(mode="before")
    @classmethod
    def _all_users_at_once_by_default(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "spawn_rate" in data:
            return data
        users = data.get("users")
        # a bad ``users`` is reported on its own; the default rate then only has to be valid
        rate = float(users) if isinstance(users, int) and not isinstance(users, bool) and users >= 1 else 1.0
        return {**data, "spawn_rate": rate}

    users: int = Field(ge=1)
    spawn_rate: float = Field(gt=0, description="users started per second (default: all at once)")
    duration: PositiveDuration
    mix: Mix = Mix(increment=9, read=1)
    endpoints: Endpoints = Endpoints(fleet=1, lambda_=1)
    timeout: PositiveDuration = Field(5.0, description="a request slower than this is an error")
    rate: Annotated[list[RateStage] | None, BeforeValidator(_rate_stages)] = Field(
        None, description="open model: operations per second, or stages; the last stage's rate holds"
    )
    pacing: PositiveDuration | None = Field(None, description="closed model: one op per user per pacing")
    max_lag: PositiveDuration = Field(1.0, description="an operation this late behind schedule is omitted")
    retries: int = Field(0, ge=0, le=10, description="retries of an increment with an unknown outcome")

    @model_validator(mode="after")
    def _one_schedule(self) -> Load:
        if self.rate is not None and self.pacing is not None:
            raise ValueError("expected either rate (open model) or pacing (closed model), got both")
        if self.rate is not None:
            if not self.rate:
                raise ValueError("expected rate to be a number or at least one stage, got an empty list")
            if any(stage.duration is None for stage in self.rate[:-1]):
                raise ValueError("expected a duration on every rate stage but the last")
            if not any(stage.rate > 0 or (stage.to or 0) > 0 for stage in self.rate):
                raise ValueError("expected a rate above 0 in at least one stage")
        return self


class Fault(_Strict):
    """One fault of the scenario: when, which action, for how long; subclasses add the action's parameters.

    The loader validates each entry with the subclass built for its action (``fault_model``), so the
    parameters are checked by the action's own model and sit inline in the file (``count: 2``).
    """

    at: Duration = Field(description="from the start of the load")
    action: str
    duration: PositiveDuration | None = Field(None, description="how long a lasting fault holds")
    settle: PositiveDuration = Field(DEFAULT_SETTLE_S, description="observation window of a one-shot fault")

    @model_validator(mode="after")
    def _duration_fits_action(self) -> Fault:
        if self.action not in ACTIONS:  # only reachable when ``Fault`` itself is validated directly
            known = ", ".join(action_names())
            raise rule_error(
                "Fault",
                [(("action",), f"expected one of the actions {known}, got {self.action!r}", self.action)],
            )
        spec = get_action(self.action)
        if spec.takes_duration and self.duration is None:
            raise rule_error(
                "Fault",
                [
                    (
                        ("duration",),
                        f"expected a duration such as 5s: {spec.name} holds its effect for a time "
                        "and is undone at the end, got nothing",
                        None,
                    )
                ],
            )
        if not spec.takes_duration and self.duration is not None:
            raise rule_error(
                "Fault",
                [
                    (
                        ("duration",),
                        f"expected no duration: {spec.name} is one-shot (use settle for the time to "
                        f"observe it), got {_seconds(self.duration)}",
                        self.duration,
                    )
                ],
            )
        if spec.takes_duration and "settle" in self.model_fields_set:
            raise rule_error(
                "Fault",
                [
                    (
                        ("settle",),
                        f"expected no settle: the window of {spec.name} is its duration, "
                        f"got {_seconds(self.settle)}",
                        self.settle,
                    )
                ],
            )
        return self

    @property
    def window_s(self) -> float:
        """Seconds the fault is observed for: its duration, or its settling window when one-shot."""
        return self.duration if self.duration is not None else self.settle

    @property
    def end_s(self) -> float:
        """Seconds from the start of the load to the end of the fault's window."""
        return self.at + self.window_s

    def params(self) -> dict[str, Any]:
        """The action's parameters as plain data, defaults filled in (what the backend and journal get)."""
        return self.model_dump(
            mode="json", include=set(get_action(self.action).params.model_fields), exclude_none=True
        )


@functools.cache
def fault_model(action: str) -> type[Fault]:
    """The model of a fault entry for ``action``: ``Fault``'s keys plus the action's parameters."""
    spec = get_action(action)
    name = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", spec.name)) + "Fault"
    return create_model(name, __base__=(Fault, spec.params), __module__=__name__)


def _validate_fault(value: Any) -> Fault:
    """Pick the fault model from the entry's ``action`` and validate the whole entry with it."""
    if isinstance(value, Fault):
        return value
    if not isinstance(value, dict):
        raise rule_error(
            "Fault", [((), f"expected a mapping with at and action, got {show_value(value)}", value)]
        )
    known = ", ".join(action_names())
    action = value.get("action")
    if action is None:
        raise rule_error("Fault", [(("action",), f"expected one of the actions {known}, got nothing", None)])
    if not isinstance(action, str) or action not in ACTIONS:
        raise rule_error(
            "Fault", [(("action",), f"expected one of the actions {known}, got {show_value(action)}", action)]
        )
    return fault_model(action).model_validate(value, strict=True)


FaultEntry = Annotated[SerializeAsAny[Fault], PlainValidator(_validate_fault)]


class ConsistencySLO(_Strict):
    """How many of each consistency anomaly the run may show (see shared/reference/verification.md)."""

    lost: int = Field(0, ge=0, description="acknowledged increments missing from the final value")
    duplicated: int = Field(0, ge=0, description="increments applied more than once")
    unexpected: int = Field(0, ge=0, description="applied increments that no client attempted")
    read_violations: int = Field(0, ge=0, description="reads outside their possible bounds")


class PhaseSLO(_Strict):
    """Limits for one phase of the run; a key left out (null) is not checked."""

    p50_ms: float | None = Field(None, gt=0)
    p95_ms: float | None = Field(None, gt=0)
    p99_ms: float | None = Field(None, gt=0)
    error_rate: float | None = Field(None, ge=0, le=1)
    max_ms: float | None = Field(None, gt=0)
    min_rps: float | None = Field(None, ge=0, description="successful requests per second (goodput)")


class HealthSLO(_Strict):
    """When one 1 s bucket of the load is healthy; a key left out (null) comes from ``slo.baseline``."""

    p99_ms: float | None = Field(None, gt=0, description="nearest-rank p99 of the bucket's raw latency")
    error_rate: float | None = Field(None, ge=0, le=1, description="bad events (not ok, omitted) / events")
    min_rps: float | None = Field(None, ge=0, description="ok requests in the bucket (goodput per second)")


class CompareSLO(_Strict):
    """Baseline versus each recovery phase (Kayenta's judge); a metric left out (null) is not checked."""

    p99_ms: float | None = Field(
        None, ge=1, description="recovered per-second p99 may be this many times the baseline's (1.1)"
    )
    error_rate: float | None = Field(
        None, ge=0, le=1, description="recovered per-second error rate may exceed the baseline's by this much"
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the Mann-Whitney U test")


class ResilienceSLO(_Strict):
    """Recovery of each fault, judged on 1 s buckets of the load (docs/analysis.md#recovery)."""

    stability_window: PositiveDuration = Field(
        10.0, description="recovered once every bucket of this long a stretch is healthy"
    )
    ttr_s: float | None = Field(None, ge=0, description="most seconds from injection to the recovery point")
    max_degradation_rs: float | None = Field(
        None, ge=0, description="most request-seconds lost (seconds of the baseline's median goodput)"
    )
    min_availability: float | None = Field(
        None, ge=0, le=1, description="least ok / (requests + omitted) during each fault window"
    )
    health: HealthSLO = HealthSLO()
    compare: CompareSLO = CompareSLO()


class ScalingSLO(_Strict):
    """How the stack scaled (docs/scaling.md): ``scaling.<key>`` checks; a key left out (null) is not checked.

    Fleet times count from each step up of the load's ``rate`` stages, replacement times from each
    instance a fault killed; each check holds the worst case of the run to its limit.
    """

    stability_window: PositiveDuration = Field(
        10.0, description="the p95 has recovered once every 1 s bucket of this long a stretch is under p95_ms"
    )
    p95_ms: float | None = Field(
        None, gt=0, description="the fleet's p95 target after a load step (default: slo.baseline.p95_ms)"
    )
    reaction_s: float | None = Field(
        None, ge=0, description="most seconds from a load step to the first scale-out"
    )
    in_service_s: float | None = Field(
        None, ge=0, description="most seconds from a load step to every instance of that scale-out in service"
    )
    p95_recovered_s: float | None = Field(
        None,
        ge=0,
        description="most seconds from a load step to the p95 under p95_ms for the stability window",
    )
    replacement_in_service_s: float | None = Field(
        None, ge=0, description="most seconds from an instance killed to its replacement in service"
    )
    replacement_first_2xx_s: float | None = Field(
        None, ge=0, description="most seconds from an instance killed to the first 2xx its replacement served"
    )
    lambda_cold_starts: int | None = Field(None, ge=0, description="most new Lambda environments in the run")
    lambda_cold_start_ms: float | None = Field(
        None, gt=0, description="most p95 latency of the Lambda requests that met a cold start, in any phase"
    )
    lambda_throttle_rate: float | None = Field(
        None, ge=0, le=1, description="most share of Lambda requests throttled (429) in any phase"
    )


class SLO(_Strict):
    """The verdict's thresholds: consistency for the whole run, latency and errors per phase.

    ``fault`` applies to every fault window; ``baseline`` is before the first fault and ``recovery``
    after the last one (the analysis derives the phases from the fault journal). ``availability`` is
    the target of the error budget (SRE workbook), ``resilience`` the limits on each fault's recovery,
    ``scaling`` those on scaling (docs/scaling.md); each is left out of the resolved scenario when not
    given, so older scenarios resolve as before.
    """

    consistency: ConsistencySLO = ConsistencySLO()
    baseline: PhaseSLO | None = None
    fault: PhaseSLO | None = None
    recovery: PhaseSLO | None = None
    availability: float | None = Field(
        None, gt=0, lt=1, description="target share of good events: budget.<phase>.consumed checks"
    )
    resilience: ResilienceSLO | None = None
    scaling: ScalingSLO | None = None

    @model_serializer(mode="wrap")
    def _leave_out_what_was_not_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for key in ("availability", "resilience", "scaling"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class StopCondition(_Strict):
    """A guard that aborts the run's faults: a live metric over a sliding window, or a CloudWatch alarm.

    ``metric`` conditions are computed from the live ledger (every operation of the load); ``alarm``
    conditions are polled on AWS only (the state ``ALARM`` breaches). Exactly one of the two is given.
    """

    metric: Literal["error_rate", "p99_ms"] | None = Field(
        None, description="error_rate: share of failed or indeterminate operations; p99_ms: latency"
    )
    above: float | None = Field(None, ge=0, description="the run aborts when the metric goes above this")
    window: PositiveDuration = Field(5.0, description="the sliding window the metric is computed over")
    min_ops: int = Field(20, ge=1, description="fewer operations than this in the window never breach")
    alarm: str | None = Field(None, min_length=1, description="a CloudWatch alarm name (AWS target only)")

    @model_validator(mode="after")
    def _metric_or_alarm(self) -> StopCondition:
        if (self.metric is None) == (self.alarm is None):
            raise rule_error(
                "StopCondition",
                [
                    (
                        ("metric",),
                        "expected either metric (with above) or alarm, got "
                        + ("both" if self.metric else "neither"),
                        self.metric,
                    )
                ],
            )
        if self.metric is not None and self.above is None:
            raise rule_error(
                "StopCondition", [(("above",), f"expected a threshold for {self.metric}, got nothing", None)]
            )
        return self


class Safety(_Strict):
    """Limits that keep a scenario from doing more harm than it means to (see ``chaos.blast_radius``)."""

    max_share: float = Field(
        0.5, gt=0, le=1, description="most in-service instances of a group one fault may hit, as a share"
    )
    accounts: list[str] | None = Field(None, min_length=1, description="AWS account ids the run may touch")
    regions: list[str] | None = Field(None, min_length=1, description="AWS regions the run may touch")
    stop_conditions: list[StopCondition] = Field([], description="guards that abort the faults on breach")


class Scenario(_Strict):
    """One experiment: the load, the stack, the faults and the SLOs it is judged by."""

    version: Literal[1] = VERSION
    name: str
    description: str = ""
    reads: Literal["strong", "eventual"] = Field(
        "strong", description="whether reads are strongly consistent; stale reads are violations if so"
    )
    seed: int | None = Field(None, description="seeds the random choices of the faults, for reproduction")
    load: Load
    stack: StackConfig = StackConfig()
    faults: list[FaultEntry] = []
    safety: Safety = Safety()
    slo: SLO = SLO()

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"expected 1-64 characters of A-Z, a-z, 0-9, _ and -, got {value!r}")
        return value

    @model_validator(mode="after")
    def _faults_fit_the_run(self) -> Scenario:
        problems: list[tuple[Loc, str, Any]] = []
        end = self.load.duration
        for i, fault in enumerate(self.faults):
            if fault.at >= end:
                problems.append(
                    (
                        ("faults", i, "at"),
                        f"expected a time before the end of the load ({_seconds(end)}), "
                        f"got {_seconds(fault.at)}",
                        fault.at,
                    )
                )
            elif fault.end_s > end + 1e-9:
                key = "duration" if fault.duration is not None else "settle"
                problems.append(
                    (
                        ("faults", i, key),
                        f"expected the fault to end by the end of the load ({_seconds(end)}), got "
                        f"{_seconds(fault.at)} + {_seconds(fault.window_s)} = {_seconds(fault.end_s)}",
                        fault.window_s,
                    )
                )
        for j, later in enumerate(self.faults):
            for i, earlier in enumerate(self.faults[:j]):
                spec = get_action(later.action)
                if later.action != earlier.action:
                    continue
                if later.at < earlier.end_s and earlier.at < later.end_s:
                    problems.append(
                        (
                            ("faults", j, "at"),
                            f"expected no overlap with faults[{i}] ({earlier.action} on {spec.target_kind}, "
                            f"{_seconds(earlier.at)}-{_seconds(earlier.end_s)}), got "
                            f"{_seconds(later.at)}-{_seconds(later.end_s)}",
                            later.at,
                        )
                    )
        if problems:
            raise rule_error("Scenario", problems)
        return self

    def resolved(self) -> dict[str, Any]:
        """The scenario as plain data, durations in seconds, every default filled in.

        It is what the runner dumps into the run directory (``runformat.SCENARIO``): the analysis reads
        ``reads`` and ``slo`` from it, and ``load_scenario`` reads it back to the same scenario, so a
        run directory is enough to repeat the run. Faults keep their parameters inline, as in the file.
        """
        return {
            "version": self.version,
            "name": self.name,
            "description": self.description,
            "reads": self.reads,
            "seed": self.seed,
            "load": self.load.model_dump(mode="python", by_alias=True),
            "stack": self.stack.model_dump(mode="python", by_alias=True),
            "faults": [_resolved_fault(fault) for fault in self.faults],
            "safety": self.safety.model_dump(mode="python"),
            "slo": self.slo.model_dump(mode="python", by_alias=True),
        }


def _resolved_fault(fault: Fault) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": fault.at, "action": fault.action}
    if get_action(fault.action).takes_duration:
        entry["duration"] = fault.duration
    else:
        entry["settle"] = fault.settle
    entry.update(fault.params())
    return entry


# --- reading a file ---------------------------------------------------------------------------------


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate the scenario file at ``path``; ``ScenarioError`` lists every problem in it."""
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(
            [f"{file}:1: {ROOT_LABEL}: expected an existing file, got no such file"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ScenarioError(
            [f"{file}:1: {ROOT_LABEL}: expected a readable UTF-8 file, got {reason}"]
        ) from None
    return parse_scenario(text, file)


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    """Validate scenario ``text``; ``file`` is only used to name the source in problem lines."""
    doc = parse_yaml(text, file)
    if doc.data is None:
        raise ScenarioError(
            [f"{file}:1: {ROOT_LABEL}: expected a mapping of scenario keys, got an empty file"]
        )
    if not isinstance(doc.data, dict):
        line = doc.root.start_mark.line + 1 if doc.root is not None else 1
        raise ScenarioError(
            [f"{file}:{line}: {ROOT_LABEL}: expected a mapping of scenario keys, got {show_value(doc.data)}"]
        )
    duplicates = list(duplicate_keys(doc.root, ()))
    try:
        scenario = Scenario.model_validate(doc.data, strict=True)
    except ValidationError as exc:
        keys_at = functools.partial(_keys_at, doc.data)
        problems = [(line_of(doc.root, e["loc"]), describe(e, doc.data, keys_at)) for e in exc.errors()]
        lines = in_line_order(duplicates + problems)
        raise ScenarioError([f"{file}:{line}: {message}" for line, message in lines]) from None
    if duplicates:
        raise ScenarioError([f"{file}:{line}: {message}" for line, message in in_line_order(duplicates)])
    return scenario


# --- which keys a mapping of the file accepts, for "unknown key" problems ---------------------------


def _keys_at(data: Any, loc: Loc) -> list[str]:
    """The keys the mapping at ``loc`` accepts: the scheduler's fault keys before an action's own."""
    model = _model_at(data, loc)
    if model is None:
        return []
    keys = [(info.alias or name) for name, info in model.model_fields.items()]
    if issubclass(model, Fault):
        keys.sort(key=lambda key: key not in Fault.model_fields)
    return keys


def _model_at(data: Any, loc: Loc) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` (to list the keys it accepts), if any."""
    annotation: Any = Scenario
    for depth, segment in enumerate(loc):
        annotation = _unwrap(annotation)
        if annotation is Fault:
            annotation = _fault_class(value_at(data, loc[:depth]))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {(info.alias or name): info for name, info in annotation.model_fields.items()}
            if segment not in fields:
                return None
            annotation = fields[segment].annotation
        elif typing.get_origin(annotation) is list and isinstance(segment, int):
            annotation = typing.get_args(annotation)[0]
        else:
            return None
    annotation = _unwrap(annotation)
    if annotation is Fault:
        annotation = _fault_class(value_at(data, loc))
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _fault_class(entry: Any) -> type[Fault]:
    action = entry.get("action") if isinstance(entry, dict) else None
    return fault_model(action) if isinstance(action, str) and action in ACTIONS else Fault


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the type that validates a mapping."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
