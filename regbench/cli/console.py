"""Where every command prints: stdout for results, stderr for progress, notes and errors.

Notes and notices are records of the ``regbench`` logger (regbench.core.log); while a command
runs, ``ConsoleHandler`` (regbench.core.progress) shows them on stderr as the CLI always has."""

from __future__ import annotations

from typing import TYPE_CHECKING

from regbench.core import log
from regbench.core.progress import ConsoleHandler, PipeSafeConsole

if TYPE_CHECKING:
    from regbench.core.progress import Reporter

# Outside a terminal rich assumes 80 columns; logs and pipes get wide lines instead of wrapping.
PIPE_WIDTH = 200
# A closed pipe drops output rather than stopping the command (progress.PipeSafeConsole).
stdout = PipeSafeConsole()
stderr = PipeSafeConsole(stderr=True)
for _console in (stdout, stderr):
    if not _console.is_terminal:
        _console.width = PIPE_WIDTH


def progress(quiet: bool) -> Reporter:
    """A run's progress on stderr: bars and a line per metrics row, or (``--quiet``) none."""
    from regbench.core.progress import Reporter, RichReporter

    return (Reporter if quiet else RichReporter)(stderr)


def note(text: str) -> None:
    """A ``note:`` line on stderr (a record of the ``regbench`` logger, shown by the command's
    ConsoleHandler), printed as is: no rich markup, one line however long."""
    log.note(text)


__all__ = ["ConsoleHandler", "note", "progress", "stderr", "stdout"]
