"""Fixtures for the AWS backend's tests: fake credentials, moto in-process, and a small stack in it.

Nothing here may reach AWS: every test runs with fake credentials, no profile, no config files of
the machine, and either moto's in-process mock (``aws``) or moto's server on 127.0.0.1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

# The stack helper sits next to this file, and the moto server and sampler check are shared with
# tests/aws in tests/helpers; make them importable however pytest was started.
sys.path.insert(0, str(Path(__file__).parents[2] / "helpers"))
sys.path.insert(0, str(Path(__file__).parent))

from aws_stack import FUNCTION, GROUP, REGION, Stack
from moto_loopback import assert_no_sampler_running, moto_server_on_loopback

from chaos.backends.aws import AwsBackend


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and a region; nothing from the machine's AWS setup leaks in."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_") or n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "NO_PROXY", "127.0.0.1,localhost"
    )  # moto's server is reached directly, never via a proxy
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-process mock of every AWS service, fresh for each test."""
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def shared_session() -> boto3.Session:
    """One session for the whole run: it parses each service's model once (EC2's takes a good part of
    a second). Its credentials are resolved at its first call, inside a test, so they are the fakes."""
    return boto3.Session(region_name=REGION)


@pytest.fixture
def stack(aws: None, shared_session: boto3.Session) -> Stack:
    """An empty moto account; build the group and function a test needs with its methods."""
    return Stack(shared_session)


@pytest.fixture
def counter_stack(stack: Stack) -> Stack:
    """The counter service's two parts, tagged for chaoscheck: 3 instances (min 1, max 6), one function."""
    stack.group()
    stack.function()
    return stack


@pytest.fixture
def backend(counter_stack: Stack) -> AwsBackend:
    """A backend for the counter stack, seeded."""
    return AwsBackend(counter_stack.session, group_name=GROUP, function_name=FUNCTION, seed=7)


@pytest.fixture(autouse=True)
def no_sampler_outlives_its_test() -> Iterator[None]:
    """Fails a test that leaves an AWS timeline sampler running (it would call AWS for real)."""
    yield
    assert_no_sampler_running()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on a free loopback port, and AWS_ENDPOINT_URL pointing at it."""
    with moto_server_on_loopback(monkeypatch) as url:
        yield url
