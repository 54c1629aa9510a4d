"""Stop conditions over the live window: the guard trips exactly when the window says it must."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from chaos.scenario import StopCondition, parse_scenario
from chaos.stop_conditions import StopMonitor, evaluate, read_live
from chaoscheck.runformat import bucket_upper_ms, latency_bucket
from loadtests.live import LiveWindow

S = 1_000_000_000
NOW = 1_700_000_100 * S + 300_000_000  # 0.3 s into second ...100


def row(end_s: float, latency_ms: float, outcome: str = "ok", kind: str = "increment") -> tuple:
    end = int(end_s * S)
    start = end - int(latency_ms * 1e6)
    return ("k", kind, "fleet", "c", start, end, 200, outcome, 1, None, None, "w", None, 0, None)


def window_of(rows: list[tuple], tmp_path: Path, name: str = "w1") -> LiveWindow:
    live = LiveWindow(tmp_path / "live" / f"{name}.json", name)
    live.observe(rows)
    live.write(NOW)
    return live


def test_error_rate_over_the_window_breaches_only_above_the_threshold(tmp_path: Path) -> None:
    now_s = NOW // S
    rows = [row(now_s - 1 + i / 100, 5) for i in range(60)]
    rows += [row(now_s + i / 100, 5, "fail") for i in range(30)]
    rows += [row(now_s - 30, 5, "fail") for _ in range(500)]  # long before the window: ignored
    window_of(rows, tmp_path)
    seconds = read_live(tmp_path / "live")
    above = StopCondition(metric="error_rate", above=0.3, window=2.0)
    breach = evaluate([above], seconds, NOW)
    assert breach is not None and breach.operations == 90
    assert breach.measured == pytest.approx(30 / 90)
    assert "error_rate 0.333 > 0.3 over the last 2 s (90 operations)" in breach.reason
    assert evaluate([StopCondition(metric="error_rate", above=0.34, window=2.0)], seconds, NOW) is None


def test_omitted_operations_are_bad_and_a_quiet_window_never_breaches(tmp_path: Path) -> None:
    now_s = NOW // S
    rows = [row(now_s, 0, "fail", kind="omitted") for _ in range(10)]
    window_of(rows, tmp_path)
    seconds = read_live(tmp_path / "live")
    condition = StopCondition(metric="error_rate", above=0.5, window=1.0, min_ops=11)
    assert evaluate([condition], seconds, NOW) is None  # 10 operations < min_ops
    condition = StopCondition(metric="error_rate", above=0.5, window=1.0, min_ops=10)
    assert evaluate([condition], seconds, NOW).measured == 1.0


def test_p99_from_the_merged_histograms_of_every_process(tmp_path: Path) -> None:
    now_s = NOW // S
    window_of([row(now_s, 3.0) for _ in range(98)], tmp_path, "w1")
    window_of([row(now_s, 800.0), row(now_s, 900.0)], tmp_path, "w2")
    seconds = read_live(tmp_path / "live")
    assert seconds[now_s][0] == 100
    breach = evaluate([StopCondition(metric="p99_ms", above=500, window=1.0)], seconds, NOW)
    assert breach is not None and 800.0 <= breach.measured <= 800.0 * 1.02
    assert evaluate([StopCondition(metric="p99_ms", above=900, window=1.0)], seconds, NOW) is None


@pytest.mark.parametrize("ms", [0.0, 0.05, 1.234, 9.99, 10.0, 55.5, 999.0, 30_000.0])
def test_a_latency_lies_below_its_bucket_edge_within_two_percent(ms: float) -> None:
    upper = bucket_upper_ms(latency_bucket(ms))
    assert ms <= upper <= max(ms * 1.0201, ms + 0.1001)


def test_a_torn_or_foreign_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "live").mkdir()
    (tmp_path / "live" / "torn.json").write_text('{"seconds": {"1": [3, ')
    (tmp_path / "live" / "other.json").write_text(json.dumps({"nothing": 1}))
    assert read_live(tmp_path / "live") == {}


def test_the_monitor_calls_back_once_on_the_first_breach(tmp_path: Path) -> None:
    live = LiveWindow(tmp_path / "live" / "w.json", "w")
    calls = []
    monitor = StopMonitor(
        [StopCondition(metric="error_rate", above=0.5, window=2.0, min_ops=5)],
        tmp_path / "live",
        calls.append,
        interval_s=0.05,
    )
    monitor.start()
    try:
        now = time.time()
        live.observe([row(now, 1) for _ in range(10)])
        live.write()
        time.sleep(0.3)
        assert calls == []
        live.observe([row(time.time(), 1, "info") for _ in range(20)])
        live.write()
        deadline = time.monotonic() + 3
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
    finally:
        monitor.stop()
    assert len(calls) == 1 and "error_rate" in calls[0].reason and monitor.breach is calls[0]


def test_alarm_conditions_are_polled_through_the_given_probe(tmp_path: Path) -> None:
    states = iter(["OK", "INSUFFICIENT_DATA", "ALARM"])
    calls = []
    monitor = StopMonitor(
        [StopCondition(alarm="counter-5xx")],
        tmp_path / "live",
        calls.append,
        alarm_state=lambda name: next(states),
        interval_s=0.02,
        alarm_interval_s=0.0,
    )
    monitor.start()
    deadline = time.monotonic() + 3
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    monitor.stop()
    assert calls and calls[0].reason == "stop condition: CloudWatch alarm counter-5xx is in state ALARM"


BASE = "name: s\nload: {users: 2, duration: 10s}\nsafety:\n  stop_conditions:\n"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("    - {metric: error_rate}\n", "above: expected a threshold for error_rate, got nothing"),
        ("    - {window: 5s}\n", "metric: expected either metric (with above) or alarm, got neither"),
        ("    - {metric: p99_ms, above: 100, alarm: a}\n", "expected either metric (with above) or alarm"),
        ("    - {metric: p50_ms, above: 100}\n", "safety.stop_conditions[0].metric"),
        ("    - {metric: error_rate, above: 0.5, window: -1s}\n", "safety.stop_conditions[0].window"),
    ],
)
def test_malformed_stop_conditions_are_one_line_errors(entry: str, message: str, tmp_path: Path) -> None:
    from chaos.scenario import ScenarioError, load_scenario

    path = tmp_path / "s.yaml"
    path.write_text(BASE + entry)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    text = str(caught.value)
    assert message in text and f"{path}:5:" in text and "\n" not in text.strip()


def test_stop_conditions_parse_with_their_defaults() -> None:
    scenario = parse_scenario(BASE + "    - {metric: error_rate, above: 0.5}\n    - {alarm: counter-5xx}\n")
    first, second = scenario.safety.stop_conditions
    assert (first.window, first.min_ops, second.alarm) == (5.0, 20, "counter-5xx")
    assert scenario.safety.max_share == 0.5
