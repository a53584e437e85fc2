"""MC averaging over k dropout masks against the weight-scaling rule (experiment
mc_vs_weight_scaling, Srivastava et al. 2014 Figure 11): one training per seed, then an
evaluation-only step over the run's model.pt; the comparison reads one replicate per k."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from regbench.regularization.mc_dropout import probability_metrics, running_means
from tests.test_experiments import check_expectations, experiment_block, only_sweep, small_mnist


def test_running_means_average_the_first_k_calls() -> None:
    calls = iter(torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]]))
    found = dict(running_means(lambda: next(calls), [4, 1, 2]))
    assert sorted(found) == [1, 2, 4]  # max(k) = 4 calls, the fifth never made
    assert [found[k].item() for k in (1, 2, 4)] == [1.0, 1.5, 2.5]


def test_probability_metrics_on_literal_probabilities() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 1])
    found = probability_metrics(probs, labels)
    assert found["test_acc"] == pytest.approx(2 / 3)
    nll = -(torch.tensor([0.9, 0.8, 0.4]).log().mean().item())
    assert found["test_loss"] == pytest.approx(nll, rel=1e-6)


def curve(run: Path) -> dict[int, dict[str, float]]:
    with (run / "mc_curve.csv").open() as f:
        return {int(r["mc_masks"]): {k: float(v) for k, v in r.items()} for r in csv.DictReader(f)}


@pytest.mark.slow
def test_the_experiment_trains_once_per_seed_and_compares_each_k(cli, tmp_path: Path) -> None:
    mnist = small_mnist(tmp_path / "data")
    args = ("+experiment=mc_vs_weight_scaling", *mnist, "seed=1,2,3", "model.hidden=[16]")
    result = cli("sweep", *args, "experiment.mc_masks=[1,5,20]", "plots=none")
    assert result.exit_code == 0, result.stderr
    sweep = only_sweep(tmp_path)
    runs = sorted(p for p in sweep.iterdir() if (p / "model.pt").is_file() and not p.is_symlink())
    assert len(runs) == 3  # one training per seed
    for run in runs:
        assert sorted(curve(run)) == [0, 1, 5, 20]
    with (sweep / "comparison.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(float(r["mc_masks"]) for r in rows) == [0, 1, 5, 20]
    assert [r["mc_masks"] for r in rows if r["baseline"] == "True"] == ["0"]
    assert all(r["n"] == "3" for r in rows)  # each k: the three seeds' nets
    check_expectations(result.stdout, experiment_block("mc_vs_weight_scaling"))
    later = cli("compare", str(sweep))  # reads the curves again, trains nothing
    assert later.exit_code == 0 and "Answer: " in later.stdout


@pytest.mark.slow
def test_without_dropout_every_k_is_the_weight_scaling_rule(cli, tmp_path: Path) -> None:
    """p = 0: no mask drops anything, so the MC average is the deterministic net, exactly."""
    mnist = small_mnist(tmp_path / "data")
    args = ("+experiment=mc_vs_weight_scaling", *mnist, "seed=1,2", "model.hidden=[16]")
    result = cli("sweep", *args, "dropout=0", "experiment.mc_masks=[1,3]", "plots=none", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = {p.resolve() for p in only_sweep(tmp_path).glob("*seed=1")}
    found = curve(run)
    assert found[1]["test_acc"] == found[3]["test_acc"] == found[0]["test_acc"]
    assert found[3]["test_loss"] == pytest.approx(found[0]["test_loss"], rel=1e-6)


def test_a_study_without_a_mask_curve_is_refused_before_training(cli, tmp_path: Path) -> None:
    result = cli(
        "sweep", "+experiment=dropout_overfit", "+experiment.mc_masks=[1,2]", "seed=1", "--dry-run"
    )
    assert result.exit_code == 2
    assert "experiment.mc_masks: model=regression has no MC mask curve" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()
