"""The Python API for scripts and notebooks; the CLI is a thin layer over the same functions.

>>> import regbench
>>> result = regbench.run(["model=regression", "dropout=0.5", "seed=1"])
>>> result.run_dir, result.summary.final["test_loss"]
>>> table = regbench.load_runs("outputs")          # one row per run and epoch (pandas)
>>> table.groupby("dropout")["test_loss"].mean()
>>> comparison = regbench.compare("outputs/sweeps/x", baseline="dropout=0")  # as `regbench compare`
>>> [(row.group.label, row.cells["test_loss"].stats.mean) for row in comparison.rows]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from regbench.comparison import Comparison
    from regbench.session import RunResult


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
    from regbench.seeding import preserved_globals

    # Around the imports too: a library may draw from python's RNG when first imported.
    with preserved_globals():
        from regbench.hydra_app import load_settings
        from regbench.progress import Reporter, RichReporter
        from regbench.runner import execute

        overrides = as_overrides(overrides)
        reporter = Reporter() if quiet else RichReporter()
        return execute(load_settings(overrides), overrides, reporter)


def load_runs(*paths: str | Path) -> pd.DataFrame:
    """A tidy table of every run at or under ``paths``: one row per run and metrics row.

    Columns: ``run`` (folder), ``status``, every config key flattened with dots
    (``model.name``, ``data.root``, ``dropout``, ...), then the metric columns of metrics.csv
    (with weights.csv's ``weights_*`` summaries where a run has them). It is the same run table
    ``compare`` groups (regbench.runs).
    """
    import pandas as pd

    from regbench.runs import find_runs, records

    return pd.DataFrame.from_records(records(find_runs(_paths(paths))))


def compare(
    paths: str | Path | Sequence[str | Path],
    *,
    metrics: Sequence[str] = (),
    at: str = "final",
    over: Sequence[str] = (),
    baseline: str | None = None,
    ci: str = "t",
) -> Comparison:
    """The comparison ``regbench compare PATHS`` prints, as objects: groups over seeds, their
    statistics and the baseline differences; the options are the command's (``--metric``,
    ``--at``, ``--over``, ``--baseline``, ``--ci``). Nothing is written or drawn, and no global
    state (matplotlib backend, working folder) changes; ``regbench.tables`` formats the result.
    Bad options raise ``regbench.RegbenchError`` (a UsageError) with the command's message.
    """
    from regbench.comparison import compare as compare_runs

    given = [paths] if isinstance(paths, str | Path) else list(paths)
    return compare_runs(
        [Path(p) for p in given], metrics=metrics, at=at, over=over, baseline=baseline, ci=ci
    )


def _paths(paths: Sequence[str | Path]) -> list[Path]:
    # Notebooks usually sit next to outputs/, regbench's default out_dir.
    return [Path(p) for p in paths or ("outputs",)]
