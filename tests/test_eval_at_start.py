"""eval_at_start: the untrained model evaluated before the first step, as epoch 0 of metrics.csv;
eval_every, early stopping and --at count training epochs only; runs made before the key rerun
without it."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from regbench.analysis.runs import row_at, selected_row
from regbench.core.config import EarlyStopConfig
from regbench.core.metrics import loss
from regbench.training.early_stop import Selector
from tests.conftest import run_dirs

# A 4-epoch regression with dropout and MC dropout: the evaluations draw masks from the global
# RNG, so an epoch-0 evaluation that disturbed it would change every trained number after it.
RUN = ["model=regression", "epochs=4", "eval_every=2", "threads=1", "device=cpu", "plots=none"]
RUN += ["model.hidden=[16]", "dropout=0.3", "mc_samples=3", "-q"]
TRAIN_TERMS = ("train_loss", "l1_penalty", "l2_penalty", "total_loss")


def rows_of(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def without_seconds(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_epoch_0_is_evaluated_by_default_and_changes_no_trained_number(cli, tmp_path) -> None:
    assert cli("run", *RUN, "name=start").exit_code == 0
    assert cli("run", *RUN, "eval_at_start=false", "name=legacy").exit_code == 0
    (start,) = run_dirs(tmp_path / "outputs/start")
    (legacy,) = run_dirs(tmp_path / "outputs/legacy")
    with_start, without = rows_of(start), rows_of(legacy)
    # eval_every=2 still evaluates at 2 and 4 (and the last): epoch 0 is no training epoch.
    assert [r["epoch"] for r in with_start] == ["0", "2", "4"]
    assert [r["epoch"] for r in without] == ["2", "4"]
    untrained = with_start[0]
    assert all(untrained[term] == "nan" for term in TRAIN_TERMS)  # no step taken: no mean
    for metric in ("train_eval_loss", "val_loss", "test_loss", "mc_test_loss", "gap"):
        assert math.isfinite(float(untrained[metric])), metric
    assert without_seconds(with_start[1:]) == without_seconds(without)  # bitwise, through repr
    with (start / "weights.csv").open(newline="") as f:  # the untrained weights' statistics too
        assert {row["epoch"] for row in csv.DictReader(f)} == {"0", "2", "4"}
    assert json.loads((start / "summary.json").read_text())["epochs_completed"] == 4


def test_a_resume_never_evaluates_epoch_0_again_nor_may_turn_it_off(cli, tmp_path) -> None:
    assert cli("run", *RUN, "name=full").exit_code == 0
    assert cli("run", *RUN, "epochs=2", "name=cut").exit_code == 0
    (full,), (cut,) = run_dirs(tmp_path / "outputs/full"), run_dirs(tmp_path / "outputs/cut")
    config = cut / "config.yaml"
    summary = json.loads((cut / "summary.json").read_text())
    (cut / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    config.write_text(config.read_text().replace("epochs: 2", "epochs: 4"))
    edited = config.read_text()
    config.write_text(edited.replace("eval_at_start: true", "eval_at_start: false"))
    refused = cli("resume", str(cut))
    assert refused.exit_code == 2 and "eval_at_start: True -> False" in refused.stderr

    config.write_text(edited)
    assert cli("resume", str(cut), "-q").exit_code == 0
    assert [r["epoch"] for r in rows_of(cut)] == ["0", "2", "4"]
    assert without_seconds(rows_of(cut)) == without_seconds(rows_of(full))


def test_a_run_made_before_the_key_reruns_without_epoch_0(cli, tmp_path) -> None:
    """A folder whose config.yaml predates eval_at_start reads it as false (its legacy value):
    the rerun has no epoch-0 row and reproduces the original's numbers."""
    assert cli("run", *RUN, "eval_at_start=false").exit_code == 0
    (original,) = run_dirs(tmp_path / "outputs")
    config = original / "config.yaml"
    config.write_text(config.read_text().replace("eval_at_start: false\n", ""))
    assert "eval_at_start" not in config.read_text()
    check = cli("rerun", str(original), "--check")
    assert check.exit_code == 0 and "reproduced" in check.stdout, check.stdout + check.stderr
    (rerun,) = [r for r in run_dirs(tmp_path / "outputs") if r != original]
    assert [r["epoch"] for r in rows_of(rerun)] == ["2", "4"]


def test_every_stacked_member_writes_epoch_0(cli, tmp_path) -> None:
    sweep = ["sweep", "--stacked", *RUN, "seed=1,2", "lr=0.01,0.02", "--dir", "s"]
    result = cli(*sweep)
    assert result.exit_code == 0, result.stderr
    members = run_dirs(tmp_path / "s")
    assert len(members) == 4
    for run in members:
        assert json.loads((run / "summary.json").read_text())["stacked"] is True
        rows = rows_of(run)
        assert [r["epoch"] for r in rows] == ["0", "2", "4"]
        assert rows[0]["train_loss"] == "nan" and math.isfinite(float(rows[0]["test_loss"]))
    # Members of one seed differ only in lr: at epoch 0, before any step, they are one model.
    by_seed = {}
    for run in members:
        seed = json.loads((run / "summary.json").read_text())["seed"]
        by_seed.setdefault(seed, []).append(without_seconds(rows_of(run))[0])
    assert all(first == second for first, second in by_seed.values())


# ----------------------------------------------------------------------------- selection
VAL_LOSS = loss("val_loss", "the validation loss", "val")


def observed(values: list[tuple[int, float]], patience: int | None) -> Selector:
    selector = Selector(VAL_LOSS, EarlyStopConfig(patience, None, 0.0, True))
    for epoch, value in values:
        assert not selector.stopped, epoch  # rows after a stop are never shown to it
        selector.observe({"epoch": epoch, "val_loss": value})
    return selector


def test_patience_counts_training_evaluations_only() -> None:
    # Epoch 0 is best; two training evaluations without improvement stop it with patience 2.
    selector = observed([(0, 1.0), (1, 2.0), (2, 2.0)], patience=2)
    assert selector.stopped_epoch == 2 and selector.best_epoch == 0
    # An unusable epoch-0 value counts no more than a usable one: patience 1 is still waiting.
    selector = observed([(0, math.nan)], patience=1)
    assert not selector.stopped and selector.best_epoch is None
    assert observed([(0, math.nan), (1, 2.0)], patience=1).best_epoch == 1
    # An epoch-0 value that training beats: the run goes on as it would without it.
    selector = observed([(0, 3.0), (1, 2.0), (2, 1.5), (3, 1.6)], patience=2)
    assert not selector.stopped and selector.best_epoch == 2 and selector.waited == 1


def test_best_selects_epoch_0_as_the_run_s_selector_does() -> None:
    """--at best (analysis) and the run's own Selector agree: the untrained model can be the
    selected one, when training never beat it on validation; --at epoch=0 reads it."""
    rows = [
        {"epoch": 0, "val_loss": 1.0, "test_loss": 1.1, "train_loss": math.nan},
        {"epoch": 1, "val_loss": 1.2, "test_loss": 1.0, "train_loss": 0.9},
        {"epoch": 2, "val_loss": 1.0, "test_loss": 0.9, "train_loss": 0.8},  # a tie: earliest
    ]
    selector = observed([(r["epoch"], r["val_loss"]) for r in rows], patience=None)
    best = selected_row(rows, VAL_LOSS)
    assert best is not None and best["epoch"] == selector.best_epoch == 0
    assert row_at(rows, "epoch=0") is rows[0] and row_at(rows, "final") is rows[-1]


def test_early_stopping_may_restore_the_untrained_model(cli, tmp_path) -> None:
    """lr=0: training never changes the weights, so epoch 0 stays best; patience 2 counts the
    training evaluations 1 and 2 (not epoch 0) and restores epoch 0's weights."""
    args = ["model=regression", "model.hidden=[16]", "epochs=4", "eval_every=1", "lr=0"]
    result = cli("run", *args, "early_stop.patience=2", "threads=1", "device=cpu", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["selected"]["epoch"] == 0
    stop = summary["early_stop"]
    assert stop["stopped_epoch"] == 2 and stop["restored"] and stop["restored_epoch"] == 0
    assert [r["epoch"] for r in rows_of(run)] == ["0", "1", "2"]
