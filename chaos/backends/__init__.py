"""Backends carry out the registered actions: ``local`` drives the local stack, ``aws`` (later) AWS."""

from chaos.backends.interface import Backend, Injection, InjectionError

__all__ = ["Backend", "Injection", "InjectionError"]
