"""The Python API that notebooks use: regbench.run, regbench.sweep, regbench.load_runs and
regbench.compare (the notebook itself: tests/test_notebook.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import regbench


def test_run_returns_the_run_folder_and_summary(mnist_root: Path, tmp_path: Path) -> None:
    result = regbench.run(
        ["epochs=2", "model.hidden=[16]", f"data.root={mnist_root}", f"out_dir={tmp_path}/o"]
    )
    assert result.run_dir.path.parent == tmp_path / "o" / "mlp"
    assert result.summary.status == "completed"
    on_disk = json.loads((result.run_dir.path / "summary.json").read_text())
    assert on_disk["final"] == result.summary.final
    assert [row["epoch"] for row in result.rows] == [0, 1, 2]  # 0: the untrained model


def test_run_raises_config_error_for_bad_overrides() -> None:
    with pytest.raises(regbench.ConfigError, match="dropout"):
        regbench.run(["dropout=2"])


def test_load_runs_is_one_row_per_run_and_epoch(mnist_root: Path, tmp_path: Path) -> None:
    for dropout in (0.0, 0.5):
        regbench.run(
            [
                "epochs=3",
                f"dropout={dropout}",
                "model.hidden=[16]",
                f"data.root={mnist_root}",
                f"out_dir={tmp_path}/o",
            ]
        )
    table = regbench.load_runs(tmp_path / "o")
    assert len(table) == 8  # two runs of epochs 0 (the untrained model) to 3
    assert table.groupby("dropout")["epoch"].max().to_dict() == {0.0: 3, 0.5: 3}
    assert {"run", "status", "model.name", "model.hidden", "test_loss", "test_acc"} <= set(table)
    assert set(table["status"]) == {"completed"}
    first = table[table["dropout"] == 0.5].sort_values("epoch")
    run_dir = Path(first["run"].iloc[0])
    saved = [line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines()]
    assert saved[1][1] == "nan" and math.isnan(first["train_loss"].iloc[0])  # epoch 0: no step
    assert first["train_loss"].iloc[1] == float(saved[2][1])


def test_compare_returns_the_comparison_and_leaves_global_state(tmp_path: Path) -> None:
    from regbench.compose.hydra import load_settings
    from tests.test_compare import final_values, make_run
    from tests.test_stats import direct_stats

    base = load_settings(["model.hidden=[16]"]).to_dict()
    root = tmp_path / "runs"
    for seed in (1, 2, 3):
        for dropout in (0.0, 0.5):
            make_run(root, base, seed, effect=dropout, dropout=dropout)
    # In a fresh interpreter, so that nothing the other tests imported hides a change; called
    # twice, since importing regbench's modules must not shadow the function.
    probe = (
        "import os, sys, regbench; cwd = os.getcwd(); "
        f"c = regbench.compare({str(root)!r}, metrics=['test_loss'], baseline='dropout=0'); "
        f"again = regbench.compare([{str(root)!r}]); "
        "print(type(c).__name__, c.comparison.baseline.group.label, len(again.table), "
        "'matplotlib' in sys.modules, os.getcwd() == cwd)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ComparisonResult", "dropout=0", "2", "False", "True"]
    assert not list(tmp_path.rglob("comparison*"))  # nothing written

    result = regbench.compare(root, at="final")
    comparison, values = result.comparison, final_values(root, "test_loss")
    for row, (_, line) in zip(comparison.rows, result.table.iterrows(), strict=True):
        stats = row.cells["test_loss"].stats
        expected = direct_stats(list(values[(row.group.config["dropout"], 0.0)].values()))
        assert (stats.mean, stats.std, *stats.ci) == pytest.approx(expected, rel=1e-9)
        got = [line[f"test_loss_{k}"] for k in ("mean", "std", "ci_low", "ci_high")]
        assert got == [stats.mean, stats.std, *stats.ci]  # the table holds the same numbers
        assert line["group"] == row.group.label and line["best"] == row.is_best
    assert comparison.rows[0].is_best and comparison.baseline is comparison.rows[0]
    assert result.verdicts and result.verdicts[0].startswith("dropout=0.5 ")
    assert "| dropout |" in result._repr_markdown_()
    assert result.runs["run"].nunique() == 6  # three seeds of two groups
    assert not list(tmp_path.rglob("comparison*"))
    with pytest.raises(regbench.RegbenchError, match="no run has this key"):
        regbench.compare(root, over=["nope"])


def test_run_leaves_the_callers_process_as_it_found_it(mnist_root: Path, tmp_path: Path) -> None:
    """Threads, determinism flags, every RNG and matplotlib's backend are the caller's again
    after a run that set them all (a fresh interpreter, as a notebook kernel is)."""
    overrides = [
        "epochs=1",
        "model.hidden=[16]",
        "threads=1",
        "deterministic=true",
        "seed=3",
        f"data.root={mnist_root}",
        f"out_dir={tmp_path / 'o'}",
    ]
    code = f"""
import random, sys
import matplotlib
import numpy as np
import torch
matplotlib.use("svg")
import regbench

torch.set_num_threads(2)
random.seed(7); np.random.seed(7); torch.manual_seed(7)
def state():
    return (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.utils.deterministic.fill_uninitialized_memory,
        random.getstate(),
        np.random.get_state()[1].tolist(),
        torch.get_rng_state().tolist(),
    )
before = state()
regbench.run({overrides!r})
after = state()
print(after == before, matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert out.stdout.split() == ["True", "svg", "False"], out.stderr


def test_run_takes_a_dict_and_refuses_a_bare_string(mnist_root: Path, tmp_path: Path) -> None:
    from regbench.api import as_overrides

    overrides = {"dropout": 0.5, "model.hidden": [16, 8], "name": None, "deterministic": True}
    assert as_overrides(overrides) == [
        "dropout=0.5",
        "model.hidden=[16,8]",
        "name=null",
        "deterministic=true",
    ]
    settings = {"epochs": 1, "model.hidden": [16], "data.root": str(mnist_root)}
    result = regbench.run({**settings, "out_dir": str(tmp_path / "o")})
    assert result.summary.status == "completed"
    with pytest.raises(regbench.UsageError, match=r"not the string 'dropout=0.5 seed=1'"):
        regbench.run("dropout=0.5 seed=1")


def test_run_works_inside_a_running_hydra_app(mnist_root: Path, tmp_path: Path) -> None:
    """A user's own Hydra app (its GlobalHydra initialized) can call regbench, and keeps its
    Hydra afterwards."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    app_configs = tmp_path / "app"
    app_configs.mkdir()
    (app_configs / "app.yaml").write_text("answer: 42\n")
    with initialize_config_dir(config_dir=str(app_configs), version_base=None):
        users = GlobalHydra.instance().hydra
        overrides = ["epochs=1", "model.hidden=[16]", f"data.root={mnist_root}"]
        result = regbench.run([*overrides, f"out_dir={tmp_path / 'o'}"])
        assert result.summary.status == "completed"
        assert GlobalHydra.instance().hydra is users
        assert compose("app").answer == 42


# Two jobs: the least that has a comparison, and the most this file can afford.
SWEEP = ["model=regression", "epochs=1", "data.n_train=32", "dropout=0,0.5", "seed=1"]


def test_sweep_inside_a_running_hydra_app_returns_runs_comparison_and_figures(
    tmp_path: Path,
) -> None:
    """As `regbench sweep` writes it (job folders, sweep.json, comparison files), with the
    tables as DataFrames and the figures as Figures; callable after the module was imported.
    Run with a Hydra launcher inside a user's Hydra app: Hydra's multirun refuses to start
    beside another Hydra, clears the global when done and applies Hydra's logging config
    (disabling every logger), and none of it reaches the caller."""
    import csv
    import logging
    import os

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from matplotlib.figure import Figure

    import regbench.sweeps.plan  # the module that plans sweeps does not hide the function

    assert regbench.sweep is regbench.api.sweep
    app_configs = tmp_path / "app"
    app_configs.mkdir()
    (app_configs / "app.yaml").write_text("answer: 42\n")
    users_logger, handler = logging.getLogger("users.app"), logging.NullHandler()
    users_logger.addHandler(handler)
    root_level, environment = logging.getLogger().level, dict(os.environ)
    overrides = [*SWEEP, "hydra/launcher=basic", f"out_dir={tmp_path / 'o'}"]
    try:
        with initialize_config_dir(config_dir=str(app_configs), version_base=None):
            users, hydra_config = GlobalHydra.instance().hydra, HydraConfig.instance().cfg
            outcome = regbench.sweep(overrides, dir=tmp_path / "s")
            assert GlobalHydra.instance().hydra is users and compose("app").answer == 42
            assert HydraConfig.instance().cfg is hydra_config
        assert users_logger.handlers == [handler] and not users_logger.disabled
        assert logging.getLogger().level == root_level and dict(os.environ) == environment
    finally:
        users_logger.removeHandler(handler)

    assert outcome.sweep_dir == tmp_path / "s"
    assert sorted(outcome.statuses.values()) == ["completed"] * 2
    assert "BasicLauncher" in (tmp_path / "s" / "multirun.yaml").read_text()
    assert {p.name for p in (tmp_path / "s").iterdir()} >= {
        "sweep.json",
        "comparison.md",
        "comparison.csv",
        "comparison_loss_curves.png",
        *outcome.statuses,
    }
    assert set(outcome.runs["run"]) == {str(tmp_path / "s" / key) for key in outcome.statuses}
    with (tmp_path / "s" / "comparison.csv").open() as f:
        written = list(csv.DictReader(f))
    table = outcome.comparison
    assert list(table["group"]) == [row["group"] for row in written] and len(table) == 2
    assert list(table["test_loss_mean"]) == [float(row["test_loss_mean"]) for row in written]
    # One numeric key varies: its effect figure, and no heatmap.
    assert set(outcome.figures) == {"loss_curves", "metrics", "effect"}
    assert all(isinstance(fig, Figure) for fig in outcome.figures.values())
    other = outcome.compare(baseline="dropout=0.5").comparison
    assert other.baseline.group.label == "dropout=0.5"

    with pytest.raises(regbench.UsageError, match="not the string"):
        regbench.sweep("dropout=0,0.5")
    with pytest.raises(regbench.UsageError, match="stacked=True is the launcher"):
        regbench.sweep([*SWEEP, "hydra/launcher=joblib"], stacked=True)


def test_a_sweep_whose_jobs_fail_warns_and_still_returns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed jobs are a note on the ``regbench`` logger (the outcome still holds every job's
    status), never silent."""
    missing = tmp_path / "no-data"
    overrides = ["model=mlp", f"data.root={missing}", "data.download=false", "epochs=1"]
    overrides += ["data.fallback=false", "seed=1,2", f"out_dir={tmp_path}"]
    with caplog.at_level("WARNING", logger="regbench"):
        outcome = regbench.sweep(overrides, dir=tmp_path / "s")
    assert list(outcome.statuses.values()) == ["failed", "failed"]
    messages = [r.getMessage() for r in caplog.records if r.name == "regbench"]
    assert any(m.startswith("no comparison:") for m in messages)
    assert any(m.startswith("2 of 2 jobs failed") and str(tmp_path / "s") in m for m in messages)
