"""Fixtures for the AWS tier's tests: fake credentials, moto in-process, and the counter's table.

Nothing here may reach AWS: every test runs with fake credentials, no profile, no config files of the
machine, and either moto's in-process mock (``aws``) or moto's server on 127.0.0.1 (``moto_server``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

# The helper module sits next to this file, and the moto server and sampler check are shared with
# tests/chaos/aws in tests/helpers; make them importable however pytest was started.
sys.path.insert(0, str(Path(__file__).parents[1] / "helpers"))
sys.path.insert(0, str(Path(__file__).parent))

from awstier import REGION, TABLE, fake_environment
from moto_loopback import assert_no_sampler_running, moto_server_on_loopback


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and a region; nothing from the machine's AWS setup (or the counter's own
    settings) leaks in."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_XRAY_DAEMON_ADDRESS", "AWS_XRAY_TRACING_NAME",
                 "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT", "_X_AMZN_TRACE_ID",
                 "CHAOSCHECK_TABLE", "CHAOSCHECK_DB", "CHAOSCHECK_FAULT_PREFIX", "CHAOSCHECK_XRAY",
                 "CHAOSCHECK_XRAY_PLUGINS", "CHAOSCHECK_INSTANCE_ID"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_") or n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name, raising=False)
    for name, value in fake_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def aws() -> Iterator[None]:
    """moto's in-process mock of every AWS service, fresh for each test."""
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def shared_session() -> boto3.Session:
    """One session for the whole run: it parses each service's model once. Its credentials are
    resolved at its first call, inside a test, so they are the fakes."""
    return boto3.Session(region_name=REGION)


@pytest.fixture
def dynamodb(aws: None) -> object:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def table(dynamodb: object) -> str:
    """The counter's table, as the SAM template and ``create_table`` define it."""
    from counter.dynamodb_store import create_table

    create_table(dynamodb, TABLE)
    return TABLE


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on a free loopback port, and AWS_ENDPOINT_URL pointing at it."""
    with moto_server_on_loopback(monkeypatch) as url:
        yield url


@pytest.fixture(autouse=True)
def no_sampler_outlives_its_test() -> Iterator[None]:
    """Fails a test that leaves an AWS timeline sampler running (it would call AWS for real)."""
    yield
    assert_no_sampler_running()
