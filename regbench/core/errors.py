"""The one exception type meant for users: caught once at the CLI boundary and shown as one line."""

from __future__ import annotations


class RegbenchError(Exception):
    """A problem the user can fix; its message is shown as a single line."""

    exit_code = 1


class UsageError(RegbenchError):
    """Bad input on the command line or in a config (exit code 2, like a usage error)."""

    exit_code = 2


class DataError(RegbenchError):
    """Data that is missing, unreadable or corrupt."""


class Diverged(RegbenchError):
    """The loss became NaN, infinite, or exploded."""

    def __init__(self, epoch: int, what: str, advice: str = "try a smaller lr") -> None:
        super().__init__(f"diverged at epoch {epoch}: {what} ({advice})")
        self.epoch = epoch


class NotStackable(RegbenchError):
    """A group of jobs the stacked launcher must run one by one; the message says why."""


class Notice(UserWarning):
    """Something a command skipped and went on without (e.g. one unreadable model.pt in a
    sweep): a warning, so notebooks see it too; the CLI shows each as one ``note:`` line."""
