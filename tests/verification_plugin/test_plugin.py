"""chaoscheck's pytest plugin: options, markers, one test per scenario, failed checks named, run attached."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from plugin_project import ROOT, run_pytest

from chaoscheck.pytest_plugin import TargetChoice, failed_checks_message


def collected(done) -> list[str]:
    return [line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line]


def test_options_and_markers_are_registered(project: Path) -> None:
    done = run_pytest(project, "--help")
    assert done.returncode == 0, done.stderr
    options = ("--target={local,http,aws}", "--scenario=NAME_OR_FILE", "--runs-dir=DIR", "--fleet-url=URL",
               "--lambda-url=URL", "--stack=NAME", "--region=REGION", "--aws-profile=PROFILE",
               "--allow-untagged", "chaoscheck_scenarios")  # fmt: skip
    for option in options:
        assert option in done.stdout, option
    markers = run_pytest(project, "--markers").stdout
    assert "@pytest.mark.verification:" in markers and "@pytest.mark.slow:" in markers


def test_one_test_per_scenario_file_marked_verification_and_slow_when_long(project: Path) -> None:
    everything = run_pytest(project, "--co", "-q", "--strict-markers")
    assert everything.returncode == 0, everything.stdout + everything.stderr
    assert collected(everything) == ["test_scenario[faulty]", "test_scenario[long]", "test_scenario[quick]"]
    fast = run_pytest(project, "--co", "-q", "-m", "not slow")
    assert collected(fast) == ["test_scenario[faulty]", "test_scenario[quick]"]
    verification = run_pytest(project, "--co", "-q", "-m", "verification")
    assert len(collected(verification)) == 3
    chosen = run_pytest(project, "--co", "-q", "--scenario", "quick", "--scenario", "scenarios/long.yaml")
    assert collected(chosen) == ["test_scenario[quick]", "test_scenario[long]"]
    unknown = run_pytest(project, "--co", "-q", "--scenario", "nope")
    assert unknown.returncode == 4 and "--scenario nope: no such file" in unknown.stderr


def test_failed_checks_are_named_with_their_figures_and_the_run_is_attached(project: Path) -> None:
    done = run_pytest(project, "-rA", "--junitxml=out.xml", "--runs-dir=kept")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"2 passed, 1 failed|1 failed, 2 passed", done.stdout)
    assert "long: 2 of 3 checks failed" in done.stdout
    assert (
        "baseline.p95_ms [baseline]: measured 212.4, threshold <= 150; slower than <b>usual</b>"
        in done.stdout
    )
    assert "consistency.lost: measured 3, threshold <= 0" in done.stdout
    assert "Traceback" not in done.stdout  # pytest.fail without the plugin's frames
    # the report section and the terminal summary name the report of every run
    assert "Captured chaoscheck run" in done.stdout
    summary = done.stdout.split("chaoscheck runs", 1)[1]
    runs = sorted(p.name for p in (project / "kept").iterdir())
    assert len(runs) == 3 and all(re.fullmatch(r"\d{8}T\d{6}Z-(quick|long|faulty)(-\d+)?", r) for r in runs)
    for run in runs:
        assert str(project / "kept" / run / "report.html") in summary
        assert str(project / "kept" / run / "junit.xml") in summary
        assert (project / "kept" / run / "junit.xml").is_file()
    assert re.search(r"FAIL\s+long: ", summary) and re.search(r"PASS\s+quick: ", summary)
    # pytest's own junit carries the run's files as properties of each test case
    cases = ET.parse(project / "out.xml").getroot().findall(".//testcase")
    assert len(cases) == 3
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert set(props) >= {
            "chaoscheck_run_dir",
            "chaoscheck_report",
            "chaoscheck_junit",
            "chaoscheck_verdict",
        }
        assert Path(props["chaoscheck_report"]).name == "report.html"
        assert Path(props["chaoscheck_junit"]).is_file()
    assert "record_property is incompatible" not in done.stdout


def test_http_target_skips_scenarios_with_faults_and_runs_the_rest(project: Path) -> None:
    done = run_pytest(project, "-rA", "--target", "http", "--fleet-url", "http://127.0.0.1:9", "-s")
    assert "faulty: has faults; target http cannot inject them" in done.stdout
    assert "fake run of quick on http" in done.stdout and "fake run of long on http" in done.stdout
    assert re.search(r"1 failed, 1 passed, 1 skipped", done.stdout), done.stdout


def test_bad_target_options_are_usage_errors(project: Path) -> None:
    choices = {
        TargetChoice("http"): "--target http: expected --fleet-url and/or --lambda-url",
        TargetChoice("aws"): "--target aws: expected --stack NAME",
        TargetChoice(
            stack="prod"
        ): "--stack/--region/--aws-profile/--allow-untagged: only with --target aws, not local",
        TargetChoice(fleet_url="http://x"): "--fleet-url/--lambda-url: only with --target http, not local",
        TargetChoice(
            "aws", stack="prod", fleet_url="http://x"
        ): "--fleet-url/--lambda-url: only with --target http",
    }
    for choice, message in choices.items():
        assert message in (choice.problem() or ""), choice
    assert TargetChoice("aws", stack="prod", region="eu-west-1").problem() is None
    assert TargetChoice("http", lambda_url="http://x").problem() is None
    done = run_pytest(project, "--co", "-q", "--target", "http")
    assert done.returncode == 4 and "ERROR: --target http: expected --fleet-url" in done.stderr, done.stderr


def test_target_choice_builds_the_target_of_a_run(tmp_path: Path) -> None:
    from chaos.scenario import load_scenario

    scenario = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    local = TargetChoice().make(scenario, tmp_path)
    assert local.name == "local" and local.config == scenario.stack and local.seed == scenario.seed
    http = TargetChoice("http", fleet_url="http://127.0.0.1:9/").make(scenario, tmp_path)
    assert http.name == "http" and http.endpoints() == {"fleet": "http://127.0.0.1:9"}
    assert not TargetChoice("http").has_chaos and TargetChoice("aws").has_chaos


def test_failed_checks_message_is_empty_for_a_pass() -> None:
    checks = [{"name": "a", "passed": True, "measured": 1, "threshold": 2, "phase": None, "note": None}]
    assert failed_checks_message({"scenario": "s", "checks": checks}) == ""


# -- the repository: entry point and root conftest -------------------------------------------------


def test_the_entry_point_is_declared_and_installed() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"chaoscheck": "chaoscheck.pytest_plugin"}
    installed = importlib.metadata.entry_points(group="pytest11", name="chaoscheck")
    if not installed:
        pytest.skip("chaoscheck is not installed: only the declaration is checked")
    assert [ep.value for ep in installed] == ["chaoscheck.pytest_plugin"]


@pytest.mark.parametrize("autoload", [True, False], ids=["entry-point", "root-conftest"])
def test_the_repository_loads_the_plugin_once_either_way(autoload: bool) -> None:
    if autoload and not importlib.metadata.entry_points(group="pytest11", name="chaoscheck"):
        pytest.skip("chaoscheck is not installed")
    done = run_pytest(
        ROOT, "--co", "-q", "-p", "no:cacheprovider", "verification/", autoload=autoload, plugin=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))
    assert collected(done) == [f"test_scenario[{name}]" for name in names]
    options = run_pytest(ROOT, "--help", "-p", "no:cacheprovider", autoload=autoload, plugin=False)
    assert options.returncode == 0 and options.stdout.count("--runs-dir=DIR") == 1, options.stderr
