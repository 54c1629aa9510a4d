"""A user's mistake gets one line on stderr, exit status 2, no traceback, and nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def chaoscheck(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoscheck", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_validate_accepts_the_shipped_scenarios() -> None:
    done = chaoscheck("validate", *(str(p) for p in sorted((ROOT / "scenarios").glob("*.yaml"))))
    assert done.returncode == 0, done.stderr
    assert "smoke.yaml: ok" in done.stdout


def test_validate_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nload: {users: 5, duration: 10s}\nfaults:\n  - {at: soon, action: terminate-instance}\n"
    )
    done = chaoscheck("validate", str(bad))
    assert_one_line_error(done, f"{bad}:4", "faults[0].at", "duration")


@pytest.mark.parametrize("command", ["run", "validate"])
def test_missing_scenario_file(tmp_path: Path, command: str) -> None:
    done = chaoscheck(command, str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert_one_line_error(done, "nope.yaml")
    assert not (tmp_path / "runs").exists()


def test_run_with_a_broken_scenario_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nload: {users: -1, duration: 10s}\n")
    done = chaoscheck("run", str(bad), cwd=tmp_path)
    assert_one_line_error(done, "load.users")
    assert not (tmp_path / "runs").exists()


def test_run_refuses_a_target_it_does_not_have(tmp_path: Path) -> None:
    done = chaoscheck("run", str(ROOT / "scenarios" / "smoke.yaml"), "--target", "aws", cwd=tmp_path)
    assert_one_line_error(done, "--target")


def test_run_refuses_a_non_empty_out_dir(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    done = chaoscheck("run", str(ROOT / "scenarios" / "smoke.yaml"), "--out", str(out))
    assert_one_line_error(done, "not empty")
    assert (out / "keep.txt").read_text() == "mine"


def test_analyze_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    done = chaoscheck("analyze", str(tmp_path))
    assert_one_line_error(done)
    assert not (tmp_path / "summary.json").exists()


def test_analyze_a_path_that_does_not_exist(tmp_path: Path) -> None:
    assert_one_line_error(chaoscheck("analyze", str(tmp_path / "missing")), "missing")
