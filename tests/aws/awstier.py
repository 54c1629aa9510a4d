"""Names and helpers shared by the AWS tier's tests (a module name no other test folder uses)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TABLE = "counter-table"


def asgi_request(
    app: Any, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request through an ASGI app, in process: (status, headers, parsed JSON body)."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body = sent
    out_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], out_headers, json.loads(body["body"])


def http_api_event(
    method: str, path: str, headers: dict[str, str] | None = None, *, function_url: bool = False
) -> dict[str, Any]:
    """A payload format 2.0 event as an HTTP API (or, with ``function_url``, a function URL) sends it."""
    domain = (
        "abcdefghij.lambda-url.us-east-1.on.aws"
        if function_url
        else "abcdefghij.execute-api.us-east-1.amazonaws.com"
    )
    return {
        "version": "2.0",
        "routeKey": "$default" if function_url else "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": domain, "user-agent": "test", **(headers or {})},
        "requestContext": {
            "accountId": "anonymous" if function_url else ACCOUNT,
            "apiId": "abcdefghij",
            "domainName": domain,
            "domainPrefix": "abcdefghij",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "test"},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default" if function_url else "ANY /{proxy+}",
            "stage": "$default",
            "time": "12/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1583348638390,
        },
        "body": None,
        "isBase64Encoded": False,
    }  # fmt: skip


class Context:
    """The Lambda context attributes the handler uses."""

    def __init__(self, log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef") -> None:
        self.log_stream_name = log_stream_name
        self.function_name = "counter"
        self.aws_request_id = "req-1"


STACK = "chaoscheck-counter"

# The resources the target needs, as moto can create them (it cannot run the SAM transform), and the
# outputs of counter/template.yaml under the same names.
TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  CounterTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
  LaunchConfig:
    Type: AWS::AutoScaling::LaunchConfiguration
    Properties: {ImageId: ami-12c6146b, InstanceType: t3.micro}
  FleetGroup:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      LaunchConfigurationName: !Ref LaunchConfig
      MinSize: "1"
      MaxSize: "6"
      DesiredCapacity: "3"
      AvailabilityZones: [us-east-1a]
      Tags: [{Key: "chaoscheck:allowed", Value: "true", PropagateAtLaunch: true}]
  FunctionRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: "sts:AssumeRole"}]
  CounterFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: counter.lambda_handler.handler
      Role: !GetAtt FunctionRole.Arn
      Code: {ZipFile: "def handler(event, context):\\n    return 1\\n"}
Outputs:
  FleetUrl: {Value: "http://127.0.0.1:9"}
  LambdaUrl: {Value: "http://127.0.0.2:9/"}
  HttpApiUrl: {Value: "http://127.0.0.3:9"}
  GroupName: {Value: !Ref FleetGroup}
  FunctionName: {Value: !Ref CounterFunction}
  TableName: {Value: !Ref CounterTable}
  FaultParameterPrefix: {Value: /chaoscheck}
"""


def create_stack(template: str = TEMPLATE, name: str = STACK, session: Any = None) -> dict[str, str]:
    """The stack in moto (or moto's server), its function tagged as the SAM template tags it."""
    session = session or boto3.Session(region_name=REGION)
    cloudformation = session.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(StackName=name, TemplateBody=template)
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])
    }
    if "FunctionName" in outputs:
        lam = session.client("lambda", region_name=REGION)
        arn = lam.get_function(FunctionName=outputs["FunctionName"])["Configuration"]["FunctionArn"]
        lam.tag_resource(Resource=arn, Tags={"chaoscheck:allowed": "true"})
    return outputs
