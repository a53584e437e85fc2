"""One workflow, two faces (regbench/workflow.py): the API takes every option the commands take,
runs what they run (a search too), refuses wrong types in one line, leaves the process as it
found it, and runs from several threads one after another."""

from __future__ import annotations

import csv
import inspect
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest
import typer

import regbench
from regbench.cli import app

# A command's option -> the API's parameter, where the name is not the option's long flag with
# its dashes as underscores (--stack-memory -> stack_memory, --dir -> dir).
API_NAMES = {"--metric": "metrics"}
# Options the API has no parameter for, and why.
CLI_ONLY = {
    "--cfg": "prints Hydra's composed config and runs nothing: text for a terminal",
    "--resolve": "goes with --cfg",
    "--package": "goes with --cfg",
    "--info": "prints Hydra's information and runs nothing: text for a terminal",
    "--multirun": "`regbench run -m` is `regbench sweep`: the API has regbench.sweep",
    "--all-columns": "the console table's width: text for a terminal (the API returns data)",
}
FACES = [(name, getattr(regbench, name)) for name in ("run", "sweep", "compare")]


def options(command: str) -> list[str]:
    """The command's options by their long flag (``--stack-memory``), its arguments by name."""
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    return [p.name if isinstance(p, click.Argument) else max(p.opts, key=len) for p in params]


def api_name(option: str) -> str:
    return API_NAMES.get(option, option.removeprefix("--").replace("-", "_"))


@pytest.mark.parametrize(("command", "function"), FACES, ids=[name for name, _ in FACES])
def test_the_api_takes_every_option_of_the_command(command: str, function) -> None:  # type: ignore[no-untyped-def]
    taken = set(inspect.signature(function).parameters)
    missing = [o for o in options(command) if o not in CLI_ONLY and api_name(o) not in taken]
    assert not missing, f"regbench.{command} has no parameter for {missing}"


def test_the_tables_name_real_options() -> None:
    """A renamed or removed option must leave API_NAMES and CLI_ONLY too."""
    every = {o for command, _ in FACES for o in options(command)}
    assert set(API_NAMES) | set(CLI_ONLY) <= every


# A search of two trials of one seed each: the least that has something to choose from.
SEARCH = ["model=regression", "epochs=2", "data.n_train=16", "model.hidden=[8]", "seed=1"]
SEARCH += ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "dropout=interval(0,0.5)"]


def test_the_api_runs_a_search_and_returns_its_trials_and_comparison(tmp_path: Path) -> None:
    with pytest.raises(regbench.UsageError, match="select val_loss picks each run's epoch"):
        regbench.sweep(SEARCH, dir=tmp_path / "refused", select="val_loss")  # at final
    assert not (tmp_path / "refused").exists()

    options = {"objective": "val_loss", "at": "best", "select": "val_loss", "tex": True}
    outcome = regbench.sweep([*SEARCH, f"out_dir={tmp_path}"], dir=tmp_path / "s", **options)
    assert sorted(outcome.statuses.values()) == ["completed"] * 2
    assert [t.number for t in outcome.trials] == [1, 2]
    assert outcome.best is min(outcome.trials, key=lambda t: t.value)
    comparison = outcome.compared.comparison
    assert comparison.metrics == ["val_loss"] and comparison.at == "best"
    assert len(outcome.comparison) == 2
    assert (tmp_path / "s" / "comparison.tex").is_file()
    assert (tmp_path / "s" / "optimization_results.yaml").is_file()


def test_a_dry_run_plans_and_writes_nothing(tmp_path: Path) -> None:
    grid = ["model=regression", "dropout=0,0.5", "seed=1", f"out_dir={tmp_path}"]
    outcome = regbench.sweep(grid, dir=tmp_path / "s", dry_run=True)
    assert outcome.statuses == {} and sorted(outcome.planned.values()) == ["run", "run"]
    assert list(tmp_path.iterdir()) == []


def test_the_api_composes_from_the_users_config_folder(tmp_path: Path) -> None:
    """config_dir and config_name are --config-dir and --config-name: the user's experiment
    and primary config (dropout: 0.4 in mine.yaml) reach every job."""
    from tests.test_hydra_flags import write_myconfigs

    mine = write_myconfigs(tmp_path / "myconfigs")
    grid = ["+experiment=foo", "seed=1,2", f"out_dir={tmp_path}"]
    outcome = regbench.sweep(grid, dir=tmp_path / "s", dry_run=True, config_dir=mine)
    assert len(outcome.planned) == 2
    with pytest.raises(regbench.ConfigError, match="config-dir"):
        regbench.sweep(grid, dry_run=True, config_dir=tmp_path / "nowhere")
    run = ["model=regression", "epochs=1", "data.n_train=8", f"out_dir={tmp_path / 'o'}"]
    result = regbench.run(run, config_dir=mine, config_name="mine")
    assert result.summary.status == "completed"
    assert "dropout: 0.4" in (result.run_dir.path / "config.yaml").read_text()


WRONG_TYPES = [
    (lambda: regbench.compare("sweep", metrics="test_loss"), r"metrics must be a list"),
    (lambda: regbench.compare("sweep", over="dropout"), r"over must be a list"),
    (
        lambda: regbench.compare(123),
        r"paths must be a folder \(a str or a Path\) or a list of them, not 123",
    ),
    (lambda: regbench.compare(["a", 1]), r"paths\[1\] must be a folder"),
    (lambda: regbench.compare("sweep", at=5), r"at must be a string"),
    (lambda: regbench.load_runs(5), r"paths\[0\] must be a folder \(a str or a Path\), not 5"),
    (lambda: regbench.run([1, 2]), r"overrides\[0\] is 1 \(int\)"),
    (lambda: regbench.run([b"dropout=0.5"]), r"overrides\[0\] is b'dropout=0.5' \(bytes\)"),
    (lambda: regbench.run(5), r"overrides must be a list"),
    (lambda: regbench.run(["epochs=1"], config_dir=5), r"config_dir must be a folder"),
    (
        lambda: regbench.sweep(["dropout=0,1"], dir=3),
        r"dir must be a folder \(a str or a Path\), not 3",
    ),
    (lambda: regbench.sweep(["dropout=0,1"], stack_memory=0.5, stacked=True), r"at least 1"),
]


@pytest.mark.parametrize(("call", "message"), WRONG_TYPES, ids=[m for _, m in WRONG_TYPES])
def test_wrong_types_are_one_usage_error_naming_the_argument(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(regbench.UsageError, match=message):
        call()


def test_every_call_leaves_the_environment_and_the_warning_filters(tmp_path: Path) -> None:
    """In a fresh interpreter, as a notebook's kernel is: torch sets TORCHINDUCTOR_CACHE_DIR when
    its compiler is first imported, and libraries add warning filters when first imported."""
    out = tmp_path / "o"
    code = f"""
import os, warnings, regbench
base = ["model=regression", "epochs=1", "data.n_train=16", "out_dir={out}"]
calls = {{
    "run": lambda: regbench.run(base),
    "sweep": lambda: regbench.sweep([*base, "seed=1,2"], dir="{out}/s"),
    "load_runs": lambda: regbench.load_runs("{out}"),
    "compare": lambda: regbench.compare("{out}/s").figures,
}}
for name, call in calls.items():
    environment, filters = dict(os.environ), list(warnings.filters)
    call()
    print(name, dict(os.environ) == environment, warnings.filters == filters)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines()]
    assert lines == [[name, "True", "True"] for name in ("run", "sweep", "load_runs", "compare")]


def metrics_without_seconds(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_runs_in_two_threads_take_turns_and_match_a_run_alone(tmp_path: Path) -> None:
    """Runs seed and read the process's RNGs and torch's flags (dropout draws from torch's RNG at
    every step): two at once would change each other's numbers, or collide in Hydra's global.
    They take turns, so each is the run it would be alone. Ten epochs: the two overlap."""
    overrides = [
        "model=regression",
        "epochs=10",
        "threads=1",
        "device=cpu",
        "dropout=0.5",
        "seed=5",
    ]
    alone = regbench.run([*overrides, f"out_dir={tmp_path / 'alone'}"])
    expected = metrics_without_seconds(alone.run_dir.path)
    start, results, errors = threading.Barrier(2), {}, []

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = regbench.run([*overrides, f"out_dir={tmp_path / str(i)}"])
        except Exception as exc:  # shown by the assertion below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for result in results.values():
        assert result.summary.status == "completed"
        assert metrics_without_seconds(result.run_dir.path) == expected


def test_select_reaches_the_comparison_from_the_command_and_the_api(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--select and select= are handed to comparison.compare as they are (its rules for them
    are tests/test_compare.py's)."""
    from regbench.analysis import comparison

    def compare(paths, **options):  # type: ignore[no-untyped-def]
        raise regbench.UsageError(f"compared at={options['at']} select={options['select']}")

    monkeypatch.setattr(comparison, "compare", compare)
    given = cli("compare", str(tmp_path), "--at", "best", "--select", "val_acc")
    assert given.exit_code == 2 and "compared at=best select=val_acc" in given.stderr
    with pytest.raises(regbench.UsageError, match="compared at=best select=val_acc"):
        regbench.compare(tmp_path, at="best", select="val_acc")


def test_a_sweep_refuses_select_and_prints_cfg_before_anything_runs(cli, tmp_path: Path) -> None:
    """--select on a sweep compared at final is refused before training; --cfg of a search
    prints the config and runs nothing (it used to run the search)."""
    grid = cli("sweep", "model=regression", "dropout=0,0.5", "--select", "test_loss")
    assert grid.exit_code == 2
    assert "--select test_loss picks each run's epoch for a comparison at best" in grid.stderr
    search = ["model=regression", "hydra/sweeper=optuna", "dropout=interval(0,0.5)"]
    printed = cli("sweep", *search, "--cfg", "job")
    assert printed.exit_code == 0, printed.stderr
    assert "dropout:" in printed.stdout and "trial" not in printed.stderr
    assert list(tmp_path.iterdir()) == []
