"""Bad input found by a red team (issue 27): each refused in one line, exit 2 and no folder,
before anything trains; and a sweep's plan, which must stay fast and interruptible."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Result, run_dirs

TINY = ("model=regression", "epochs=2", "threads=1", "device=cpu")


def one_error(result: Result) -> str:
    """The one ``error:`` line of a refused command (exit 2)."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:")
    return line


def write_configs(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# ----------------------------------------------------------------------------- 15: cycles
CYCLES = {
    "rec.yaml": "defaults:\n  - rec\n",
    "data/loop.yaml": "defaults:\n  - loop\nname: toy_regression\n",
    "model/a.yaml": "defaults:\n  - /model/b\n",
    "model/b.yaml": "defaults:\n  - a\n",
}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "-cn", "rec"], "config rec includes itself in its defaults list (rec -> rec)"),
        (["run", "data=loop"], "config data/loop includes itself"),
        (["run", "model=a"], "model/a -> model/b -> model/a"),
        (["sweep", "data=loop", "seed=1,2", "--dry-run"], "data/loop -> data/loop"),
        (["configs", "-cn", "rec"], "rec -> rec"),
    ],
    ids=str,
)
def test_a_config_that_includes_itself_names_the_cycle(cli, tmp_path, args, says) -> None:
    folder = write_configs(tmp_path / "cycles", CYCLES)
    line = one_error(cli(args[0], "-cd", str(folder), *args[1:]))
    assert says in line and "RecursionError" not in line
    assert not (tmp_path / "outputs").exists()


# ----------------------------------------------------------------------------- 18: control chars
@pytest.mark.parametrize("value", ["'a\rb'", "a\nb", "'a\x1b[31mb'", "'a\u202eb'"], ids=ascii)
def test_a_sweep_refuses_control_characters_naming_the_key(cli, tmp_path, value) -> None:
    line = one_error(cli("sweep", *TINY, f"name={value}", "seed=1,2", "--dry-run"))
    assert "the value of name holds the control character" in line
    assert line.isprintable()  # the message shows the character escaped
    assert not (tmp_path / "outputs").exists()


# ----------------------------------------------------------------------------- 21: hydra keys
def test_a_hydra_key_that_needs_a_plus_says_so(cli, tmp_path: Path) -> None:
    line = one_error(
        cli("sweep", *TINY, "seed=1,2", "hydra.launcher.ray.init.num_cpus=2", "--dry-run")
    )
    assert "write it with a +: +hydra.launcher.ray.init.num_cpus=2" in line
    assert "known keys" not in line
    added = cli("sweep", *TINY, "seed=1,2", "+hydra.launcher.ray.init.num_cpus=2", "--dry-run")
    assert added.exit_code == 0, added.stderr


# ----------------------------------------------------------------------------- 20: trackers
@pytest.mark.slow
def test_a_file_store_given_as_mlflow_uri_works_like_the_default(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow refuses its file store unless MLFLOW_ALLOW_FILE_STORE is set: regbench sets it
    for any file: store, and puts the caller's environment back after."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    store = (tmp_path / "elsewhere" / "mlruns").as_uri()
    result = cli("run", *TINY, "logger=[csv,mlflow]", f"mlflow_uri={store}", "-q")
    assert result.exit_code == 0, result.stderr
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # to read it back here
    client = MlflowClient(tracking_uri=store)
    (found,) = client.search_runs([client.get_experiment_by_name("regression").experiment_id])
    assert found.info.status == "FINISHED"


def test_a_store_that_cannot_open_stops_the_sweep_before_training(cli, tmp_path: Path) -> None:
    """The pre-flight opens the store as the runs would (here a path under a file)."""
    pytest.importorskip("mlflow")
    (tmp_path / "afile").write_text("not a folder")
    store = (tmp_path / "afile" / "mlruns").as_uri()
    args = ("sweep", *TINY, "seed=1,2", "logger=[csv,mlflow]", f"mlflow_uri={store}")
    result = cli(*args, "--dir", "s", "-q")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"MLflow cannot open the store mlflow_uri={store}" in errors[0]
    assert not (tmp_path / "s").exists() and run_dirs(tmp_path) == []


def test_an_unreachable_server_stops_the_sweep_before_training(cli, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    args = ("sweep", *TINY, "seed=1,2", "logger=[csv,mlflow]", "mlflow_uri=http://127.0.0.1:9")
    result = cli(*args, "--dir", "s", "-q")
    assert result.exit_code == 1 and "cannot reach the MLflow server" in result.stderr
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- 12: experiments
EXPERIMENT = """\
# @package _global_
experiment:
  name: tiny
  claim: dropout changes the test loss
  metrics: [test_loss]
  baseline: dropout=0
  at: final
  margin: null
  within: null
"""


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("experiment.metrics=[test_acc]", "experiment.metrics: model=regression logs no test_acc"),
        ("experiment.within=lr", "experiment.within=lr: the grid does not vary lr"),
        ("experiment.within=nope", "experiment.within=nope: the grid has no key nope"),
        ("experiment.baseline='dropout=0.3'", "'dropout=0.3' matches no group of the grid"),
        ("experiment.baseline='l9=0'", "the grid's groups have no key l9"),
        ("experiment.metrics=[]", "e.g. experiment.metrics=[test_loss]"),
    ],
    ids=str,
)
def test_an_experiment_the_grid_cannot_answer_is_refused_before_training(
    cli, tmp_path: Path, override: str, says: str
) -> None:
    folder = write_configs(tmp_path / "mine", {"experiment/tiny.yaml": EXPERIMENT})
    grid = ("-cd", str(folder), "+experiment=tiny", *TINY, "dropout=0,0.5")
    line = one_error(cli("sweep", *grid, override, "--dir", "s", "-q"))
    assert says in line and "512,256" not in line
    assert not (tmp_path / "s").exists()


def test_an_experiment_the_grid_answers_plans(cli, tmp_path: Path) -> None:
    folder = write_configs(tmp_path / "mine", {"experiment/tiny.yaml": EXPERIMENT})
    grid = ("-cd", str(folder), "+experiment=tiny", *TINY, "dropout=0,0.5", "l2=0,0.1")
    within = cli("sweep", *grid, "experiment.within=l2", "--dry-run")
    assert within.exit_code == 0, within.stderr


# ----------------------------------------------------------------------------- 16: planning
def test_ctrl_c_while_planning_is_an_interrupt(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hydra's and OmegaConf's cleanup code can fail in turn when Ctrl-C lands inside it
    (an UnboundLocalError in Hydra's config reader): still `interrupted`."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    def interrupted(*args, **kwargs):
        f = None
        try:
            raise KeyboardInterrupt
        finally:
            f.close()  # as Hydra's _read_config does with a file it never opened

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", interrupted)
    result = cli("sweep", *TINY, "seed=1,2", "--dry-run")
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == "interrupted"


def test_a_slow_plan_says_how_far_it_is(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from regbench.sweeps.plan import PlanProgress

    monkeypatch.setattr(PlanProgress, "EVERY_SECONDS", 0.0)
    result = cli("sweep", *TINY, "seed=1,2,3", "--dry-run")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "planning: 1/3 jobs composed" in lines and "planning: 2/3 jobs checked" in lines


GRIDS = [
    ["model=regression", "seed=1,2", "dropout=0,0.5", "model.hidden=[8],[8,8]"],
    ["+experiment=l1_vs_l2"],
    ["model=mlp,regression", "seed=1,2", "~weight_decay", "++lr=0.5", "+experiment/penalty=l1,l2"],
    ["data=toy_regression,sine_tiny", "model=regression,rnn", "seed=1,2", "hydra/launcher=joblib"],
    ["-cd", "MINE", "+experiment=tiny", "model=regression", "dropout=0,0.5", "seed=1,2"],
    ["hydra.searchpath=[file://MINE]", "+experiment=tiny", "model=regression", "l2=0,0.1"],
]


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_jobs_composed_from_a_shared_tree_equal_hydras_own(tmp_path: Path, grid) -> None:
    """Each job's config from its choice of configs composed once, with its own overrides
    applied, is the config Hydra composes for it from scratch."""
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from regbench.compose import hydra as app

    mine = write_configs(tmp_path / "mine", {"experiment/tiny.yaml": EXPERIMENT})
    grid = [item.replace("MINE", str(mine)) for item in grid]
    user_dir = grid[1] if grid[0] == "-cd" else None
    overrides = grid[2:] if user_dir else grid
    with app.searching(user_dir), app.regbench_configs():
        loader = GlobalHydra.instance().config_loader()
        master = app.multirun_config(overrides, loader)
        cells, _ = app._cross(master, loader)
        hydra_overrides = OmegaConf.to_container(master.hydra.overrides.hydra)
        shared = app.JobComposer(loader, hydra_overrides)
        scratch = app.JobComposer(loader, hydra_overrides, reuse_trees=False)
        for cell in cells:
            assert shared.compose(cell) == scratch.compose(cell), cell
    assert len(shared.trees) < len(cells)
