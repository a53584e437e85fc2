"""Where every command prints: stdout for results, stderr for progress, notes and errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from regbench.core.progress import PipeSafeConsole

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
    """A ``note:`` line on stderr, printed as is (no rich markup, one line however long)."""
    stderr.print(f"note: {text}", style="yellow", markup=False, highlight=False, soft_wrap=True)
