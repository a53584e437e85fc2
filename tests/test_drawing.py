"""Figures drawn in worker processes (regbench/drawing.py): the same files as drawn in the run's
own process, a run that says completed only once its figures are on disk, and a figure's
failure (or a worker's death) that ends the way drawing in-process would."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from regbench.core.rundir import RunDir, Status
from regbench.figures import drawing, plots
from regbench.figures.drawing import Drawing, in_workers
from tests.conftest import run_dirs

EVERY_FIGURE = {"fit.png", "loss_curve.png", "weight_hist.png", "weight_norms.png"}
RUN = ("run", "model=regression", "epochs=40", "eval_every=10", "dropout=0.3", "mc_samples=4")
THE_PARENT = os.getpid()  # the test process; a forked worker has another pid
real_loss_curve = plots.loss_curve
pytestmark = pytest.mark.skipif(not drawing.can_fork(), reason="figure workers fork (Linux)")


def held_loss_curve(*args, **kwargs) -> None:
    """loss_curve, once the test creates the release file next to it."""
    release = Path(args[-1]).with_name("release")
    deadline = time.monotonic() + 60
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    real_loss_curve(*args, **kwargs)


def full_disk_loss_curve(*args, **kwargs) -> None:
    raise OSError(28, "No space left on device")


def dies_in_a_worker(*args, **kwargs) -> None:
    """A worker killed while drawing (out of memory, say); in the run's own process it draws."""
    if os.getpid() != THE_PARENT:
        os._exit(1)
    real_loss_curve(*args, **kwargs)


def write_font_caches(path: Path) -> None:
    """What this process's matplotlib still holds of fonts: its font and mathtext caches."""
    from matplotlib import font_manager
    from matplotlib.mathtext import MathTextParser

    mathtext = MathTextParser._parse_cached.cache_info().currsize
    path.write_text(f"{os.getpid()} {mathtext} {font_manager._get_font.cache_info().currsize}")


def pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_workers_draw_the_same_files_as_the_run_itself(cli, monkeypatch, tmp_path) -> None:
    drawn = {}
    for workers in ("0", "2"):
        monkeypatch.setenv("REGBENCH_FIGURE_WORKERS", workers)
        result = cli(*RUN, f"out_dir={tmp_path / workers}", "-q")
        assert result.exit_code == 0, result.stderr
        (run,) = run_dirs(tmp_path / workers)
        assert RunDir(run).read_summary().status is Status.COMPLETED
        drawn[workers] = pngs(run)
    assert set(drawn["2"]) == EVERY_FIGURE
    assert drawn["2"] == drawn["0"]  # byte for byte: same data, same figure code
    assert not multiprocessing.active_children()  # the workers ended with the command


def test_a_worker_starts_with_no_font_of_the_process_it_forked_from(monkeypatch, tmp_path) -> None:
    # A font read through a descriptor both processes share garbles glyphs when both draw at
    # once (the test suite saw "FT_Load_Glyph failed: invalid outline"): a worker opens its own.
    from matplotlib.mathtext import MathTextParser

    monkeypatch.setenv("REGBENCH_FIGURE_WORKERS", "1")
    rows = [{"epoch": e, "loss": 10.0**-e} for e in range(1, 6)]
    plots.loss_curve(rows, ("loss",), r"a mathtext title: $10^{-3}$", tmp_path / "here.png")
    assert MathTextParser._parse_cached.cache_info().currsize > 0
    with in_workers():
        drawing.draw_now([Drawing(write_font_caches, (tmp_path / "worker.txt",))])
    pid, mathtext, fonts = (int(n) for n in (tmp_path / "worker.txt").read_text().split())
    assert pid != os.getpid() and (mathtext, fonts) == (0, 0)


def test_a_run_says_completed_only_once_its_figures_are_on_disk(monkeypatch, tmp_path) -> None:
    from regbench.compose.hydra import load_settings
    from regbench.core.progress import Reporter
    from regbench.training.runner import execute

    monkeypatch.setenv("REGBENCH_FIGURE_WORKERS", "1")
    monkeypatch.setattr(plots, "loss_curve", held_loss_curve)
    settings = load_settings([*RUN[1:], f"out_dir={tmp_path}"])
    with in_workers():  # as a sweep's: its jobs do not wait for their figures
        result = execute(settings, RUN[1:], Reporter())
        folder = result.run_dir.path
        assert result.summary.status is Status.COMPLETED  # what it will say
        assert RunDir(folder).read_summary().status is Status.RUNNING  # what it says so far
        assert not (folder / "loss_curve.png").exists()
        (folder / "release").touch()
    assert (folder / "loss_curve.png").exists()
    assert RunDir(folder).read_summary().status is Status.COMPLETED


def test_a_figure_that_fails_in_a_worker_fails_its_run(cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("REGBENCH_FIGURE_WORKERS", "2")
    monkeypatch.setattr(plots, "loss_curve", full_disk_loss_curve)
    result = cli(*RUN, "-q")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: OSError: [Errno 28] No space left on device (run with --debug for the traceback)"
    ]
    (run,) = run_dirs(tmp_path / "outputs")
    summary = RunDir(run).read_summary()
    assert summary.status is Status.FAILED and "No space left" in summary.error


def test_a_worker_that_dies_leaves_the_figure_to_the_run(cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("REGBENCH_FIGURE_WORKERS", "2")
    monkeypatch.setattr(plots, "loss_curve", dies_in_a_worker)
    result = cli("sweep", *RUN[1:], "seed=0,1", "--dir", str(tmp_path / "sweep"), "-q")
    assert result.exit_code == 0, result.stderr
    runs = run_dirs(tmp_path / "sweep")
    assert len(runs) == 2
    for run in runs:
        assert RunDir(run).read_summary().status is Status.COMPLETED
        assert (run / "loss_curve.png").stat().st_size > 0


def test_the_worker_count_is_a_number(cli, monkeypatch) -> None:
    monkeypatch.setenv("REGBENCH_FIGURE_WORKERS", "two")
    result = cli(*RUN, "-q")
    assert result.exit_code == 2
    assert "REGBENCH_FIGURE_WORKERS='two': give a number of processes (0: none)" in result.stderr


def test_drawings_hold_numpy_copies_of_tensors() -> None:
    import numpy as np
    import torch

    weights = torch.ones(3)
    figure = Drawing(plots.loss_curve, ({"w": weights}, [weights, 2.0]), {"band": (weights,)})
    weights += 1  # the run goes on training; the figure keeps what it was given
    (data, listed), band = figure.args, figure.kwargs["band"]
    assert isinstance(data["w"], np.ndarray) and data["w"].tolist() == [1.0, 1.0, 1.0]
    assert listed[0].tolist() == [1.0, 1.0, 1.0] and listed[1] == 2.0
    assert band[0].tolist() == [1.0, 1.0, 1.0]


# ----------------------------------------------------------------------------- plots=
@pytest.mark.parametrize(
    ("choice", "drawn"),
    [
        ("all", EVERY_FIGURE),
        ("summary", {"loss_curve.png"}),
        ("none", set()),
    ],
)
def test_plots_chooses_a_run_folders_figures(cli, tmp_path, choice, drawn) -> None:
    result = cli(*RUN, f"plots={choice}", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert set(pngs(run)) == drawn
    run_dir = RunDir(run)
    assert run_dir.read_summary().status is Status.COMPLETED and not run_dir.damage()


def test_plots_does_not_change_a_sweeps_job_folders(cli, tmp_path) -> None:
    # Like logger: what a run draws is not what it computes, so the jobs are the same jobs.
    folders = {}
    for choice in ("all", "none"):
        sweep = tmp_path / choice
        result = cli("sweep", *RUN[1:], "seed=0,1", f"plots={choice}", "--dir", str(sweep), "-q")
        assert result.exit_code == 0, result.stderr
        folders[choice] = [run.name for run in run_dirs(sweep)]
    assert folders["all"] == folders["none"] and len(folders["all"]) == 2
    assert (tmp_path / "none" / "comparison_loss_curves.png").is_file()  # a sweep's own figures


def test_plots_is_checked(cli) -> None:
    result = cli(*RUN, "plots=some", "-q")
    assert result.exit_code == 2
    assert "plots" in result.stderr and "all, summary, none" in result.stderr.replace("'", "")


def test_a_config_from_before_plots_draws_every_figure() -> None:
    from regbench.compose.hydra import load_settings
    from regbench.compose.validate import validate

    old = load_settings(list(RUN[1:])).to_dict()
    del old["plots"]
    assert validate(old).plots == "all"


# ----------------------------------------------------------------------------- every launcher
SMALL = ("model=regression", "epochs=6", "eval_every=2", "model.hidden=[16]")


@pytest.mark.parametrize(
    "how",
    [
        ("seed=0,1,2",),
        ("seed=0,1,2", "--stacked"),
        ("hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "dropout=interval(0,0.5)", "seed=1,2"),
    ],
    ids=["sequential", "stacked", "search"],
)
def test_every_launcher_ends_its_jobs_once_their_figures_are_drawn(cli, monkeypatch, tmp_path, how):
    # Whatever reads a job's summary (sweep.json's record, a search's sampler, the comparison)
    # reads it after the job's figures are drawn and its summary says completed.
    monkeypatch.setenv("REGBENCH_FIGURE_WORKERS", "2")
    result = cli("sweep", *SMALL, *how, "--dir", str(tmp_path / "sweep"), "-q")
    assert result.exit_code == 0, result.stderr
    runs = run_dirs(tmp_path / "sweep")
    assert len(runs) in (3, 4)
    for run in runs:
        assert RunDir(run).read_summary().status is Status.COMPLETED
        assert set(pngs(run)) == EVERY_FIGURE
    record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert {job["status"] for job in record["jobs"].values()} == {"completed"}
    assert (tmp_path / "sweep" / "comparison_loss_curves.png").is_file()
