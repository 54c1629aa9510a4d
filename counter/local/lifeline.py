"""Tie a process's life to its parent's, so that no process of the local stack outlives its owner.

Every process of the stack (the stack itself, instance servers, Lambda environments) calls
:func:`die_with_parent` first thing at startup with the pid its parent announced in
``CHAOSCHECK_PARENT_PID``. The kernel then sends SIGKILL when the parent dies, however it dies (even
SIGKILL, where no cleanup code of the parent runs). Doing it in the child rather than in a
``preexec_fn`` keeps ``subprocess`` on its fast spawn path and works under gevent too.

Caveat of ``PR_SET_PDEATHSIG``: "parent" is the *thread* that forked the child. Start children from a
thread that lives as long as they should (the main thread, or a gevent greenlet, which shares it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_PID_ENV = "CHAOSCHECK_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> bool:
    """Ask the kernel for SIGKILL when our parent dies; exit now if it already died.

    ``parent_pid`` defaults to ``$CHAOSCHECK_PARENT_PID``; without either, nothing is done and False is
    returned (a process started by hand from a shell should not die with the shell). On a platform
    without ``prctl`` (not Linux) it returns False too.
    """
    if parent_pid is None:
        announced = os.environ.get(PARENT_PID_ENV)
        if not announced:
            return False
        parent_pid = int(announced)
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died between our fork and the prctl: then we were re-parented already.
    if os.getppid() != parent_pid:
        os._exit(1)
    return True


def child_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that should die with this process (copies ``base`` or os.environ)."""
    env = dict(os.environ if base is None else base)
    env[PARENT_PID_ENV] = str(os.getpid())
    return env
