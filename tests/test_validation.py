"""Selection on validation data, never on test: the splits, the selected epoch, early stopping,
and the bad input around them, as users type it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from regbench.compose.hydra import load_settings
from regbench.data import carve_validation, load_data
from tests.conftest import run_dirs

REGRESSION = ["model=regression", "threads=1", "device=cpu", "plots=none", "-q"]
# Trained long with a validation split: the validation loss bottoms out early, then rises.
LONG = [*REGRESSION, "epochs=600", "eval_every=10"]


# ----------------------------------------------------------------------------- splits
def test_a_validation_split_is_disjoint_from_training_and_the_same_for_every_seed() -> None:
    examples = {"x": torch.arange(100), "y": torch.arange(100) * 2}
    train, val, how = carve_validation(examples, 0.1, split_seed=0)
    assert val is not None and len(val["x"]) == 10 and len(train["x"]) == 90
    assert set(train["x"].tolist()).isdisjoint(val["x"].tolist())
    assert sorted([*train["x"].tolist(), *val["x"].tolist()]) == list(range(100))
    assert torch.equal(val["y"], val["x"] * 2)  # rows stay whole
    again = carve_validation(examples, 10, split_seed=0)[1]
    assert again is not None and torch.equal(again["x"], val["x"])  # a count, the same split
    other = carve_validation(examples, 0.1, split_seed=1)[1]
    assert other is not None and not torch.equal(other["x"], val["x"])
    assert "10 of 100" in how


def test_the_embedded_digits_split_ignores_the_run_seed() -> None:
    settings = load_settings(["data=mnist_small"])
    one, two = load_data(settings.data, seed=1), load_data(settings.data, seed=2)
    assert one.val is not None and two.val is not None
    assert torch.equal(one.val["x"], two.val["x"]) and torch.equal(one.train["y"], two.train["y"])
    assert one.n_train + one.n_val == 4000 and one.n_val == 400
    # No validation image is a training image (the file has no duplicates to blur this).
    train = {bytes(image.numpy()) for image in one.train["x"]}
    assert not any(bytes(image.numpy()) in train for image in one.val["x"])


def test_the_toy_regression_draws_validation_points_after_the_others() -> None:
    """Its training and test points are those of a run made before validation points."""
    with_val = load_data(load_settings(["model=regression"]).data, seed=3)
    without = load_data(load_settings(["model=regression", "data.n_val=0"]).data, seed=3)
    assert with_val.n_train == 20 and with_val.n_val == 20 and without.val is None
    assert torch.equal(with_val.train["y"], without.train["y"])
    assert torch.equal(with_val.test["y"], without.test["y"])


# ----------------------------------------------------------------------------- early stopping
def read_rows(run: Path) -> list[dict[str, float]]:
    lines = (run / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, map(float, line.split(",")), strict=True)) for line in lines[1:]]


def test_early_stopping_stops_and_restores_the_selected_epoch(cli, tmp_path: Path) -> None:
    result = cli("run", *LONG, "early_stop.patience=5", "out_dir=stopped")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "stopped")
    summary = json.loads((run / "summary.json").read_text())
    rows = read_rows(run)
    selected, stop = summary["selected"], summary["early_stop"]
    assert summary["status"] == "completed" and stop["stopped"] and stop["restored"]
    assert summary["epochs_completed"] == stop["stopped_epoch"] < 600
    best = min(rows, key=lambda r: r["val_loss"])
    assert selected == {
        "epoch": int(best["epoch"]),
        "metric": "val_loss",
        "value": best["val_loss"],
    }
    # Five evaluations without a better val_loss, then it stopped.
    assert stop["stopped_epoch"] == selected["epoch"] + 5 * 10

    # model.pt holds the selected epoch's weights: those of the same run trained that far.
    same = cli("run", *LONG[:-2], f"epochs={selected['epoch']}", "eval_every=10", "out_dir=short")
    assert same.exit_code == 0, same.stderr
    (short,) = run_dirs(tmp_path / "short")
    restored = torch.load(run / "model.pt", weights_only=True)["model"]
    trained = torch.load(short / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(restored[name], trained[name]) for name in trained)

    # compare --at final reads the weights the run ended with: the selected epoch's row.
    shown = cli("compare", str(run), "--out", "c", "--no-plots")
    assert shown.exit_code == 0, shown.stderr
    assert "their selected epoch" in shown.stderr + shown.stdout


@pytest.mark.slow
def test_a_stacked_member_that_stops_matches_its_solo_run(cli, tmp_path: Path) -> None:
    grid = [*LONG, "early_stop.patience=5", "seed=1,2"]
    assert cli("sweep", *grid, "--stacked", "--dir", "stacked").exit_code == 0
    assert cli("sweep", *grid, "--dir", "solo").exit_code == 0
    for stacked in run_dirs(tmp_path / "stacked"):
        solo = tmp_path / "solo" / stacked.name
        a, b = (json.loads((r / "summary.json").read_text()) for r in (stacked, solo))
        assert a["early_stop"]["stopped_epoch"] == b["early_stop"]["stopped_epoch"]
        assert a["selected"]["epoch"] == b["selected"]["epoch"]
        # The stacked launcher's tolerance (batched products round differently).
        assert a["selected"]["value"] == pytest.approx(b["selected"]["value"], rel=1e-3)


@pytest.mark.slow
def test_a_resumed_run_goes_on_counting_and_a_rerun_stops_at_the_same_epoch(
    cli, tmp_path: Path
) -> None:
    result = cli("run", *LONG, "early_stop.patience=5", "out_dir=a")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "a")
    stopped = json.loads((run / "summary.json").read_text())["early_stop"]["stopped_epoch"]
    check = cli("rerun", str(run), "--check")
    assert check.exit_code == 0 and "reproduced" in check.stdout, check.stdout + check.stderr
    # Interrupted two evaluations before it stopped: the resume stops where the run did.
    summary = json.loads((run / "summary.json").read_text())
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    assert checkpoint["selector"]["stopped_epoch"] == stopped
    # (A completed run is not resumed; that the state is in the checkpoint is what resumes use.)
    assert summary["status"] == "completed"


# ----------------------------------------------------------------------------- bad input
BAD = [
    (["data.n_val=0", "early_stop.patience=3"], "needs validation data"),
    (["data.n_val=-1"], "data.n_val=-1 is out of range"),
    (["early_stop.patience=0"], "early_stop.patience=0 is out of range"),
    (["early_stop.patience=3", "early_stop.metric=test_loss"], "use early_stop.metric=val_loss"),
    (["early_stop.patience=3", "early_stop.metric=gap"], "early_stop.metric=gap has no direction"),
    (["early_stop.patience=3", "early_stop.metric=val_acc"], "logs no such metric"),
]


@pytest.mark.parametrize(("overrides", "says"), BAD, ids=lambda v: str(v))
def test_bad_selection_input_is_one_line_and_no_folder(cli, tmp_path: Path, overrides, says):
    result = cli("run", *REGRESSION, *overrides, "out_dir=o")
    assert result.exit_code == 2, result.stderr
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


MNIST_BAD = [
    (["data.val_size=-0.1"], "data.val_size=-0.1 is out of range"),
    (["data.val_size=abc"], "data.val_size='abc' is not a number"),
    (["data.val_size=1.5"], "neither a fraction in (0, 1) nor a whole count"),
    (["data.val_size=4000"], "leaving none to train on"),
    (["data.val_size=0", "early_stop.patience=2"], "set data.val_size"),
]


@pytest.mark.parametrize(("overrides", "says"), MNIST_BAD, ids=lambda v: str(v))
def test_bad_validation_sizes_are_one_line_and_no_folder(cli, tmp_path: Path, overrides, says):
    result = cli("run", "data=mnist_small", "epochs=1", *overrides, "out_dir=o", "-q")
    assert result.exit_code == 2, result.stderr
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
