"""Fixtures for the AWS backend's tests: fake credentials, moto in-process, and a small stack in it.

Nothing here may reach AWS: every test runs with fake credentials, no profile, no config files of
the machine, and either moto's in-process mock (``aws``) or moto's server on 127.0.0.1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest

# The stack helper sits next to this file, and what both AWS test folders share (fake environment,
# moto, the sampler check) is in tests/helpers; make them importable however pytest was started.
sys.path.insert(0, str(Path(__file__).parents[2] / "helpers"))
sys.path.insert(0, str(Path(__file__).parent))

from aws_fakes import (  # noqa: F401  (fixtures: importing them here makes them this folder's)
    aws_fixture,
    fake_aws_environment,
    moto_server_fixture,
    no_sampler_outlives_its_test,
    shared_session_fixture,
)
from aws_stack import FUNCTION, GROUP, Stack

from chaos.backends.aws import AwsBackend


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
