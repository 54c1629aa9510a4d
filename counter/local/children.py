"""The child processes of the stack: how they are started, signalled, and reaped.

Every child (instance server, Lambda environment) starts in its own session, so a Ctrl-C typed in the
stack's terminal reaches only the stack, which then stops them in order; it also dies with the stack
(``lifeline``), so a SIGKILLed stack leaves nothing behind. Exited children are reaped promptly so the
process table holds no zombies while a run goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from counter.local.lifeline import child_environment

log = logging.getLogger(__name__)

SIGNALS = {"KILL": signal.SIGKILL, "STOP": signal.SIGSTOP, "CONT": signal.SIGCONT, "TERM": signal.SIGTERM}


def signal_by_name(name: str) -> signal.Signals:
    """The signal a fault names (KILL, STOP, CONT, TERM); ValueError for any other."""
    sig = SIGNALS.get(name.upper())
    if sig is None:
        raise ValueError(f"signal must be one of {', '.join(SIGNALS)}, got {name!r}")
    return sig


def spawn_python(
    module: str,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    pipes: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``python -m module args`` as a child that dies with this process.

    With ``pipes`` its stdin and stdout are unbuffered pipes (the Lambda environment's channel);
    otherwise stdin and stdout are /dev/null. stderr is inherited: it is the stack's log.
    """
    child_env = child_environment()
    if env:
        child_env.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
        stdout=subprocess.PIPE if pipes else subprocess.DEVNULL,
        env=child_env,
        pass_fds=tuple(pass_fds),
        start_new_session=True,
        bufsize=0,
    )


class Reaper:
    """Every child the stack started, until it has exited and been waited for."""

    def __init__(self) -> None:
        self._live: dict[int, subprocess.Popen[bytes]] = {}

    def track(self, process: subprocess.Popen[bytes]) -> None:
        self._live[process.pid] = process

    def alive(self, pid: int) -> bool:
        """True while ``pid`` has not been reaped (a stopped or dying child counts as alive)."""
        process = self._live.get(pid)
        return process is not None and process.poll() is None

    def signal(self, pid: int, sig: int) -> bool:
        """Send ``sig`` to a child not yet reaped; False if it is already gone."""
        process = self._live.get(pid)
        if process is None or process.poll() is not None:
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True

    def reap(self) -> list[tuple[int, int]]:
        """Wait for the children that have exited; returns their ``(pid, returncode)``."""
        done = [
            (pid, process.returncode) for pid, process in self._live.items() if process.poll() is not None
        ]
        for pid, _ in done:
            process = self._live.pop(pid)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        return done

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every child (stopped ones too) and wait for each, at most ``timeout`` in all."""
        for process in self._live.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        for process in list(self._live.values()):
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("child %d did not exit after SIGKILL", process.pid)
        self.reap()

    def pids(self) -> list[int]:
        return list(self._live)
