"""What a key and a metric mean, declared once, as users meet it: which runs are one group, what
"best" means for a metric without a direction, intervals that stay inside a metric's range, and
folders made before the declarations that still skip, rerun and resume as they were."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from regbench.analysis import tables
from regbench.analysis.comparison import compare
from regbench.compose.hydra import load_settings
from regbench.core.config import Settings, StudyConfig, key
from regbench.core.jobs import config_hash, job_key
from regbench.core.rundir import RunDir, Status, Summary

LEGACY_SWEEP = Path(__file__).parent / "data" / "legacy_sweep"
TINY = ["model=regression", "model.hidden=[8]", "data.n_train=8", "data.n_test=8", "epochs=4"]
TINY += ["eval_every=2", "threads=1", "device=cpu", "plots=none"]


# ----------------------------------------------------------------------------- groups
def test_growing_a_sweep_with_a_logger_keeps_two_groups(cli, tmp_path: Path) -> None:
    """The logger is bookkeeping: the grown sweep compares two groups of three seeds, not four
    groups split by logger."""
    first = cli("sweep", *TINY, "seed=1,2", "dropout=0,0.5", "--dir", "s", "-q")
    assert first.exit_code == 0, first.stderr
    grown = cli(
        "sweep", *TINY, "seed=1,2,3", "dropout=0,0.5", "logger=[csv,tensorboard]", "--dir", "s"
    )
    assert grown.exit_code == 0, grown.stderr
    assert "4 to skip, 2 to run" in grown.stdout + grown.stderr
    rows = (tmp_path / "s" / "comparison.csv").read_text().splitlines()
    header = rows[0].split(",")
    groups = [dict(zip(header, line.split(","), strict=False)) for line in rows[1:]]
    assert sorted(g["dropout"] for g in groups) == ["0", "0.5"]
    assert [g["n"] for g in groups] == ["3", "3"]
    assert "several groups without regularization" not in grown.stdout


def make_run(root: Path, base: dict[str, Any], seed: int, rows: list[dict], **config: Any) -> Path:
    path = root / f"{'-'.join(f'{k}={v}' for k, v in sorted(config.items()))}-seed={seed}"
    path.mkdir(parents=True)
    run_dir = RunDir(path)
    run_dir.write_config({**base, **config, "seed": seed}, [])
    for row in rows:
        run_dir.append_metrics(row)
    run_dir.write_summary(Summary(Status.COMPLETED, name=path.name, model="mlp", seed=seed))
    return path


@pytest.fixture(scope="module")
def mlp_config() -> dict[str, Any]:
    return load_settings(["model.hidden=[16]"]).to_dict()


def test_device_and_threads_do_not_split_a_group_and_the_mix_is_noted(
    tmp_path: Path, mlp_config: dict[str, Any]
) -> None:
    for seed, device, threads in [(1, "cpu", 1), (2, "cuda", None), (3, "cpu", 4)]:
        rows = [{"epoch": 1, "test_loss": 0.5 + seed / 100, "test_acc": 0.8, "seconds": 1}]
        make_run(tmp_path, mlp_config, seed, rows, device=device, threads=threads)
    result = compare([tmp_path])
    assert len(result.rows) == 1 and result.rows[0].n == 3
    assert any("mixes device=cpu, cuda" in note for note in result.notes)


# ----------------------------------------------------------------------------- metrics
def rows_for(seed: int, effect: float, validation: bool = True) -> list[dict]:
    """The validation loss is best at epoch 2, the test loss at epoch 3; the gap grows."""
    noise = [float(x) for x in np.random.default_rng(seed).normal(0, 0.01, 3)]
    return [
        {
            "epoch": e,
            "train_loss": 0.6 - 0.1 * e,
            **({"val_loss": [0.7, 0.5, 0.6][e - 1] + effect + noise[e - 1]} if validation else {}),
            "test_loss": [0.7, 0.6, 0.45][e - 1] + effect + noise[e - 1],
            "test_acc": 0.8,
            "gap": 0.1 * e + effect + noise[e - 1],
            "seconds": 1,
        }
        for e in (1, 2, 3)
    ]


@pytest.fixture
def dropout_runs(tmp_path: Path, mlp_config: dict[str, Any]) -> Path:
    for seed in (1, 2, 3):
        make_run(tmp_path, mlp_config, seed, rows_for(seed, 0.0), dropout=0.0)
        make_run(tmp_path, mlp_config, seed, rows_for(seed, -0.3), dropout=0.5)
    return tmp_path


def test_gap_at_best_has_no_best_and_no_better_or_worse(cli, dropout_runs: Path) -> None:
    out = dropout_runs / "out"
    result = cli("compare", str(dropout_runs), "--metric", "gap", "--at", "best", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    verdict = next(line for line in result.stdout.splitlines() if line.startswith("verdict"))
    assert "lowers gap" in verdict and "better" not in verdict and "worse" not in verdict
    assert "P(higher)" in verdict
    with (out / "comparison.csv").open() as table:
        assert {row["best"] for row in csv.DictReader(table)} == {"False"}
    # Each run's epoch was selected on the study's primary validation metric (val_loss: epoch
    # 2), and gap is reported there, not at its own smallest value (epoch 1).
    comparison = compare([dropout_runs], ["gap"], "best")
    assert comparison.select is not None and comparison.select.name == "val_loss"
    base = next(row for row in comparison.rows if row.is_baseline)
    assert base.cells["gap"].stats.mean == pytest.approx(0.2, abs=0.03)
    assert not any(row.is_best for row in comparison.rows)


@pytest.mark.parametrize(
    ("select", "says"),
    [
        ("gap", "--select gap has no direction"),
        ("val_acc", "--select val_acc: no run logged it"),
        ("test_loss", "--select test_loss is a test metric: what it selects would be reported"),
        ("train_loss", "--select train_loss is a train metric"),
    ],
)
def test_select_refuses_what_cannot_select(cli, dropout_runs: Path, select, says) -> None:
    result = cli("compare", str(dropout_runs), "--at", "best", "--select", select)
    assert result.exit_code == 2
    assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_best_is_the_epoch_validation_selects_not_tests(dropout_runs: Path) -> None:
    """test_loss is reported at each run's best val_loss epoch (2), not its own best (3)."""
    comparison = compare([dropout_runs], ["test_loss"], "best")
    base = next(row for row in comparison.rows if row.is_baseline)
    assert base.cells["test_loss"].stats.mean == pytest.approx(0.6, abs=0.02)
    assert "selected epoch (its best val_loss)" in tables.caption(comparison)


def test_runs_without_validation_data_cannot_be_compared_at_best(
    cli, tmp_path: Path, mlp_config: dict[str, Any]
) -> None:
    for seed in (1, 2, 3):
        make_run(tmp_path, mlp_config, seed, rows_for(seed, 0.0, validation=False))
    result = cli("compare", str(tmp_path), "--at", "best")
    assert result.exit_code == 2
    assert "these runs have no validation metrics" in result.stderr
    assert cli("compare", str(tmp_path), "--at", "final").exit_code == 0


def test_intervals_stay_inside_what_a_metric_can_be(
    tmp_path: Path, mlp_config: dict[str, Any]
) -> None:
    """Two seeds far apart: no interval at all; three accuracies near 1 and losses near 0 with
    a large spread: intervals inside [0, 1] and above 0, their method named."""
    for seed, acc, loss in [(1, 0.999, 0.001), (2, 0.62, 0.9), (3, 0.995, 0.004)]:
        row = {"epoch": 1, "test_loss": loss, "test_acc": acc, "seconds": 1}
        make_run(tmp_path / "three", mlp_config, seed, [row])
        if seed < 3:
            make_run(tmp_path / "two", mlp_config, seed, [row])
    two = compare([tmp_path / "two"]).rows[0].cells
    assert all(np.isnan(two[m].stats.ci).all() for m in ("test_loss", "test_acc"))
    three = compare([tmp_path / "three"]).rows[0].cells
    acc_low, acc_high = three["test_acc"].stats.ci
    assert 0 <= acc_low < acc_high <= 1
    assert three["test_loss"].stats.ci[0] > 0
    assert three["test_acc"].stats.interval == "t, logit scale"
    assert three["test_loss"].stats.interval == "t, log scale"


# ----------------------------------------------------------------------------- legacy values
@dataclass(frozen=True)
class WithNewKey(StudyConfig):
    name: Literal["mlp"]
    hidden: tuple[int, ...] = key("hidden sizes")
    extra: int = key("a key added after folders were made", legacy=0)


def test_a_key_at_its_legacy_value_stays_out_of_the_job_key() -> None:
    # eval_train=false is that key's own legacy value: out of the key like extra=0 below.
    settings = load_settings(["model.hidden=[16]", "model.eval_train=false"])
    old_key = job_key(settings)

    def with_extra(value: int) -> Settings:
        model = WithNewKey("mlp", (16,), value)
        return Settings(**{**settings.__dict__, "model": model})

    assert job_key(with_extra(0)) == old_key  # the folder name a sweep made before the key
    assert job_key(with_extra(3)) != old_key
    assert config_hash(with_extra(0)) == config_hash(settings)


def copy_legacy(tmp_path: Path) -> Path:
    folder = tmp_path / "legacy"
    shutil.copytree(LEGACY_SWEEP, folder)
    return folder


LEGACY_GRID = [
    "model=regression",
    "model.hidden=[8]",
    "data.n_train=8",
    "data.n_test=8",
    "epochs=4",
    "eval_every=2",
    "threads=1",
    "device=cpu",
    "plots=none",
    "seed=1,2",
    "dropout=0,0.5",
]


def test_a_sweep_made_before_the_declarations_grows_without_retraining(cli, tmp_path: Path) -> None:
    folder = copy_legacy(tmp_path)
    before = {p.name: (p / "metrics.csv").read_bytes() for p in folder.glob("*-seed=*")}
    result = cli("sweep", *LEGACY_GRID, "--dir", str(folder))
    assert result.exit_code == 0, result.stderr
    assert "4 jobs (4 to skip)" in result.stdout + result.stderr
    after = {p.name: (p / "metrics.csv").read_bytes() for p in folder.glob("*-seed=*")}
    assert after == before


@pytest.mark.slow
def test_a_run_made_before_the_declarations_reruns_and_resumes(cli, tmp_path: Path) -> None:
    folder = copy_legacy(tmp_path)
    run = sorted(folder.glob("*-seed=1"))[0]
    check = cli("rerun", str(run), "--check")
    assert check.exit_code == 0, check.stderr
    assert "reproduced" in check.stdout and "NOT" not in check.stdout
    # An interrupted legacy run, asked for two more epochs (epochs may change on resume).
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 4\n", "epochs: 6\n"))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    resumed = cli("resume", str(run))
    assert resumed.exit_code == 0, resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 6


# ----------------------------------------------------------------------------- unusable values
def test_an_unusable_final_value_is_named_and_never_claims_a_direction(
    tmp_path: Path, mlp_config: dict[str, Any]
) -> None:
    """A nan, an inf and a non-number at the final epoch: left out (not replaced by an earlier
    epoch's value), named, and no better/worse drawn from them (issue 27, case 7)."""
    finals = {1: 0.5, 2: 0.52, 3: float("nan"), 4: 0.49}
    for seed, final in finals.items():
        rows = [{"epoch": 1, "test_loss": 0.9, "seconds": 1}]
        rows.append({"epoch": 2, "test_loss": final, "seconds": 1})
        make_run(tmp_path, mlp_config, seed, rows, dropout=0.0)
        broken = {3: float("-inf"), 4: "oops"}.get(seed, 0.4 + seed / 100)
        make_run(tmp_path, mlp_config, seed, [*rows[:1], {**rows[1], "test_loss": broken}],
                 dropout=0.5)  # fmt: skip
    comparison = compare([tmp_path], ["test_loss"])
    cells = {row.group.label: row.cells["test_loss"] for row in comparison.rows}
    assert [seed for seed, _ in cells["dropout=0"].left_out] == [3]
    assert sorted(seed for seed, _ in cells["dropout=0.5"].left_out) == [3, 4]
    assert all(np.isfinite(value) for cell in cells.values() for _, value in cell.values)
    assert any("seed 3" in note and "nan at final" in note for note in comparison.notes)
    verdict = " ".join(tables.verdicts(comparison))
    assert "nan" not in verdict.split("left out")[0] and "inf" not in verdict
    assert "seed(s) left out" in verdict


def test_groups_that_diverge_differently_are_told(
    tmp_path: Path, mlp_config: dict[str, Any]
) -> None:
    for seed in (1, 2, 3):
        rows = [{"epoch": 1, "test_loss": 0.5 + seed / 100, "seconds": 1}]
        make_run(tmp_path, mlp_config, seed, rows, dropout=0.0)
        path = make_run(tmp_path, mlp_config, seed, rows, dropout=0.5)
        if seed == 3:
            RunDir(path).write_summary(
                Summary(Status.DIVERGED, name=path.name, model="mlp", seed=3)
            )
    comparison = compare([tmp_path], ["test_loss"])
    assert any("diverged differently" in note and "1 of 3" in note for note in comparison.notes)


def test_runs_of_one_config_on_different_data_are_shown_apart(
    tmp_path: Path, mlp_config: dict[str, Any]
) -> None:
    """data=mnist where some runs fell back to the embedded digits (issue 27, case 3)."""
    for seed in (1, 2, 3, 4):
        rows = [{"epoch": 1, "test_loss": 0.5 + seed / 100, "seconds": 1}]
        path = make_run(tmp_path, mlp_config, seed, rows)
        used = ("mnist", 54000, 6000, 10000) if seed < 3 else ("mnist_small", 3600, 400, 1000)
        data = dict(zip(("name", "n_train", "n_val", "n_test"), used, strict=True))
        summary = Summary(Status.COMPLETED, name=path.name, model="mlp", seed=seed, data=data)
        RunDir(path).write_summary(summary)
    comparison = compare([tmp_path], ["test_loss"])
    assert sorted(row.n for row in comparison.rows) == [2, 2]
    assert any("trained on different data" in note for note in comparison.notes)
