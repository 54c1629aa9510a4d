"""Errors that are the user's to fix: they are printed as one line and exit with status 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a setup problem: the message is one line naming the input at fault."""


class RunInterrupted(BaseException):
    """The run was stopped by a signal (SIGTERM); like KeyboardInterrupt, it unwinds through finally."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum
