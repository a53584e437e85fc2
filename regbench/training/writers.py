"""The row writers every run has: weights.csv, metrics.csv, checkpoint.pt and the progress
reporter. They speak the same three-event interface as the optional loggers (loggers.Logger),
so a run session hands each metrics row to one list of writers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from regbench.training.loggers import Logger

if TYPE_CHECKING:
    from torch import nn

    from regbench.core.progress import Reporter
    from regbench.core.rundir import RunDir


class WeightsFile(Logger):
    """Per-layer weight statistics of each row's epoch, appended to weights.csv."""

    def __init__(self, run_dir: RunDir, threshold: float) -> None:
        self.run_dir, self.threshold = run_dir, threshold

    def log_row(self, row: dict[str, Any], networks: Mapping[str, nn.Module]) -> None:
        from regbench.regularization.weights import weight_rows

        self.run_dir.append_weights(weight_rows(row["epoch"], networks, self.threshold))


class MetricsFile(Logger):
    """The row itself, appended to metrics.csv and flushed."""

    def __init__(self, run_dir: RunDir) -> None:
        self.run_dir = run_dir

    def log_row(self, row: dict[str, Any], networks: Mapping[str, nn.Module]) -> None:
        self.run_dir.append_metrics(row)


class CheckpointFile(Logger):
    """checkpoint.pt after every row: ``state()`` is everything a resume needs at that point."""

    def __init__(self, run_dir: RunDir, state: Callable[[], dict[str, Any]]) -> None:
        self.run_dir, self.state = run_dir, state

    def log_row(self, row: dict[str, Any], networks: Mapping[str, nn.Module]) -> None:
        self.run_dir.save_checkpoint(self.state())


class ReporterRows(Logger):
    """The row on the console (``label``, e.g. a stack member's number, shown after epoch)."""

    def __init__(self, reporter: Reporter, label: Mapping[str, Any]) -> None:
        self.reporter, self.label = reporter, dict(label)

    def log_row(self, row: dict[str, Any], networks: Mapping[str, nn.Module]) -> None:
        self.reporter.row({"epoch": row["epoch"], **self.label, **row} if self.label else row)
