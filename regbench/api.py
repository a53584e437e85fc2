"""The Python API for scripts and notebooks; the CLI is a thin layer over the same functions.

>>> import regbench
>>> result = regbench.run(["model=regression", "dropout=0.5", "seed=1"])
>>> result.run_dir, result.summary.final["test_loss"]
>>> swept = regbench.sweep(["model=regression", "dropout=0,0.5", "seed=1,2,3"])
>>> swept.comparison                                # the comparison table (pandas), best first
>>> swept.runs.groupby("dropout")["test_loss"].mean()  # one row per run and epoch
>>> swept.figures["loss_curves"]                    # a matplotlib Figure; a notebook shows it
>>> regbench.compare("outputs/sweeps/x", baseline="dropout=0").table  # as `regbench compare`

Every call leaves the caller's process as it found it (``leaving_no_trace``): torch's threads
and flags, every RNG, the environment, logging and a running Hydra app's globals; matplotlib's
backend is never touched (figures are plain ``Figure`` objects, pyplot is never imported).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.core.errors import Notice, RegbenchError, UsageError
from regbench.figures.drawing import in_workers

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from regbench.analysis.comparison import Comparison
    from regbench.training.session import RunResult


def as_overrides(overrides: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """Overrides as the command line takes them: a list of ``key=value`` strings, or a dict
    (``{"dropout": 0.5, "model.hidden": [64, 32]}``). A bare string is refused: iterated, it
    would be its characters."""
    if isinstance(overrides, str):
        raise UsageError(
            f"overrides must be a list of key=value strings or a dict, not the string "
            f"{overrides!r}; e.g. regbench.run({overrides.split()!r})"
        )
    if isinstance(overrides, Mapping):
        return [f"{key}={_value(value)}" for key, value in overrides.items()]
    return list(overrides)


def _value(value: Any) -> str:
    """A Python value in Hydra's override syntax (lists as [a,b], None as null)."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def run(overrides: Sequence[str] | Mapping[str, Any] = (), *, quiet: bool = True) -> RunResult:
    """Train one model, exactly like ``regbench run OVERRIDES...``.

    Returns a RunResult: ``run_dir`` (a RunDir; ``.path`` is the folder), ``summary`` (the typed
    summary.json) and ``rows`` (the metrics rows). Bad overrides raise ``regbench.ConfigError``.
    The caller's torch threads, determinism flags, RNG states and matplotlib backend are as
    they were afterwards.
    """
    overrides = as_overrides(overrides)
    # Around the imports too: a library may draw from python's RNG when first imported.
    with leaving_no_trace():
        from regbench.compose.hydra import load_settings
        from regbench.core.progress import Reporter, RichReporter
        from regbench.training.runner import execute

        reporter = Reporter() if quiet else RichReporter()
        return execute(load_settings(overrides), overrides, reporter)


def load_runs(*paths: str | Path) -> pd.DataFrame:
    """A tidy table of every run at or under ``paths``: one row per run and metrics row.

    Columns: ``run`` (folder), ``status``, every config key flattened with dots
    (``model.name``, ``data.root``, ``dropout``, ...), then the metric columns of metrics.csv
    (with weights.csv's ``weights_*`` summaries where a run has them). It is the same run table
    ``compare`` groups (regbench.analysis.runs).
    """
    import pandas as pd

    from regbench.analysis.runs import find_runs, records

    return pd.DataFrame.from_records(records(find_runs(_paths(paths))))


def sweep(
    overrides: Sequence[str] | Mapping[str, Any],
    *,
    dir: str | Path | None = None,
    stacked: bool = False,
    stack_memory: float | None = None,
    quiet: bool = True,
) -> SweepOutcome:
    """Run a grid, exactly like ``regbench sweep OVERRIDES... [--dir DIR] [--stacked]``: the
    same job folders, sweep.json and comparison files, resumed or grown when ``dir`` is an
    earlier sweep's folder. A dict takes Hydra's sweep syntax as strings
    (``{"dropout": "0,0.5", "seed": "range(1,4)"}``); ``hydra/launcher=...`` overrides work as on
    the command line. ``stack_memory`` is ``--stack-memory`` (MiB).

    Returns a SweepOutcome: ``sweep_dir``, ``statuses``, ``runs`` and ``comparison`` (pandas),
    ``figures`` (matplotlib). Failed jobs are a ``regbench.core.errors.Notice`` warning, not an
    exception: the outcome still holds the jobs that worked.
    """
    overrides = as_overrides(overrides)
    with leaving_no_trace():
        from regbench.sweeps import plan as sweeps

        launchers = [o for o in overrides if sweeps.is_launcher_override(o)]
        if stacked and launchers:  # as `regbench sweep --stacked` refuses it
            raise UsageError(f"stacked=True is the launcher; drop {launchers[0]}")
        if stack_memory is not None and not stacked:
            raise UsageError("stack_memory goes with stacked=True")
        prepared = sweeps.prepare(overrides, None if dir is None else Path(dir))
        budget = int(stack_memory * 2**20) if stack_memory else None
        launcher = sweeps.choose_launcher(overrides, stacked, budget)
        with in_workers():  # the jobs' figures and then the comparison's, in the same workers
            result = sweeps.run(prepared, overrides, quiet, launcher)
            _write_comparison(result.sweep_dir)
    outcome = SweepOutcome(result.sweep_dir, dict(result.statuses))
    failed = [key for key, status in outcome.statuses.items() if status == "failed"]
    if failed:
        warnings.warn(
            Notice(
                f"{len(failed)} of {len(outcome.statuses)} jobs failed (their summary.json says "
                f"why; regbench.sweep(..., dir={str(result.sweep_dir)!r}) retries them)"
            ),
            stacklevel=2,
        )
    return outcome


def _write_comparison(sweep_dir: Path) -> None:
    """The tables, figures (and an experiment's report) `regbench sweep` writes at the end."""
    from regbench.analysis.comparison import compare as compare_runs
    from regbench.analysis.report import write_sweep_comparison

    try:
        comparison = compare_runs([sweep_dir])
    except RegbenchError as exc:  # e.g. every job failed: nothing to compare, the sweep still ran
        warnings.warn(Notice(f"no comparison: {exc}"), stacklevel=3)
        return
    write_sweep_comparison(sweep_dir, comparison)


@dataclass
class SweepOutcome:
    """A sweep that ran: its folder, each job's status, and its runs, comparison and figures
    (read from the folder when first asked for)."""

    sweep_dir: Path
    statuses: dict[str, str]  # job folder name -> status after this call

    @cached_property
    def runs(self) -> pd.DataFrame:
        """The jobs' runs as ``regbench.load_runs`` gives them: a row per run and evaluation."""
        return load_runs(self.sweep_dir)

    @property
    def comparison(self) -> pd.DataFrame:
        """The comparison table of the sweep (comparison.csv's rows), best first."""
        return self.compared.table

    @property
    def figures(self) -> dict[str, Figure]:
        return self.compared.figures

    @cached_property
    def compared(self) -> ComparisonResult:
        """The sweep's comparison with the command's defaults; ``compare`` for other options."""
        return self.compare()

    def compare(self, **options: Any) -> ComparisonResult:
        """``regbench.compare(sweep_dir, **options)`` (metrics, at, over, baseline, ci)."""
        return compare(self.sweep_dir, **options)


def compare(
    paths: str | Path | Sequence[str | Path],
    *,
    metrics: Sequence[str] = (),
    at: str | None = None,
    over: Sequence[str] = (),
    baseline: str | None = None,
    ci: str = "t",
    margin: float | None = None,
    within: str | None = None,
) -> ComparisonResult:
    """The comparison ``regbench compare PATHS`` prints and draws: ``.table`` (a DataFrame, a
    row per group), ``.verdicts``, ``.notes``, ``.figures`` and ``.runs``; ``.comparison`` holds
    the objects (groups, statistics, baseline differences). The options are the command's
    (``--metric``, ``--at``, ``--over``, ``--baseline``, ``--ci``, ``--margin``; ``within``
    compares each group with the baseline of its own value of a key); left out, they come from
    the runs' experiment when they were swept for one, else the defaults. Nothing is written and no
    global state (matplotlib backend, working folder) changes. Bad options raise
    ``regbench.RegbenchError`` (a UsageError) with the command's message.
    """
    from regbench.analysis.comparison import compare as compare_runs

    given = [paths] if isinstance(paths, str | Path) else list(paths)
    folders = tuple(Path(p) for p in given)
    options = {"at": at, "over": over, "baseline": baseline, "ci": ci, "margin": margin}
    comparison = compare_runs(list(folders), metrics=metrics, within=within, **options)
    return ComparisonResult(comparison, folders)


@dataclass
class ComparisonResult:
    """A comparison in the forms a notebook uses; a notebook cell shows it as its Markdown
    table."""

    comparison: Comparison
    paths: tuple[Path, ...]

    @cached_property
    def table(self) -> pd.DataFrame:
        """comparison.csv as a DataFrame: a row per group, best first, numbers in full."""
        import pandas as pd

        from regbench.analysis.tables import csv_rows

        return pd.DataFrame.from_records(csv_rows(self.comparison))

    @property
    def verdicts(self) -> list[str]:
        """One sentence per group on the main metric against the baseline."""
        from regbench.analysis.tables import verdicts

        return verdicts(self.comparison)

    @property
    def notes(self) -> list[str]:
        return list(self.comparison.notes)

    @cached_property
    def runs(self) -> pd.DataFrame:
        return load_runs(*self.paths)

    @cached_property
    def figures(self) -> dict[str, Figure]:
        """The comparison figures that apply: ``loss_curves``, ``metrics`` and, when exactly two
        keys vary, ``heatmap``. Plain Figures: ``fig.savefig(...)``, or show one in a cell."""
        from regbench.analysis.compare_plots import figures

        drawn = {}
        for file, fig in figures(self.comparison).items():
            fig.tight_layout()
            drawn[file.removeprefix("comparison_").removesuffix(".png")] = fig
        return drawn

    def _repr_markdown_(self) -> str:
        from regbench.analysis.tables import markdown

        return markdown(self.comparison)


def _paths(paths: Sequence[str | Path]) -> list[Path]:
    # Notebooks usually sit next to outputs/, regbench's default out_dir.
    return [Path(p) for p in paths or ("outputs",)]


@contextlib.contextmanager
def leaving_no_trace() -> Iterator[None]:
    """Whatever a run or a sweep changes in the process, put back: torch's threads and flags
    and every RNG (seeding.preserved_globals), the environment (e.g. MLflow's file-store
    switch), logging (Hydra's launchers reconfigure it) and a running Hydra app's globals."""
    from regbench.core.seeding import preserved_globals, preserved_logging

    with preserved_globals(), _kept_environment(), preserved_logging(), _hydra_set_aside():
        yield


@contextlib.contextmanager
def _kept_environment() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def _hydra_set_aside() -> Iterator[None]:
    """A running Hydra app's GlobalHydra and HydraConfig, set aside while regbench composes its
    own configs and runs Hydra's multirun (which refuses to start beside another and clears
    the global when done), and put back after."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    callers = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    hydra_config = HydraConfig.instance().cfg
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        if callers is not None:
            GlobalHydra.instance().initialize(callers)
        HydraConfig.instance().cfg = hydra_config
