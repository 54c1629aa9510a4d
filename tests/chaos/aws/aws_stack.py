"""A small counter stack in moto (or moto's server) for the AWS backend's tests, and its names."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
GROUP = "counter-fleet"
FUNCTION = "counter"
ALLOWED = {"chaoscheck:allowed": "true"}


@dataclass
class Stack:
    """A group and a function in moto, with helpers to read their state back."""

    session: boto3.Session
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.session.client(service, region_name=REGION)
        return self.clients[service]

    # builders ----------------------------------------------------------------------------------------

    def group(
        self,
        name: str = GROUP,
        *,
        desired: int = 3,
        minimum: int = 1,
        maximum: int = 6,
        tags: dict[str, str] | None = None,
        propagate: bool = True,
    ) -> str:
        asg = self.client("autoscaling")
        if not asg.describe_launch_configurations(LaunchConfigurationNames=["lc"])["LaunchConfigurations"]:
            asg.create_launch_configuration(
                LaunchConfigurationName="lc", ImageId="ami-12c6146b", InstanceType="t3.micro"
            )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchConfigurationName="lc",
            MinSize=minimum,
            MaxSize=maximum,
            DesiredCapacity=desired,
            AvailabilityZones=[f"{REGION}a"],
            Tags=[
                {
                    "Key": key,
                    "Value": value,
                    "PropagateAtLaunch": propagate,
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                }
                for key, value in (ALLOWED if tags is None else tags).items()
            ],
        )
        return name

    def function(self, name: str = FUNCTION, *, tags: dict[str, str] | None = None) -> str:
        iam = self.client("iam")
        try:
            role = iam.get_role(RoleName="counter-role")["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            role = iam.create_role(RoleName="counter-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "def handler(event, context):\n    return 1\n")
        self.client("lambda").create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
            Code={"ZipFile": code.getvalue()}, Tags=ALLOWED if tags is None else tags,
        )  # fmt: skip
        return name

    # readers -----------------------------------------------------------------------------------------

    def group_state(self, name: str = GROUP) -> dict[str, Any]:
        return self.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ][0]

    def in_service(self, name: str = GROUP) -> list[str]:
        return sorted(
            i["InstanceId"] for i in self.group_state(name)["Instances"] if i["LifecycleState"] == "InService"
        )

    def instance_states(self, ids: list[str]) -> dict[str, str]:
        reservations = self.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
        return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}

    def reserved(self, name: str = FUNCTION) -> int | None:
        return (
            self.client("lambda")
            .get_function_concurrency(FunctionName=name)
            .get("ReservedConcurrentExecutions")
        )

    def parameter(self, name: str) -> str | None:
        ssm = self.client("ssm")
        try:
            return ssm.get_parameter(Name=name)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return None
