"""Backends carry out the registered actions: ``local`` drives the local stack, ``aws`` drives AWS.

``backend_for`` rebuilds the backend that wrote a journal line from the line's ``backend`` and
``backend_config`` alone, which is what a rollback after a crash (``chaoscheck rollback``) needs.
"""

from __future__ import annotations

from typing import Any

from chaos.backends.interface import Backend, Injection, InjectionError

__all__ = ["Backend", "Injection", "InjectionError", "backend_for"]


def backend_for(name: str | None, config: dict[str, Any] | None) -> Backend:
    """The backend called ``name`` configured from a journal's ``backend_config``.

    Raises ``InjectionError`` (one line) when the backend cannot be reached again from what the
    journal holds: an unknown name, or a local stack that is no longer running.
    """
    config = config or {}
    if name == "aws":
        from chaos.backends.aws import AwsBackend

        return AwsBackend.from_descriptor(config)
    if name == "local":
        from chaos.backends.local import LocalBackend

        return LocalBackend.from_descriptor(config)
    raise InjectionError(f"expected a journal written by the local or aws backend, got {name!r}")
