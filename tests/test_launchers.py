"""Hydra launcher plugins give the same sweep as the default launcher: submitit_local (each job
a process submitit starts and watches, as on a SLURM node). The joblib launcher's test is in
tests/test_sweep.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_dirs

GRID = ("model=regression", "epochs=3", "data.n_train=32", "seed=1,2", "-q")


def metrics_text(run: Path) -> list[list[str]]:
    """metrics.csv as written, each value's text, without the wall-clock ``seconds``."""
    header, *rows = (line.split(",") for line in (run / "metrics.csv").read_text().splitlines())
    keep = [i for i, name in enumerate(header) if name != "seconds"]
    return [[line[i] for i in keep] for line in (header, *rows)]


@pytest.mark.slow
def test_submitit_local_gives_the_default_launchers_folders_and_metrics(cli, tmp_path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    default = cli("sweep", *GRID, "--dir", "default")
    assert default.exit_code == 0, default.stderr
    submitit = cli("sweep", *GRID, "hydra/launcher=submitit_local", "--dir", "submitit")
    assert submitit.exit_code == 0, submitit.stderr

    ours, theirs = run_dirs(tmp_path / "default"), run_dirs(tmp_path / "submitit")
    assert [run.name for run in theirs] == [run.name for run in ours] and len(ours) == 2
    for mine, other in zip(ours, theirs, strict=True):
        assert json.loads((other / "summary.json").read_text())["status"] == "completed"
        assert metrics_text(other) == metrics_text(mine)  # the same numbers, to the last bit
    assert (
        "submitit_launcher.LocalLauncher" in (tmp_path / "submitit" / "multirun.yaml").read_text()
    )
