"""Child process of the X-Ray tests: the counter's servers traced for real (aws-xray-sdk configured
from the environment, boto3 patched) against moto in-process, sending to the test's collector.

``python xray_child.py fleet|lambda`` sends a few requests and prints one JSON line per response.
A child of its own, because the SDK's recorder and its boto3 patch are global to a process, and inside
Lambda (``LAMBDA_TASK_ROOT``) the SDK decides how to trace when it is first imported.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import boto3
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).parent))
from awstier import REGION, TABLE, Context, asgi_request, http_api_event


def main(mode: str) -> None:
    headers = json.loads(os.environ["CHILD_REQUEST_HEADERS"])
    with mock_aws():
        from counter.dynamodb_store import create_table

        create_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        if mode == "fleet":
            from counter.instance_server import create_app

            app = create_app()
            for header in headers:
                status, out, body = asgi_request(app, "POST", "/counters/xc/increment", header)
                print(json.dumps({"status": status, "headers": out, "body": body}), flush=True)
            asgi_request(
                app, "GET", "/health", {"X-Amzn-Trace-Id": "Root=1-00000000-000000000000000000000000"}
            )
        else:
            if os.environ.get("CHILD_SQLITE"):
                os.environ["CHAOSCHECK_DB"] = str(Path(tempfile.mkdtemp()) / "c.sqlite")
            from counter.lambda_handler import handler

            for header in headers:
                result = handler(http_api_event("POST", "/counters/xc/increment", header), Context("env-1"))
                print(json.dumps({"status": result["statusCode"], "headers": result["headers"],
                                  "body": json.loads(result["body"])}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
