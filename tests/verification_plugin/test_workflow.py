"""The scheduled job: .github/workflows/verify.yml runs the verification suite as documented."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "verify.yml"


def load() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    return workflow


def steps(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_triggers_pull_requests_nightly_and_by_hand() -> None:
    workflow = load()
    assert "pull_request" in workflow["on"]
    (cron,) = workflow["on"]["schedule"]
    _minute, hour, day, month, weekday = cron["cron"].split()
    assert (day, month, weekday) == ("*", "*", "*") and hour.isdigit()  # once a day
    assert workflow["on"]["workflow_dispatch"]["inputs"]["target"]["options"] == ["local", "aws"]
    assert workflow["permissions"] == {"contents": "read"}


def test_pull_requests_run_the_suite_on_the_local_stack_and_upload_the_runs() -> None:
    job = load()["jobs"]["local"]
    assert "pull_request" in job["if"]
    text = steps(job)
    assert "pytest verification/ --target local --runs-dir" in text and "--junitxml" in text
    assert "chaoscheck trend" in text and "GITHUB_STEP_SUMMARY" in text
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "${{ env.RUNS }}"
    assert job["env"]["RUNS"] == "runs/verify"


def test_nightly_runs_against_aws_with_the_oidc_role() -> None:
    job = load()["jobs"]["aws"]
    assert "schedule" in job["if"]
    assert job["permissions"]["id-token"] == "write"
    credentials = next(
        s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")
    )
    assert credentials["with"]["role-to-assume"] == "${{ vars.CHAOSCHECK_ROLE_ARN }}"
    assert not any("secret" in str(v).lower() for v in credentials["with"].values())  # no stored keys
    text = steps(job)
    assert '--target aws --stack "$STACK"' in text
    assert job["env"]["STACK"] == "${{ vars.CHAOSCHECK_STACK }}"
    assert "chaoscheck rollback --all" in text
    assert job["concurrency"]["cancel-in-progress"] is False
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"


def test_the_docs_describe_it() -> None:
    doc = (ROOT / "docs" / "verification.md").read_text()
    for needle in ("verify.yml", "CHAOSCHECK_STACK", "CHAOSCHECK_ROLE_ARN", "AWS_REGION", "OIDC", "artifact"):
        assert needle in doc, needle
