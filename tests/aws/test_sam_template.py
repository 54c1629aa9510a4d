"""counter/template.yaml: clean under cfn-lint (offline), translatable by SAM, and in step with the code
that reads its outputs and the environment it sets."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint, lint_file
from cfnlint.decode import decode

from chaoscheck.targets.aws import OPTIONAL_OUTPUTS, REQUIRED_OUTPUTS
from counter.dynamodb_store import TABLE_ENV
from counter.fault_setting import DEFAULT_PREFIX, PREFIX_ENV
from counter.xray import ENABLE_ENV

COUNTER = Path(__file__).resolve().parents[2] / "counter"
TEMPLATE = COUNTER / "template.yaml"
ALLOW = {"Key": "chaoscheck:allowed", "Value": "true"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    data, matches = decode(str(TEMPLATE))
    assert not matches and data is not None
    return data


def test_cfn_lint_is_clean() -> None:
    assert [str(match) for match in lint_file(TEMPLATE)] == []


def test_sam_translates_it_into_a_clean_cloudformation_template(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``sam deploy`` would send (the code uploaded, so CodeUri is an S3 URI), translated offline."""
    translator = pytest.importorskip("samtranslator.translator.transform")
    packaged = json.loads(json.dumps(template))
    packaged["Resources"]["CounterFunction"]["Properties"]["CodeUri"] = "s3://artifacts/counter.zip"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    translated = translator.transform(packaged, {}, NoManagedPolicies())
    resources = translated["Resources"]
    function = resources["CounterFunction"]["Properties"]
    assert function["TracingConfig"] == {"Mode": "Active"} and function["Runtime"] == "python3.12"
    assert ALLOW in function["Tags"]
    assert resources["CounterFunctionUrl"]["Properties"]["AuthType"] == "NONE"
    apis = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert len(apis) == 1  # the HTTP API
    assert [str(m) for m in lint(json.dumps(translated))] == []


def test_outputs_are_what_the_aws_target_reads(template: dict[str, Any]) -> None:
    assert set(template["Outputs"]) == set(REQUIRED_OUTPUTS) | set(OPTIONAL_OUTPUTS)


def test_the_function_is_configured_as_the_code_reads_it(template: dict[str, Any]) -> None:
    function = template["Resources"]["CounterFunction"]["Properties"]
    assert function["Handler"] == "counter.lambda_handler.handler"
    assert function["Tracing"] == "Active"
    assert function["Tags"] == {"chaoscheck:allowed": "true"}
    assert set(function["Environment"]["Variables"]) == {TABLE_ENV, PREFIX_ENV, ENABLE_ENV}
    assert template["Parameters"]["FaultParameterPrefix"]["Default"] == DEFAULT_PREFIX
    assert (
        "ReservedConcurrentExecutions" in function and "LambdaReservedConcurrency" in template["Parameters"]
    )
    ssm = next(s for s in function["Policies"][0]["Statement"] if s["Sid"] == "FaultParameters")
    # exactly the parameters of this function (docs/chaos-aws.md), not the whole prefix
    assert str(ssm["Resource"]).endswith("parameter${FaultParameterPrefix}/${AWS::StackName}-counter/*'}")
    assert function["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-counter"}


def test_the_fleet_is_tagged_health_checked_and_scaled(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    group = resources["FleetGroup"]["Properties"]
    assert {**ALLOW, "PropagateAtLaunch": True} in group["Tags"]
    assert group["HealthCheckType"] == "ELB" and group["HealthCheckGracePeriod"] == {
        "Ref": "HealthCheckGracePeriod"
    }
    assert resources["FleetTargetGroup"]["Properties"]["HealthCheckPath"] == "/health"
    policy = resources["FleetScalingPolicy"]["Properties"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    spec = policy["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]
    assert spec["PredefinedMetricType"] == "ALBRequestCountPerTarget"
    user_data = str(resources["FleetLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"])
    assert (
        "--factory counter.instance_server:create_app" in user_data
        and "--workers ${ServerWorkers}" in user_data
    )
    assert "--reload" not in user_data  # a production server, not a development one
    for name in (
        "CHAOSCHECK_TABLE",
        "CHAOSCHECK_INSTANCE_ID",
        "CHAOSCHECK_XRAY=1",
        "AWS_XRAY_DAEMON_ADDRESS",
    ):
        assert name in user_data
    for logical_id in ("CounterTable", "LoadBalancer", "FleetTargetGroup"):
        assert ALLOW in resources[logical_id]["Properties"]["Tags"]


def test_iam_is_least_privilege(template: dict[str, Any]) -> None:
    statements = [
        *template["Resources"]["CounterFunction"]["Properties"]["Policies"][0]["Statement"],
        *template["Resources"]["InstanceRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"],
    ]
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any("*" in action for action in actions), statement
        if statement["Resource"] == "*":
            assert all(action.startswith("xray:") for action in actions), statement  # no resource-level ARNs
    table_actions = {a for s in statements if s.get("Sid") == "CounterTable" for a in s["Action"]}
    assert table_actions == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}


def _counter_imports(module: str, seen: set[str]) -> set[str]:
    """The ``counter.*`` modules ``module`` imports, transitively (``counter.local`` excluded: the
    instance server imports it only when the local stack runs it)."""
    if module in seen:
        return seen
    seen.add(module)
    tree = ast.parse((COUNTER.parent / (module.replace(".", "/") + ".py")).read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("counter.")
            and not node.module.startswith("counter.local")
        ):
            _counter_imports(node.module, seen)
    return seen


def test_the_function_package_holds_every_module_the_servers_import() -> None:
    makefile = (COUNTER / "Makefile").read_text()
    copied = set(re.findall(r"\b(\w+)\.py\b", makefile))
    needed = _counter_imports("counter.lambda_handler", set()) | _counter_imports(
        "counter.instance_server", set()
    )
    assert {m.split(".")[-1] for m in needed} <= copied
    assert "build-CounterFunction:" in makefile and "--python-version 3.12" in makefile
