"""The API's tables as pandas DataFrames with their proper types: the runs table (a row per run
and evaluation) with ``final()`` and ``selected()``, and the comparison table with numeric key
columns, seeds as lists and nullable integer seed counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from regbench.core.metrics import undeclared

if TYPE_CHECKING:
    from regbench.analysis.comparison import Comparison

# comparison.csv writes these blank where there is no count; here they are <NA>, not "".
COUNT_SUFFIXES = ("_seeds_needed", "_seeds_needed_low", "_seeds_needed_high")
SEED_LIST_SUFFIXES = ("_seeds", "_seeds_left_out")


class RunsFrame(pd.DataFrame):
    """``regbench.load_runs``'s table: one row per run and evaluation. A group-by over it
    averages every epoch of every run; take one row per run first, as ``compare --at`` does::

        runs.final().groupby("dropout")["test_loss"].mean()      # --at final
        runs.selected("val_loss").groupby("dropout")["test_loss"].mean()  # --at best
    """

    @property
    def _constructor(self) -> type[RunsFrame]:  # filtered or sorted, still a RunsFrame
        return RunsFrame

    def final(self) -> RunsFrame:
        """Each run's last evaluation (its metrics.csv keeps epoch order): ``--at final``."""
        return self.groupby("run", sort=False).tail(1)

    def selected(self, metric: str = "val_loss", direction: str | None = None) -> RunsFrame:
        """Each run's evaluation with the best ``metric`` (the earliest among equal values),
        as ``compare --at best --select METRIC``; ``direction`` ("min" or "max") defaults to
        the one its name implies (``*_acc`` higher is better). Runs without the metric are
        left out."""
        if metric not in self.columns:
            raise KeyError(f"no column {metric!r} in the runs table")
        best = direction or undeclared(metric).direction
        scored = self[pd.to_numeric(self[metric], errors="coerce").notna()]
        values = pd.to_numeric(scored[metric])
        picks = values.groupby(scored["run"], sort=False)
        return self.loc[picks.idxmax() if best == "max" else picks.idxmin()]


def comparison_table(comparison: Comparison) -> pd.DataFrame:
    """comparison.csv's rows as a DataFrame: each varying key as its own type (``dropout`` a
    float column, so it sorts as numbers), ``seeds`` and the per-metric seed columns as lists of
    ints, the seeds-needed counts as nullable integers ("Int64")."""
    from regbench.analysis.tables import csv_rows

    records = csv_rows(comparison)
    for record, row in zip(records, comparison.rows, strict=True):
        record.update({key: _plain(row.group.config.get(key)) for key in comparison.varying})
        record["seeds"] = sorted(run.seed for run in row.group.completed)
        for column in [c for c in record if c.endswith(SEED_LIST_SUFFIXES)]:
            record[column] = [int(s) for s in str(record[column]).split()]
    table = pd.DataFrame.from_records(records)
    for key in comparison.varying:
        table[key] = _key_column(table[key].tolist())
    for column in [c for c in table.columns if c.endswith(COUNT_SUFFIXES)]:
        table[column] = pd.array([None if v == "" else v for v in table[column]], dtype="Int64")
    return table


def _plain(value: Any) -> Any:
    """A config value as Python has it (the run table keeps lists as tuples, to hash them)."""
    return list(value) if isinstance(value, tuple) else value


def _key_column(values: Sequence[Any]) -> Any:
    """Numbers as numbers: integers as "Int64", any float makes it float; else as they are."""
    present = [v for v in values if v is not None]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
    if not present or not numeric:
        return pd.Series(values, dtype=object)
    if all(isinstance(v, int) for v in present):
        return pd.array(values, dtype="Int64")
    return pd.Series([float("nan") if v is None else float(v) for v in values], dtype=float)
