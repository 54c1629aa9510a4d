"""Any deployment that speaks the counter contract, known only by its URLs.

No chaos backend, no server ledger, no timeline: the analysis then judges consistency from the
bounds, the returned values and the reads alone (``docs/analysis.md``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa

from chaoscheck.errors import UserError


def check_url(option: str, url: str) -> str:
    """A base URL with a scheme and a host, without a trailing slash; a one-line error otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{option}: expected a base URL such as http://127.0.0.1:8080, got {url!r}")
    if parts.path not in ("", "/") or parts.query:
        raise UserError(f"{option}: expected a base URL without a path, got {url!r}")
    return url.rstrip("/")


class HttpTarget:
    """Endpoints by URL only."""

    name = "http"
    has_chaos = False

    def __init__(self, endpoints: dict[str, str]) -> None:
        if not endpoints:
            raise UserError("--target http: give --fleet-url and/or --lambda-url")
        self._endpoints = {tier: check_url(f"--{tier}-url", url) for tier, url in endpoints.items()}

    def start(self) -> HttpTarget:
        return self

    def endpoints(self) -> dict[str, str]:
        return dict(self._endpoints)

    def chaos_backend(self) -> None:
        return None

    def wait_quiet(self, timeout: float) -> bool:
        """Nothing to ask: Locust has stopped, so nothing of ours is in flight."""
        return True

    def timeline(self, since_ns: int) -> pa.Table | None:
        return None

    def server_ops(self, counter: str) -> pa.Table | None:
        return None

    def log_paths(self) -> list[Path]:
        return []

    def stop(self) -> None:
        return None
