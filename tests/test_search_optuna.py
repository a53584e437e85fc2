"""regbench's search on current Optuna (ask-and-tell), as users type it on the toy regression:
persistent studies read back with optuna.load_study, the samplers, the search's figures, and
search spaces that cannot be searched refused in one line before any folder is made."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from regbench.sweeps import optuna_space
from tests.conftest import run_dirs

TINY = (
    "model=regression", "epochs=30", "eval_every=10", "threads=1", "device=cpu",
    "model.hidden=[16]", "data.n_train=16", "hydra/sweeper=optuna", "-q",
)  # fmt: skip


def record(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep.json").read_text())


@pytest.mark.slow
def test_a_sqlite_study_reads_back_and_continues(cli, tmp_path: Path) -> None:
    search = (*TINY, "dropout=interval(0,0.6)", "seed=1,2", "hydra.sweeper.study_name=s1")
    storage = "hydra.sweeper.storage=sqlite:///optuna.db"  # relative to the working folder
    first = cli("sweep", *search, storage, "hydra.sweeper.n_trials=2", "--dir", "s")
    assert first.exit_code == 0, first.stderr
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.load_study(study_name="s1", storage=url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    trials = record(tmp_path / "s")["search"]["trials"]
    assert [t.value for t in study.trials] == [t["value"] for t in trials]
    assert [t.user_attrs["jobs"] for t in study.trials] == [t["jobs"] for t in trials]
    assert (tmp_path / "s" / "search_history.png").is_file()
    assert (tmp_path / "s" / "search_slice_dropout.png").is_file()

    # Growing it continues the stored study: one more trial, nothing retrained.
    again = cli("sweep", *search, storage, "hydra.sweeper.n_trials=3", "--dir", "s")
    assert again.exit_code == 0, again.stderr
    assert again.stderr.count("running ->") == 2 and "trial 3/3" in again.stderr
    assert len(optuna.load_study(study_name="s1", storage=url).trials) == 3
    assert len(run_dirs(tmp_path / "s")) == 6


@pytest.mark.slow
def test_a_journal_study_and_other_samplers(cli, tmp_path: Path) -> None:
    journal = tmp_path / "j.log"
    result = cli(
        "sweep", *TINY, "lr=tag(log,interval(1e-3,1e-1))", "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=3", "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage=journal://{journal}", "--dir", "j",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="regbench-j", storage=storage)
    assert len(study.trials) == 2 and "random sampler, seed 3" in result.stderr

    grid = cli(
        "sweep", *TINY, "epochs=choice(10,20)", "hydra/sweeper/sampler=grid",
        "hydra.sweeper.n_trials=5", "--dir", "g",
    )  # fmt: skip
    assert grid.exit_code == 0, grid.stderr
    params = sorted(t["params"]["epochs"] for t in record(tmp_path / "g")["search"]["trials"])
    assert params == ["10", "20"]  # the grid holds two: five trials are capped at two


@pytest.mark.parametrize("sampler", ["gp", "cmaes", "tpe"])
def test_each_sampler_is_built_from_its_group(sampler: str) -> None:
    dist = {"dropout": optuna.distributions.FloatDistribution(0, 0.5)}
    settings = optuna_space.OptunaSettings(
        n_trials=1, distributions=dist, fixed=(), sampler=sampler, sampler_options={"seed": 1}
    )
    study = optuna.create_study(sampler=settings.make_sampler())
    asked = study.ask(dist)
    assert 0 <= asked.params["dropout"] <= 0.5


def test_the_space_reads_hydras_grammar() -> None:
    from regbench.sweeps.trials import parse

    parsed = parse(
        ["a=interval(0,0.5)", "b=tag(log,interval(1e-5,1e-2))", "c=range(1,10,3)", "d=x,y", "e=1"]
    )
    found = optuna_space.distributions(parsed)
    assert found["a"] == optuna.distributions.FloatDistribution(0.0, 0.5)
    assert found["b"].log and found["b"].low == 1e-5
    assert found["c"] == optuna.distributions.IntDistribution(1, 7, step=3)  # stop excluded
    assert found["d"] == optuna.distributions.CategoricalDistribution(["x", "y"])
    assert "e" not in found
    assert optuna_space.from_text(found["c"], "4") == 4
    assert optuna_space.from_text(found["a"], "0.7") is None


# Issue 24 and issue 27 cases 8 and 11: one line, exit 2, no folder.
BAD = [
    (["dropout=interval(0,0.5)", "hydra.sweeper.n_trials=0"], "give a whole number of trials"),
    (["dropout=interval(0,0.5)", "hydra.sweeper.n_trials=-3"], "give a whole number of trials"),
    (["dropout=interval(0.5,0.1)"], "an interval goes from low to high"),
    (["weight_decay=tag(log,interval(0,0.1))"], "a log scale starts above 0"),
    (["epochs=range(3,3)"], "gives no value"),
    (["dropout=interval(0,0.5)", "hydra/sweeper/pruner=nope"], "hydra/sweeper/pruner"),
    (["dropout=interval(0,0.5)", "hydra/sweeper/sampler=nope"], "hydra/sweeper/sampler"),
    (["dropout=interval(0,0.5)", "+hydra.sweeper.sampler.foo=1"], "not an option of optuna"),
    (["dropout=interval(0,0.5)", "+hydra.sweeper.n_jobs=2"], "not a setting of"),
    (["dropout=interval(0,0.5)", "hydra/sweeper/sampler=grid"], "is an interval"),
    (
        ["dropout=interval(0,0.5)", "hydra.sweeper.storage=sqlite:////no/such/dir/x.db"],
        "cannot be opened",
    ),
    (["dropout=interval(0,0.5)", "hydra.sweeper.storage=journal://rel.log"], "absolute path"),
    (["dropout=interval(0,0.5)", "hydra.sweeper.max_failure_rate=2"], "from 0 to 1"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD, ids=lambda v: str(v))
def test_a_search_that_cannot_be_searched_is_one_line(
    cli, tmp_path: Path, overrides: list[str], expected: str
) -> None:
    result = cli("sweep", "model=regression", "hydra/sweeper=optuna", *overrides, "--dir", "s")
    assert result.exit_code == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:") and expected in line
    assert list(tmp_path.iterdir()) == []


def test_an_empty_range_is_refused_in_a_grid_too(cli, tmp_path: Path) -> None:
    result = cli("sweep", "model=regression", "epochs=range(3,3)", "--dir", "g")
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_api_result_carries_the_study(tmp_path: Path, monkeypatch) -> None:
    import regbench

    monkeypatch.chdir(tmp_path)
    words = [w for w in TINY if w != "-q"]
    outcome = regbench.sweep(
        [*words, "dropout=interval(0,0.6)", "hydra.sweeper.n_trials=2"], dir="s"
    )
    assert isinstance(outcome.study, optuna.Study) and len(outcome.study.trials) == 2
    assert outcome.best is not None and outcome.best.value == outcome.study.best_value
