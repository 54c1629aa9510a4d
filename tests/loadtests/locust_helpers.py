"""Run the chaoscheck locustfile headless against a real stack, bounded in time (loopback only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from chaoscheck.locust_process import LOCUSTFILE


def run_locust(
    run_dir: Path, scenario: Path, urls: dict[str, str], *extra: str, run_time: str = "4s", users: int = 6
) -> tuple[subprocess.CompletedProcess[str], int]:
    """One headless run; returns the finished process and the number of requests Locust counted."""
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--users", str(users), "--spawn-rate", str(users), "--run-time", run_time, "--stop-timeout", "8",
        "--scenario", str(scenario), "--run-dir", str(run_dir), "--json-file", str(run_dir.parent / "stats"),
        "--only-summary", *extra,
    ]  # fmt: skip
    for tier, url in urls.items():
        cmd += [f"--{tier}-url", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    try:
        stats = json.loads((run_dir.parent / "stats.json").read_text())
        counted = sum(entry["num_requests"] for entry in stats)
    except (OSError, ValueError) as exc:
        raise AssertionError(f"Locust printed no JSON stats: {done.stderr[-3000:]}") from exc
    return done, counted
