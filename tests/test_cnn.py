"""The CNN study (issue 26, part 3): channel dropout's maths on literal tensors, the stacked
CNN against its solo runs, and `regbench run model=cnn` as users type it."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from regbench.compose.hydra import load_settings
from regbench.core.progress import Reporter
from regbench.regularization.dropout import InvertedChannelDropout, VanillaChannelDropout
from regbench.stacked.launcher import run_stacked
from regbench.training.runner import execute
from tests.conftest import Result, run_dirs
from tests.test_experiments import only_sweep, small_mnist
from tests.test_regularizers import check_answer, quick_figures

__all__ = ["quick_figures"]  # the fixture, used by name

SMALL_CNN = ("model=cnn", "model.channels=[4,8]", "model.hidden=16", "device=cpu")


def one_error(result: Result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:")
    return line


# ----------------------------------------------------------------------------- channel dropout
def maps_of(out: torch.Tensor) -> torch.Tensor:
    """Each feature map's distinct values: [N, C, k] (k 1 when a map is constant)."""
    return out.flatten(-2)


def test_inverted_channel_dropout_zeroes_whole_maps_and_scales_the_rest() -> None:
    torch.manual_seed(0)
    x = torch.arange(1.0, 1 + 4 * 6 * 9).view(4, 6, 3, 3)
    drop = InvertedChannelDropout(0.25)
    out = drop(x)
    kept = (out != 0).flatten(-2)
    assert torch.equal(kept.all(-1), kept.any(-1))  # a map is dropped whole or kept whole
    assert kept.any() and not kept.all()
    scaled = out[kept.all(-1)]
    assert torch.allclose(scaled, x[kept.all(-1)] / 0.75)  # kept maps: x / (1 - p)
    drop.eval()
    assert torch.equal(drop(x), x)


def test_vanilla_channel_dropout_keeps_unscaled_and_scales_at_test() -> None:
    torch.manual_seed(1)
    x = torch.ones(8, 5, 2, 2)
    drop = VanillaChannelDropout(0.5)
    values = maps_of(drop(x))
    assert set(values.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(values.min(-1).values, values.max(-1).values)
    drop.eval()
    assert torch.equal(drop(x), torch.full_like(x, 0.5))


def test_channel_dropout_draws_one_mask_entry_per_map() -> None:
    """The share of dropped maps is p, over many maps; one draw per (example, channel)."""
    torch.manual_seed(2)
    out = InvertedChannelDropout(0.3)(torch.ones(200, 50, 4, 4))
    dropped = (out[..., 0, 0] == 0).double().mean().item()
    assert dropped == pytest.approx(0.3, abs=0.02)


# ----------------------------------------------------------------------------- stacked
def metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_stacked_cnn_members_match_their_solo_runs(mnist_root: Path, tmp_path: Path) -> None:
    """Grouped convolutions, channel and element dropout masks from each member's generator,
    max-norm per member: each member's rows are its solo run's."""
    members = [
        ("seed=1", "model.conv_dropout=0.3", "dropout=0.5"),
        ("seed=2", "model.conv_dropout=0.2", "max_norm=0.5", "l2=1e-3"),
        ("seed=3", "lr=0.003"),
    ]
    base = (*SMALL_CNN, "epochs=2", "plots=none", f"data.root={mnist_root}")
    for kind in ("channel", "element"):

        def args(out: str, member: tuple[str, ...], kind: str = kind) -> list[str]:
            return [
                *base,
                f"model.conv_dropout_kind={kind}",
                *member,
                f"out_dir={tmp_path / kind / out}",
            ]

        stacked = run_stacked([load_settings(args("stacked", m)) for m in members])
        for member, result in zip(members, stacked, strict=True):
            assert result.summary.stacked is True, result.summary.stack_note
            solo = execute(load_settings(args("solo", member)), [], Reporter())
            for a, b in zip(metrics(solo.run_dir.path), metrics(result.run_dir.path), strict=True):
                for column in set(a) - {"seconds"}:
                    x, y = float(a[column]), float(b[column])
                    if math.isnan(x) or math.isnan(y):  # epoch 0's training terms: in both
                        assert math.isnan(x) and math.isnan(y), (kind, column, x, y)
                        continue
                    assert abs(x - y) <= 1e-4 * max(abs(x), abs(y), 1e-6), (kind, column, x, y)


def test_a_cnn_with_batchnorm_runs_alone_saying_why(mnist_root: Path, tmp_path: Path) -> None:
    jobs = [
        load_settings(
            [
                *SMALL_CNN,
                *("model.batchnorm=true", "epochs=1", "plots=none", f"seed={seed}"),
                *(f"data.root={mnist_root}", f"out_dir={tmp_path}"),
            ]
        )
        for seed in (0, 1)
    ]
    results = run_stacked(jobs)
    assert [r.summary.status for r in results] == ["completed"] * 2
    assert "BatchNorm's running statistics have no stacked form" in results[0].summary.stack_note


# ----------------------------------------------------------------------------- as users type it
def test_cnn_run_on_the_embedded_digits(cli, tmp_path: Path) -> None:
    """BatchNorm with channel dropout before it, max-norm, L1, MC dropout; a subset of the
    embedded digits; the first layer's filters drawn; conv weights in weights.csv."""
    args = (
        *SMALL_CNN,
        "data=mnist_small",
        "data.train_size=200",
        "data.val_size=100",
        "epochs=1",
        "model.batchnorm=true",
        "model.dropout_position=before_bn",
        "model.conv_dropout=0.2",
        "dropout=0.5",
        "max_norm=1.5",
        "l1=1e-5",
        "mc_samples=2",
    )
    result = cli("run", *args, "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert (run / "filters.png").stat().st_size > 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["n_train"] == 200
    assert {"val_acc", "test_acc", "mc_test_acc", "train_eval_loss"} <= set(summary["final"])
    with (run / "weights.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["layer"] for r in rows][:2] == ["features.0.weight", "features.5.weight"]
    assert max(float(r["max_row_norm"]) for r in rows) <= 1.5 * (1 + 1e-6)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data=toy_regression", "model=cnn cannot train on data=toy_regression; use data=mnist"),
        ("model.conv_dropout=1", "model.conv_dropout=1.0 is out of range"),
        ("model.conv_dropout=-0.1", "model.conv_dropout=-0.1 is out of range"),
        ("model.conv_dropout_kind=pixel", "model.conv_dropout_kind='pixel' is not allowed"),
        ("model.dropout_position=middle", "model.dropout_position='middle' is not allowed"),
    ],
)
def test_bad_cnn_input_is_one_line(cli, tmp_path: Path, override: str, message: str) -> None:
    line = one_error(cli("run", "model=cnn", override, "epochs=1"))
    assert message in line
    assert not (tmp_path / "outputs").exists()


# ----------------------------------------------------------------------------- experiments
SHRUNKEN = {  # two seeds, two arms, 4 and 8 channels, one epoch on 192 digits
    "bn_dropout": ("+experiment/bn_position=none,before_bn",),
    "channel_dropout": ("+experiment/conv_dropout=none,channel",),
}


@pytest.mark.slow
@pytest.mark.usefixtures("quick_figures")
@pytest.mark.parametrize("name", list(SHRUNKEN))
def test_cnn_experiment_runs_and_answers_its_question(cli, tmp_path: Path, name: str) -> None:
    mnist = small_mnist(tmp_path / "data")
    small = ("model.channels=[4,8]", "model.hidden=16", "data.train_size=null")
    result = cli("sweep", f"+experiment={name}", *mnist, "seed=1,2", *small, *SHRUNKEN[name], "-q")
    check_answer(result, name, only_sweep(tmp_path))
