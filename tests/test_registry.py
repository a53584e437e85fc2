"""A study defined outside regbench (here, in this test module) registers with one decorator:
its config validates, ``model=<name>`` composes with no yaml file, ``regbench configs`` lists it,
and its network trains solo and stacked. Data sources come from their own registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import pytest
import torch
from torch import nn

from regbench.config import ConfigError, StudyConfig, bounds
from regbench.data import source_config, source_names
from regbench.data.synthetic import ToyRegressionConfig
from regbench.hydra_app import group_options, load_settings
from regbench.progress import Reporter
from regbench.regularize import dropout_layer
from regbench.runner import execute
from regbench.stacked import run_stacked
from regbench.studies import STUDIES, register_study, study_class, study_config, study_names
from regbench.studies.mse import MSEStudy
from tests.test_stacked import assert_close_rows, metrics

BUILT_IN_STUDIES = ["gan", "mlp", "regression", "rnn"]


@dataclass(frozen=True)
class TinyConfig(StudyConfig):
    name: Literal["tiny"]
    width: int = bounds(1)

    data_sources: ClassVar[tuple[str, ...] | None] = ("toy_regression",)


class TinyNet(nn.Module):
    def __init__(self, width: int, make_dropout: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(1, width), nn.ReLU(), make_dropout())
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))


class TinyStudy(MSEStudy):
    def __init__(self, settings, data, device: torch.device) -> None:
        super().__init__(settings, data, device)
        net = TinyNet(settings.model.width, lambda: dropout_layer(settings)).to(device)
        self.train_one_network(net)


@pytest.fixture
def tiny() -> Iterator[type[TinyStudy]]:
    """``model=tiny``, registered for one test (other tests see only the built-in studies)."""
    register_study("tiny", config=TinyConfig, defaults={"width": 8})(TinyStudy)
    yield TinyStudy
    STUDIES.remove("tiny")


def test_the_built_in_studies_and_sources_are_registered() -> None:
    assert study_names() == BUILT_IN_STUDIES
    assert source_names() == ["fashion_mnist", "mnist", "mnist_small", "sine", "toy_regression"]
    assert source_config("toy_regression") is ToyRegressionConfig
    assert study_class("mlp").__name__ == "MLPStudy" and study_config("mlp").__name__ == "MLPConfig"


def test_a_registered_study_composes_and_validates(tiny: type[TinyStudy]) -> None:
    settings = load_settings(["model=tiny", "data=toy_regression"])
    assert isinstance(settings.model, TinyConfig) and settings.model.width == 8
    assert load_settings(["model=tiny", "data=toy_regression", "model.width=3"]).model.width == 3
    assert study_class("tiny") is tiny and "tiny" in study_names()
    assert group_options()["model"] == sorted([*BUILT_IN_STUDIES, "tiny"])
    with pytest.raises(ConfigError, match=r"^model.width=0 is out of range; .* must be >= 1$"):
        load_settings(["model=tiny", "data=toy_regression", "model.width=0"])
    pairing = r"^model=tiny cannot train on data=mnist; use data=toy_regression$"
    with pytest.raises(ConfigError, match=pairing):
        load_settings(["model=tiny"])


def test_a_study_name_is_registered_once(tiny: type[TinyStudy]) -> None:
    class Impostor(MSEStudy):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_study("tiny", config=TinyConfig)(Impostor)
    with pytest.raises(TypeError, match="StudyConfig"):
        register_study("other", config=ToyRegressionConfig)(Impostor)
    register_study("tiny", config=TinyConfig)(TinyStudy)  # the same class again: no error


def test_a_registered_study_trains_solo_and_stacked(tiny: type[TinyStudy], tmp_path: Path) -> None:
    common = ["model=tiny", "data=toy_regression", "epochs=4", "batch_size=8", "dropout=0.2"]
    members = [("seed=1",), ("seed=2", "l2=1e-3")]
    jobs = [load_settings([*common, *m, f"out_dir={tmp_path / 'stacked'}"]) for m in members]
    stacked = run_stacked(jobs, Reporter())
    assert [r.summary.stacked for r in stacked] == [True, True]
    for member, overrides in zip(stacked, members, strict=True):
        solo_settings = load_settings([*common, *overrides, f"out_dir={tmp_path / 'solo'}"])
        solo = execute(solo_settings, list(overrides), Reporter())
        assert solo.summary.status == member.summary.status == "completed"
        assert_close_rows(metrics(solo.run_dir.path), metrics(member.run_dir.path), 1e-5)
        assert (member.run_dir.path / "loss_curve.png").is_file()
