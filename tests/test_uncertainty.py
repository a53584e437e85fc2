"""MC dropout: the passes, their moments, calibration error, and the MLP's MC metrics."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from regbench.regularization.dropout import make_dropout
from regbench.regularization.mc_dropout import (
    classifier_metrics,
    expected_calibration_error,
    mc_dropout,
    mc_moments,
    regression_metrics,
)
from tests.conftest import run_dirs

CPU = torch.device("cpu")
MC_COLUMNS = ["mc_test_loss", "mc_test_acc", "mc_std", "test_ece", "mc_test_ece"]


def linear_net(p: float, impl: str = "inverted") -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 32), make_dropout(impl, p), nn.Linear(32, 2)).eval()


def test_ece_of_known_predictions() -> None:
    labels = torch.zeros(10, dtype=torch.long)
    probs = torch.tensor([[0.9, 0.1]] * 10)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.1)  # conf .9, acc 1
    labels[:1] = 1  # 9 of 10 right at confidence 0.9: calibrated
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-7)
    # Two bins: 4 at conf 0.6 (2 right) and 6 at conf 0.95 (6 right).
    probs = torch.tensor([[0.6, 0.4]] * 4 + [[0.95, 0.05]] * 6)
    labels = torch.tensor([0, 0, 1, 1] + [0] * 6)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4 * 0.1 + 0.6 * 0.05)


def test_mc_dropout_switches_only_dropout_on_and_leaves_the_training_rng_alone() -> None:
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), make_dropout("vanilla", 0.5)).eval()
    torch.manual_seed(11)
    before = torch.get_rng_state()
    with mc_dropout([net], CPU):
        assert [m.training for m in net] == [False, False, True]
        net(torch.randn(4, 3))  # draws masks (and inputs) from the forked RNG
    assert not any(m.training for m in net)
    assert torch.equal(torch.get_rng_state(), before)


def test_mc_moments_without_dropout_are_the_deterministic_prediction() -> None:
    net, x = linear_net(0.0), torch.randn(16, 5)
    with mc_dropout([net], CPU):
        mean, std = mc_moments(lambda: net(x), 10)
    assert torch.allclose(mean, net(x)) and torch.equal(std, torch.zeros_like(std))


@pytest.mark.parametrize("impl", ["inverted", "vanilla"])
def test_mc_mean_converges_to_the_test_time_output_of_a_linear_net(impl: str) -> None:
    """For a net that is linear after the dropout, E[MC pass] is exactly the test-time output."""
    net, x = linear_net(0.5, impl), torch.randn(4, 5)
    copies = x.repeat(2_000, 1)  # 2,000 copies x 10 passes = 20,000 masks per example
    with torch.no_grad(), mc_dropout([net], CPU):
        mean, std = mc_moments(lambda: net(copies), 10)
    assert (std > 0).all()
    with torch.no_grad():
        assert torch.allclose(mean.view(2_000, 4, 2).mean(dim=0), net(x), atol=0.03)


def test_classifier_and_regression_metrics_on_known_inputs() -> None:
    mean = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    std = torch.tensor([[0.1, 0.1], [0.3, 0.3], [0.0, 0.2]])
    labels = torch.tensor([0, 1, 1])
    metrics = classifier_metrics(mean, mean, std, labels)
    assert metrics["mc_test_acc"] == pytest.approx(2 / 3)
    assert metrics["mc_std"] == pytest.approx((0.1 + 0.3 + 0.0) / 3)  # std of the predicted class
    nll = -(torch.tensor([0.7, 0.8, 0.4]).log().mean().item())
    assert metrics["mc_test_loss"] == pytest.approx(nll)
    assert metrics["test_ece"] == metrics["mc_test_ece"]
    reg = regression_metrics(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 1.5]), torch.ones(2))
    assert reg == pytest.approx({"mc_test_loss": 0.5, "mc_std": 1.0})


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_mlp_mc_metrics_do_not_change_training(cli, mnist_root: Path, tmp_path: Path) -> None:
    def run(name: str, samples: int) -> list[dict[str, str]]:
        args = ("run", "epochs=2", "dropout=0.5", f"mc_samples={samples}", f"name={name}")
        assert cli(*args, f"data.root={mnist_root}", "-q").exit_code == 0
        (run_dir,) = run_dirs(tmp_path / "outputs" / name)
        return _rows(run_dir / "metrics.csv")

    with_mc, without = run("mc", 8), run("plain", 0)
    assert all(column not in without[0] for column in MC_COLUMNS)
    for row, plain in zip(with_mc, without, strict=True):
        assert float(row["mc_std"]) > 0
        assert 0 <= float(row["test_ece"]) <= 1 and 0 <= float(row["mc_test_ece"]) <= 1
        assert 0 <= float(row["mc_test_acc"]) <= 1
        # MC passes run on a forked RNG: the trained weights and test metrics are unchanged.
        assert {k: row[k] for k in plain if k != "seconds"} == {
            k: v for k, v in plain.items() if k != "seconds"
        }


@pytest.mark.parametrize(
    ("model", "overrides", "bands"),
    [
        ("regression", ["epochs=40", "eval_every=20", "mc_samples=20"], 1),
        (
            "rnn",
            [
                "epochs=2",
                "mc_samples=5",
                "data.n_points=160",
                "data.test_points=40",
                "data.val_points=40",
            ],
            4,
        ),
    ],
)
def test_mc_band_on_regression_and_rnn_plots(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str, overrides: list, bands: int
) -> None:
    """mc_samples draws the MC mean with a +-2 std band (regression: on the fit's grid; RNN: on
    the train and test parts, in both panels); the run also writes its weight diagnostics."""
    from regbench.figures import plots

    drawn = []

    def spy(ax, x, mean, std, *args, **kwargs) -> None:
        drawn.append(torch.as_tensor(std))
        draw(ax, x, mean, std, *args, **kwargs)

    draw = plots.draw_mc_band
    monkeypatch.setattr(plots, "draw_mc_band", spy)
    monkeypatch.setenv("REGBENCH_FIGURE_WORKERS", "0")  # the spy sees this process's figures
    result = cli("run", f"model={model}", "dropout=0.3", "device=cpu", *overrides, "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    rows = _rows(run / "metrics.csv")
    assert all(float(row["mc_std"]) > 0 and float(row["mc_test_loss"]) > 0 for row in rows)
    assert len(drawn) == bands and all((std > 0).any() for std in drawn)
    for name in ("weights.csv", "weight_hist.png", "weight_norms.png"):
        assert (run / name).stat().st_size > 0, name
