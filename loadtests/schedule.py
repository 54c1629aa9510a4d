"""When operations are due: the open model's schedule, and a paced user's.

Locust users are closed-loop: when the target stalls they send less, and the stall vanishes from
the percentiles (coordinated omission). Here operations are scheduled independently of the answers:
``DueTimes`` turns a rate (operations per second, in stages, possibly ramped) into the instants at
which the k-th operation is due, and ``Schedule`` hands them to whichever user is free. A user that
takes an operation sends it at its due time, or at once if it is late; an operation later than
``max_lag`` is not sent but recorded as omitted, so the analysis counts it as a bad event and
measures latency from the due time (``intended_ns``), as wrk2 does.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """``rate`` operations per second for ``duration`` seconds, ramping linearly to ``to`` if given."""

    duration: float | None
    rate: float
    to: float | None = None


class DueTimes:
    """Due instants (seconds from the start) of a stream whose rate follows the stages.

    The k-th operation is due when the integral of ``share * rate`` reaches k + phase (the phase, in
    [0, 1), keeps several processes sharing one rate from firing in lockstep). After the last stage
    its final rate holds; a final rate of 0 ends the stream.
    """

    def __init__(
        self, stages: list[Stage], share: float | Callable[[], float] = 1.0, phase: float | None = None
    ) -> None:
        """``share`` may be a function, asked once at the first due time: a Locust worker learns how
        many of the users it runs only after the test has started."""
        if not stages:
            raise ValueError("expected at least one stage")
        self._stages = stages
        self._share_source = share
        self._share = share if isinstance(share, float | int) else 1.0
        self._index = 0
        self._stage_start = 0.0
        self._t = 0.0
        self._need = random.random() if phase is None else phase

    def _current(self) -> tuple[float, float, float]:
        """(start rate, slope per second, end) of the stage in force, all scaled by the share."""
        if self._index < len(self._stages):
            stage = self._stages[self._index]
            if stage.duration is not None:
                end = self._stage_start + stage.duration
                slope = ((stage.to if stage.to is not None else stage.rate) - stage.rate) / stage.duration
                return stage.rate * self._share, slope * self._share, end
            return stage.rate * self._share, 0.0, math.inf
        last = self._stages[-1]
        final = last.to if (last.to is not None and last.duration is not None) else last.rate
        return final * self._share, 0.0, math.inf

    def next(self) -> float | None:
        """Seconds from the start at which the next operation is due; None when the rate is 0 for good."""
        if callable(self._share_source):
            self._share = float(self._share_source())
            self._share_source = self._share
        need = self._need if self._need > 0 else 1.0
        while True:
            rate, slope, end = self._current()
            u = self._t - self._stage_start
            length = end - self._stage_start
            if math.isinf(end):
                if rate <= 0:
                    return None
                self._t += need / rate
                self._need = 1.0
                return self._t
            available = rate * (length - u) + slope / 2 * (length * length - u * u)
            if available > 0 and available + 1e-9 >= need:
                target = rate * u + slope / 2 * u * u + need
                if abs(slope) < 1e-12:
                    x = target / rate
                else:
                    x = (-rate + math.sqrt(max(0.0, rate * rate + 2 * slope * target))) / slope
                self._t = self._stage_start + min(max(x, u), length)
                self._need = 1.0
                return self._t
            need -= max(0.0, available)
            self._t = end
            self._stage_start = end
            self._index += 1


class Schedule:
    """Due times in epoch nanoseconds, handed out one at a time to whichever user asks first."""

    def __init__(self, due: DueTimes, start_ns: int, max_lag_s: float) -> None:
        self._due = due
        self.start_ns = start_ns
        self.max_lag_ns = int(max_lag_s * 1e9)

    def claim(self) -> int | None:
        """The next due instant (epoch ns), or None when nothing more will ever be due."""
        seconds = self._due.next()
        return None if seconds is None else self.start_ns + int(seconds * 1e9)


def stages_from(raw: list[dict] | float | int | None) -> list[Stage] | None:
    """Stages from a scenario's ``load.rate`` (a number, or a list of ``{duration, rate, to}``)."""
    from counter.local.config import parse_duration

    if raw is None:
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return [Stage(None, float(raw))]
    stages = []
    for entry in raw:
        duration = entry.get("duration")
        stages.append(
            Stage(
                None if duration is None else parse_duration(duration),
                float(entry["rate"]),
                None if entry.get("to") is None else float(entry["to"]),
            )
        )
    return stages
