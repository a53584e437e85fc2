"""Max-norm constraints and scarce training data (issue 26, parts 1 and 2): the maths on
literal tensors, solo and stacked, and each as users type it."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from regbench.compose.hydra import load_settings
from regbench.core.progress import Reporter
from regbench.data import load_data, subset_indices
from regbench.regularization.max_norm import constrain, constrain_stacked, row_norms
from regbench.regularization.penalties import PenalizedObjective, Penalty
from regbench.stacked.launcher import MEMBER_KEYS, run_stacked
from regbench.training.runner import RESUMABLE_CHANGES, execute
from tests.conftest import Result, run_dirs
from tests.test_experiments import check_comparison, only_sweep, small_mnist


def one_error(result: Result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:")
    return line


# ----------------------------------------------------------------------------- max-norm maths
def test_max_norm_rescales_only_the_rows_over_the_bound() -> None:
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    constrain([w], 1.0)
    assert torch.allclose(w, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]))
    assert torch.equal(w[1], torch.tensor([0.3, 0.4]))  # inside the ball: bitwise untouched


def test_a_max_norm_step_bounds_linear_conv_and_rnn_rows_and_leaves_biases_and_bn() -> None:
    """After one optimizer step (lr 0: only the constraint moves anything) every unit's
    incoming weights have norm <= c: a Linear row, a conv filter (flattened), a row of an
    RNN's input and hidden weights; biases and BatchNorm's scale and shift stay as they were."""
    linear, conv, bn = nn.Linear(2, 2), nn.Conv2d(1, 2, 2), nn.BatchNorm2d(2)
    rnn = nn.RNN(2, 2, batch_first=True)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4]]))
        linear.bias.fill_(7.0)
        conv.weight.copy_(torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[0.1, 0.0], [0.0, 0.1]]]]))
        bn.weight.fill_(5.0)
        rnn.weight_ih_l0.copy_(torch.tensor([[6.0, 8.0], [0.0, 0.5]]))
        rnn.weight_hh_l0.copy_(torch.tensor([[0.0, 2.0], [0.1, 0.1]]))
    modules = [linear, conv, bn, rnn]
    loss = sum(p.sum() for m in modules for p in m.parameters())
    optimizer = torch.optim.SGD([p for m in modules for p in m.parameters()], lr=0.0)
    PenalizedObjective(modules, optimizer, Penalty(max_norm=1.0)).step(loss)

    assert torch.allclose(linear.weight, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))
    assert torch.allclose(conv.weight.flatten(1), torch.tensor([[0.5] * 4, [0.1, 0, 0, 0.1]]))
    assert torch.allclose(rnn.weight_ih_l0, torch.tensor([[0.6, 0.8], [0.0, 0.5]]))
    assert torch.allclose(rnn.weight_hh_l0, torch.tensor([[0.0, 1.0], [0.1, 0.1]]))
    assert linear.bias.tolist() == [7.0, 7.0] and bn.weight.tolist() == [5.0, 5.0]
    assert bn.bias.tolist() == [0.0, 0.0]


def test_without_max_norm_a_step_constrains_nothing() -> None:
    linear = nn.Linear(2, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[30.0, 40.0]]))
    optimizer = torch.optim.SGD(linear.parameters(), lr=0.0)
    PenalizedObjective([linear], optimizer, Penalty()).step(linear.weight.sum())
    assert linear.weight.tolist() == [[30.0, 40.0]]


def test_stacked_max_norm_bounds_each_member_by_its_own_c() -> None:
    """[K, out, in] (and a transposed view, as the launcher stores some leaves), c per member,
    inf: unconstrained."""
    w = torch.tensor([[[3.0, 4.0], [0.3, 0.4]], [[3.0, 4.0], [6.0, 8.0]], [[3.0, 4.0], [0, 0]]])
    leaf = w.transpose(1, 2).contiguous()
    constrain_stacked([leaf.transpose(1, 2)], torch.tensor([1.0, 5.0, float("inf")]))
    expected = [[[0.6, 0.8], [0.3, 0.4]], [[3.0, 4.0], [3.0, 4.0]], [[3.0, 4.0], [0, 0]]]
    assert torch.allclose(leaf.transpose(1, 2), torch.tensor(expected))
    conv = torch.ones(2, 3, 1, 2, 2)  # [K, out, in, kh, kw]: each filter's norm is 2
    constrain_stacked([conv], torch.tensor([1.0, 4.0]))
    assert torch.allclose(row_norms(conv, members=1), torch.tensor([[1.0] * 3, [2.0] * 3]))


@pytest.mark.parametrize(("regularize", "constrained"), [("d", {"discriminator"}), ("both", None)])
def test_the_gan_constrains_the_networks_model_regularize_names(
    mnist_root: Path, regularize: str, constrained: set[str] | None
) -> None:
    from regbench.training.runner import prepare

    overrides = ["model=gan", f"model.regularize={regularize}", "max_norm=2", "device=cpu"]
    settings = load_settings([*overrides, f"data.root={mnist_root}", "model.fid_samples=16"])
    _, study = prepare(settings, Reporter())
    names = {name for name, o in study.objectives.items() if o.constrained}
    assert names == (constrained or set(study.networks))
    assert all(p.dim() > 1 for o in study.objectives.values() for p in o.constrained)


def test_max_norm_is_a_member_key_and_a_resume_may_not_change_it() -> None:
    assert "max_norm" in MEMBER_KEYS and "max_norm" not in RESUMABLE_CHANGES


# ----------------------------------------------------------------------------- max-norm runs
TINY_MLP = ("epochs=2", "model.hidden=[16]", "device=cpu", "plots=none")


def largest_row_norms(run: Path, untrained: bool = False) -> list[float]:
    """weights.csv's largest row norms after training steps (``untrained``: those of epoch 0,
    the initial weights, which no step has constrained yet)."""
    with (run / "weights.csv").open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if (row["epoch"] == "0") == untrained]
    return [float(row["max_row_norm"]) for row in rows]


@pytest.mark.slow
def test_stacked_members_with_max_norm_match_their_solo_runs(
    mnist_root: Path, tmp_path: Path
) -> None:
    bounds = (0.3, 0.4, None)  # per member; the third has no constraint
    members = [("seed=1", "max_norm=0.3"), ("seed=2", "max_norm=0.4", "dropout=0.3"), ("seed=3",)]
    args = lambda out, m: [  # noqa: E731
        *TINY_MLP,
        *m,
        f"data.root={mnist_root}",
        f"out_dir={tmp_path / out}",
    ]
    stacked = run_stacked([load_settings(args("stacked", m)) for m in members])
    for member, bound, result in zip(members, bounds, stacked, strict=True):
        solo = execute(load_settings(args("solo", member)), [], Reporter())
        assert result.summary.stacked is True
        norms, alone = largest_row_norms(result.run_dir.path), largest_row_norms(solo.run_dir.path)
        assert norms == pytest.approx(alone, rel=1e-4)
        if bound is not None:
            assert max(norms) <= bound * (1 + 1e-6)
        else:  # the unconstrained member's rows are longer than either bound
            assert max(norms) > 0.5
        with (
            (solo.run_dir.path / "metrics.csv").open() as a,
            (result.run_dir.path / "metrics.csv").open() as b,
        ):
            for x, y in zip(csv.DictReader(a), csv.DictReader(b), strict=True):
                assert float(x["test_loss"]) == pytest.approx(float(y["test_loss"]), rel=1e-4)


def test_run_with_max_norm_as_users_type_it(cli, mnist_root: Path, tmp_path: Path) -> None:
    result = cli("run", *TINY_MLP, "max_norm=0.3", f"data.root={mnist_root}", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert max(largest_row_norms(run)) <= 0.3 * (1 + 1e-6)
    assert max(largest_row_norms(run, untrained=True)) > 0.3  # the bound acts after each step
    weights = torch.load(run / "model.pt", weights_only=True)["model"]
    for name, tensor in weights.items():
        if tensor.dim() > 1:
            assert float(row_norms(tensor).max()) <= 0.3 * (1 + 1e-6), name


def test_a_resume_may_not_change_max_norm(cli, mnist_root: Path, tmp_path: Path) -> None:
    assert cli("run", *TINY_MLP, "max_norm=1", f"data.root={mnist_root}", "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("max_norm: 1.0", "max_norm: 2.0"))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    assert "max_norm: 1.0 -> 2.0" in cli("resume", str(run)).stderr


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan"])
def test_a_bad_max_norm_is_one_line(cli, tmp_path: Path, value: str) -> None:
    line = one_error(cli("run", "model=regression", f"max_norm={value}"))
    assert f"max_norm={value}" in line.replace(".0", "") and "must be > 0" in line
    assert not (tmp_path / "outputs").exists()


# ----------------------------------------------------------------------------- train_size
def test_training_subsets_are_nested_and_fixed_by_split_seed_alone() -> None:
    small, large = subset_indices(20, 5, split_seed=3), subset_indices(20, 0.5, split_seed=3)
    assert len(small) == 5 and len(large) == 10
    assert set(small.tolist()) <= set(large.tolist())
    assert small.tolist() == sorted(small.tolist())  # the original order
    assert subset_indices(20, 5, split_seed=3).tolist() == small.tolist()
    assert subset_indices(20, 5, split_seed=4).tolist() != small.tolist()
    assert subset_indices(20, 20, split_seed=3).tolist() == list(range(20))


def test_a_subset_of_real_digits_is_the_same_for_every_seed() -> None:
    def config(size: int):
        return load_settings(["data=mnist_small", f"data.train_size={size}"]).data

    one, other = load_data(config(100), seed=1), load_data(config(100), seed=2)
    larger = load_data(config(400), seed=1)
    assert one.n_train == 100 and larger.n_train == 400 and one.n_val == 400
    assert torch.equal(one.train["x"], other.train["x"])
    rows = {bytes(image.numpy()) for image in larger.train["x"]}
    assert all(bytes(image.numpy()) in rows for image in one.train["x"])
    assert "trains on 100 of the 3600 training examples" in one.split


def test_train_size_is_recorded_in_the_summary(cli, mnist_root: Path, tmp_path: Path) -> None:
    result = cli("run", *TINY_MLP, "data.train_size=40", f"data.root={mnist_root}", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    data = json.loads((run / "summary.json").read_text())["data"]
    assert data["n_train"] == 40 and "trains on 40 of the" in data["split"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "data.train_size=0.0 is out of range; data.train_size must be > 0"),
        ("5000", "data.train_size=5000 takes 5000 of the 3600 training examples left"),
        ("0.0001", "data.train_size=0.0001 takes 0 of the 3600"),
        ("2.5", "data.train_size=2.5 is neither a fraction in (0, 1) nor a whole count"),
    ],
)
def test_a_bad_train_size_is_one_line(cli, tmp_path: Path, value: str, message: str) -> None:
    line = one_error(cli("run", "data=mnist_small", f"data.train_size={value}", "epochs=1"))
    assert message in line
    assert not (tmp_path / "outputs").exists()


# ----------------------------------------------------------------------------- experiments
@pytest.fixture
def quick_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Figures built but not rendered (placeholder bytes), to a path or an open file: drawing
    is most of a tiny sweep's time; the figures are tested where they are made."""
    from matplotlib.figure import Figure

    def save(self: Figure, target: Any, **options: Any) -> None:
        if hasattr(target, "write"):
            target.write(b"png")
        else:
            Path(target).write_bytes(b"png")

    monkeypatch.setattr(Figure, "tight_layout", lambda self, *a, **k: None)
    monkeypatch.setattr(Figure, "savefig", save)


# two seeds, two or three groups per swept key, 16 hidden units, one epoch on 192 digits
SHRUNKEN = {
    "dropout_rate": ("dropout=0,0.4,0.8",),  # three: a middle to test
    "data_size": ("data.train_size=40,null", "dropout=0,0.5"),
    "max_norm_dropout": ("dropout=0,0.5", "max_norm=null,1"),
}


def check_answer(result: Result, name: str, sweep: Path) -> None:
    """The experiment's claim shown, a verdict per metric for each group against its baseline
    (its own size's with ``within``), and the comparison table saying which is the baseline."""
    check_comparison(result, name, sweep)


@pytest.mark.slow
@pytest.mark.usefixtures("quick_figures")
@pytest.mark.parametrize("name", list(SHRUNKEN))
def test_mlp_experiment_runs_and_answers_its_question(cli, tmp_path: Path, name: str) -> None:
    mnist = small_mnist(tmp_path / "data")
    args = (*mnist, "seed=1,2", "model.hidden=[16]", *SHRUNKEN[name], "-q")
    result = cli("sweep", f"+experiment={name}", *args)
    check_answer(result, name, only_sweep(tmp_path))
