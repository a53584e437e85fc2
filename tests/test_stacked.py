"""The stacked sweep launcher: members train like their solo runs, on tiny generated MNIST."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from regbench.compose.hydra import load_settings
from regbench.core.jobs import Job
from regbench.core.progress import Reporter
from regbench.stacked.launcher import group_jobs, member_bytes, run_stacked, split_chunks
from regbench.stacked.optimizer import StackedOptimizer
from regbench.training.runner import execute

RTOL = 1e-5
NOT_COMPARED = {"seconds"}  # wall time; every other column must agree


class Notes(Reporter):
    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []

    def notice(self, text: str) -> None:
        self.notes.append(text)


def settings(root: Path, out: Path, *overrides: str):
    return load_settings([f"data.root={root}", "device=cpu", f"out_dir={out}", *overrides])


def metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def final_test_loss(run: Path) -> float:
    return json.loads((run / "summary.json").read_text())["final"]["test_loss"]


def assert_close_rows(a: list[dict[str, str]], b: list[dict[str, str]], rtol: float) -> None:
    assert len(a) == len(b) and list(a[0]) == list(b[0])
    for row_a, row_b in zip(a, b, strict=True):
        for key in set(row_a) - NOT_COMPARED:
            x, y = float(row_a[key]), float(row_b[key])
            if math.isnan(x) or math.isnan(y):  # epoch 0's training terms: NaN in both
                assert math.isnan(x) and math.isnan(y), (key, x, y)
                continue
            assert abs(x - y) <= rtol * max(abs(x), abs(y), 1e-8), (key, x, y)


MEMBERS = (  # differ in seed, lr, l1, l2, weight_decay: every per-member tensor
    ("seed=1", "l1=1e-4"),
    ("seed=2", "weight_decay=1e-3", "lr=0.003"),
    ("seed=3", "l2=1e-3", "optimizer=adam"),
)


def test_without_dropout_each_member_equals_its_solo_run(mnist_root: Path, tmp_path: Path) -> None:
    jobs = [settings(mnist_root, tmp_path / "stacked", "epochs=2", *m) for m in MEMBERS]
    solo = [
        execute(settings(mnist_root, tmp_path / "solo", "epochs=2", *m), list(m), Reporter())
        for m in MEMBERS
    ]
    # A budget for two members per chunk: the group of three runs as chunks of 2 and 1.
    budget = 2 * member_bytes(Job(jobs[0]))
    notes = Notes()
    results = run_stacked([Job(s, m) for s, m in zip(jobs, MEMBERS, strict=True)], notes, budget)

    assert any("2 chunks" in note for note in notes.notes), notes.notes
    sizes = [r.summary.stack["size"] for r in results]
    assert sorted(sizes) == [1, 2, 2]
    for alone, member in zip(solo, results, strict=True):
        assert member.summary.stacked is True and member.summary.status == "completed"
        assert_close_rows(metrics(alone.run_dir.path), metrics(member.run_dir.path), RTOL)
        # The same files, so compare/rerun/resume/plot cannot tell them apart.
        assert sorted(p.name for p in alone.run_dir.path.iterdir()) == sorted(
            p.name for p in member.run_dir.path.iterdir()
        )
        assert member.run_dir.read_overrides() == alone.run_dir.read_overrides()
        assert member.run_dir.read_config() == {
            **alone.run_dir.read_config(),
            "out_dir": str(tmp_path / "stacked"),
        }
        weights = torch.load(member.run_dir.path / "model.pt", weights_only=True)["model"]
        reference = torch.load(alone.run_dir.path / "model.pt", weights_only=True)["model"]
        for name, tensor in reference.items():  # Adam may move a near-zero-gradient weight
            torch.testing.assert_close(weights[name], tensor, rtol=0, atol=1e-4)  # by ~lr


DROPOUT_SEEDS = range(3)
DROPOUT_MEMBER = ("epochs=2", "dropout=0.5", "l2=1e-4")


@pytest.fixture(scope="module")
def dropout_sweeps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """The same dropout sweep over seeds stacked twice and solo once (shared by two tests)."""
    from tests.conftest import write_mnist

    tmp = tmp_path_factory.mktemp("dropout")
    root = tmp / "data"
    write_mnist(root)
    jobs = lambda out: [  # noqa: E731
        settings(root, tmp / out, *DROPOUT_MEMBER, f"seed={s}") for s in DROPOUT_SEEDS
    ]
    return {
        "stacked": [r.run_dir.path for r in run_stacked(jobs("stacked"))],
        "again": [r.run_dir.path for r in run_stacked(jobs("again"))],
        "solo": [execute(s, [], Reporter()).run_dir.path for s in jobs("solo")],
    }


def test_with_dropout_stacked_runs_are_bitwise_reproducible(dropout_sweeps: dict) -> None:
    for first, second in zip(dropout_sweeps["stacked"], dropout_sweeps["again"], strict=True):
        strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
        assert strip(metrics(first)) == strip(metrics(second))  # bitwise through repr
        weights = torch.load(first / "model.pt", weights_only=True)["model"]
        again = torch.load(second / "model.pt", weights_only=True)["model"]
        assert all(torch.equal(tensor, again[name]) for name, tensor in weights.items())


def test_with_dropout_members_agree_with_solo_runs_over_seeds(dropout_sweeps: dict) -> None:
    """Over seeds, the stacked final test losses are distributed like the solo ones (a t-test);
    on the CPU each member even draws its solo run's masks, so each pair agrees closely."""
    from scipy import stats

    stacked_losses = [final_test_loss(run) for run in dropout_sweeps["stacked"]]
    solo_losses = [final_test_loss(run) for run in dropout_sweeps["solo"]]
    assert len(set(solo_losses)) == len(DROPOUT_SEEDS)  # seeds matter: the test has power
    assert stats.ttest_ind(stacked_losses, solo_losses).pvalue > 0.05
    for solo, member in zip(dropout_sweeps["solo"], dropout_sweeps["stacked"], strict=True):
        assert_close_rows(metrics(solo), metrics(member), RTOL)


@pytest.mark.parametrize(
    "study",
    [
        ("model=regression", "epochs=3", "data.n_train=12"),
        # Between-layer dropout on an nn.RNN output: a mask over a transposed (time-major) tensor.
        (
            *("model=rnn", "model.num_layers=2", "model.rnn_dropout=between_layers", "epochs=2"),
            *("data.n_points=90", "data.test_points=20", "data.val_points=20", "data.seq_len=6"),
        ),
    ],
    ids=["regression", "rnn"],
)
def test_regression_and_rnn_members_match_their_solo_runs(study: tuple, tmp_path: Path) -> None:
    members = [("seed=1", "dropout=0.3", "l1=1e-4"), ("seed=2", "weight_decay=1e-3")]
    args = lambda out, m: [*study, *m, "device=cpu", f"out_dir={tmp_path / out}"]  # noqa: E731
    results = run_stacked([load_settings(args("stacked", m)) for m in members])
    for member, result in zip(members, results, strict=True):
        solo = execute(load_settings(args("solo", member)), [], Reporter())
        assert result.summary.stacked is True
        assert_close_rows(metrics(solo.run_dir.path), metrics(result.run_dir.path), RTOL)


def test_a_stacked_members_checkpoint_resumes_like_its_solo_run(
    cli, mnist_root: Path, tmp_path: Path
) -> None:
    """Cut a stacked member's history to its epoch-2 state, resume it the normal way for a
    third epoch: the same rows as a solo 3-epoch run (masks and optimizer state carried on)."""
    member = ("dropout=0.3", "weight_decay=1e-3")
    jobs = [
        settings(mnist_root, tmp_path / "stacked", "epochs=2", *member, f"seed={s}") for s in (5, 6)
    ]
    cut = run_stacked(jobs)[0].run_dir.path
    config = (cut / "config.yaml").read_text().replace("epochs: 2", "epochs: 3")
    (cut / "config.yaml").write_text(config)
    summary = json.loads((cut / "summary.json").read_text())
    (cut / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))

    assert cli("resume", str(cut), "-q").exit_code == 0
    full = execute(
        settings(mnist_root, tmp_path / "solo", "epochs=3", *member, "seed=5"), [], Reporter()
    )
    assert_close_rows(metrics(full.run_dir.path), metrics(cut), RTOL)


def test_jobs_that_cannot_be_stacked_run_alone_with_a_note(
    mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regbench.studies.gan import GANStudy
    from regbench.studies.mlp import MLPStudy

    # The MLP saying what the GAN says: no stacked form.
    monkeypatch.setattr(MLPStudy, "check_stackable", GANStudy.check_stackable)
    jobs = [settings(mnist_root, tmp_path, "epochs=1", f"seed={s}") for s in (0, 1)]
    jobs.append(settings(mnist_root, tmp_path, "epochs=1", "batch_size=32"))  # a group of one
    notes = Notes()
    results = run_stacked(jobs, notes)
    assert [r.summary.status for r in results] == ["completed"] * 3
    assert all(r.summary.stacked is False for r in results)
    assert "has no stacked form" in results[0].summary.stack_note
    assert "no other job" in results[2].summary.stack_note
    assert any("cannot be stacked" in note for note in notes.notes)


def test_a_forward_that_mixes_up_the_stack_dimension_runs_alone(
    mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher checks the stacked loss against each member's own network first: a forward
    that normalizes over dim 1 (the batch, once a stack dimension leads) is never stacked."""
    import torch.nn.functional as F

    from regbench.studies.mlp import MLP

    monkeypatch.setattr(MLP, "forward", lambda self, x: F.log_softmax(self.layers(x), dim=1))
    jobs = [settings(mnist_root, tmp_path, "epochs=1", f"seed={s}") for s in (0, 1)]
    results = run_stacked(jobs, Notes())
    assert [r.summary.stacked for r in results] == [False, False]
    assert "leading dimensions as batch dimensions" in results[0].summary.stack_note


def test_variational_rnn_dropout_runs_alone_with_a_note(tmp_path: Path) -> None:
    rnn = ("model=rnn", "model.rnn_dropout=variational", "data=sine_tiny", "epochs=1")
    jobs = [load_settings([*rnn, f"seed={s}", f"out_dir={tmp_path}"]) for s in (0, 1)]
    results = run_stacked(jobs, Notes())
    assert all(r.summary.status == "completed" for r in results)
    assert "variational dropout" in results[0].summary.stack_note


def test_a_diverging_member_stops_alone(mnist_root: Path, tmp_path: Path) -> None:
    jobs = [
        settings(mnist_root, tmp_path, "epochs=3", "optimizer=sgd", f"lr={lr}", "seed=1")
        for lr in (0.01, 1e4)
    ]
    fine, diverged = run_stacked(jobs)
    assert fine.summary.status == "completed" and len(fine.rows) == 4  # epochs 0 to 3
    assert diverged.summary.status == "diverged"
    assert "diverged at epoch" in diverged.summary.error
    assert diverged.summary.diverged_epoch == 1
    assert not (diverged.run_dir.path / "model.pt").exists()  # as a diverged solo run


def test_sweep_stacked_writes_job_folders_like_a_sweep(cli, mnist_root: Path, tmp_path: Path):
    """`regbench sweep --stacked` as users type it; run again, every job is skipped; a grown
    grid stacks only the new jobs."""
    grid = ("dropout=0,0.5", "seed=1,2", "epochs=1", "model.hidden=[16]", f"data.root={mnist_root}")
    result = cli("sweep", "--stacked", *grid, "--dir", "sweep", "-q")
    assert result.exit_code == 0, result.stderr
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if (p / "summary.json").exists())
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs]
    assert len(jobs) == 4 and all(s["status"] == "completed" for s in summaries)
    assert all(s["stacked"] is True and s["stack"]["size"] == 4 for s in summaries)
    assert (tmp_path / "sweep" / "comparison.csv").exists()
    assert "4 completed" in result.stdout

    again = cli("sweep", "--stacked", *grid, "seed=1,2,3", "--dir", "sweep", "-q")
    assert again.exit_code == 0, again.stderr
    assert again.stderr.count("skipped (already completed)") == 4
    assert "sweep done: 6 completed" in again.stdout

    # A stacked member (dropout 0.5) rerun alone reproduces it, to rounding: the check says so.
    member = next(job for job in jobs if "dropout: 0.5" in (job / "config.yaml").read_text())
    check = cli("rerun", str(member), "--check", "-q")
    assert check.exit_code == 0, check.stdout + check.stderr
    assert "a stacked run rerun alone" in check.stdout and "reproduced" in check.stdout


def test_sweep_stacked_refuses_another_launcher(cli, tmp_path: Path) -> None:
    result = cli("sweep", "--stacked", "seed=1,2", "hydra/launcher=joblib")
    assert result.exit_code == 2
    assert "--stacked is the launcher; drop hydra/launcher=joblib" in result.stderr
    result = cli("sweep", "--stack-memory", "100", "seed=1,2")
    assert result.exit_code == 2 and "--stack-memory goes with --stacked" in result.stderr


# ----------------------------------------------------------------------------- units
def test_jobs_group_by_everything_but_the_per_member_settings(tmp_path: Path) -> None:
    base = (f"data.root={tmp_path}", "epochs=2")
    jobs = [
        Job(load_settings([*base, "seed=1", "dropout=0.5", "l1=1e-3", "name=a"])),
        Job(load_settings([*base, "seed=2", "lr=0.1", "weight_decay=0.1", "l2=1"])),
        Job(load_settings([*base, "batch_size=32"])),
        Job(load_settings([*base, "model.hidden=[8]"])),
        Job(load_settings([*base, "seed=9"])),
    ]
    assert group_jobs(jobs) == [[0, 1, 4], [2], [3]]


def test_chunks_are_as_even_as_the_budget_allows() -> None:
    assert split_chunks(10, 4) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split_chunks(3, 100) == [[0, 1, 2]]
    assert [len(c) for c in split_chunks(100, 7)] == [7] * 10 + [6] * 5


@pytest.mark.parametrize(
    ("kind", "options"),
    [("adam", {}), ("adamw", {}), ("sgd", {"momentum": 0.9}), ("sgd", {"momentum": 0.0})],
)
def test_stacked_optimizer_matches_torch_member_by_member(kind: str, options: dict) -> None:
    """Per-member lr and weight decay (on the weight only, not the bias), several steps."""
    torch.manual_seed(0)
    lrs, decays = [1e-2, 3e-3, 1e-2], [0.0, 1e-2, 0.5]  # members 0 and 2 share an lr
    start = {"weight": torch.randn(3, 2, 3), "bias": torch.randn(3, 2)}
    grads = [{name: torch.randn_like(t) for name, t in start.items()} for _ in range(4)]
    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}

    stacked_params = {name: t.clone().requires_grad_() for name, t in start.items()}
    reference = []
    for k in range(3):
        weight = start["weight"][k].clone().requires_grad_()
        bias = start["bias"][k].clone().requires_grad_()
        groups = [
            {"params": [weight], "weight_decay": decays[k]},
            {"params": [bias], "weight_decay": 0.0},
        ]
        reference.append((weight, bias, classes[kind](groups, lr=lrs[k], **options)))
    group = reference[0][2].param_groups[0]
    optimizer = StackedOptimizer(kind, group, lrs, decays, stacked_params, {"weight"})
    for grad in grads:
        optimizer.update({name: g.clone() for name, g in grad.items()})
        for k, (weight, bias, torch_optimizer) in enumerate(reference):
            weight.grad, bias.grad = grad["weight"][k].clone(), grad["bias"][k].clone()
            torch_optimizer.step()
    for k, (weight, bias, torch_optimizer) in enumerate(reference):
        for name, param in (("weight", weight), ("bias", bias)):
            torch.testing.assert_close(stacked_params[name][k], param, rtol=1e-6, atol=1e-7)
            state = optimizer.state_of(k, name)
            assert state.keys() == torch_optimizer.state[param].keys()
            for key, value in state.items():
                torch.testing.assert_close(value, torch_optimizer.state[param][key])
