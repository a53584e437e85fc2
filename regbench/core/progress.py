"""What the user sees while a run trains: rich progress bars, a line per metrics row, a table."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from regbench.core import log

if TYPE_CHECKING:
    from rich.progress import Progress

MAX_TABLE_ROWS = 20


class PipeSafeConsole(Console):
    """A console whose reader may go away (``regbench run ... | head -2``): from then on its
    output is dropped and the command goes on. rich's own handler raises SystemExit, which
    would end a training run as failed over a closed pipe."""

    def on_broken_pipe(self) -> None:
        self.quiet = True  # rich drops everything printed to a quiet console
        # Point the dead descriptor at /dev/null, so that Python's final flush at exit does
        # not fail on it either (that would print a BrokenPipeError and exit 120).
        with contextlib.suppress(OSError, ValueError, AttributeError):  # no real descriptor
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)


class ConsoleHandler(RichHandler):
    """rich's handler, printing each record as one line however long (a log keeps its lines
    whole), without markup or highlighting (paths and overrides are shown as they are): a note
    as ``note: <text>`` and a notice as it is, in yellow; errors in bold red."""

    def __init__(self, console: Console) -> None:
        super().__init__(console=console, show_time=False, show_level=False, show_path=False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            style = "bold red" if record.levelno >= logging.ERROR else "yellow"
            text = log.prefix(record) + record.getMessage()
            self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # a handler never raises into the code that logged
            self.handleError(record)


class Reporter:
    """Silent reporter (``--quiet``): notices still go out, as records of the ``regbench``
    logger (regbench.core.log), which the CLI shows on its console."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def notice(self, text: str) -> None:
        log.notice(text)

    def start(self, epochs: int, batches_per_epoch: int, done: int = 0) -> None:
        pass

    def batch_done(self) -> None:
        pass

    def epoch_done(self, epoch: int) -> None:
        pass

    def row(self, row: dict[str, Any]) -> None:
        pass

    def stop(self) -> None:
        pass


class RichReporter(Reporter):
    """Epoch and batch progress bars, and a line per metrics row. Where the console is no
    terminal (a log file, a pipe, CI) just the lines: rich would print a blank line in place of
    the bars at every stop, and another at every further stop."""

    progress: Progress | None = None

    def start(self, epochs: int, batches_per_epoch: int, done: int = 0) -> None:
        if not self.console.is_interactive:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description:>7}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.epochs = self.progress.add_task("epochs", total=epochs, completed=done)
        self.batches = self.progress.add_task("batches", total=batches_per_epoch)
        self.batches_per_epoch = batches_per_epoch
        self.progress.start()

    def batch_done(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.batches)

    def epoch_done(self, epoch: int) -> None:
        if self.progress is not None:
            self.progress.update(self.epochs, completed=epoch)
            self.progress.reset(self.batches, total=self.batches_per_epoch)

    def row(self, row: dict[str, Any]) -> None:
        self.console.print(format_row(row), markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None  # a second stop (a run's end, then its session's) is a no-op


def format_row(row: dict[str, Any]) -> str:
    parts = [f"epoch {row['epoch']:>4}"]
    parts += [f"{k} {_fmt(v)}" for k, v in row.items() if k not in ("epoch", "seconds")]
    return "  ".join(parts) + f"  ({row['seconds']:.1f}s)"


def metrics_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    """The final per-epoch table (the last MAX_TABLE_ROWS rows)."""
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key, justify="right")
    for row in rows[-MAX_TABLE_ROWS:]:
        table.add_row(*(_fmt(v) for v in row.values()))
    return table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
