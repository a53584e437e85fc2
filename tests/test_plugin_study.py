"""A fifth study, defined in this one test file and registered by the decorator, goes through
everything the built-in studies do, typed the way users type it: run, sweep, sweep --stacked and
compare."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regbench.config import StudyConfig, bounds
from regbench.regularize import dropout_layer
from regbench.studies import STUDIES, register_study
from regbench.studies.base import Study
from tests.conftest import RUN_FILES, run_dirs
from tests.test_stacked import assert_close_rows, metrics


@dataclass(frozen=True)
class LineConfig(StudyConfig):
    """1-width-1 ReLU net with dropout on its hidden layer."""

    name: Literal["line"]
    width: int = bounds(1)

    data_sources: ClassVar[tuple[str, ...] | None] = ("toy_regression",)


class LineNet(nn.Module):
    def __init__(self, width: int, make_dropout: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(1, width), nn.ReLU(), make_dropout())
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))


class LineStudy(Study):
    """Its own network, loss and evaluation; nothing borrowed from the built-in studies."""

    def __init__(self, settings, data, device: torch.device) -> None:
        super().__init__(settings, data, device)
        self.train_one_network(LineNet(settings.model.width, lambda: dropout_layer(settings)))

    def batch_loss(self, forward, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # Mean over each batch's examples; leading (member) dimensions stay.
        return (forward(batch["x"]) - batch["y"]).pow(2).mean(dim=(-2, -1))

    def evaluate(self) -> dict[str, float]:
        test = self.data.test
        return {"test_loss": F.mse_loss(self.net(test["x"]), test["y"]).item()}


@pytest.fixture
def line() -> Iterator[None]:
    """``model=line`` for one test: the decorator, with the defaults a yaml would hold."""
    register_study("line", config=LineConfig, defaults={"width": 16})(LineStudy)
    yield
    STUDIES.remove("line")


COMMON = ("model=line", "data=toy_regression", "epochs=6", "threads=1", "-q")
GRID = ("dropout=0,0.3", "seed=1,2")


def summaries(folder: Path) -> list[dict]:
    return [json.loads((run / "summary.json").read_text()) for run in run_dirs(folder)]


def test_a_study_in_one_test_file_runs_sweeps_stacks_and_compares(line: None, cli) -> None:
    run = cli("run", *COMMON, "out_dir=solo")
    assert run.exit_code == 0, run.stderr
    (folder,) = run_dirs(Path("solo"))
    assert all((folder / name).is_file() for name in RUN_FILES)
    assert summaries(Path("solo"))[0]["model"] == "line"

    sequential = cli("sweep", *COMMON, *GRID, "--dir", "one-by-one")
    stacked = cli("sweep", *COMMON, *GRID, "--stacked", "--dir", "stacked")
    assert sequential.exit_code == 0 and stacked.exit_code == 0, stacked.stderr
    assert [s["status"] for s in summaries(Path("stacked"))] == ["completed"] * 4
    assert all(s["stacked"] is True for s in summaries(Path("stacked")))
    for alone in run_dirs(Path("one-by-one")):
        # The same job folder name: the same config and seed.
        assert_close_rows(metrics(alone), metrics(Path("stacked") / alone.name), 1e-5)

    table = cli("compare", "stacked", "--metric", "test_loss", "--no-plots")
    assert table.exit_code == 0, table.stderr
    markdown = Path("stacked/comparison.md").read_text()
    assert "4 runs in 2 groups" in markdown and "test_loss" in markdown
    assert "dropout=0 (n=2); dropout=0.3 (n=2)" in markdown  # two seeds in each group
