"""Talking to AWS: one boto3 session, its clients made once with bounded timeouts, errors as one line.

Clients are made the ordinary boto3 way, so ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL`` (and the per-service ``AWS_ENDPOINT_URL_<SERVICE>``) and the shared config files
are honoured exactly as the AWS CLI honours them. Nothing here reads or keeps a credential: the
session resolves them when a call is signed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from chaos.backends.interface import InjectionError

CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,
    retries={"mode": "standard", "max_attempts": 4},
)
"""Bounded calls: a hung endpoint must not keep a fault (or its rollback) waiting for ever."""


def make_session(profile: str | None = None, region: str | None = None) -> boto3.Session:
    """A boto3 session; ``InjectionError`` (one line) for a profile that does not exist here."""
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise InjectionError(
            f"expected an AWS profile named {profile!r} in the AWS config, got none"
        ) from None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``ResourceNotFoundException``...), else ``""``."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def one_line(exc: BaseException) -> str:
    """A boto3 error as one short line: the code and message AWS sent, or botocore's own message."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        text = f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    else:
        text = str(exc)
    return " ".join(text.split())


@contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Turn an AWS failure inside the block into ``InjectionError("<what>: <code>: <message>")``."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise InjectionError(f"{what}: {one_line(exc)}") from None


class AwsClients:
    """The clients of one session and region, made on first use (thread-safe), and who the caller is.

    ``region`` overrides the session's own region; without either, every call is refused with a line
    that says how to give one.
    """

    def __init__(self, session: boto3.Session, region: str | None = None) -> None:
        self.session = session
        self.region: str | None = region or session.region_name
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account: str | None = None

    def client(self, service: str) -> Any:
        if self.region is None:
            raise InjectionError(
                "expected an AWS region (--region, AWS_REGION or AWS_DEFAULT_REGION), got none"
            )
        with self._lock:  # a boto3 session is not thread-safe; the clients it makes are
            if service not in self._clients:
                self._clients[service] = self.session.client(
                    service, region_name=self.region, config=CLIENT_CONFIG
                )
            return self._clients[service]

    def account(self) -> str:
        """The account id of the caller's credentials (``sts:GetCallerIdentity``), asked once."""
        if self._account is None:
            with aws_call("sts GetCallerIdentity"):
                identity = self.client("sts").get_caller_identity()
            self._account = str(identity["Account"])
        return self._account
