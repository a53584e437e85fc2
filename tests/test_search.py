"""`regbench sweep hydra/sweeper=optuna ...` as users type it: a real Optuna search (the
hydra-optuna-sweeper plugin) whose trials each run one configuration over the given seeds as
ordinary sweep jobs, with the mean objective over the seeds going back to the sampler."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_dirs
from tests.test_compare import read_csv

# Six trials of the toy regression over dropout and a log-scaled weight_decay, two seeds each.
SEARCH = (
    *("model=regression", "epochs=3", "data.n_train=16", "model.hidden=[16]"),
    *("hydra/sweeper=optuna", "dropout=interval(0,0.6)"),
    *("weight_decay=tag(log,interval(1e-5,1e-2))", "seed=1,2", "-q"),
)
KEY = re.compile(r"[0-9a-f]{10}-seed=[12]")


def record(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep.json").read_text())


def final_val_loss(run: Path) -> float:
    return float(read_csv(run / "metrics.csv")[-1]["val_loss"])


def metrics_without_seconds(run: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_csv(run / "metrics.csv")]


@pytest.mark.slow
def test_an_optuna_search_runs_repeats_and_resumes(cli, tmp_path: Path) -> None:
    first = cli("sweep", *SEARCH, "hydra.sweeper.n_trials=6", "--dir", "a")
    assert first.exit_code == 0, first.stderr
    a = tmp_path / "a"
    runs = run_dirs(a)
    assert len(runs) == 12 and all(KEY.fullmatch(run.name) for run in runs)
    assert len({run.name.split("-")[0] for run in runs}) == 6  # one config per trial

    # Each trial's objective is the mean final val_loss of its two seeds' run folders: selection
    # reads validation data, never test.
    trials = record(a)["search"]["trials"]
    assert [t["number"] for t in trials] == [1, 2, 3, 4, 5, 6]
    for trial in trials:
        losses = [final_val_loss(a / key) for key in trial["jobs"]]
        assert trial["value"] == pytest.approx(sum(losses) / 2, rel=1e-12)
        assert 0 <= float(trial["params"]["dropout"]) <= 0.6
        assert 1e-5 <= float(trial["params"]["weight_decay"]) <= 1e-2
        assert f"trial {trial['number']}/6: " in first.stderr
    assert "sampler seed 0 (the default" in first.stderr and "minimized" in first.stderr

    # The plugin's result names the trial with the lowest mean; regbench compared all six.
    best = yaml.safe_load((a / "optimization_results.yaml").read_text())
    lowest = min(trials, key=lambda t: t["value"])
    assert best["best_value"] == pytest.approx(lowest["value"], rel=1e-12)
    assert {k: str(v) for k, v in best["best_params"].items()} == lowest["params"]
    assert len(read_csv(a / "comparison.csv")) == 6
    assert (a / "multirun.yaml").is_file() and (a / "comparison_loss_curves.png").is_file()

    # The same command again with one more trial, after removing one trial's two folders: the
    # five whole trials go into the new study from sweep.json (nothing of theirs runs), the
    # third is asked again (its two runs retrain bit for bit) and a seventh trial is added.
    redo = trials[2]["jobs"]
    before = {key: metrics_without_seconds(a / key) for key in redo}
    kept = {r.name: (r / "summary.json").stat().st_mtime_ns for r in runs if r.name not in redo}
    for key in redo:
        shutil.rmtree(a / key)
    again = cli("sweep", *SEARCH, "hydra.sweeper.n_trials=7", "--dir", "a")
    assert again.exit_code == 0, again.stderr
    assert "skipped (already completed)" not in again.stderr
    assert {key: (a / key / "summary.json").stat().st_mtime_ns for key in kept} == kept
    assert {key: metrics_without_seconds(a / key) for key in redo} == before
    grown = record(a)["search"]["trials"]
    assert [t["number"] for t in grown] == [1, 2, 3, 4, 5, 6, 7] and grown[:6] == trials
    assert len(run_dirs(a)) == 14 and len(read_csv(a / "comparison.csv")) == 7

    # Once more: the study holds its seven trials, so nothing trains.
    done = cli("sweep", *SEARCH, "hydra.sweeper.n_trials=7", "--dir", "a")
    assert done.exit_code == 0 and "trial " not in done.stderr.replace("best trial", "")


def test_a_dry_run_describes_the_search_and_writes_nothing(cli, tmp_path: Path) -> None:
    result = cli("sweep", *SEARCH, "--objective", "val_loss", "--at", "best", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "20 trials over dropout, weight_decay, each run with seed 1, 2" in result.stdout
    assert "mean val_loss (best) over the seeds, minimized" in result.stdout  # as declared
    assert list(tmp_path.iterdir()) == []


BAD_SEARCHES = [
    (["dropuot=interval(0,0.5)"], "search at dropuot=0.0: unknown key 'dropuot'"),
    (["dropout=interval(0,1.5)"], "search at dropout=1.5"),
    (["dropout=interval(0,0.5)", "foo=1"], "unknown key 'foo'"),
    (["dropout=interval(0,0.5)", "hydra.sweeper.direction=maximize"], "contradicts --objective"),
    (["dropout=interval(0,0.5)", "seed=interval(1,3)"], "seeds are replicates"),
    (["dropout=interval(0,0.5)", "hydra/launcher=joblib"], "drop hydra/launcher=joblib"),
    (["epochs=2"], "nothing to search"),
    (["dropout=interval(0,0.5)", "--objective", "test_loss"], "use --objective val_loss"),
    (["dropout=interval(0,0.5)", "--objective", "gap"], "--objective gap has no direction"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_SEARCHES, ids=lambda v: str(v))
def test_a_bad_search_is_one_line_before_training(
    cli, tmp_path: Path, overrides: list[str], expected: str
) -> None:
    result = cli("sweep", "model=regression", "hydra/sweeper=optuna", *overrides, "--dir", "s")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:") and expected in line
    assert list(tmp_path.iterdir()) == []


def test_an_uninstalled_sweeper_names_its_plugin(cli, tmp_path: Path) -> None:
    result = cli("sweep", "hydra/sweeper=nevergrad", "dropout=interval(0,0.5)")
    assert result.exit_code == 2
    assert "pip install hydra-nevergrad-sweeper" in result.stderr


def test_stacked_trials_that_diverge_get_the_worst_value_and_the_search_goes_on(
    cli, tmp_path: Path
) -> None:
    search = ("model=regression", "epochs=20", "eval_every=1", "data.n_train=8", "seed=1,2")
    result = cli(
        "sweep", *search, "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
        "lr=interval(100,1000)", "--stacked", "--dir", "s", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    trials = record(tmp_path / "s")["search"]["trials"]
    assert [t["value"] for t in trials] == ["inf", "inf"]
    assert result.stderr.count("diverged, so the worst value") == 2
    results = yaml.safe_load((tmp_path / "s" / "optimization_results.yaml").read_text())
    assert results["best_value"] == float("inf")
    # Each trial's two seeds trained together, as one stack of two.
    assert result.stderr.count("running stacked") == 4
    for trial in trials:
        for key in trial["jobs"]:
            summary = json.loads((tmp_path / "s" / key / "summary.json").read_text())
            assert summary["status"] == "diverged" and summary["stack"]["size"] == 2
