"""``chaoscheck run SCENARIO --target aws --stack NAME``: its options, and a dry run that resolves the
stack on moto's server (127.0.0.1, through AWS_ENDPOINT_URL) and prints what the run would hit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from awstier import REGION, TEMPLATE, create_stack
from typer.testing import CliRunner

from chaoscheck.cli import app

SCENARIO = """
version: 1
name: aws-dry
load: {users: 4, duration: 60s, endpoints: {fleet: 1, lambda: 1}}
faults:
  - {at: 10s, action: terminate-instance, count: 1, settle: 10s}
  - {at: 20s, action: throttle-lambda, reserved_concurrency: 0, duration: 5s}
  - {at: 30s, action: lambda-errors, status: 503, percent: 25, duration: 5s}
safety:
  max_share: 0.5
  regions: [us-east-1]
  stop_conditions:
    - {alarm: counter-5xx}
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "aws-dry.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stack", "s"], "--stack/--region/--profile/--allow-untagged: only with --target aws"),
        (["--allow-untagged"], "only with --target aws"),
        (["--target", "aws"], "--target aws: expected --stack NAME"),
        (["--target", "aws", "--stack", "s", "--fleet-url", "http://127.0.0.1:9"], "only with --target http"),
        (["--target", "gcp"], "expected 'local', 'http' or 'aws'"),
    ],
)
def test_the_aws_options_are_checked_before_anything_runs(
    scenario: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["run", str(scenario), "--runs-dir", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "runs").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaoscheck", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),  # the fakes and AWS_ENDPOINT_URL of the fixtures
    )


def test_dry_run_resolves_the_stack_on_motos_server(moto_server: str, scenario: Path, tmp_path: Path) -> None:
    outputs = create_stack(TEMPLATE, "counter-prod", boto3.Session(region_name=REGION))
    done = run_cli(str(scenario), "--target", "aws", "--stack", "counter-prod", "--region", REGION,
                   "--dry-run", "--runs-dir", str(tmp_path / "runs"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "scenario aws-dry on target aws: 60 s of load (4 users, closed model)"
    assert lines[1] == f"stack counter-prod in {REGION} (CREATE_COMPLETE)"
    assert "fleet  http://127.0.0.1:9" in lines[2] and "lambda http://127.0.0.2:9" in lines[3]
    assert lines[4].strip() == (
        f"group {outputs['GroupName']}, function {outputs['FunctionName']}, table {outputs['TableName']}"
    )
    kill = next(line for line in lines if "terminate-instance" in line)
    assert "would hit i-" in kill and "nothing to restore (one-shot)" in kill
    throttle = next(line for line in lines if "throttle-lambda" in line)
    assert f"would hit {outputs['FunctionName']}" in throttle and "'reserved_concurrency': None" in throttle
    errors = next(line for line in lines if "lambda-errors" in line)
    assert f"/chaoscheck/{outputs['FunctionName']}/lambda-errors" in errors
    assert lines[-1] == "guard: halt when CloudWatch alarm counter-5xx is in ALARM"
    assert not (tmp_path / "runs").exists(), "a dry run writes no run directory"
    # nothing was changed on the "account"
    lam = boto3.client("lambda", region_name=REGION)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName=outputs["FunctionName"]
    )


def test_dry_run_refusals_and_a_missing_stack(moto_server: str, scenario: Path, tmp_path: Path) -> None:
    create_stack(TEMPLATE, "counter-prod", boto3.Session(region_name=REGION))
    refused = run_cli(str(scenario), "--target", "aws", "--stack", "counter-prod",
                      "--region", "eu-west-1", "--dry-run")  # fmt: skip
    assert refused.returncode == 2  # the stack lives in us-east-1: not found in eu-west-1
    assert "expected a CloudFormation stack of that name in eu-west-1, found none" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1

    other = tmp_path / "other-region.yaml"
    other.write_text(SCENARIO.replace("regions: [us-east-1]", "regions: [eu-west-1]"))
    done = run_cli(str(other), "--target", "aws", "--stack", "counter-prod", "--dry-run")
    assert done.returncode == 1, done.stdout + done.stderr  # every fault would be refused
    assert done.stdout.count("WOULD BE REFUSED: refused: region us-east-1 is not in the allowed regions") == 3
