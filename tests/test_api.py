"""The Python API that notebooks use: regbench.run and regbench.load_runs."""

from __future__ import annotations

import json
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
    assert [row["epoch"] for row in result.rows] == [1, 2]


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
    assert len(table) == 6
    assert table.groupby("dropout")["epoch"].max().to_dict() == {0.0: 3, 0.5: 3}
    assert {"run", "status", "model.name", "model.hidden", "test_loss", "test_acc"} <= set(table)
    assert set(table["status"]) == {"completed"}
    first = table[table["dropout"] == 0.5].sort_values("epoch")
    run_dir = Path(first["run"].iloc[0])
    saved = (run_dir / "metrics.csv").read_text().splitlines()[1].split(",")
    assert first["train_loss"].iloc[0] == float(saved[1])
