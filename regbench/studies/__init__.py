"""The studies: one module per study, each registered with ``@register_study``.

A study module owns its config dataclass, its network(s), its loss, its evaluation and its
figures. Config names map to classes through this registry only, never to import paths. The
built-in studies are this package's modules, imported on the first lookup (so that
``regbench --help`` does not import torch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from regbench.core.config import StudyConfig
from regbench.core.registry import Registry

if TYPE_CHECKING:
    from regbench.core.metrics import Metric
    from regbench.studies.base import Study

StudyType = TypeVar("StudyType", bound="type[Study]")

STUDIES: Registry[type[Study]] = Registry("model", __name__, StudyConfig)


def register_study(
    name: str, *, config: type[StudyConfig], defaults: Mapping[str, Any] | None = None
) -> Callable[[StudyType], StudyType]:
    """Class decorator: the study ``model=name``, whose ``model.*`` keys ``config`` checks.

    ``defaults`` (the ``model.*`` values, ``name`` implied) is for a study without a
    ``configs/model/<name>.yaml``: it goes to Hydra's ConfigStore, so ``model=name`` composes.
    """

    def decorate(cls: StudyType) -> StudyType:
        STUDIES.add(name, cls, config)
        if defaults is not None:
            _store_defaults(name, defaults)
        return cls

    return decorate


def _store_defaults(name: str, defaults: Mapping[str, Any]) -> None:
    from hydra.core.config_store import ConfigStore  # only here: registering costs no Hydra

    ConfigStore.instance().store(group="model", name=name, node={"name": name, **defaults})


def study_class(name: str) -> type[Study]:
    """The Study class registered as ``name`` (a validated config name)."""
    return STUDIES.entry(name)


def study_names() -> list[str]:
    """Every registered study, sorted."""
    return STUDIES.names()


def study_config(name: str) -> type[StudyConfig]:
    """The config schema of the study registered as ``name``."""
    return STUDIES.config(name)


def study_metrics(name: str) -> dict[str, Metric] | None:
    """The metrics the study registered as ``name`` declares (its own, the loop's and
    weights.csv's), by name; None for a study this process does not know (a plug-in whose
    module is not imported)."""
    if name not in study_names():
        return None
    return study_class(name).declared_metrics()


def study_default_metrics(name: str) -> tuple[str, ...]:
    """What compare shows for the study ``name`` when no metric is asked for (the primary
    first); () for a study this process does not know."""
    return study_class(name).default_metrics() if name in study_names() else ()


def study_selection_metric(name: str) -> str | None:
    """The metric that selects for the study ``name`` by default (its primary validation
    metric); None for a study this process does not know."""
    return study_class(name).selection_metric() if name in study_names() else None
