"""The ``chaoscheck`` command.

Exit status: 0 every check passed, 1 a check failed, 2 a usage or setup error (one line on stderr,
no traceback), 128+N when signal N stopped a run (faults rolled back, what was recorded is kept).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from chaoscheck import runformat
from chaoscheck.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Load testing and chaos verification for the counter service (local stack or AWS).",
)
stack_app = typer.Typer(no_args_is_help=True, help="Run the local stack by itself (for Locust's web UI).")
app.add_typer(stack_app, name="stack")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _fail(message: str) -> None:
    """Print each problem as its own line and exit 2 (a scenario may have several problems)."""
    for line in message.splitlines() or [""]:
        err.print(f"chaoscheck: error: {line}", markup=False, soft_wrap=True)
    raise typer.Exit(2)


def _load(path: Path) -> Any:
    from chaos.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        _fail(str(exc))


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario file, e.g. scenarios/smoke.yaml")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="run directory (default runs/<time>-<name>)")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="parent of the default run directory")] = Path("runs"),
    target: Annotated[
        str,
        typer.Option(
            help="local: start the local stack; http: the deployment at the URLs; "
            "aws: the CloudFormation stack --stack"
        ),
    ] = "local",
    fleet_url: Annotated[str | None, typer.Option(help="with --target http: the fleet's base URL")] = None,
    lambda_url: Annotated[str | None, typer.Option(help="with --target http: the Lambda's base URL")] = None,
    stack: Annotated[
        str | None, typer.Option(help="with --target aws: the stack of counter/template.yaml")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="with --target aws: the stack's region (default: AWS_REGION)")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="with --target aws: an AWS profile (default: AWS_PROFILE)")
    ] = None,
    allow_untagged: Annotated[
        bool,
        typer.Option(
            "--allow-untagged",
            help="with --target aws: fault resources without the chaoscheck:allowed=true tag",
        ),
    ] = False,
    processes: Annotated[int, typer.Option(min=1, max=64, help="Locust worker processes (--processes)")] = 1,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="resolve and print every fault's target and the timeline; change nothing"
        ),
    ] = False,
) -> None:
    """Run a scenario: load, faults, rollback, analysis, report. Exit 0 when every check passes.

    With --dry-run: exit 0 when every fault could be injected now, 1 when one would be refused.
    """
    from chaoscheck.run import execute, new_run_dir
    from chaoscheck.targets.choose import make_target

    if target not in ("local", "http", "aws"):
        _fail(f"--target: expected 'local', 'http' or 'aws', got {target!r}")
    if target != "http" and (fleet_url or lambda_url):
        _fail(f"--fleet-url/--lambda-url: only with --target http (target {target} has its own)")
    aws = {"stack": stack, "region": region, "profile": profile, "allow_untagged": allow_untagged}
    if target != "aws" and any(aws.values()):
        _fail("--stack/--region/--profile/--allow-untagged: only with --target aws")
    if target == "aws" and not stack:
        _fail("--target aws: expected --stack NAME (the CloudFormation stack of counter/template.yaml)")
    parsed = _load(scenario)
    if dry_run:
        _dry_run(parsed, target, fleet_url, lambda_url, aws)
    urls = {"fleet": fleet_url, "lambda": lambda_url}
    try:
        # an http target checks its URLs before a run directory exists: a bad one leaves nothing behind
        chosen = make_target(target, parsed, None, urls=urls) if target == "http" else None
        run_dir = new_run_dir(parsed.name, out_dir, runs_dir)
        if chosen is None:
            chosen = make_target(target, parsed, run_dir, aws=aws)
        result = execute(
            parsed, scenario, run_dir, chosen, processes=processes, log=lambda m: err.print(f"[dim]{m}[/dim]")
        )
    except UserError as exc:
        _fail(str(exc))
    if result.summary is not None:
        print_verdict(result.summary, result.run_dir)
    raise typer.Exit(result.exit_code)


def _dry_run(
    parsed: Any, target: str, fleet_url: str | None, lambda_url: str | None, aws: dict[str, Any]
) -> None:
    """Start the target (a local stack is started and stopped; an AWS stack is only read), plan,
    print, exit."""
    from chaoscheck.dry_run import describe, plan_faults
    from chaoscheck.targets.choose import make_target
    from counter.local.client import StackError

    resolved: list[str] = []
    try:
        chosen = make_target(target, parsed, None, urls={"fleet": fleet_url, "lambda": lambda_url}, aws=aws)
    except UserError as exc:
        _fail(str(exc).splitlines()[0])
    try:
        if target == "aws":
            chosen.resolve()  # no timeline: a dry run only reads
            resolved = chosen.describe()
        else:
            chosen.start()
        planned = plan_faults(parsed, chosen)
    except (UserError, StackError) as exc:
        _fail(str(exc).splitlines()[0])
    finally:
        chosen.stop()
    lines = describe(parsed, chosen.name, planned)
    lines[1:1] = resolved
    for line in lines:
        out.print(line, markup=False, soft_wrap=True)
    raise typer.Exit(1 if any(fault.refused for fault in planned) else 0)


@app.command("rollback")
def rollback_cmd(
    run_dir: Annotated[Path | None, typer.Argument(help="the run directory whose faults to restore")] = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="every run under --runs-dir (and every dead registered run)")
    ] = False,
    runs_dir: Annotated[Path, typer.Option(help="with --all: where the runs are")] = Path("runs"),
) -> None:
    """Restore the faults a run left in force (its runner was killed), from its journal. Safe twice.

    Exit 0 when nothing is left open, 1 when a fault could not be restored (it stays open; run again).
    """
    from chaoscheck.active_runs import active_runs

    if (run_dir is None) == (not all_runs):
        _fail("expected a RUN_DIR or --all, not both and not neither")
    live = {run.run_dir for run in active_runs() if run.alive}
    if all_runs:
        candidates = sorted(p.parent for p in runs_dir.glob(f"*/{runformat.FAULTS}"))
        candidates += [
            run.run_dir for run in active_runs() if not run.alive and run.run_dir not in candidates
        ]
    else:
        assert run_dir is not None
        if not (run_dir / runformat.FAULTS).is_file():
            _fail(f"{run_dir}: no {runformat.FAULTS} here (expected a run directory)")
        candidates = [run_dir]
    failed = 0
    for candidate in candidates:
        if candidate.resolve() in live:
            out.print(
                f"{candidate}: still running; its runner rolls back itself (or use chaoscheck halt)",
                markup=False,
                soft_wrap=True,
            )
            continue
        failed += _restore(candidate)
    raise typer.Exit(1 if failed else 0)


@app.command()
def halt(
    timeout: Annotated[float, typer.Option(help="seconds to wait for each runner to confirm")] = 10.0,
) -> None:
    """Emergency stop: every run in progress on this machine rolls back its faults and stops now.

    Runners are asked (SIGUSR1) and confirm by journaling a halt; a runner that is dead or does not
    confirm in time has its faults restored from its journal by this command.
    """
    import contextlib
    import os
    import time

    from chaoscheck.active_runs import HALT_SIGNAL, active_runs, unregister

    runs = active_runs()
    if not runs:
        out.print("no run in progress", markup=False, soft_wrap=True)
        raise typer.Exit(0)
    for run in runs:
        if run.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.pid, HALT_SIGNAL)
    failed = 0
    for run in runs:
        journal = run.run_dir / runformat.FAULTS
        deadline = time.monotonic() + timeout
        while run.alive and time.monotonic() < deadline and not _halted(journal):
            time.sleep(0.05)
        if run.alive and _halted(journal):
            out.print(
                f"{run.run_dir}: halted by its runner (pid {run.pid}); faults rolled back",
                markup=False,
                soft_wrap=True,
            )
            continue
        why = "runner is gone" if not run.alive else f"runner did not confirm within {timeout:g} s"
        out.print(f"{run.run_dir}: {why}; restoring from the journal", markup=False, soft_wrap=True)
        failed += _restore(run.run_dir) if journal.is_file() else 0
        if not run.alive:
            unregister(run.path)
    raise typer.Exit(1 if failed else 0)


def _halted(journal: Path) -> bool:
    from chaos.journal import open_injections, read_journal

    try:
        entries = read_journal(journal)
    except (OSError, ValueError):
        return False
    return any(e.get("event") == "halt" for e in entries) and not open_injections(entries)


def _restore(run_dir: Path) -> int:
    """Roll back the open faults of one run, print each outcome; returns how many failed."""
    from chaos.rollback import rollback_run

    try:
        outcomes = rollback_run(run_dir / runformat.FAULTS)
    except (OSError, ValueError) as exc:
        err.print(f"chaoscheck: error: {exc}", markup=False, soft_wrap=True)
        return 1
    if not outcomes:
        out.print(f"{run_dir}: nothing open", markup=False, soft_wrap=True)
    for outcome in outcomes:
        what = f"{run_dir}: fault {outcome.fault_id} ({outcome.action} on {outcome.target})"
        if outcome.ok:
            out.print(f"{what}: restored {outcome.result}", markup=False, soft_wrap=True)
        else:
            err.print(f"{what}: NOT restored: {outcome.error}", markup=False, soft_wrap=True)
    return sum(not outcome.ok for outcome in outcomes)


@app.command("fis-export")
def fis_export(
    scenario: Annotated[Path, typer.Argument(help="scenario file")],
    role_arn: Annotated[str, typer.Option(help="the IAM role FIS assumes to run the experiment")],
    function_arn: Annotated[
        str | None, typer.Option(help="the function the Lambda faults target (default: by tags)")
    ] = None,
    alarm: Annotated[
        list[str] | None, typer.Option(help="NAME=ARN of a stop condition's CloudWatch alarm (repeatable)")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write the template here (default stdout)")
    ] = None,
) -> None:
    """Print an AWS FIS experiment template for the scenario's faults; stderr names what FIS cannot run.

    Exit 0 when the template has at least one action, 1 when no fault could be mapped.
    """
    import json

    from chaos.fis_export import fis_template

    parsed = _load(scenario)
    alarms: dict[str, str] = {}
    for item in alarm or []:
        name, sep, arn = item.partition("=")
        if not sep or not name or not arn:
            _fail(f"--alarm: expected NAME=ARN, got {item!r}")
        alarms[name] = arn
    template, messages = fis_template(parsed, role_arn=role_arn, function_arn=function_arn, alarm_arns=alarms)
    for message in messages:
        err.print(f"chaoscheck: {scenario}: {message}", markup=False, soft_wrap=True)
    text = json.dumps(template, indent=2, sort_keys=True) + "\n"
    if out_file is not None:
        tmp = out_file.with_name(out_file.name + ".tmp")
        try:
            tmp.write_text(text)
            tmp.replace(out_file)
        except OSError as exc:
            _fail(f"{out_file}: cannot write the template: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)
    raise typer.Exit(0 if template.get("actions") else 1)


@app.command()
def validate(scenarios: Annotated[list[Path], typer.Argument(help="scenario files")]) -> None:
    """Check scenario files; print one line per problem."""
    from chaos.scenario import ScenarioError, load_scenario

    bad = 0
    for path in scenarios:
        try:
            parsed = load_scenario(path)
        except ScenarioError as exc:
            err.print(str(exc), markup=False, soft_wrap=True)
            bad += 1
        else:
            out.print(f"{path}: ok ({parsed.name}, {len(parsed.faults)} faults)", markup=False)
    raise typer.Exit(2 if bad else 0)


@app.command()
def analyze(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Recompute summary.json, report.html, junit.xml and summary.md from the run directory's files."""
    summary = _analyse(run_dir)
    print_verdict(summary, run_dir)
    raise typer.Exit(0 if summary.get("verdict") == "pass" else 1)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Rebuild every report file of a run directory (summary.json, report.html, junit.xml,
    summary.md) from its files alone; print their paths. Exit 0 pass, 1 fail, 2 bad run directory."""
    from reports.junit import JUNIT
    from reports.markdown import SUMMARY_MD

    summary = _analyse(run_dir)
    for label, name in (("report", runformat.REPORT), ("summary", runformat.SUMMARY),
                        ("junit", JUNIT), ("markdown", SUMMARY_MD)):  # fmt: skip
        out.print(f"{label}: {run_dir / name}", markup=False, soft_wrap=True)
    raise typer.Exit(0 if summary.get("verdict") == "pass" else 1)


def _analyse(run_dir: Path) -> dict[str, Any]:
    """summary.json by the analysis, then junit.xml and summary.md from it, then report.html."""
    from analysis.rundir import RunFormatError
    from analysis.summary import analyze as analyse_run
    from reports.html import write_report
    from reports.junit import write_junit
    from reports.markdown import write_markdown

    if not run_dir.is_dir():
        _fail(f"{run_dir}: expected a run directory")
    try:
        result = analyse_run(run_dir)
        write_junit(run_dir, result.summary)
        write_markdown(run_dir, result.summary)
        write_report(run_dir, result)
    except RunFormatError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{run_dir}: cannot write the report files: {exc.strerror or exc}")
    return result.summary


@app.command()
def trend(
    runs_dir: Annotated[Path, typer.Argument(help="a directory of run directories, e.g. runs")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="the page to write (default RUNS_DIR/trend.html)")
    ] = None,
) -> None:
    """Write one self-contained HTML page comparing the runs under RUNS_DIR over time, per scenario.

    Directories that are not runs are skipped with a note; a summary.json that cannot be read is one
    error line and the page is made from the others. Exit 0 when the page was written from every
    run, 1 when a summary could not be read, 2 when RUNS_DIR is not a directory or the page cannot
    be written.
    """
    from reports.trend import write_trend

    if not runs_dir.is_dir():
        _fail(f"{runs_dir}: expected a directory of run directories")
    try:
        path, collected = write_trend(runs_dir, out_file)
    except OSError as exc:
        _fail(f"{out_file or runs_dir / 'trend.html'}: cannot write the page: {exc.strerror or exc}")
    for note in collected.skipped:
        err.print(f"chaoscheck: note: {note}", markup=False, soft_wrap=True)
    for error in collected.errors:
        err.print(f"chaoscheck: error: {error}", markup=False, soft_wrap=True)
    scenarios = len({run.summary.get("scenario") for run in collected.runs})
    out.print(
        f"trend: {path} ({len(collected.runs)} runs of {scenarios} scenarios)", markup=False, soft_wrap=True
    )
    raise typer.Exit(1 if collected.errors else 0)


DEFAULT_STATE_FILE = Path(".chaoscheck/stack.json")


@stack_app.command("up")
def stack_up(
    scenario: Annotated[
        Path | None, typer.Option(help="take the stack section of this scenario (default: defaults)")
    ] = None,
    db: Annotated[Path, typer.Option(help="the SQLite file of the counter store")] = Path(
        ".chaoscheck/counter.sqlite"
    ),
    state_file: Annotated[
        Path, typer.Option(help="where the stack's URLs and token are kept (mode 0600)")
    ] = (DEFAULT_STATE_FILE),
    detach: Annotated[
        bool, typer.Option(help="leave it running in the background; stop with 'stack down'")
    ] = False,
) -> None:
    """Start the local stack and print its URLs (for a Locust web UI session)."""
    import time

    from counter.local.client import LocalStack, StackError
    from counter.local.config import StackConfig

    config = _load(scenario).stack if scenario else StackConfig()
    if state_file.exists():
        _fail(f"{state_file}: a stack seems to be running already; run 'chaoscheck stack down' first")
    state_file.parent.mkdir(parents=True, exist_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        stack = LocalStack.start(
            config, db_path=db, log_path=state_file.with_suffix(".log"), state_file=state_file,
            die_with_parent=not detach,
        )  # fmt: skip
    except StackError as exc:
        _fail(str(exc).splitlines()[0])
    out.print(f"fleet:  {stack.fleet_url}\nlambda: {stack.lambda_url}", markup=False)
    out.print(
        "load it from Locust's web UI: locust -f loadtests/locustfile.py --web-host 127.0.0.1 "
        f"--target local --stack-state {state_file} [--scenario FILE]",
        markup=False,
        soft_wrap=True,
    )
    if detach:
        out.print(f"running in the background (pid {stack.pid}); stop it with 'chaoscheck stack down'")
        return
    out.print("Ctrl-C stops it.")
    try:
        while stack.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


@stack_app.command("status")
def stack_status(state_file: Annotated[Path, typer.Option()] = DEFAULT_STATE_FILE) -> None:
    """Show the running stack's instances and Lambda environments."""
    import json

    from counter.local.client import LocalStack, StackError

    try:
        stack = LocalStack.from_state_file(state_file)
        state = stack.control.state()
    except (StackError, OSError) as exc:
        _fail(str(exc).splitlines()[0])
    out.print_json(json.dumps(state))


@stack_app.command("down")
def stack_down(state_file: Annotated[Path, typer.Option()] = DEFAULT_STATE_FILE) -> None:
    """Stop the stack started with 'stack up --detach'; no process is left behind."""
    from counter.local.client import LocalStack, StackError

    try:
        stack = LocalStack.from_state_file(state_file)
    except StackError as exc:
        _fail(str(exc).splitlines()[0])
    stack.stop()
    out.print("stopped")


def print_verdict(summary: dict[str, Any], run_dir: Path) -> None:
    """The verdict table: failed checks first, then the rest, then the headline figures."""
    checks = sorted(summary.get("checks", []), key=lambda c: (c.get("passed", False), c.get("name", "")))
    table = Table(title=f"{summary.get('scenario')}: {str(summary.get('verdict', '?')).upper()}")
    for column in ("check", "phase", "measured", "threshold", "result"):
        table.add_column(column)
    for check in checks:
        passed = check.get("passed")
        table.add_row(
            str(check.get("name")),
            str(check.get("phase") or ""),
            _fmt(check.get("measured")),
            _fmt(check.get("threshold")),
            "[green]pass[/green]" if passed else "[red]FAIL[/red]",
        )
    out.print(table)
    consistency = summary.get("consistency", {})
    ops = sum(p.get("requests", 0) for p in summary.get("phases", []))
    out.print(
        f"operations {ops}, increments attempted {consistency.get('attempted')}, "
        f"final value {consistency.get('final_value')}, lost {consistency.get('lost')}, "
        f"duplicated {consistency.get('duplicated')}",
        markup=False,
    )
    out.print(f"run directory: {run_dir}", markup=False)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("chaoscheck: interrupted")
        sys.exit(130)
