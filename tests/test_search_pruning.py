"""Pruning on the mean over seeds (issue 24, item 3): pruned trials recorded as pruned in their
runs' summaries, sweep.json and the study; a pruned run is final (--dir skips it, resume refuses
it); the comparison of trials shows them; bad pruner settings are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regbench.core.rundir import RunDir, Status
from tests.conftest import run_dirs

# A grid in a fixed order (sampler seed 0): lr=1e-5 first, then two lrs whose mean val_loss
# at epoch 5 is behind it, which the median pruner (one startup trial) stops there.
PRUNED_SEARCH = (
    "model=regression", "epochs=20", "eval_every=5", "threads=1", "device=cpu",
    "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=3",
    "lr=0.01,0.012,0.00001", "seed=1,2", "hydra/sweeper/pruner=median",
    "hydra.sweeper.pruner.n_startup_trials=1",
)  # fmt: skip


def test_pruned_trials_are_recorded_as_pruned(cli, tmp_path: Path) -> None:
    result = cli("sweep", *PRUNED_SEARCH, "--dir", "s")
    assert result.exit_code == 0, result.stderr
    record = json.loads((tmp_path / "s" / "sweep.json").read_text())
    trials = record["search"]["trials"]
    pruned = [t for t in trials if t.get("pruned_epoch") is not None]
    assert [t["params"]["lr"] for t in pruned] == ["0.012", "0.01"]
    assert all(t["value"] is None and t["pruned_epoch"] == 5 for t in pruned)
    summaries = {p.name: RunDir(p).read_summary() for p in run_dirs(tmp_path / "s")}
    for trial in pruned:
        for key in trial["jobs"]:
            assert summaries[key].status is Status.PRUNED and summaries[key].pruned_epoch == 5
            assert record["jobs"][key]["status"] == "pruned"
    assert sum(s.status is Status.COMPLETED for s in summaries.values()) == 2
    assert "trial 2/3: lr=0.012: pruned at epoch 5" in result.stderr
    # The comparison of trials shows them, out of the ranking, with a note.
    assert "2 pruned" in result.stdout
    lines = (result.stdout + result.stderr).splitlines()
    (note,) = [line for line in lines if "runs not counted (not completed): " in line]
    # Both groups tie out of the ranking: named in the order their job folders are found.
    assert "lr=0.01: 2 pruned" in note and "lr=0.012: 2 pruned" in note

    # The same command again finds the search done: pruned runs are final.
    again = cli("sweep", *PRUNED_SEARCH, "--dir", "s")
    assert again.exit_code == 0, again.stderr
    assert "running" not in again.stderr
    resume = cli("resume", str(tmp_path / "s" / pruned[0]["jobs"][0]))
    assert resume.exit_code == 2
    (line,) = resume.stderr.strip().splitlines()
    assert "was pruned by its search at epoch 5" in line


BAD = [
    (["hydra/sweeper/pruner=median", "+hydra.sweeper.pruner.foo=1"], "not an option of optuna"),
    (["hydra/sweeper/pruner=hyperband", "hydra.sweeper.pruner.reduction_factor=1"], "from 2"),
    (["hydra/sweeper/pruner=successive_halving", "hydra.sweeper.pruner.min_resource=0"], "min"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD, ids=lambda v: str(v))
def test_bad_pruner_settings_are_one_line(
    cli, tmp_path: Path, overrides: list[str], expected: str
) -> None:
    search = ("model=regression", "hydra/sweeper=optuna", "dropout=interval(0,0.5)")
    result = cli("sweep", *search, *overrides, "--dir", "s")
    assert result.exit_code == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:") and expected in line
    assert list(tmp_path.iterdir()) == []


def test_confirm_reruns_the_best_trial_on_fresh_seeds(cli, tmp_path: Path) -> None:
    search = (
        "model=regression", "epochs=10", "eval_every=5", "threads=1", "device=cpu",
        "model.hidden=[16]", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
        "dropout=interval(0,0.6)", "seed=1,2", "-q",
    )  # fmt: skip
    result = cli("sweep", *search, "--confirm", "2", "--dir", "s")
    assert result.exit_code == 0, result.stderr
    trials = json.loads((tmp_path / "s" / "sweep.json").read_text())["search"]["trials"]
    best = min(trials, key=lambda t: t["value"])
    confirmed = [RunDir(p).read_summary() for p in run_dirs(tmp_path / "s" / "confirm")]
    assert sorted(s.seed for s in confirmed) == [3, 3, 4, 4]  # seeds the search did not use
    dropouts = {o.split("=")[1] for s in confirmed for o in s.overrides if o.startswith("dropout")}
    assert dropouts == {best["params"]["dropout"], "0"}  # the best, and the baseline
    table = (tmp_path / "s" / "confirm" / "comparison.md").read_text()
    assert "test_loss" in table
    # The search's own comparison is of its trials only, not of the confirmation's seeds.
    assert "4 runs in 2 groups" in (tmp_path / "s" / "comparison.md").read_text()
    # So is `regbench compare` of the search folder, which says where the confirmation is.
    compared = cli("compare", "s")
    assert compared.exit_code == 0, compared.stderr
    assert f"left out {Path('s') / 'confirm'}: the search's --confirm runs" in compared.stderr
    assert "4 runs in 2 groups" in (tmp_path / "s" / "comparison.md").read_text()


def test_confirm_is_for_searches(cli, tmp_path: Path) -> None:
    result = cli("sweep", "model=regression", "dropout=0,0.5", "--confirm", "3", "--dir", "g")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--confirm goes with a search" in line
    assert list(tmp_path.iterdir()) == []
