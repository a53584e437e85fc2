"""Hydra's conventions on `run` and `sweep` (issue 14, items 2 to 4): --cfg, --info, -m,
--config-dir/-cd, --config-name/-cn, hydra.searchpath, shell completion; user config folders for
runs and sweeps alike; `regbench configs` listing what Hydra sees; the printed resume line run
through bash; and keys that change no number (logger, mlflow_uri) leaving job folders alone."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from regbench.cli import app
from regbench.compose.hydra import config_dir

# A user's own config folder: an experiment and a data option, both tiny, and a primary config.
EXPERIMENT = """\
# @package _global_
defaults:
  - override /model: regression
  - override /data: tiny_line
model:
  hidden: [8]
dropout: 0.25
epochs: 2
"""
DATA = "name: toy_regression\nn_train: 8\nn_test: 8\nnoise: 0.1\n"
PRIMARY = "defaults:\n  - config\n  - _self_\ndropout: 0.4\n"
TINY = ("model=regression", "model.hidden=[8]", "data.n_train=8", "data.n_test=8", "epochs=2")


def write_myconfigs(folder: Path) -> Path:
    (folder / "experiment").mkdir(parents=True)
    (folder / "data").mkdir()
    (folder / "experiment" / "foo.yaml").write_text(EXPERIMENT)
    (folder / "data" / "tiny_line.yaml").write_text(DATA)
    (folder / "mine.yaml").write_text(PRIMARY)
    return folder


@pytest.fixture
def myconfigs(tmp_path: Path) -> Path:
    return write_myconfigs(tmp_path / "myconfigs")


@dataclass(frozen=True)
class Finished:
    """One sweep of the user's experiment, run once for the module (every run draws its plots,
    the slow part), as a user types it: their folder, their experiment, a range and a logger
    list, into a folder whose path has spaces."""

    root: Path  # holds myconfigs/ and the sweep folder
    sweep_dir: Path
    stdout: str

    def copy_to(self, where: Path) -> Path:
        """The sweep folder copied into ``where``, for a test that changes it."""
        return Path(shutil.copytree(self.sweep_dir, where / "copy"))

    def job(self, seed: int, sweep_dir: Path | None = None) -> Path:
        (found,) = (sweep_dir or self.sweep_dir).glob(f"*-seed={seed}")
        return found


SWEEP_ARGS = ("+experiment=foo", "seed=range(1,3)", "logger=[csv]")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    root = tmp_path_factory.mktemp("finished")
    folder = write_myconfigs(root / "myconfigs")
    sweep_dir = root / "my sweeps" / "s 1"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        args = ["sweep", "-cd", str(folder), *SWEEP_ARGS, "--dir", str(sweep_dir), "-q"]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return Finished(root, sweep_dir, result.stdout)


def one_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def hydra_app(tmp_path: Path, *args: str) -> str:
    """What a plain @hydra.main app on regbench's configs prints for ``args``."""
    script = tmp_path / "app.py"
    script.write_text(
        "import hydra\n"
        f"@hydra.main(config_path={str(config_dir())!r}, config_name='config', "
        "version_base=None)\n"
        "def main(cfg):\n    pass\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def jobs_of(sweep_dir: Path) -> dict[str, str]:
    record = json.loads((sweep_dir / "sweep.json").read_text())
    return {key: job["status"] for key, job in record["jobs"].items()}


# ----------------------------------------------------------------------------- --cfg, --info
def test_cfg_and_info_print_what_a_hydra_app_prints(cli, tmp_path: Path, myconfigs: Path) -> None:
    args = ("-cd", str(myconfigs), "+experiment=foo", "seed=3")
    ours = cli("run", "--cfg", "job", *args)
    assert ours.exit_code == 0, ours.stderr
    assert ours.stdout == hydra_app(tmp_path, "--cfg", "job", *args)
    assert "dropout: 0.25" in ours.stdout and "n_train: 8" in ours.stdout
    tree = cli("run", *args, "--info", "defaults-tree")  # --info may come last, as in Hydra
    assert tree.exit_code == 0, tree.stderr
    assert "experiment: foo" in tree.stdout and "data: tiny_line" in tree.stdout
    assert list(tmp_path.glob("outputs")) == []  # nothing ran


def test_cfg_hydra_package_resolve_and_info(cli, myconfigs: Path) -> None:
    handlers = list(logging.getLogger().handlers)
    launcher = cli("run", "--cfg", "hydra", "-p", "hydra.launcher")
    assert launcher.stdout.startswith("# @package hydra.launcher\n")
    assert "BasicLauncher" in launcher.stdout
    resolved = cli("run", "--cfg", "all", "--resolve", "-p", "hydra.job.name")
    assert resolved.stdout.strip() == "regbench"
    search = cli("run", "--info", "-cd", str(myconfigs))  # bare --info: all of it
    assert search.exit_code == 0, search.stderr
    assert f"file://{myconfigs}" in search.stdout and "Installed Hydra Plugins" in search.stdout
    assert logging.getLogger().handlers == handlers  # Hydra's stdout handler is gone again
    grid = cli("sweep", "--cfg", "hydra", "-p", "hydra.overrides.task", "dropout=0,0.5")
    assert grid.exit_code == 0, grid.stderr
    assert "- dropout=0,0.5" in grid.stdout  # the config a multirun starts from
    assert "Defaults List" in cli("sweep", "dropout=0,0.5", "--info", "defaults").stdout
    # --info is Hydra's view of any config; --cfg (below) prints only configs that would run.
    assert "dropout: 3" in cli("run", "dropout=3", "--info", "config").stdout


HYDRA_FLAG_MISUSE = [
    (("run", "--cfg", "everything"), "--cfg everything: choose one of job, hydra, all"),
    (("run", "--info", "--cfg", "job"), "give one of them"),
    (("run", "--resolve"), "--resolve goes with --cfg"),
    (("run", "-p", "model"), "--package goes with --cfg"),
    (("run", "--cfg", "job", "-p", "nokey"), "--package nokey"),
    (("run", "--cfg", "job", "dropout=1.5"), "dropout"),  # --cfg prints only configs that run
    (("sweep", "--cfg", "job", "dropout=0,1.5"), "dropout=1.5"),
    (("sweep", "--info", "--dry-run"), "drop --dry-run"),
    (("run", "-cd", "no/such/folder"), "--config-dir no/such/folder: no such folder"),
    (("run", "-cn", "nope"), "--config-name nope: no nope.yaml"),
    (("run", "hydra.searchpath=[file:///no/such]"), "/no/such is not a folder"),
    (("run", "+nogroup=foo"), "no config group 'nogroup' in the search path"),
    (("run", "hydra.run.dir=/tmp/x"), "hydra.run.dir does nothing for one run"),
    (("run", "hydra.job.chdir=true"), "hydra.job.chdir does nothing for one run"),
]


@pytest.mark.parametrize(("args", "expected"), HYDRA_FLAG_MISUSE, ids=lambda v: str(v))
def test_misused_hydra_flags_are_one_line(cli, tmp_path: Path, args, expected: str) -> None:
    assert expected in one_error(cli(*args))
    assert list(tmp_path.iterdir()) == []


def test_config_name_picks_a_user_primary_config_that_must_validate(
    cli, tmp_path: Path, myconfigs: Path
) -> None:
    mine = cli("run", "-cd", str(myconfigs), "-cn", "mine", "--cfg", "job", "-p", "dropout")
    assert mine.exit_code == 0, mine.stderr
    assert mine.stdout.strip() == "0.4"
    (myconfigs / "bare.yaml").write_text("dropout: 0.1\n")  # not a regbench config
    assert "model must be one of" in one_error(cli("run", "-cd", str(myconfigs), "-cn", "bare"))


def test_user_model_options_validate_and_hydra_keys_in_files_are_refused(
    cli, myconfigs: Path
) -> None:
    (myconfigs / "model").mkdir()
    (myconfigs / "model" / "small.yaml").write_text("name: regression\nhidden: [16]\n")
    small = ("-cd", str(myconfigs), "model=small", "data=tiny_line")
    assert "- 16" in cli("run", *small, "--cfg", "job", "-p", "model").stdout
    assert "data=toy_regression" in one_error(cli("run", *small[:3], "--cfg", "job"))  # mnist
    chdir = "# @package _global_\nhydra:\n  job:\n    chdir: true\n"
    (myconfigs / "experiment" / "chdir.yaml").write_text(chdir)
    line = one_error(cli("run", "-cd", str(myconfigs), "+experiment=chdir"))
    assert "hydra.job.chdir: true (set in a config file) does nothing for one run" in line
    if importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher"):
        launcher = "# @package _global_\ndefaults:\n  - override /hydra/launcher: joblib\n"
        (myconfigs / "experiment" / "par.yaml").write_text(launcher)
        par = ("sweep", "-cd", str(myconfigs), "+experiment=par", "--dry-run")
        assert "name the launcher on the command line" in one_error(cli(*par))


# ----------------------------------------------------------------------------- user configs
COMPOSED: list[dict] = []


def record_job(cfg) -> None:  # a Hydra task: module level, as launchers need
    from omegaconf import OmegaConf

    COMPOSED.append(OmegaConf.to_container(cfg, resolve=True))


def test_user_configs_reach_every_job_of_a_sweep(cli, tmp_path: Path, finished: Finished) -> None:
    """The module's sweep composed its jobs in-process with -cd; Hydra's multirun (the path of
    every launcher plugin, hydra/launcher=...: Hydra composes each job in this process and hands
    it to the launcher) gets the same -cd; hydra.searchpath plans the same jobs; run -m is sweep."""
    from regbench.compose.hydra import multirun, searching

    myconfigs = finished.root / "myconfigs"
    assert "dropout: 0.25" in (finished.job(1) / "config.yaml").read_text()
    COMPOSED.clear()
    with searching(myconfigs):
        multirun(record_job, ["+experiment=foo", "seed=1,2"], tmp_path / "multirun")
    assert [(job["seed"], job["dropout"], job["data"]["n_train"]) for job in COMPOSED] == [
        (1, 0.25, 8),
        (2, 0.25, 8),
    ]
    copy = finished.copy_to(tmp_path)
    searchpath = f"hydra.searchpath=[file://{myconfigs}]"
    args = (searchpath, "+experiment=foo", "seed=1,2,3", "--dir", str(copy), "--dry-run")
    dry = cli("run", "-m", *args)
    assert dry.exit_code == 0, dry.stderr
    assert "3 jobs (2 to skip, 1 to run)" in dry.stdout


def test_a_run_of_user_configs_needs_them_no_more(finished: Finished) -> None:
    """resume and rerun (and a sweep's resume of a job) start from the run folder's config.yaml,
    validated as any config: the user's folder and search path are not needed again."""
    from regbench.compose.hydra import current_search
    from regbench.core.rundir import RunDir
    from regbench.training.runner import saved_settings

    assert current_search().user_dir is None  # no -cd here
    job = finished.job(2)
    settings = saved_settings(RunDir.open(job))
    assert settings.dropout == 0.25 and settings.data.n_train == 8 and settings.seed == 2


def test_an_empty_grid_is_an_error(cli, tmp_path: Path, myconfigs: Path) -> None:
    line = one_error(cli("sweep", "-cd", str(myconfigs), "+experiment=glob(nothing_*)"))
    assert "the sweep has no jobs (+experiment=glob(nothing_*) gives no values)" in line
    assert list(tmp_path.iterdir()) == [myconfigs]


def test_configs_lists_what_hydra_sees(cli, myconfigs: Path) -> None:
    for where in (("-cd", str(myconfigs)), (f"hydra.searchpath=[file://{myconfigs}]",)):
        result = cli("configs", *where, "model=regression")
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        data = next(line for line in lines if line.startswith("data: "))
        assert "tiny_line" in data and "toy_regression" in data
        assert any(line.startswith("experiment: ") and "foo" in line for line in lines)
        launchers = next(line for line in lines if line.startswith("hydra/launcher: "))
        assert "basic" in launchers
    if importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher"):
        assert "joblib" in launchers  # an installed plugin's options too


# ----------------------------------------------------------------------------- completion
def test_shell_completion_completes_overrides_as_hydra_does(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("regbench"))
    env = {**os.environ, "HOME": str(tmp_path)}
    script = subprocess.run([exe, "--show-completion", "bash"], capture_output=True, text=True)
    assert "_REGBENCH_COMPLETE=complete_bash" in script.stdout, script.stderr
    query = {"_REGBENCH_COMPLETE": "complete_bash", "COMP_WORDS": "regbench run model=r"}
    done = subprocess.run(
        [exe], capture_output=True, text=True, env={**env, **query, "COMP_CWORD": "2"}
    )
    assert done.stdout.split() == ["model=regression", "model=rnn"], done.stderr
    installed = subprocess.run(
        [exe, "--install-completion", "bash"], capture_output=True, text=True, env=env
    )
    assert installed.returncode == 0, installed.stderr
    assert "regbench" in (tmp_path / ".bashrc").read_text()


# ----------------------------------------------------------------------------- item 4
@pytest.mark.slow  # the installed command in a subprocess: torch, Hydra, the comparison's plots
def test_the_printed_resume_line_runs_in_bash_and_skips_every_job(finished: Finished) -> None:
    (line,) = [x for x in finished.stdout.splitlines() if x.startswith("to resume, retry or")]
    command = line.split(": ", 1)[1]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    again = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, cwd=finished.root, env=env
    )
    assert again.returncode == 0, again.stderr
    assert "sweep: 2 jobs (2 to skip)" in again.stderr
    assert again.stderr.count("skipped (already completed)") == 2
    assert set(jobs_of(finished.sweep_dir).values()) == {"completed"}


def test_a_logger_or_mlflow_uri_changes_no_job(cli, tmp_path: Path, finished: Finished) -> None:
    from regbench.core.jobs import config_hash

    base = {"dropout": 0.5, "seed": 1, "logger": ["csv"], "mlflow_uri": None}
    louder = {**base, "logger": ["csv", "tensorboard", "mlflow"], "mlflow_uri": "file:///m"}
    assert config_hash(base) == config_hash(louder) != config_hash({**base, "dropout": 0.2})
    copy = finished.copy_to(tmp_path)
    args = ("-cd", str(finished.root / "myconfigs"), *SWEEP_ARGS[:2], "--dir", str(copy))
    louder = cli("sweep", *args, "logger=[csv,tensorboard]", "mlflow_uri=file:///m", "--dry-run")
    assert louder.exit_code == 0, louder.stderr
    assert "2 jobs (2 to skip)" in louder.stdout


def test_an_old_sweep_folder_is_refused_with_the_renames(
    cli, tmp_path: Path, finished: Finished
) -> None:
    """Folders named before logger and mlflow_uri left the hash would be run again beside."""
    from regbench.compose.validate import validate
    from regbench.core.jobs import LEGACY_UNKEYED, job_key

    copy = finished.copy_to(tmp_path)
    job = finished.job(1, copy)
    settings = validate(yaml.safe_load((job / "config.yaml").read_text()))
    # Hashed as such a folder was: without the keys added since (at their legacy values).
    old = copy / job_key(settings, LEGACY_UNKEYED)
    job.rename(old)
    args = ("-cd", str(finished.root / "myconfigs"), *SWEEP_ARGS, "--dir", str(copy))
    line = one_error(cli("sweep", *args, "--dry-run"))
    assert f"rename {old.name} to {job.name}" in line
