"""Stop conditions: the guards that abort a run's faults when the target hurts more than it may.

As in AWS FIS, a scenario lists conditions (``safety.stop_conditions``); the first one that breaches
stops the experiment: the faults are rolled back, the load stops, and the journal and the summary say
the run was halted and why. Two kinds:

- a metric over a sliding window, from the live window every load process keeps
  (``loadtests.live``): ``error_rate`` (operations not ok, omitted ones included, over all) or
  ``p99_ms`` (from the live histogram, which errs high by at most 2 %). A window with fewer than
  ``min_ops`` operations never breaches, so a quiet second cannot trip the guard;
- a CloudWatch alarm in state ``ALARM`` (AWS target only; polled every few seconds, which is finer
  than any alarm's own evaluation period).

``evaluate`` is a pure function of the merged seconds and the clock; ``StopMonitor`` is the thread
that polls the files and calls back once, on the first breach.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos.scenario import StopCondition
from chaoscheck.runformat import bucket_upper_ms

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2
ALARM_INTERVAL_S = 5.0

Seconds = dict[int, tuple[int, int, dict[int, int]]]
"""Second -> (operations, bad operations, latency histogram bucket -> count), all processes merged."""


@dataclass(frozen=True)
class Breach:
    """The condition that tripped, what it measured, and one line for the journal and the summary."""

    condition: StopCondition
    measured: float | str
    operations: int
    reason: str
    detected_ns: int


def read_live(live_dir: Path) -> Seconds:
    """Merge every load process's ``live/*.json``; a file being replaced right now is skipped."""
    merged: dict[int, list] = {}
    for path in sorted(live_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            seconds = data["seconds"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for key, (ops, bad, hist) in seconds.items():
            slot = merged.setdefault(int(key), [0, 0, {}])
            slot[0] += int(ops)
            slot[1] += int(bad)
            for bucket, count in hist.items():
                slot[2][int(bucket)] = slot[2].get(int(bucket), 0) + int(count)
    return {second: (ops, bad, hist) for second, (ops, bad, hist) in merged.items()}


def evaluate(conditions: Sequence[StopCondition], seconds: Seconds, now_ns: int) -> Breach | None:
    """The first metric condition breached by the window ending now, or None."""
    now_s = now_ns / 1e9
    for condition in conditions:
        if condition.metric is None or condition.above is None:
            continue
        first = math.floor(now_s - condition.window) + 1
        window = [seconds[s] for s in range(first, math.floor(now_s) + 1) if s in seconds]
        ops = sum(w[0] for w in window)
        if ops < condition.min_ops:
            continue
        if condition.metric == "error_rate":
            measured = sum(w[1] for w in window) / ops
            shown = f"{measured:.3f}"
        else:
            hist: dict[int, int] = {}
            for _, _, h in window:
                for bucket, count in h.items():
                    hist[bucket] = hist.get(bucket, 0) + count
            measured = _p99(hist)
            if measured is None:
                continue
            shown = f"{measured:.1f} ms"
        if measured > condition.above:
            reason = (
                f"stop condition: {condition.metric} {shown} > {condition.above:g} "
                f"over the last {condition.window:g} s ({ops} operations)"
            )
            return Breach(condition, measured, ops, reason, now_ns)
    return None


def _p99(hist: dict[int, int]) -> float | None:
    total = sum(hist.values())
    if total == 0:
        return None
    rank = math.ceil(0.99 * total)
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return bucket_upper_ms(bucket)
    return None  # unreachable: the ranks add up to total


class StopMonitor:
    """Polls the live window (and alarms) until ``stop`` or the first breach, then calls ``on_breach``.

    ``alarm_state`` maps an alarm name to its state (``OK`` | ``ALARM`` | ``INSUFFICIENT_DATA``); without
    it, alarm conditions are not watched (the local target has none, and the scenario loader says so).
    """

    def __init__(
        self,
        conditions: Sequence[StopCondition],
        live_dir: Path,
        on_breach: Callable[[Breach], None],
        *,
        alarm_state: Callable[[str], str] | None = None,
        interval_s: float = POLL_INTERVAL_S,
        alarm_interval_s: float = ALARM_INTERVAL_S,
    ) -> None:
        self.conditions = list(conditions)
        self.live_dir = live_dir
        self.on_breach = on_breach
        self.alarm_state = alarm_state
        self.interval_s = interval_s
        self.alarm_interval_s = alarm_interval_s
        self.breach: Breach | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stop-conditions", daemon=True)

    @property
    def watching(self) -> bool:
        return any(c.metric for c in self.conditions) or (
            self.alarm_state is not None and any(c.alarm for c in self.conditions)
        )

    def start(self) -> None:
        if self.watching:
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        next_alarm_check = 0.0
        while not self._stopped.wait(self.interval_s):
            try:
                breach = evaluate(self.conditions, read_live(self.live_dir), time.time_ns())
                if breach is None and self.alarm_state is not None and time.monotonic() >= next_alarm_check:
                    next_alarm_check = time.monotonic() + self.alarm_interval_s
                    breach = self._alarm_breach()
            except Exception as exc:  # a guard that crashes must say so, not fall silent
                log.error("stop conditions: %s: %s", type(exc).__name__, exc)
                continue
            if breach is not None:
                self.breach = breach
                log.warning("%s: halting the run", breach.reason)
                self.on_breach(breach)
                return

    def _alarm_breach(self) -> Breach | None:
        assert self.alarm_state is not None
        for condition in self.conditions:
            if condition.alarm is None:
                continue
            state = self.alarm_state(condition.alarm)
            if state == "ALARM":
                reason = f"stop condition: CloudWatch alarm {condition.alarm} is in state ALARM"
                return Breach(condition, state, 0, reason, time.time_ns())
        return None
