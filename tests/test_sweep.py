"""`regbench sweep` as users type it: Hydra multirun into config-keyed job folders, both
launchers, failures, resuming and growing, dry runs, and the comparison at the end."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import RUN_FILES, run_dirs, run_regbench, write_mnist
from tests.test_compare import final_values, read_csv
from tests.test_stats import direct_bounded, direct_paired

BOUNDS = {"test_loss": (0.0, None), "test_acc": (0.0, 1.0)}

# A 2 x 2 grid; the seeds are added per test. Small MLP, two epochs: fast, and curves have bands.
GRID = ("model=mlp", "dropout=0,0.5", "weight_decay=0,1e-3", "epochs=2", "model.hidden=[16]")
KEY = re.compile(r"[0-9a-f]{10}-seed=\d+")


@dataclass
class Sweep:
    path: Path
    stdout: str
    stderr: str
    returncode: int


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_mnist(root)
    return root


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Sweep:
    """The 2 x 2 x 3 sweep with the default launcher, as a user runs it (a subprocess)."""
    work = tmp_path_factory.mktemp("grid")
    args = (*GRID, "seed=range(1,4)", f"data.root={data_root}", "--dir", "grid", "-q")
    proc = run_regbench("sweep", *args, cwd=work)
    return Sweep(work / "grid", proc.stdout, proc.stderr, proc.returncode)


def statuses(sweep_dir: Path) -> dict[str, str]:
    return {
        run.name: json.loads((run / "summary.json").read_text())["status"]
        for run in run_dirs(sweep_dir)
    }


def without_seconds(run: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_csv(run / "metrics.csv")]


# ----------------------------------------------------------------------------- the grid
def test_grid_sweep_writes_a_run_folder_per_job(grid_sweep: Sweep) -> None:
    assert grid_sweep.returncode == 0, grid_sweep.stderr
    jobs = run_dirs(grid_sweep.path)
    assert len(jobs) == 12 and all(KEY.fullmatch(job.name) for job in jobs)
    hashes = {job.name.split("-")[0] for job in jobs}
    assert len(hashes) == 4  # one config hash per (dropout, weight_decay) cell, three seeds each
    for job in jobs:
        for name in RUN_FILES:
            assert (job / name).is_file(), f"{job.name}/{name}"
        overrides = (job / "overrides.yaml").read_text()
        assert f"seed={job.name.split('=')[1]}" in overrides and "dropout=" in overrides
    assert set(statuses(grid_sweep.path).values()) == {"completed"}

    record = json.loads((grid_sweep.path / "sweep.json").read_text())
    assert set(record["grid"]) == {"dropout", "weight_decay", "seed"}
    assert len(record["jobs"]) == 12
    assert {j["status"] for j in record["jobs"].values()} == {"completed"}
    assert record["invocations"][0]["outcome"] == {"completed": 12}
    assert (grid_sweep.path / "multirun.yaml").is_file()
    for k in range(1, 13):  # progress: which job of how many
        assert f"[{k}/12] dropout=" in grid_sweep.stderr
    assert "sweep done: 12 completed" in grid_sweep.stdout
    assert "Traceback" not in grid_sweep.stderr


def test_sweep_table_matches_a_direct_computation(grid_sweep: Sweep) -> None:
    rows = read_csv(grid_sweep.path / "comparison.csv")
    assert len(rows) == 4 and [r["n"] for r in rows] == ["3"] * 4
    assert [r["seeds"] for r in rows] == ["1 2 3"] * 4
    for metric in ("test_loss", "test_acc"):
        values = final_values(grid_sweep.path, metric)
        base = values[(0.0, 0.0)]
        for row in rows:
            group = values[(float(row["dropout"]), float(row["weight_decay"]))]
            got = [float(row[f"{metric}_{s}"]) for s in ("mean", "std", "ci_low", "ci_high")]
            lo, hi = BOUNDS[metric]  # the metric's range, which the interval stays inside
            expected = direct_bounded(list(group.values()), lo, hi)
            assert got == pytest.approx(expected, rel=1e-9, nan_ok=True)
            if row["baseline"] == "True":
                assert group is base
                continue
            x, y = [group[s] for s in (1, 2, 3)], [base[s] for s in (1, 2, 3)]
            diffs = [a - b for a, b in zip(x, y, strict=True)]
            if len(set(diffs)) == 1:  # identical differences: t is undefined, p left blank
                assert row[f"{metric}_p"] == "nan"
                continue
            columns = ("diff", "diff_ci_low", "diff_ci_high", "p")
            got = [float(row[f"{metric}_{c}"]) for c in columns]
            assert got == pytest.approx(direct_paired(x, y), rel=1e-9)
    assert "p" in grid_sweep.stdout and "95% CI" in grid_sweep.stdout
    for name in ("comparison.md", "comparison_loss_curves.png", "comparison_heatmap.png"):
        assert (grid_sweep.path / name).is_file()


def test_joblib_launcher_runs_the_same_jobs_and_sweeps_merge(
    cli, grid_sweep: Sweep, data_root: Path, tmp_path: Path
) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    args = (*GRID, "seed=3,4,5", f"data.root={data_root}", "--dir", "par", "-q")
    launcher = ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    proc = run_regbench("sweep", *args, *launcher, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    parallel = tmp_path / "par"
    assert set(statuses(parallel).values()) == {"completed"} and len(statuses(parallel)) == 12
    assert "JoblibLauncher" in (parallel / "multirun.yaml").read_text()
    assert all(f"[{k}/12]" in proc.stderr for k in range(1, 13))
    # Seed 3 is in both sweeps: same config, so the same folder name and the same numbers.
    shared = [job for job in run_dirs(parallel) if job.name.endswith("seed=3")]
    default = [job for job in run_dirs(grid_sweep.path) if job.name.endswith("seed=3")]
    assert [job.name for job in shared] == [job.name for job in default] and len(shared) == 4
    for job in shared:  # bitwise: every number as written, all but the time taken
        assert without_seconds(job) == without_seconds(grid_sweep.path / job.name)

    result = cli("compare", str(grid_sweep.path), str(parallel), "--out", "merged", "--no-plots")
    assert result.exit_code == 0, result.stderr
    rows = read_csv(tmp_path / "merged" / "comparison.csv")
    assert len(rows) == 4 and {r["seeds"] for r in rows} == {"1 2 3 4 5"}
    assert "repeat another run's config and seed" in result.stderr


# ----------------------------------------------------------------------------- failures
def test_failing_jobs_do_not_stop_the_sweep_and_are_retried(
    cli, tmp_path: Path, data_root: Path
) -> None:
    later = tmp_path / "later"  # data that appears only before the second invocation
    args = (
        "sweep",
        "lr=0.001,1e10",
        "optimizer=sgd",
        f"data.root={data_root},{later}",
        "data.download=false",
        "data.fallback=false",
        "epochs=1",
        "model.hidden=[16]",
        "--dir",
        "s",
        "-q",
    )
    first = cli(*args)
    assert first.exit_code == 1
    assert "2 of 4 jobs failed" in first.stderr and "--dir s" in first.stderr
    outcome = sorted(statuses(tmp_path / "s").values())
    assert outcome == ["completed", "diverged", "failed", "failed"]
    assert "MNIST files not found" in first.stderr and "diverged at epoch 1" in first.stderr
    table = (tmp_path / "s" / "comparison.md").read_text()
    assert "1 diverged" in table and "1 failed" in table
    (done,) = [p for p, s in statuses(tmp_path / "s").items() if s == "completed"]
    before = (tmp_path / "s" / done / "summary.json").read_bytes()

    write_mnist(later)
    second = cli(*args)
    assert second.exit_code == 0, second.stderr
    assert second.stderr.count("skipped (already completed)") == 1
    assert second.stderr.count("retrying") == 3
    assert sorted(statuses(tmp_path / "s").values()) == ["completed"] * 2 + ["diverged"] * 2
    assert (tmp_path / "s" / done / "summary.json").read_bytes() == before
    record = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [i["actions"] for i in record["invocations"]] == [{"run": 4}, {"skip": 1, "retry": 3}]


# ----------------------------------------------------------------------------- rerunning
def test_rerun_skips_resumes_grows_and_refuses_edited_jobs(
    cli, tmp_path: Path, data_root: Path
) -> None:
    common = ("epochs=2", "model.hidden=[16]", f"data.root={data_root}", "-q")
    assert cli("sweep", "dropout=0,0.5", "seed=1", *common, "--dir", "A").exit_code == 0
    jobs = {_dropout(job): job for job in run_dirs(tmp_path / "A")}
    reference = without_seconds(jobs[0.5])
    skipped_summary = (jobs[0.0] / "summary.json").read_bytes()

    # Make the dropout=0.5 job an interrupted run: its state after epoch 1 of 2.
    one_epoch = ("dropout=0.5", "seed=1", "epochs=1", *common[1:])
    assert cli("sweep", *one_epoch, "--dir", "B").exit_code == 0
    (cut,) = run_dirs(tmp_path / "B")
    shutil.rmtree(jobs[0.5])
    shutil.copytree(cut, jobs[0.5])
    config = (jobs[0.5] / "config.yaml").read_text().replace("epochs: 1", "epochs: 2")
    (jobs[0.5] / "config.yaml").write_text(config)
    summary = json.loads((jobs[0.5] / "summary.json").read_text())
    (jobs[0.5] / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))

    grown = ("dropout=0,0.5", "seed=1,2", *common, "--dir", "A")
    dry = cli("sweep", *grown, "--dry-run")
    assert dry.exit_code == 0 and "dry run: 4 jobs (" in dry.stdout
    assert all(n in dry.stdout for n in ("1 to skip", "1 to resume", "2 to run"))
    assert len(run_dirs(tmp_path / "A")) == 2  # a dry run runs nothing

    result = cli("sweep", *grown)
    assert result.exit_code == 0, result.stderr
    assert "dropout=0 seed=1: skipped" in result.stderr
    assert "dropout=0.5 seed=1: resuming" in result.stderr
    assert len(run_dirs(tmp_path / "A")) == 4
    assert set(statuses(tmp_path / "A").values()) == {"completed"}
    assert without_seconds(jobs[0.5]) == reference  # resumed exactly where it stopped
    assert (jobs[0.0] / "summary.json").read_bytes() == skipped_summary

    # A job folder whose config no longer matches its name is refused, before anything runs.
    edited = (jobs[0.0] / "config.yaml").read_text().replace("dropout: 0.0", "dropout: 0.3")
    (jobs[0.0] / "config.yaml").write_text(edited)
    refused = cli("sweep", *grown)
    assert refused.exit_code == 2
    (line,) = refused.stderr.strip().splitlines()
    assert jobs[0.0].name in line and "no longer matches" in line
    record = json.loads((tmp_path / "A" / "sweep.json").read_text())
    assert len(record["invocations"]) == 2


def _dropout(job: Path) -> float:
    import yaml

    return yaml.safe_load((job / "config.yaml").read_text())["dropout"]


# ----------------------------------------------------------------------------- dry run, errors
def test_dry_run_lists_jobs_and_writes_nothing(cli, tmp_path: Path) -> None:
    argv, environ = list(sys.argv), dict(os.environ)
    result = cli("sweep", "dropout=0,0.2,0.5", "seed=range(1,3)", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "6 jobs (6 to run)" in result.stdout and "nothing was run" in result.stdout
    assert "dropout=0.2 seed=2" in result.stdout
    assert list(tmp_path.iterdir()) == []
    assert sys.argv == argv and dict(os.environ) == environ  # Hydra's entry left no trace


BAD_SWEEPS = [
    (["dropout=0,1.5"], "dropout=1.5"),
    (["foo=1,2"], "foo"),
    (["hydra/launcher=nope"], "hydra/launcher"),
    (["dropout=0,0.0"], "same config"),
    (["hydra.sweep.dir=x"], "--dir"),
    (["seed=range(1,"], "cannot parse"),
    (["dropout=0,0.5", "seed=range(1,1)"], "no jobs (seed=range(1,1) gives no values)"),
    (["hydra/sweeper=optuna"], "nothing to search"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_SWEEPS, ids=lambda v: str(v))
def test_bad_sweep_is_one_line(cli, tmp_path: Path, overrides: list[str], expected: str) -> None:
    result = cli("sweep", *overrides, "epochs=1")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:") and expected in line
    assert list(tmp_path.iterdir()) == []


def test_planning_runs_no_multirun_and_writes_no_temp_files(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regbench.compose import hydra as hydra_app

    scratch = tmp_path.parent / f"{tmp_path.name}-tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(hydra_app, "multirun", _no_multirun)
    result = cli("sweep", "model=glob(reg*)", "dropout=choice(0,0.2)", "seed=1,2", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "4 jobs (4 to run)" in result.stdout
    assert list(scratch.iterdir()) == [] and list(tmp_path.iterdir()) == []


def test_default_sweep_runs_in_process_without_hydra_multirun(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regbench.compose import hydra as hydra_app

    monkeypatch.setattr(hydra_app, "multirun", _no_multirun)
    result = cli("sweep", "model=regression", "epochs=2", "seed=1,2", "--dir", "s", "-q")
    assert result.exit_code == 0, result.stderr
    assert set(statuses(tmp_path / "s").values()) == {"completed"}
    assert "[1/2] seed=1: running ->" in result.stderr
    assert "[2/2] seed=2: completed" in result.stderr
    assert "- seed=1,2" in (tmp_path / "s" / "multirun.yaml").read_text()  # Hydra's record


def _no_multirun(*args: object, **kwargs: object) -> None:
    raise AssertionError("Hydra's multirun was called")


def test_every_job_state_has_one_action() -> None:
    from regbench.sweeps.plan import (
        ACTIONS,
        Action,
        HydraLauncher,
        SequentialLauncher,
        StackedLauncher,
        choose_launcher,
        decide,
    )

    assert {decide(state) for state in ACTIONS} == set(Action)
    assert decide("completed") is Action.SKIP and decide("running") is Action.RESUME
    assert isinstance(choose_launcher(["seed=1,2"]), SequentialLauncher)
    assert isinstance(choose_launcher(["hydra/launcher=joblib"]), HydraLauncher)
    assert isinstance(choose_launcher(["seed=1,2"], stacked=True), StackedLauncher)


def test_dir_must_be_a_sweep_folder(cli, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    result = cli("sweep", "dropout=0,0.2", "--dir", "notes", "--dry-run")
    assert result.exit_code == 2 and "not a regbench sweep folder" in result.stderr


# ----------------------------------------------------------------------------- plot
def test_plot_redraws_from_saved_metrics(cli, grid_sweep: Sweep) -> None:
    figures = sorted(grid_sweep.path.glob("comparison_*.png"))
    one_run = run_dirs(grid_sweep.path)[0] / "loss_curve.png"
    for path in [*figures, one_run]:
        path.unlink()
    result = cli("plot", str(grid_sweep.path))
    assert result.exit_code == 0, result.stderr
    # loss curves, metrics with CIs, the dropout x weight_decay heatmap, overlaid weight histograms
    assert all(path.is_file() for path in [*figures, one_run]) and len(figures) == 4
    one_run.unlink()
    assert cli("plot", str(one_run.parent)).exit_code == 0 and one_run.is_file()


def test_a_sweep_working_from_another_host_is_refused(cli, tmp_path: Path) -> None:
    """A folder's workers name their host: a live sweep on another node is never taken for a
    dead one while it keeps its file fresh; one silent for STALE_SECONDS, or a dead pid here,
    is gone (regbench/sweeps/sharing.py)."""
    import os
    import socket

    from regbench.sweeps.sharing import STALE_SECONDS, WORKERS

    grid = ("model=regression", "epochs=1", "seed=1,2", "--dir", "sweep", "-q")
    assert cli("sweep", *grid).exit_code == 0
    worker = tmp_path / "sweep" / WORKERS / "node-17-4206649"
    worker.parent.mkdir()
    worker.write_text(f'node-17 {2**22 + 12345}\n{{"shares": null}}\n')
    refused = cli("sweep", *grid)
    assert refused.exit_code == 2
    assert "another regbench sweep (pid 4206649 on node-17) is running" in refused.stderr
    old = worker.stat().st_mtime - STALE_SECONDS - 1  # its node went down: no beat since
    os.utime(worker, (old, old))
    assert cli("sweep", *grid).exit_code == 0 and not worker.exists()
    worker.parent.mkdir()
    worker.write_text(f"{socket.gethostname()} {2**22 + 12345}\n")  # here: a dead pid
    assert cli("sweep", *grid).exit_code == 0 and not worker.parent.exists()


def test_the_printed_resume_line_passes_through_bash(cli, tmp_path: Path) -> None:
    """Brackets, parentheses and quotes survive: the line is shell-quoted and not rich markup."""
    import subprocess

    grid = ["model=regression", "epochs=1", "seed=range(1,3)", "model.hidden=[8,4]", "logger=[csv]"]
    result = cli("sweep", *grid, "--stacked", "--dir", "my sweep", "-q")
    assert result.exit_code == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("to resume, retry or grow")]
    command = line.split(": ", 1)[1]
    assert command.startswith("regbench sweep ")
    # bash's own word splitting of the printed command, printed one argument a line.
    echoed = subprocess.run(
        ["bash", "-c", "printf '%s\\n' " + command.removeprefix("regbench sweep ")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert echoed.stdout.splitlines() == [*grid, "--stacked", "--dir", "my sweep"]


def test_an_interrupted_sweep_says_how_to_go_on(cli, tmp_path: Path, monkeypatch) -> None:
    from regbench.sweeps import plan as sweeps

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeps, "run", interrupted)
    result = cli("sweep", "model=regression", "seed=1,2", "--stacked", "--dir", "s", "-q")
    assert result.exit_code == 130
    assert "to go on: regbench sweep model=regression seed=1,2 --stacked --dir s" in result.stderr
