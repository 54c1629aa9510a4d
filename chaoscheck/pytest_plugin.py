"""chaoscheck's pytest plugin: verification jobs that run scenarios end to end and assert their checks.

Registered as ``pytest11: chaoscheck`` in ``pyproject.toml``, so it is active wherever chaoscheck is
installed; the repository's root ``conftest.py`` loads it when it is not. ``docs/verification.md``
is the user's page.

Options (group ``chaoscheck``)::

  --target local|http|aws   what the runs go against (default local: a local stack per run)
  --scenario NAME_OR_FILE   only these scenarios (repeatable): a file, or a name in the scenarios dir
  --runs-dir DIR            keep the run directories there (default: a pytest temporary directory)
  --fleet-url/--lambda-url  with --target http: the deployment's base URLs
  --stack NAME              with --target aws: the CloudFormation stack of counter/template.yaml
  --region, --aws-profile, --allow-untagged   with --target aws, as ``chaoscheck run`` takes them

The ini option ``chaoscheck_scenarios`` names the scenarios directory (default ``scenarios``,
relative to the rootdir).

Fixtures:

* ``chaoscheck_target`` (session): the chosen target, a ``TargetChoice``; ``make(scenario,
  run_dir)`` builds the ``chaoscheck.targets`` object a run goes against.
* ``runs_dir`` (session): where run directories go.
* ``run_scenario``: a function ``run_scenario(path_or_name) -> RunResult`` (``run_dir``,
  ``summary``, ``exit_code``) that runs a scenario as ``chaoscheck run`` does. It attaches the run
  to the test: properties ``chaoscheck_run_dir``, ``chaoscheck_report``, ``chaoscheck_junit``,
  ``chaoscheck_verdict`` (in pytest's ``--junitxml`` too) and a report section ``chaoscheck``; and
  the terminal summary lists every run with its report. A scenario with faults is skipped on a
  target without a chaos backend (http).
* ``scenario_file``: a test that asks for it is parametrized over the scenario files (every
  ``*.yaml`` of the scenarios directory, or ``--scenario``), each marked ``verification`` and, when
  its load lasts ``SLOW_S`` seconds or more, ``slow``.
* ``scenario_run``: the ``RunResult`` of ``scenario_file``; ``summary``: its ``summary.json``.

``assert_checks(summary)`` fails the test with one line per failed check (name, phase, measured,
threshold, note); ``failed_checks_message`` is the text alone.

Markers: ``verification`` (runs a whole scenario against a target), ``slow`` (takes more than a few
seconds).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TARGETS = ("local", "http", "aws")
SLOW_S = 10.0
"""A scenario whose load lasts this long or longer is marked ``slow`` (every shipped one is)."""

_RUNS = pytest.StashKey[list]()


# -- options, markers, terminal summary -------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaoscheck", "chaoscheck verification runs")
    group.addoption(
        "--target",
        default="local",
        choices=TARGETS,
        help="what verification runs go against: local (a local stack per run), http, aws (default local)",
    )
    group.addoption(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME_OR_FILE",
        help="run only this scenario (repeatable): a scenario file, or a name in the scenarios directory",
    )
    group.addoption(
        "--runs-dir",
        default=None,
        metavar="DIR",
        help="keep run directories here (default: a pytest tmp dir)",
    )
    group.addoption("--fleet-url", default=None, metavar="URL", help="with --target http: the fleet's URL")
    group.addoption("--lambda-url", default=None, metavar="URL", help="with --target http: the Lambda's URL")
    group.addoption(
        "--stack", default=None, metavar="NAME", help="with --target aws: the CloudFormation stack"
    )
    group.addoption(
        "--region", default=None, help="with --target aws: the stack's region (default AWS_REGION)"
    )
    group.addoption(
        "--aws-profile", default=None, metavar="PROFILE", help="with --target aws: an AWS profile"
    )
    group.addoption(
        "--allow-untagged",
        action="store_true",
        default=False,
        help="with --target aws: fault resources without the chaoscheck:allowed=true tag",
    )
    parser.addini(
        "chaoscheck_scenarios", "directory of scenario files (relative to the rootdir)", default="scenarios"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "verification: runs a whole scenario against a target and asserts its checks"
    )
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.stash[_RUNS] = []
    choice = TargetChoice.from_config(config)
    problem = choice.problem()
    if problem:
        raise pytest.UsageError(problem)
    for item in config.getoption("--scenario") or []:
        resolve_scenario(config, item)  # a usage error now rather than a collection error later


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    runs = config.stash.get(_RUNS, [])
    if not runs:
        return
    terminalreporter.section("chaoscheck runs")
    for run in runs:
        terminalreporter.write_line(f"{run['verdict'].upper():5} {run['scenario']}: {run['report']}")
        terminalreporter.write_line(f"      junit {run['junit']}")


# -- the target ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetChoice:
    """The target the options chose; ``make`` builds it for one run."""

    name: str = "local"
    fleet_url: str | None = None
    lambda_url: str | None = None
    stack: str | None = None
    region: str | None = None
    profile: str | None = None
    allow_untagged: bool = False

    @classmethod
    def from_config(cls, config: pytest.Config) -> TargetChoice:
        option = config.getoption
        return cls(
            name=option("--target") or "local",
            fleet_url=option("--fleet-url"),
            lambda_url=option("--lambda-url"),
            stack=option("--stack"),
            region=option("--region"),
            profile=option("--aws-profile"),
            allow_untagged=bool(option("--allow-untagged")),
        )

    @property
    def has_chaos(self) -> bool:
        """Whether faults can be injected (a local stack or AWS; not a bare deployment by URL)."""
        return self.name != "http"

    def problem(self) -> str | None:
        """What is wrong with the options, as ``chaoscheck run`` would say it, or None."""
        urls = self.fleet_url or self.lambda_url
        aws = self.stack or self.region or self.profile or self.allow_untagged
        if self.name == "http" and not urls:
            return "--target http: expected --fleet-url and/or --lambda-url"
        if self.name != "http" and urls:
            return f"--fleet-url/--lambda-url: only with --target http, not {self.name}"
        if self.name == "aws" and not self.stack:
            return "--target aws: expected --stack NAME (the CloudFormation stack of counter/template.yaml)"
        if self.name != "aws" and aws:
            return f"--stack/--region/--aws-profile/--allow-untagged: only with --target aws, not {self.name}"
        return None

    def make(self, scenario: Any, run_dir: Path) -> Any:
        """The target object of one run of ``scenario`` into ``run_dir`` (as ``chaoscheck run`` makes it)."""
        from chaoscheck.targets.choose import make_target

        aws = {"stack": self.stack, "region": self.region, "profile": self.profile,
               "allow_untagged": self.allow_untagged}  # fmt: skip
        urls = {"fleet": self.fleet_url, "lambda": self.lambda_url}
        return make_target(self.name, scenario, run_dir, urls=urls, aws=aws)


# -- scenarios ---------------------------------------------------------------------------------------


def scenarios_dir(config: pytest.Config) -> Path:
    return Path(config.rootpath) / str(config.getini("chaoscheck_scenarios"))


def resolve_scenario(config: pytest.Config, name_or_file: str | Path) -> Path:
    """A scenario file from a path, or from a name (``smoke``, ``smoke.yaml``) in the scenarios dir."""
    candidate = Path(name_or_file)
    if candidate.is_file():
        return candidate.resolve()
    directory = scenarios_dir(config)
    for path in (directory / candidate, directory / f"{candidate}.yaml"):
        if path.is_file():
            return path.resolve()
    raise pytest.UsageError(
        f"--scenario {name_or_file}: no such file, and no {candidate}.yaml in {directory}"
    )


def scenario_files(config: pytest.Config) -> list[Path]:
    """The scenarios a run of the suite covers: ``--scenario`` or every ``*.yaml`` of the directory."""
    chosen = config.getoption("--scenario") or []
    if chosen:
        return [resolve_scenario(config, item) for item in chosen]
    return sorted(p.resolve() for p in scenarios_dir(config).glob("*.yaml"))


def _load_seconds(path: Path) -> float | None:
    """The scenario's load duration, or None when the file does not load (its test says why)."""
    try:
        from chaos.scenario import load_scenario

        return float(load_scenario(path).load.duration)
    except Exception:  # an invalid scenario fails in its own test, not at collection
        return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario_file" not in metafunc.fixturenames:
        return
    if any("scenario_file" in m.args[0] for m in metafunc.definition.iter_markers("parametrize") if m.args):
        return  # the test chose its scenarios itself
    params = []
    for path in scenario_files(metafunc.config):
        seconds = _load_seconds(path)
        marks = [pytest.mark.verification]
        if seconds is None or seconds >= SLOW_S:
            marks.append(pytest.mark.slow)
        params.append(pytest.param(path, id=path.stem, marks=marks))
    metafunc.parametrize("scenario_file", params)


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chaoscheck_target(pytestconfig: pytest.Config) -> TargetChoice:
    """The target of the verification runs (``--target`` and its options)."""
    return TargetChoice.from_config(pytestconfig)


@pytest.fixture(scope="session")
def runs_dir(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where run directories go: ``--runs-dir``, or a pytest temporary directory."""
    chosen = pytestconfig.getoption("--runs-dir")
    if chosen:
        path = Path(chosen).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("runs")


@pytest.fixture
def run_scenario(
    request: pytest.FixtureRequest, runs_dir: Path, chaoscheck_target: TargetChoice
) -> Callable[[str | Path], Any]:
    """Run a scenario file (or a name in the scenarios dir) end to end; return its ``RunResult``."""

    def _run(path: str | Path) -> Any:
        from chaos.scenario import ScenarioError, load_scenario
        from chaoscheck.errors import UserError
        from chaoscheck.run import execute, new_run_dir

        path = resolve_scenario(request.config, path)
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            pytest.fail(f"{path}: not a valid scenario:\n{exc}", pytrace=False)
        if scenario.faults and not chaoscheck_target.has_chaos:
            pytest.skip(f"{scenario.name}: has faults; target {chaoscheck_target.name} cannot inject them")
        try:
            run_dir = new_run_dir(scenario.name, None, runs_dir)
            target = chaoscheck_target.make(scenario, run_dir)
        except UserError as exc:
            pytest.fail(f"{scenario.name} on target {chaoscheck_target.name}: {exc}", pytrace=False)
        try:
            result = execute(scenario, path, run_dir, target, log=lambda message: print(message, flush=True))
        except UserError as exc:
            _attach(request, scenario.name, run_dir, None)
            pytest.fail(f"{scenario.name} on target {chaoscheck_target.name}: {exc}", pytrace=False)
        except Exception:
            _attach(request, scenario.name, run_dir, None)  # what the run left is worth a look
            raise
        _attach(request, scenario.name, run_dir, result.summary)
        if result.interrupted is not None:
            pytest.exit(
                f"{scenario.name}: interrupted by signal {result.interrupted}", returncode=result.exit_code
            )
        return result

    return _run


@pytest.fixture
def scenario_file(request: pytest.FixtureRequest) -> Path:
    """The scenario of a parametrized verification test (see ``pytest_generate_tests``)."""
    param = getattr(request, "param", None)
    if param is None:
        files = scenario_files(request.config)
        if len(files) != 1:
            pytest.fail(
                "scenario_file: parametrize the test, or choose one scenario with --scenario", pytrace=False
            )
        return files[0]
    return resolve_scenario(request.config, param)


@pytest.fixture
def scenario_run(run_scenario: Callable[[str | Path], Any], scenario_file: Path) -> Any:
    """The ``RunResult`` of ``scenario_file``, run once for the test."""
    return run_scenario(scenario_file)


@pytest.fixture
def summary(scenario_run: Any) -> dict:
    """``summary.json`` of ``scenario_run``; the test fails when the run produced none."""
    if scenario_run.summary is None:
        pytest.fail(
            f"no summary: the load wrote no ops.parquet; see {scenario_run.run_dir / 'locust.log'}",
            pytrace=False,
        )
    return scenario_run.summary


# -- assertions and attachments ---------------------------------------------------------------------


def failed_checks_message(summary: dict) -> str:
    """One line per failed check, ``NAME [PHASE]: measured M, threshold <= T; note``, under a title."""
    from reports.junit import describe_check, failed_checks

    failed = failed_checks(summary)
    if not failed:
        return ""
    lines = [f"{summary.get('scenario')}: {len(failed)} of {len(summary.get('checks') or [])} checks failed"]
    lines += [f"  {describe_check(check)}" for check in failed]
    return "\n".join(lines)


def assert_checks(summary: dict) -> None:
    """Fail the test, naming every failed check and its figures, unless the verdict is pass."""
    __tracebackhide__ = True
    message = failed_checks_message(summary)
    if summary.get("verdict") != "pass" or message:
        pytest.fail(
            message or f"{summary.get('scenario')}: verdict {summary.get('verdict')!r}", pytrace=False
        )


def _attach(request: pytest.FixtureRequest, scenario: str, run_dir: Path, summary: dict | None) -> None:
    """Properties, a report section and a terminal-summary line for the run (``summary`` None: the
    run ended without one)."""
    from chaoscheck import runformat
    from reports.junit import JUNIT
    from reports.markdown import SUMMARY_MD

    run_dir = Path(run_dir)
    if summary is None:  # the run may have got as far as its summary before it stopped
        try:
            summary = json.loads((run_dir / runformat.SUMMARY).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = None
    verdict = str((summary or {}).get("verdict", "none"))
    files = {
        "chaoscheck_run_dir": run_dir,
        "chaoscheck_report": run_dir / runformat.REPORT,
        "chaoscheck_junit": run_dir / JUNIT,
        "chaoscheck_summary_md": run_dir / SUMMARY_MD,
    }
    node = request.node
    for name, path in files.items():
        node.user_properties.append((name, str(path)))
    node.user_properties.append(("chaoscheck_verdict", verdict))
    text = [f"scenario {scenario}: {verdict}", *(f"{name[11:]}: {path}" for name, path in files.items())]
    if summary:
        message = failed_checks_message(summary)
        if message:
            text.append(message)
    node.add_report_section("run", "chaoscheck", "\n".join(text))  # "Captured chaoscheck run"
    request.config.stash.setdefault(_RUNS, []).append(
        {
            "scenario": scenario,
            "verdict": verdict,
            "report": str(files["chaoscheck_report"]),
            "junit": str(files["chaoscheck_junit"]),
        }
    )
