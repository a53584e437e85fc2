"""The run table: every run folder under some paths, read once into plain values.

Each :class:`Run` holds its folder, its config flattened to dotted keys (``model.hidden``), its
status and its metrics rows, with weights.csv's summaries (``weights_near_zero``, ``weights_l2``,
...) merged into the rows of the same epochs so that they can be compared like any metric.
``regbench compare`` groups this table and ``regbench.load_runs`` turns it into a DataFrame;
the files themselves are read only through :class:`~regbench.core.rundir.RunDir`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.compose.validate import declared_keys
from regbench.core.config import flatten, with_legacy
from regbench.core.errors import DataError, Notice, UsageError
from regbench.core.metrics import Metric
from regbench.core.rundir import CONFIG, METRICS, RunDir, Status
from regbench.regularization.weights import weight_columns_by_epoch

if TYPE_CHECKING:
    from regbench.core.config import Settings
    from regbench.studies.base import Study


@dataclass(frozen=True)
class Run:
    path: Path
    config: dict[str, Any]  # flattened ("model.hidden"), values hashable (lists as tuples)
    status: Status
    rows: list[dict[str, Any]]
    # The epoch whose weights the run ended with, when not its last row's: early stopping
    # restored the selected epoch (summary.json's early_stop.restored_epoch).
    restored_epoch: int | None = None

    @property
    def seed(self) -> Any:
        return self.config.get("seed")


def find_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Every run folder at or under ``paths`` (run folders, sweep folders, or any folder); a
    run that says it completed but has no metrics is left out with a Notice (a missing model.pt
    only leaves it out of the weight histograms, which say so themselves)."""
    runs = [run for run in map(_readable, RunDir.find(paths)) if run is not None]
    return [run for run in runs if run.rows or not _damaged(run)]


def _readable(run_dir: RunDir) -> Run | None:
    """``load_run``, or None with a Notice when a file of the run cannot be read (bytes that
    are not text, in a received folder): one bad run must not cost the rest of a sweep."""
    try:
        return load_run(run_dir)
    except DataError as exc:
        warnings.warn(Notice(f"skipped {run_dir}: {exc}"), stacklevel=4)
        return None


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
    flat = flatten(run_dir.read_config() or {})
    # Keys the run predates read as their legacy values: it was trained with them.
    config = with_legacy(flat, declared_keys(flat.get("model.name"), flat.get("data.name")))
    summary = run_dir.read_summary()
    used = data_used(summary.data)
    if used is not None:
        config[DATA_USED] = used
    if isinstance(summary.data, Mapping) and summary.data.get("fingerprint"):
        config[DATA_FINGERPRINT] = str(summary.data["fingerprint"])
    status = summary.status
    stop = summary.early_stop if isinstance(summary.early_stop, dict) else {}
    restored = stop.get("restored_epoch")
    # weights.csv's sparsity and norm summaries become metric columns of the same epochs.
    weights = weight_columns_by_epoch(run_dir.read_weights())
    rows = [{**row, **weights.get(int(row["epoch"]), {})} for row in run_dir.read_metrics()]
    return Run(run_dir.path, config, status, rows, restored if isinstance(restored, int) else None)


# The data a run actually trained on, from its summary: the source used (mnist may have fallen
# back to the embedded digits) and the split sizes. Part of a group's identity, like a config
# key: runs on different data are not replicates of one another. The files' fingerprint is
# compared too, as a note (comparison._mixed_notes): runs made before it was recorded lack it.
DATA_USED = "data.used"
DATA_FINGERPRINT = "data.fingerprint"


def data_used(data: Any) -> str | None:
    """``summary.json``'s data record in one comparable line (train/val/test sizes; a run made
    before validation splits had none); None without one."""
    if not isinstance(data, Mapping) or "name" not in data:
        return None
    sizes = [data.get("n_train", "?"), data.get("n_val", 0), data.get("n_test", "?")]
    return f"{data['name']} {'/'.join(map(str, sizes))}"


def records(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The table in long form: one record per run and metrics row (one bare record for a run
    without rows), keyed ``run``, ``status``, the config keys, then the metric columns."""
    out: list[dict[str, Any]] = []
    for run in runs:
        base = {"run": str(run.path), "status": run.status.value, **run.config}
        out += [{**base, **row} for row in run.rows] or [base]
    return out


# ----------------------------------------------------------------------------- metrics
def value_at(
    rows: Sequence[Mapping[str, Any]], metric: str, at: str, select: Metric | None = None
) -> float | None:
    """One run's ``metric`` at ``at``: final | best | epoch=N; None when the run lacks it.
    ``best`` is the epoch ``select`` (a metric with a direction) likes best, and ``metric``
    is reported at that epoch, whatever its own best was."""
    row = row_at(rows, at, select)
    value = row.get(metric) if row is not None else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def row_at(
    rows: Sequence[Mapping[str, Any]], at: str, select: Metric | None = None
) -> Mapping[str, Any] | None:
    """The one row ``at`` names: the last (final), the selected one (best), or epoch=N. Never
    an earlier row standing in for an unusable value: that value is reported as unusable."""
    if not rows:
        return None
    if at == "best":
        if select is None:
            raise ValueError("at='best' needs the metric that selects the epoch")  # a bug
        return selected_row(rows, select)
    if at == "final":
        return rows[-1]
    epoch = parse_at(at)
    return next((r for r in rows if r.get("epoch") == epoch), None)


def selected_row(rows: Sequence[Mapping[str, Any]], select: Metric) -> Mapping[str, Any] | None:
    """The row (the earliest, on ties) whose ``select`` value is best; None without one. The
    row of epoch 0 (the untrained model, eval_at_start) is one of them, as it is for the run's
    own early-stopping Selector (training/early_stop.py): both can select it."""
    scored = [r for r in rows if _finite(r.get(select.name))]
    if not scored:
        return None
    best = select.best(float(r[select.name]) for r in scored)
    return next(r for r in scored if float(r[select.name]) == best)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_at(at: str) -> int | None:
    """Check ``--at``; the epoch for ``epoch=N``."""
    if at in ("final", "best"):
        return None
    match = re.fullmatch(r"epoch=(\d+)", at)
    if not match:
        raise UsageError(f"--at {at!r} is not allowed; use final, best or epoch=N")
    return int(match.group(1))


# ----------------------------------------------------------------------------- trained runs
def saved_settings(folder: Path) -> Settings:
    """The settings a run folder was trained with (its config.yaml, checked), or a UsageError
    naming the file."""
    from regbench.compose.validate import validate
    from regbench.core.config import ConfigError

    try:
        return validate(RunDir.open(folder).read_config() or {})
    except ConfigError as exc:
        raise UsageError(f"{Path(folder) / CONFIG} is not a valid config: {exc}") from exc


@contextmanager
def trained_study(run_dir: RunDir, settings: Settings) -> Iterator[Study]:
    """The run's study rebuilt on the CPU (wherever it trained: evaluating and drawing need no
    accelerator) with its data and model.pt's weights; the process's random states and
    globals are as they were after the block."""
    from regbench.core.progress import Reporter
    from regbench.core.seeding import preserved_globals
    from regbench.training.runner import prepare

    with preserved_globals():
        _, study = prepare(dataclasses.replace(settings, device="cpu"), Reporter())
        for name, state in run_dir.load_model().items():
            study.networks[name].load_state_dict(state)
        yield study
