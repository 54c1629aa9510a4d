"""Fixtures for the AWS tier's tests: fake credentials, moto in-process, and the counter's table.

Nothing here may reach AWS: every test runs with fake credentials, no profile, no config files of the
machine, and either moto's in-process mock (``aws``) or moto's server on 127.0.0.1 (``moto_server``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest

# The helper module sits next to this file, and what both AWS test folders share (fake environment,
# moto, the sampler check) is in tests/helpers; make them importable however pytest was started.
sys.path.insert(0, str(Path(__file__).parents[1] / "helpers"))
sys.path.insert(0, str(Path(__file__).parent))

from aws_fakes import (  # noqa: F401  (fixtures: importing them here makes them this folder's)
    aws_fixture,
    fake_aws_environment,
    moto_server_fixture,
    no_sampler_outlives_its_test,
    shared_session_fixture,
)
from awstier import REGION, TABLE


@pytest.fixture
def dynamodb(aws: None) -> object:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def table(dynamodb: object) -> str:
    """The counter's table, as the SAM template and ``create_table`` define it."""
    from counter.dynamodb_store import create_table

    create_table(dynamodb, TABLE)
    return TABLE
