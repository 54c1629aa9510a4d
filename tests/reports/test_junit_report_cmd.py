"""chaoscheck report RUN_DIR rebuilds summary.json, report.html, junit.xml and summary.md from the files."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from history import applied, final, inc, write_run

from chaoscheck import runformat as rf
from reports.junit import JUNIT
from reports.markdown import SUMMARY_MD

OUTPUTS = (rf.SUMMARY, rf.REPORT, JUNIT, SUMMARY_MD)


def chaoscheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoscheck", *args], capture_output=True, text=True, timeout=120
    )


def make_run(path: Path, *, p95_limit: float) -> Path:
    ops = [inc(f"k{i}", i * 100, i * 100 + 12, value=i + 1) for i in range(50)]
    ops.append(final(5_500, 5_501, 50))
    return write_run(
        path,
        ops,
        server_ops=[applied(f"k{i}", i + 1, i * 100 + 2) for i in range(50)],
        slo={"baseline": {"p95_ms": p95_limit}},
        load_ms=(0, 5_000),
    )


def test_report_rebuilds_every_file_from_the_run_directory(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", p95_limit=5)
    done = chaoscheck("report", str(run_dir))
    assert done.returncode == 1, done.stderr  # the p95 check fails
    assert done.stdout.splitlines() == [
        f"report: {run_dir / rf.REPORT}",
        f"summary: {run_dir / rf.SUMMARY}",
        f"junit: {run_dir / JUNIT}",
        f"markdown: {run_dir / SUMMARY_MD}",
    ]
    first = {name: (run_dir / name).read_bytes() for name in OUTPUTS}
    summary = json.loads(first[rf.SUMMARY])
    suite = ET.fromstring(first[JUNIT]).find("testsuite")
    assert [c.get("name") for c in suite.findall("testcase")] == [c["name"] for c in summary["checks"]]
    assert suite.find("testcase[@name='baseline.p95_ms']/failure") is not None
    assert first[SUMMARY_MD].decode().startswith("## ❌ chaoscheck unit: FAIL")

    for name in OUTPUTS:  # from the run's own files alone, byte for byte the same
        (run_dir / name).unlink()
    assert chaoscheck("report", str(run_dir)).returncode == 1
    for name in (rf.SUMMARY, JUNIT, SUMMARY_MD):
        assert (run_dir / name).read_bytes() == first[name], name
    assert (run_dir / rf.REPORT).is_file()
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]


def test_analyze_writes_them_too_and_a_pass_exits_0(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", p95_limit=500)
    done = chaoscheck("analyze", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert all((run_dir / name).is_file() for name in OUTPUTS)
    assert ET.parse(run_dir / JUNIT).getroot().get("failures") == "0"


def test_a_bad_run_directory_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = chaoscheck("report", str(tmp_path / "empty"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert list((tmp_path / "empty").iterdir()) == []
