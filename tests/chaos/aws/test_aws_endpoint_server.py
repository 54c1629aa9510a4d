"""The backend honours AWS_ENDPOINT_URL: moto's server on 127.0.0.1 stands in for AWS, no mock at all."""

from __future__ import annotations

import json

import boto3
from aws_stack import FUNCTION, GROUP, REGION, Stack

from chaos.backends import backend_for
from chaos.backends.aws import AwsBackend


def test_the_endpoint_from_the_environment_is_used(moto_server: str) -> None:
    stack = Stack(boto3.Session(region_name=REGION))  # its clients find the endpoint the same way
    stack.group()
    stack.function()
    backend = AwsBackend(region=REGION, group_name=GROUP, function_name=FUNCTION, seed=1)

    # read back through a client given the server explicitly: the change can only be in the server
    server_lambda = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server)
    server_asg = boto3.client("autoscaling", region_name=REGION, endpoint_url=moto_server)
    throttle = backend.inject("throttle-lambda", {"reserved_concurrency": 0})
    capacity = backend.inject("set-capacity", {"desired": 1})
    assert server_lambda.get_function_concurrency(FunctionName=FUNCTION)["ReservedConcurrentExecutions"] == 0
    assert (
        server_asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0][
            "DesiredCapacity"
        ]
        == 1
    )

    descriptor = backend.descriptor()
    assert moto_server not in json.dumps(descriptor)  # the endpoint comes from the environment, every time
    rebuilt = backend_for("aws", descriptor)
    rebuilt.rollback("set-capacity", capacity)
    rebuilt.rollback("throttle-lambda", throttle)
    assert "ReservedConcurrentExecutions" not in server_lambda.get_function_concurrency(FunctionName=FUNCTION)
    assert (
        server_asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0][
            "DesiredCapacity"
        ]
        == 3
    )
