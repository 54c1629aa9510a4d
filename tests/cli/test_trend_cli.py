"""chaoscheck trend RUNS_DIR [--out FILE]: one page over the runs, notes for non-runs, one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "analysis"))  # the run-directory builder (history.py)

from history import applied, final, inc, inject, rollback, write_run  # noqa: E402

from analysis.summary import write_summary  # noqa: E402


def chaoscheck(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoscheck", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def synthetic_run(root: Path, run_id: str, started: str, latency_ms: float) -> Path:
    ops = [inc(f"k{i}", i * 100, i * 100 + latency_ms, value=i + 1) for i in range(100)]
    ops.append(final(10_500, 10_501, 100))
    faults = [inject(0, 4_000, 1.0, action="throttle-lambda", target="fn"), rollback(0, 5_000)]
    run_dir = write_run(
        root / run_id,
        ops,
        server_ops=[applied(f"k{i}", i + 1, i * 100 + 1) for i in range(100)],
        faults=faults,
        slo={"baseline": {"p99_ms": 100}},
        meta={"run_id": run_id, "scenario": "unit", "started_at": started},
    )
    write_summary(run_dir)
    return run_dir


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    for n, latency in enumerate((5, 6, 40), start=1):
        synthetic_run(root, f"r{n}", f"2026-11-0{n}T00:00:00Z", latency)
    (root / "scratch").mkdir()
    return root


def test_writes_the_page_beside_the_runs_and_notes_skipped_directories(runs: Path) -> None:
    done = chaoscheck("trend", str(runs))
    assert done.returncode == 0, done.stderr
    page = runs / "trend.html"
    assert done.stdout.strip() == f"trend: {page} (3 runs of 1 scenarios)"
    assert (
        done.stderr.strip()
        == f"chaoscheck: note: {runs / 'scratch'}: not a run directory (no summary.json, no run.json)"
    )
    html = page.read_text(encoding="utf-8")
    assert all(f"<td>r{n}<span" in html for n in (1, 2, 3)) and "p99 baseline" in html  # no report: no link
    assert "Regressions in the latest runs" in html  # 6 ms -> 40 ms
    # a second trend over the same directory ignores the page it wrote
    assert chaoscheck("trend", str(runs)).returncode == 0


def test_an_unreadable_summary_is_one_error_line_and_the_page_is_still_written(
    runs: Path, tmp_path: Path
) -> None:
    (runs / "r2" / "summary.json").write_text("{\n  truncated")
    out = tmp_path / "out" / "page.html"
    done = chaoscheck("trend", str(runs), "--out", str(out))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("chaoscheck: error:")]
    assert errors == [
        f"chaoscheck: error: {runs / 'r2' / 'summary.json'}: unreadable: not JSON "
        "(Expecting property name enclosed in double quotes: line 2 column 3 (char 4))"
    ]
    assert "Traceback" not in done.stderr
    assert out.is_file() and "(2 runs of 1 scenarios)" in done.stdout


def test_a_missing_runs_dir_is_a_usage_error(tmp_path: Path) -> None:
    done = chaoscheck("trend", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"chaoscheck: error: {tmp_path / 'nope'}: expected a directory of run directories"
    )


def test_an_unwritable_page_is_a_usage_error(runs: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = chaoscheck("trend", str(runs), "--out", str(blocker / "page.html"))
    assert done.returncode == 2 and "cannot write the page" in done.stderr and "Traceback" not in done.stderr


TINY = """\
version: 1
name: tiny-trend
load: {users: 4, spawn_rate: 4, duration: 2s, endpoints: {fleet: 1, lambda: 1}, timeout: 2s}
stack: {fleet: {desired: 1, boot_delay: 0.2s}, lambda: {reserved_concurrency: 4, cold_start: 10ms}}
faults:
  - {at: 0.5s, action: throttle-lambda, reserved_concurrency: 0, duration: 0.5s}
slo:
  consistency: {lost: 0, duplicated: 0}
  resilience: {stability_window: 1s}
"""


@pytest.mark.slow
def test_trend_over_three_real_runs(tmp_path: Path) -> None:
    """Three short runs on the local stack (about 7 s each), then the page over them."""
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    runs = tmp_path / "runs"
    for n in range(3):
        done = chaoscheck("run", str(scenario), "--out", str(runs / f"run-{n}"), timeout=120)
        assert done.returncode in (0, 1), done.stderr
        for name in ("summary.json", "report.html", "junit.xml", "summary.md"):
            assert (runs / f"run-{n}" / name).is_file(), name
    done = chaoscheck("trend", str(runs), "--out", str(tmp_path / "trend.html"))
    assert done.returncode == 0, done.stderr
    assert "(3 runs of 1 scenarios)" in done.stdout and not done.stderr
    html = (tmp_path / "trend.html").read_text(encoding="utf-8")
    for n in range(3):
        assert f'href="runs/run-{n}/report.html"' in html
    assert "TTR fault-1" in html and "availability during faults" in html and "p99 fault-1" in html
    summaries = [json.loads((runs / f"run-{n}" / "summary.json").read_text()) for n in range(3)]
    assert all(s["faults"][0]["recovery"] is not None for s in summaries)
    row = re.search(r'<tr data-metric="ttr.fault-1".*?</tr>', html, re.S)
    assert row is not None and row.group().count("<circle") + row.group().count('class="never"') == 3
