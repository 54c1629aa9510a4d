"""Child processes that cannot outlive the run that started them."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a forked child before exec: ask Linux to SIGKILL us when our parent dies.

    Used as ``preexec_fn``. On other systems it does nothing (the child then relies on being
    stopped explicitly).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
