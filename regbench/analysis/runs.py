"""The run table: every run folder under some paths, read once into plain values.

Each :class:`Run` holds its folder, its config flattened to dotted keys (``model.hidden``), its
status and its metrics rows, with weights.csv's summaries (``weights_near_zero``, ``weights_l2``,
...) merged into the rows of the same epochs so that they can be compared like any metric.
``regbench compare`` groups this table and ``regbench.load_runs`` turns it into a DataFrame;
the files themselves are read only through :class:`~regbench.core.rundir.RunDir`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.core.config import flatten
from regbench.core.errors import Notice, UsageError
from regbench.core.rundir import METRICS, RunDir, Status
from regbench.regularization.weights import weight_columns_by_epoch

# Metrics where higher is better; every other metric (losses, errors) is minimized.
HIGHER_IS_BETTER = re.compile(r"acc|auc|r2|score|precision|recall|f1")


@dataclass(frozen=True)
class Run:
    path: Path
    config: dict[str, Any]  # flattened ("model.hidden"), values hashable (lists as tuples)
    status: Status
    rows: list[dict[str, Any]]

    @property
    def seed(self) -> Any:
        return self.config.get("seed")


def find_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Every run folder at or under ``paths`` (run folders, sweep folders, or any folder); a
    run that says it completed but has no metrics is left out with a Notice (a missing model.pt
    only leaves it out of the weight histograms, which say so themselves)."""
    runs = [load_run(run_dir) for run_dir in RunDir.find(paths)]
    return [run for run in runs if run.rows or not _damaged(run)]


def _damaged(run: Run) -> bool:
    """A completed run without metrics rows, said in a Notice (asked only of runs without rows:
    the rest were read whole once)."""
    damage = RunDir(run.path).damage([METRICS]) if run.status is Status.COMPLETED else None
    if damage:
        warnings.warn(Notice(f"skipped {run.path}: it says completed but {damage}"), stacklevel=3)
    return damage is not None


def load_run(run: RunDir | Path) -> Run:
    """One run folder read into a :class:`Run`; a UsageError when it is not a readable run."""
    run_dir = run if isinstance(run, RunDir) else RunDir.open(run)
    config = flatten(run_dir.read_config() or {})
    status = run_dir.read_summary().status
    # weights.csv's sparsity and norm summaries become metric columns of the same epochs.
    weights = weight_columns_by_epoch(run_dir.read_weights())
    rows = [{**row, **weights.get(int(row["epoch"]), {})} for row in run_dir.read_metrics()]
    return Run(run_dir.path, config, status, rows)


def records(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The table in long form: one record per run and metrics row (one bare record for a run
    without rows), keyed ``run``, ``status``, the config keys, then the metric columns."""
    out: list[dict[str, Any]] = []
    for run in runs:
        base = {"run": str(run.path), "status": run.status.value, **run.config}
        out += [{**base, **row} for row in run.rows] or [base]
    return out


# ----------------------------------------------------------------------------- metrics
def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` are better (accuracy, AUC, R², ...), by its name."""
    return bool(HIGHER_IS_BETTER.search(metric))


def value_at(rows: Sequence[Mapping[str, Any]], metric: str, at: str) -> float | None:
    """One run's ``metric`` at ``at``: final | best | epoch=N; None when the run lacks it."""
    rows = [r for r in rows if isinstance(r.get(metric), int | float)]
    if not rows:
        return None
    if at == "final":
        return float(rows[-1][metric])
    if at == "best":
        pick = max if higher_is_better(metric) else min
        return float(pick(r[metric] for r in rows))
    epoch = parse_at(at)
    return next((float(r[metric]) for r in rows if r.get("epoch") == epoch), None)


def parse_at(at: str) -> int | None:
    """Check ``--at``; the epoch for ``epoch=N``."""
    if at in ("final", "best"):
        return None
    match = re.fullmatch(r"epoch=(\d+)", at)
    if not match:
        raise UsageError(f"--at {at!r} is not allowed; use final, best or epoch=N")
    return int(match.group(1))
