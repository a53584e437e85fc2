"""Weight diagnostics: per-layer statistics, weights.csv, the gap, plots, and what L1/L2 do."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from regbench.core.rundir import RunDir
from regbench.figures.drawing import draw_now
from regbench.regularization.weights import (
    WEIGHT_COLUMNS,
    add_gap,
    compare_histograms,
    final_weights,
    redraw_weight_plots,
    run_weight_summary,
    summarize_weights,
    weight_rows,
)
from tests.conftest import run_dirs


def test_layer_statistics_of_known_weights() -> None:
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.0005, -2.0], [3.0, -0.002, 0.0]]))
    other = nn.Sequential(nn.Linear(2, 2, bias=False))
    rows = weight_rows(4, {"g": layer, "d": other}, threshold=1e-3)
    assert [(r["network"], r["layer"]) for r in rows] == [("g", "weight"), ("d", "0.weight")]
    row = rows[0]
    assert list(row) == list(WEIGHT_COLUMNS)
    assert row["epoch"] == 4 and row["size"] == 6
    assert row["l1"] == pytest.approx(5.0025)
    assert row["l2"] == pytest.approx(math.sqrt(4 + 9 + 0.0005**2 + 0.002**2))
    assert row["near_zero"] == pytest.approx(3 / 6)  # 0, 0.0005, 0; not 0.002
    assert row["max_abs"] == pytest.approx(3.0)


def test_gap_only_where_both_losses_exist() -> None:
    row = {"train_loss": 0.25, "test_loss": 0.75}
    add_gap(row)
    assert row["gap"] == 0.5
    row = {"train_loss": 0.25, "train_eval_loss": 0.5, "test_loss": 0.75}
    add_gap(row)
    assert row["gap"] == 0.25  # eval-mode training loss, when the study logs it
    gan_row = {"d_loss": 1.0, "g_loss": 2.0}
    add_gap(gan_row)
    assert "gap" not in gan_row


def test_summary_weighs_layers_by_size_at_the_last_epoch() -> None:
    common = {"network": "model", "l1": 1.0, "max_abs": 0.5}
    rows = [
        {**common, "epoch": 1, "layer": "a", "size": 10, "l2": 9.0, "near_zero": 0.0},
        {**common, "epoch": 2, "layer": "a", "size": 30, "l2": 3.0, "near_zero": 0.5},
        {**common, "epoch": 2, "layer": "b", "size": 10, "l2": 4.0, "near_zero": 0.1},
    ]
    assert summarize_weights(rows) == pytest.approx(
        {
            "weights_near_zero": (15 + 1) / 40,
            "weights_l1": 2.0,
            "weights_l2": 5.0,
            "weights_max_abs": 0.5,
        }
    )
    assert summarize_weights([]) == {}


def test_run_writes_weights_csv_gap_and_plots(cli, mnist_root: Path, tmp_path: Path) -> None:
    args = ("run", "epochs=2", "l1=1e-4", "weight_threshold=0.01", f"data.root={mnist_root}")
    assert cli(*args, "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    for name in ("weights.csv", "weight_hist.png", "weight_norms.png"):
        assert (run / name).stat().st_size > 0, name
    figures = [run / "weight_hist.png", run / "weight_norms.png"]
    for figure in figures:
        figure.unlink()
    # From model.pt and weights.csv: the drawings `regbench plot` hands to the drawer.
    draw_now(redraw_weight_plots(run, "redrawn"))
    assert all(figure.stat().st_size > 0 for figure in figures)

    with (run / "metrics.csv").open(newline="") as f:
        metrics = list(csv.DictReader(f))
    for row in metrics:
        # Against the training data in eval mode (dropout off), as every study measures it.
        assert float(row["gap"]) == float(row["test_loss"]) - float(row["train_eval_loss"])

    rows = RunDir(run).read_weights()
    layers = ["layers.0.weight", "layers.3.weight", "layers.6.weight"]
    # Epoch 0 (eval_at_start): the untrained weights, then each training evaluation.
    assert [(r["epoch"], r["layer"]) for r in rows] == [(e, n) for e in (0, 1, 2) for n in layers]
    assert [r["size"] for r in rows[:3]] == [784 * 512, 512 * 256, 256 * 10]
    # The last row describes exactly the saved final weights.
    final = final_weights(RunDir(run))
    for row in rows[-3:]:
        w = torch.from_numpy(final[row["layer"]]).double()
        assert row["l1"] == pytest.approx(w.abs().sum().item(), rel=1e-12)
        assert row["l2"] == pytest.approx(w.norm().item(), rel=1e-12)
        assert row["near_zero"] == (w.abs() < 0.01).double().mean().item()
        assert row["max_abs"] == w.abs().max().item()


def train_regression(overrides: list[str], seed: int, out: Path) -> RunDir:
    """The regression study through the real data source and loop (no plots: speed)."""
    from regbench.compose.hydra import load_settings
    from regbench.core.progress import Reporter
    from regbench.core.seeding import seed_everything
    from regbench.data import load_data
    from regbench.studies import study_class
    from regbench.training.loop import SoloTrainer
    from regbench.training.session import RunSession

    settings = load_settings(["model=regression", f"seed={seed}", *overrides])
    seed_everything(seed)
    data = load_data(settings.data, seed)
    study = study_class("regression")(settings, data, torch.device("cpu"))
    trainer = SoloTrainer(study, settings)
    folder = out / f"x-{len(list(out.glob('x-*')))}"
    session = RunSession.open_run(settings, study, [], Reporter(), trainer.state, folder=folder)
    trainer.train(session, Reporter())
    session.run_dir.save_model(study.state_dicts())
    return session.run_dir


def test_l1_makes_weights_sparse_and_l2_shrinks_them(tmp_path: Path, one_thread: None) -> None:
    """Regression model, 3 seeds, SGD: against no penalty, L1 raises the fraction of weights
    near zero, and l2 and weight_decay lower the L2 norm, for every seed."""
    base = ["epochs=100", "eval_every=100", "model.hidden=[32,32]", "optimizer=sgd", "lr=0.05"]
    penalties = {"none": [], "l1": ["l1=1e-3"], "l2": ["l2=1e-3"], "wd": ["weight_decay=1e-2"]}
    runs = {
        name: [train_regression(base + extra, seed, tmp_path / name) for seed in (0, 1, 2)]
        for name, extra in penalties.items()
    }
    stats = {name: [run_weight_summary(r) for r in group] for name, group in runs.items()}
    for seed in range(3):
        none = stats["none"][seed]
        assert stats["l1"][seed]["weights_near_zero"] > none["weights_near_zero"] + 0.1
        assert stats["l2"][seed]["weights_l2"] < none["weights_l2"]
        assert stats["wd"][seed]["weights_l2"] < none["weights_l2"]

    figure = compare_histograms(runs, tmp_path / "overlaid.png", "regression, 3 seeds")
    assert figure.stat().st_size > 0
