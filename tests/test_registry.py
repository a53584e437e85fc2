"""A study defined outside regbench registers with one decorator: its config validates,
``model=<name>`` composes with no yaml file, ``regbench configs`` lists it, and a name is taken
once. (tests/test_plugin_study.py runs such a study through the CLI.) Data sources come from
their own registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pytest

from regbench.compose.hydra import group_options, load_settings
from regbench.core.config import ConfigError
from regbench.data import source_config, source_names
from regbench.data.synthetic import ToyRegressionConfig
from regbench.studies import STUDIES, register_study, study_class, study_config, study_names
from tests.test_plugin_study import LineConfig, LineStudy

BUILT_IN_STUDIES = ["cnn", "gan", "mlp", "regression", "rnn"]


@dataclass(frozen=True)
class TinyConfig(LineConfig):
    name: Literal["tiny"]  # type: ignore[assignment]


@pytest.fixture
def tiny() -> Iterator[type[LineStudy]]:
    """``model=tiny``: the one-file study of test_plugin_study under another name, registered
    for one test (other tests see only the built-in studies)."""
    register_study("tiny", config=TinyConfig, defaults={"width": 8})(LineStudy)
    yield LineStudy
    STUDIES.remove("tiny")


def test_the_built_in_studies_and_sources_are_registered() -> None:
    assert study_names() == BUILT_IN_STUDIES
    assert source_names() == ["fashion_mnist", "mnist", "mnist_small", "sine", "toy_regression"]
    assert source_config("toy_regression") is ToyRegressionConfig
    assert study_class("mlp").__name__ == "MLPStudy" and study_config("mlp").__name__ == "MLPConfig"


def test_a_registered_study_composes_and_validates(tiny: type[LineStudy]) -> None:
    settings = load_settings(["model=tiny", "data=toy_regression"])
    assert isinstance(settings.model, TinyConfig) and settings.model.width == 8
    assert load_settings(["model=tiny", "data=toy_regression", "model.width=3"]).model.width == 3
    assert study_class("tiny") is tiny and "tiny" in study_names()
    # (other tests' studies may still be in Hydra's ConfigStore: not a subset test)
    assert {*BUILT_IN_STUDIES, "tiny"} <= set(group_options()["model"])
    with pytest.raises(ConfigError, match=r"^model.width=0 is out of range; .* must be >= 1$"):
        load_settings(["model=tiny", "data=toy_regression", "model.width=0"])
    pairing = r"^model=tiny cannot train on data=mnist; use data=toy_regression$"
    with pytest.raises(ConfigError, match=pairing):
        load_settings(["model=tiny"])


def test_a_study_name_is_registered_once(tiny: type[LineStudy]) -> None:
    class Impostor(LineStudy):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_study("tiny", config=TinyConfig)(Impostor)
    with pytest.raises(TypeError, match="StudyConfig"):
        register_study("other", config=ToyRegressionConfig)(Impostor)
    register_study("tiny", config=TinyConfig)(LineStudy)  # the same class again: no error
