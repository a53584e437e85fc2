"""Dropout variants (inverted, vanilla, torch), the ramp schedule, and their reproducibility."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from regbench.compose.hydra import load_settings
from regbench.regularization.dropout import (
    InvertedDropout,
    TorchDropout,
    VanillaDropout,
    apply_schedule,
    make_dropout,
    schedule_factor,
)
from regbench.regularization.penalties import dropout_layer
from tests.conftest import run_dirs

IMPLS = ["inverted", "vanilla", "torch"]
P = 0.3


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.mark.parametrize("impl", IMPLS)
def test_expected_training_activation_equals_test_output(impl: str) -> None:
    """Averaged over masks, training-mode output equals eval-mode output (per unit)."""
    torch.manual_seed(0)
    x = torch.rand(8) + 0.5
    dropout = make_dropout(impl, P)
    samples = dropout(x.expand(200_000, 8))
    dropout.eval()
    test_out = dropout(x)
    assert torch.allclose(samples.mean(dim=0), test_out, rtol=0.01)
    expected_test = x * (1 - P) if impl == "vanilla" else x
    assert torch.allclose(test_out, expected_test)


def _pair(next_scale: float, impl: str) -> nn.Module:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), make_dropout(impl, P), nn.Linear(16, 3))
    with torch.no_grad():
        net[3].weight.mul_(next_scale)
    return net


def test_vanilla_is_inverted_with_the_next_layer_scaled() -> None:
    """Same masks (same seed): vanilla with W equals inverted with W*(1-p), in training and at
    test, up to float error; so the two differ only by a rescaling of the next layer."""
    vanilla, inverted = _pair(1.0, "vanilla"), _pair(1 - P, "inverted")
    x = torch.randn(64, 6)
    torch.manual_seed(7)
    train_v = vanilla(x)
    torch.manual_seed(7)
    train_i = inverted(x)
    assert not torch.equal(train_v, vanilla.eval()(x))  # the masks really were drawn
    assert torch.allclose(train_v, train_i, atol=1e-6)
    inverted.eval()
    assert torch.allclose(vanilla(x), inverted(x), atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
def test_eval_mode_disables_the_mask(impl: str) -> None:
    dropout = make_dropout(impl, 0.5).eval()
    x = torch.randn(1000)
    state = torch.get_rng_state()
    first, second = dropout(x), dropout(x)
    assert torch.equal(first, second)
    assert (first != 0).all()
    assert torch.equal(torch.get_rng_state(), state)  # no random numbers drawn at test


@pytest.mark.parametrize("impl", IMPLS)
def test_masks_come_from_torchs_seeded_rng(impl: str) -> None:
    dropout = make_dropout(impl, 0.5)
    x = torch.ones(1000)
    outs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        outs.append(dropout(x))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])


def test_factory_builds_the_configured_variant() -> None:
    for impl, cls in (
        ("inverted", InvertedDropout),
        ("vanilla", VanillaDropout),
        ("torch", TorchDropout),
    ):
        module = dropout_layer(load_settings([f"dropout_impl={impl}", "dropout=0.4"]))
        assert type(module) is cls and module.p == 0.4
    assert isinstance(dropout_layer(load_settings(["dropout_impl=torch"])), nn.Dropout)
    assert dropout_layer(load_settings(["dropout=0.4"]), p=0.1).p == 0.1


def test_ramp_schedule_values() -> None:
    assert [schedule_factor("ramp", 4, e) for e in range(1, 8)] == [0, 0.25, 0.5, 0.75, 1, 1, 1]
    assert {schedule_factor("constant", 4, e) for e in range(1, 8)} == {1.0}


def test_loop_hook_sets_p_on_every_dropout_module() -> None:
    settings = load_settings(
        ["dropout=0.4", "dropout_schedule=ramp", "dropout_ramp_epochs=2", "dropout_impl=vanilla"]
    )
    nets = [
        nn.Sequential(nn.Linear(2, 2), dropout_layer(settings)),
        nn.Sequential(dropout_layer(settings, p=0.2)),
    ]
    seen = []
    for epoch in (1, 2, 3):
        apply_schedule(nets, settings, epoch)
        seen.append((nets[0][1].p, nets[1][0].p))
    assert seen == [(0.0, 0.0), (0.2, 0.1), (0.4, 0.2)]


def test_unknown_impl_is_a_one_line_usage_error(cli) -> None:
    result = cli("run", "dropout_impl=gaussian")
    assert result.exit_code == 2
    assert "dropout_impl" in result.stderr and "inverted, vanilla, torch" in result.stderr
    assert "Traceback" not in result.stderr


def test_ramp_trains_its_first_epoch_without_dropout(cli, mnist_root: Path, tmp_path: Path):
    """A ramp starts at p=0: one ramped epoch at dropout=0.5 is bitwise a dropout=0 epoch."""

    def metrics(name: str, *overrides: str) -> list[dict[str, str]]:
        args = ("run", "epochs=1", f"data.root={mnist_root}", f"name={name}", "-q")
        assert cli(*args, *overrides).exit_code == 0
        (run,) = run_dirs(tmp_path / "outputs" / name)
        return read_rows(run / "metrics.csv")

    ramp = metrics("ramp", "dropout=0.5", "dropout_schedule=ramp")
    assert ramp == metrics("none", "dropout=0")
    assert ramp != metrics("constant", "dropout=0.5")


def test_vanilla_ramp_mc_run_resumes_bitwise(cli, mnist_root: Path, tmp_path: Path) -> None:
    """Resume with the schedule, MC passes and weights.csv: same rows as an uninterrupted run,
    also when the run was killed after writing weights.csv rows but before the checkpoint."""
    args = (
        "dropout=0.4",
        "dropout_impl=vanilla",
        "dropout_schedule=ramp",
        "dropout_ramp_epochs=2",
        "mc_samples=3",
        f"data.root={mnist_root}",
    )
    assert cli("run", *args, "epochs=3", "name=full", "-q").exit_code == 0
    assert cli("run", *args, "epochs=2", "name=cut", "-q").exit_code == 0
    (full,) = run_dirs(tmp_path / "outputs" / "full")
    (cut,) = run_dirs(tmp_path / "outputs" / "cut")
    config = (cut / "config.yaml").read_text()
    (cut / "config.yaml").write_text(config.replace("\nepochs: 2\n", "\nepochs: 3\n"))
    summary = json.loads((cut / "summary.json").read_text())
    (cut / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    with (cut / "weights.csv").open("a") as f:  # a row the checkpoint never saw
        f.write("3,model,layers.0.weight,1,0.0,0.0,1.0,0.0\n")

    assert cli("resume", str(cut), "-q").exit_code == 0
    assert read_rows(cut / "metrics.csv") == read_rows(full / "metrics.csv")
    assert read_rows(cut / "weights.csv") == read_rows(full / "weights.csv")
