"""``chaoscheck fis-export``: the template on stdout or in a file, the unmapped faults on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/chaoscheck-fis"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaoscheck", "fis-export", *args], capture_output=True, text=True, timeout=60
    )


def test_the_smoke_scenario_exports_its_kill_and_names_the_throttle_it_cannot(tmp_path: Path) -> None:
    done = _run(str(ROOT / "scenarios" / "smoke.yaml"), "--role-arn", ROLE)
    assert done.returncode == 0, done.stderr
    template = json.loads(done.stdout)
    assert template["roleArn"] == ROLE
    action_ids = sorted(a["actionId"] for a in template["actions"].values())
    assert action_ids == ["aws:ec2:terminate-instances", "aws:fis:wait"]
    assert "faults[1] throttle-lambda" in done.stderr and "not exported" in done.stderr

    out = tmp_path / "template.json"
    done = _run(str(ROOT / "scenarios" / "smoke.yaml"), "--role-arn", ROLE, "--out", str(out))
    assert done.returncode == 0 and done.stdout == "" and json.loads(out.read_text()) == template


def test_nothing_to_export_exits_1_and_a_bad_alarm_option_is_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: s\nload: {users: 1, duration: 20s}\n"
        "faults:\n  - {at: 1s, action: throttle-lambda, reserved_concurrency: 0, duration: 2s}\n"
    )
    done = _run(str(scenario), "--role-arn", ROLE)
    assert done.returncode == 1 and "not exported" in done.stderr
    done = _run(str(scenario), "--role-arn", ROLE, "--alarm", "no-arn")
    assert done.returncode == 2 and "--alarm: expected NAME=ARN, got 'no-arn'" in done.stderr
    assert "Traceback" not in done.stderr
