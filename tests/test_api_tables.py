"""The API's tables come typed for pandas: a comparison's key columns as numbers (dropout sorts
0, 0.25, 0.5, not as text), seeds as lists, seed counts as nullable integers; the runs table
gives one row per run with ``final()`` and ``selected()``; results print short."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import regbench

GRID = ["model=regression", "epochs=3", "eval_every=1", "data.n_train=32"]
GRID += ["dropout=0,0.5,0.25", "seed=1,2,3"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> regbench.api.SweepOutcome:
    out = tmp_path_factory.mktemp("tables")
    return regbench.sweep([*GRID, f"out_dir={out}"], dir=out / "sweep")


def test_compare_table_has_typed_columns(swept) -> None:
    table = regbench.compare(swept.sweep_dir, baseline="dropout=0", plots=False).table
    assert table["dropout"].dtype == "float64"
    assert table.sort_values("dropout")["dropout"].tolist() == [0.0, 0.25, 0.5]
    assert table["seeds"].tolist() == [[1, 2, 3]] * 3
    assert table["test_loss_seeds"].map(type).eq(list).all()
    for column in ("test_loss_seeds_needed", "test_loss_seeds_needed_low"):
        assert table[column].dtype == pd.Int64Dtype()
    baseline = table[table["baseline"]]
    assert baseline["test_loss_seeds_needed"].isna().all()  # no count against itself: <NA>
    assert table["n"].dtype == "int64" and table["test_loss_mean"].dtype == "float64"


def test_final_rows_give_the_numbers_compare_reports(swept) -> None:
    runs = swept.runs
    assert len(runs) == 9 * 4  # a row per run and epoch, 0 (the untrained model) to 3
    final = runs.final()
    assert len(final) == 9 and set(final["epoch"]) == {3}
    table = swept.compare(plots=False).table.set_index("dropout")
    means = final.groupby("dropout")["test_loss"].mean()
    for dropout, mean in means.items():
        assert mean == pytest.approx(table.loc[float(dropout), "test_loss_mean"])


def test_selected_rows_are_each_runs_best_by_the_metric(swept) -> None:
    runs = swept.runs
    chosen = runs.selected("val_loss")
    assert len(chosen) == 9
    best = runs.groupby("run")["val_loss"].min()
    assert (chosen.set_index("run")["val_loss"] == best.loc[chosen["run"]].values).all()
    assert runs.selected("test_acc" if "test_acc" in runs else "test_loss") is not None
    with pytest.raises(KeyError, match="no column 'nope'"):
        runs.selected("nope")


def test_results_print_in_one_short_line(swept) -> None:
    compared = regbench.compare(swept.sweep_dir, plots=False)
    assert repr(compared) == f"<ComparisonResult: 3 groups over dropout, from {swept.sweep_dir}>"
    assert repr(swept) == f"<SweepOutcome: {swept.sweep_dir}: 9 completed>"
    assert isinstance(Path(swept.sweep_dir), Path)
