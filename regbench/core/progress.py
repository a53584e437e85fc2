"""What the user sees while a run trains: rich progress bars, a line per metrics row, a table."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

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


class Reporter:
    """Silent reporter (``--quiet``): notices and errors still reach the console."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def notice(self, text: str) -> None:
        self.console.print(text, style="yellow", markup=False, highlight=False, soft_wrap=True)

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
    """Epoch and batch progress bars, and a line per metrics row."""

    def start(self, epochs: int, batches_per_epoch: int, done: int = 0) -> None:
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
        self.progress.advance(self.batches)

    def epoch_done(self, epoch: int) -> None:
        self.progress.update(self.epochs, completed=epoch)
        self.progress.reset(self.batches, total=self.batches_per_epoch)

    def row(self, row: dict[str, Any]) -> None:
        self.progress.console.print(format_row(row), highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if hasattr(self, "progress"):
            self.progress.stop()


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
