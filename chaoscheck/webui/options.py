"""The start form's chaoscheck fields, and the run they describe, checked before a test starts.

Locust builds its option parser, and the web UI's start form from the same parser, by calling every
``init_command_line_parser`` listener. ``add_own_options`` declares this package's options
(``--target``, ``--stack-state``, ``--runs-dir``). The load plugin declares the ones it reads
(``--scenario``, ``--fleet-url``, ``--lambda-url``, ``--run-dir``, ``--counter``), and
``show_plugin_options``, called after it, decides which of those the form shows: the scenario and the
URLs, not the run directory and the counter, which the run session chooses in a web UI run.

``RunChoice`` is what the form (or the command line) asked for; ``load`` and ``make_target`` turn it
into the scenario and the target of a ``RunSession``, with one-line ``UserError``s for the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chaos.scenario import Scenario, ScenarioError, load_scenario
from chaoscheck.errors import UserError
from chaoscheck.targets.base import Target
from chaoscheck.targets.http import HttpTarget
from chaoscheck.targets.local import LocalTarget
from counter.local.client import ControlError, StackError

TARGETS = ("local", "http")
DEFAULT_STACK_STATE = ".chaoscheck/stack.json"
DEFAULT_RUNS_DIR = "runs"
DEFAULT_SCENARIO = "webui"
"""Name of the scenario of a test started without ``--scenario``: the default load, no faults."""
UNTIL_STOPPED_S = 3600.0
"""``load.duration`` written for the built-in scenario when the test has no run time."""

SHOWN = ("scenario", "fleet_url", "lambda_url")
"""Options of the load plugin that the start form shows."""
HIDDEN = ("run_dir", "counter")
"""Options of the load plugin that a web UI run sets itself, so the form does not offer them."""
FORM_FIELDS = ("scenario", "target", "stack_state", "fleet_url", "lambda_url")


def add_own_options(parser: Any) -> None:
    """``--target``, ``--stack-state`` (in the start form) and ``--runs-dir`` (command line only)."""
    parser.add_argument(
        "--target", choices=TARGETS, default="local", include_in_web_ui=True,
        help="local: the stack started by 'chaoscheck stack up' (found through --stack-state); "
        "http: the URLs given",
    )  # fmt: skip
    parser.add_argument(
        "--stack-state", default=DEFAULT_STACK_STATE, include_in_web_ui=True,
        help="state file of the local stack ('chaoscheck stack up --state-file')",
    )  # fmt: skip
    parser.add_argument(
        "--runs-dir", default=DEFAULT_RUNS_DIR, include_in_web_ui=False,
        help="parent of the run directories of the web UI's tests (default runs)",
    )  # fmt: skip


def show_plugin_options(parser: Any) -> None:
    """Show the load plugin's scenario and URL fields in the start form; hide run dir and counter."""
    for action in parser._actions:  # argparse keeps no public list of declared options
        if action.dest in SHOWN:
            action.include_in_web_ui = True
            for flag in ("is_secret", "is_required", "is_multiple"):
                if not hasattr(action, flag):
                    setattr(action, flag, False)
        elif action.dest in HIDDEN:
            action.include_in_web_ui = False


@dataclass(frozen=True)
class RunChoice:
    """What a test is asked to run: a scenario file (or none) against a target."""

    scenario: str = ""
    target: str = "local"
    stack_state: str = DEFAULT_STACK_STATE
    fleet_url: str = ""
    lambda_url: str = ""
    runs_dir: str = DEFAULT_RUNS_DIR

    @classmethod
    def from_options(cls, options: Any, form: Mapping[str, str] | None = None) -> RunChoice:
        """The choice in Locust's parsed options, with the start form's fields over them if given."""
        values = {f.name: str(getattr(options, f.name, "") or "").strip() for f in fields(cls)}
        for name in FORM_FIELDS:
            if form is not None and name in form:
                values[name] = str(form[name]).strip()
        defaults = cls()
        for name in ("target", "stack_state", "runs_dir"):
            values[name] = values[name] or getattr(defaults, name)
        return cls(**values)

    # the scenario ------------------------------------------------------------------------------------

    def load(
        self, users: int | None = None, spawn_rate: float | None = None, run_time: float | None = None
    ) -> Scenario:
        """The run's scenario: the file's (or the built-in one), with the load the test was started with.

        The users, spawn rate and run time of the form replace the scenario's, so that the run
        directory's ``scenario.yaml`` says what ran; a run time shorter than the scenario's faults
        leaves the scenario's duration.
        """
        if self.scenario:
            try:
                scenario = load_scenario(self.scenario)
            except ScenarioError as exc:
                more = len(exc.problems) - 1
                raise UserError(exc.problems[0] + (f" (and {more} more)" if more > 0 else "")) from None
        else:
            scenario = Scenario.model_validate(
                {
                    "name": DEFAULT_SCENARIO,
                    "description": "a test started from the Locust web UI; faults only by hand",
                    "load": {"users": 1, "duration": UNTIL_STOPPED_S},
                }
            )
        return _with_load(scenario, users, spawn_rate, run_time, keep_duration=bool(self.scenario))

    # the target --------------------------------------------------------------------------------------

    def make_target(self, scenario: Scenario) -> Target:
        """The target asked for, not started yet. ``UserError`` when it cannot be used as asked."""
        if self.target == "local":
            return LocalTarget.attached(
                Path(self.stack_state), seed=scenario.seed, max_share=scenario.safety.max_share
            )
        if self.target == "http":
            urls = {"fleet": self.fleet_url, "lambda": self.lambda_url}
            return HttpTarget({tier: url for tier, url in urls.items() if url})
        raise UserError(f"--target: expected one of {', '.join(TARGETS)}, got {self.target!r}")

    def check(self) -> dict[str, str]:
        """Everything a test start needs, tried now: the scenario, the target, a URL for every tier the
        load uses, faults only on a target with chaos. Returns those tiers' URLs."""
        scenario = self.load()
        target = self.make_target(scenario)
        start_target(target, self)
        try:
            return self.endpoints_used(scenario, target)
        finally:
            target.stop()

    def endpoints_used(self, scenario: Scenario, target: Target) -> dict[str, str]:
        """The started target's URLs of the tiers the scenario's load uses; ``UserError`` if one is
        missing (the load plugin needs one for each), or if the scenario has faults and the target no
        chaos backend."""
        if scenario.faults and not target.has_chaos:
            raise UserError(
                f"{self.scenario}: faults: target {target.name!r} has no chaos backend; "
                "remove the faults or use --target local"
            )
        weights = scenario.load.endpoints
        used = [tier for tier in ("fleet", "lambda") if weights.get(tier, 0) > 0]
        endpoints = target.endpoints()
        missing = [tier for tier in used if tier not in endpoints]
        if missing:
            raise UserError(
                f"--target {self.target}: the scenario's load uses {' and '.join(used)}; give "
                f"--{missing[0]}-url too, or set load.endpoints.{missing[0]} to 0 in the scenario"
            )
        return {tier: endpoints[tier] for tier in used}


def start_target(target: Target, choice: RunChoice) -> None:
    """Start (attach to) the target, a one-line ``UserError`` when it is not there."""
    try:
        target.start()
        if isinstance(target, LocalTarget) and target.stack is not None:
            target.stack.control.state()  # reachable and answering, not just described
    except (StackError, ControlError, OSError, KeyError) as exc:
        raise UserError(
            f"--stack-state {choice.stack_state}: no local stack answers ({_first_line(exc)}); "
            "start one with 'chaoscheck stack up'"
        ) from None


def _with_load(
    scenario: Scenario,
    users: int | None,
    spawn_rate: float | None,
    run_time: float | None,
    keep_duration: bool,
) -> Scenario:
    data = scenario.resolved()
    load = data["load"]
    if users is not None and users >= 1:
        load["users"] = int(users)
        if spawn_rate is None:
            load["spawn_rate"] = float(users)
    if spawn_rate is not None and spawn_rate > 0:
        load["spawn_rate"] = float(spawn_rate)
    tries = [dict(load, duration=float(run_time))] if run_time else []
    if not (keep_duration or run_time):
        tries.append(dict(load, duration=UNTIL_STOPPED_S))
    for attempt in [*tries, load]:
        try:
            return Scenario.model_validate({**data, "load": attempt}, strict=True)
        except ValidationError:
            continue
    return scenario


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
