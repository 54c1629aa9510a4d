"""What the AWS test folders (tests/aws, tests/chaos/aws) share: moto's server on 127.0.0.1, and the
check that no AWS timeline sampler outlives its test.

Each folder's conftest.py puts this directory on ``sys.path`` and keeps its own fixtures (their names
are the ones its tests use), built on these.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto.server import ThreadedMotoServer


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


def assert_no_sampler_running() -> None:
    """A timeline sampler left running after a test would call AWS for real once moto's mock is gone
    (the network rule: loopback only). Every test must stop what it started."""
    alive = [t.name for t in threading.enumerate() if t.name == "aws-timeline" and t.is_alive()]
    assert not alive, f"a test left {len(alive)} AWS timeline sampler(s) running: stop them in the test"
