"""What the AWS test folders (tests/aws, tests/chaos/aws) share: fake credentials and nothing of the
machine's AWS setup, moto in-process or its server on 127.0.0.1, and the check that no AWS timeline
sampler outlives its test.

Each folder's conftest.py puts this directory on ``sys.path`` and imports the fixtures it uses from
here (a fixture imported into a conftest is that conftest's fixture; they are defined under other
Python names, ``aws_fixture`` for ``aws``, so that a test's argument does not shadow an import);
folder-specific fixtures stay in the folder's conftest.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

REGION = "us-east-1"

MACHINE_VARIABLES = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_XRAY_DAEMON_ADDRESS", "AWS_XRAY_TRACING_NAME", "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT",
    "_X_AMZN_TRACE_ID", "CHAOSCHECK_TABLE", "CHAOSCHECK_DB", "CHAOSCHECK_FAULT_PREFIX", "CHAOSCHECK_XRAY",
    "CHAOSCHECK_XRAY_PLUGINS", "CHAOSCHECK_INSTANCE_ID",
)  # fmt: skip
"""Variables of the machine (or of the counter's own settings) that must not leak into a test."""


def fake_environment() -> dict[str, str]:
    """The variables a child process needs to see the fakes (merged into a copy of os.environ)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",  # moto's server is reached directly, never through a proxy
    }


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and a region; nothing from the machine's AWS setup (or the counter's own
    settings) leaks in."""
    for name in MACHINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_") or n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture(name="aws")
def aws_fixture() -> Iterator[None]:
    """moto's in-process mock of every AWS service, fresh for each test."""
    with mock_aws():
        yield


@pytest.fixture(name="shared_session", scope="session")
def shared_session_fixture() -> boto3.Session:
    """One session for the whole run: it parses each service's model once (EC2's takes a good part of
    a second). Its credentials are resolved at its first call, inside a test, so they are the fakes."""
    return boto3.Session(region_name=REGION)


@pytest.fixture(autouse=True)
def no_sampler_outlives_its_test() -> Iterator[None]:
    """Fails a test that leaves an AWS timeline sampler running (it would call AWS for real)."""
    yield
    assert_no_sampler_running()


@contextmanager
def moto_server_on_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on a free loopback port, and AWS_ENDPOINT_URL pointing at it; its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    try:
        yield url
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=5)
        server.stop()


@pytest.fixture(name="moto_server")
def moto_server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on a free loopback port, and AWS_ENDPOINT_URL pointing at it."""
    with moto_server_on_loopback(monkeypatch) as url:
        yield url


def assert_no_sampler_running() -> None:
    """A timeline sampler left running after a test would call AWS for real once moto's mock is gone
    (the network rule: loopback only). Every test must stop what it started."""
    alive = [t.name for t in threading.enumerate() if t.name == "aws-timeline" and t.is_alive()]
    assert not alive, f"a test left {len(alive)} AWS timeline sampler(s) running: stop them in the test"
