"""What the load side needs to know about a run, read from the scenario's ``load`` section.

The load side reads the scenario file itself (plain YAML, the ``load`` mapping only) rather than the
chaos package's model: ``loadtests`` and ``chaos`` never import each other, and the orchestrator has
already validated the scenario when it starts Locust. A scenario given straight to ``locust -f`` is
checked here just enough to fail with a clear one-line message.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from counter.local.config import parse_duration
from loadtests.schedule import Stage, stages_from

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class LoadSettingsError(ValueError):
    """A one-line description of what is wrong with the load settings."""


@dataclass(frozen=True)
class LoadSettings:
    """The knobs of the counter users."""

    counter: str
    increment_weight: float = 9.0
    read_weight: float = 1.0
    endpoint_weights: dict[str, float] = field(default_factory=lambda: {"fleet": 1.0, "lambda": 1.0})
    timeout: float = 5.0
    rate: list[Stage] | None = None
    """Open model: total operations per second over time (None: closed model)."""
    pacing: float | None = None
    """Closed model with pacing: each user starts one operation per ``pacing`` seconds."""
    max_lag: float = 1.0
    retries: int = 0
    live_window: bool = False
    """Whether the scenario has a stop condition on a metric, which needs ``loadtests.live``."""

    def endpoint_share(self, endpoint: str) -> float:
        """The part of the open model's rate that goes to ``endpoint``, by the endpoint weights."""
        total = sum(w for w in self.endpoint_weights.values() if w > 0)
        return self.endpoint_weights.get(endpoint, 0.0) / total if total else 0.0

    @property
    def increment_share(self) -> float:
        """Probability that one operation is an increment rather than a read."""
        return self.increment_weight / (self.increment_weight + self.read_weight)


def fresh_counter_name(prefix: str) -> str:
    """A counter name nobody used before, so runs never disturb each other."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", prefix)[:40] or "run"
    return f"{stem}-{uuid.uuid4().hex[:12]}"


def settings_from_scenario(path: Path | None, counter: str | None) -> LoadSettings:
    """Read the ``load`` section of a scenario file (raw or resolved); defaults without one."""
    load: dict[str, Any] = {}
    live_window = False
    name = "locust"
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise LoadSettingsError(f"{path}: cannot read the scenario: {_first_line(exc)}") from None
        if not isinstance(data, dict):
            raise LoadSettingsError(f"{path}: expected a mapping at the top level")
        load = data.get("load") or {}
        name = str(data.get("name") or name)
        safety = data.get("safety") or {}
        conditions = safety.get("stop_conditions") if isinstance(safety, dict) else None
        live_window = any(isinstance(c, dict) and c.get("metric") for c in conditions or [])
        if not isinstance(load, dict):
            raise LoadSettingsError(f"{path}: load: expected a mapping")
    if counter is not None and not _NAME.match(counter):
        raise LoadSettingsError(f"--counter: expected 1-64 of [A-Za-z0-9_-], got {counter!r}")
    mix = load.get("mix") or {}
    endpoints = load.get("endpoints") or {"fleet": 1, "lambda": 1}
    try:
        settings = LoadSettings(
            counter=counter or fresh_counter_name(name),
            increment_weight=float(mix.get("increment", 9)),
            read_weight=float(mix.get("read", 1)),
            endpoint_weights={k: float(v) for k, v in endpoints.items()},
            timeout=parse_duration(load.get("timeout", 5.0)),
            rate=stages_from(load.get("rate")),
            pacing=None if load.get("pacing") is None else parse_duration(load["pacing"]),
            max_lag=parse_duration(load.get("max_lag", 1.0)),
            retries=int(load.get("retries", 0)),
            live_window=live_window,
        )
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise LoadSettingsError(f"{path}: load: {_first_line(exc)}") from None
    if settings.increment_weight + settings.read_weight <= 0:
        raise LoadSettingsError(f"{path}: load.mix: expected a positive weight for increment or read")
    return settings


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
