"""Data sources: each turns its validated config into tensors, loaded once.

A source is a function ``load(config, seed) -> DataBundle`` registered with
``@register_source(name, config=...)`` in a module of this package, which also defines its config
dataclass. It returns a :class:`DataBundle` on the CPU; the runner moves it to the device once.
Images stay uint8 (4x smaller than float32); studies convert each batch as they use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from regbench.core.config import SourceConfig
from regbench.core.registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass
class DataBundle:
    """Train and test tensors plus where they came from (recorded in every run's summary)."""

    name: str  # the source actually used (differs from the requested one after a fallback)
    source: str  # human-readable origin, e.g. a folder or a package file
    train: dict[str, torch.Tensor]
    test: dict[str, torch.Tensor]
    notice: str | None = None  # a line the user must see, e.g. about a fallback
    extra: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device) -> DataBundle:
        move = lambda split: {k: v.to(device) for k, v in split.items()}  # noqa: E731
        return DataBundle(
            self.name, self.source, move(self.train), move(self.test), self.notice, self.extra
        )

    @property
    def n_train(self) -> int:
        return len(next(iter(self.train.values())))

    @property
    def n_test(self) -> int:
        return len(next(iter(self.test.values())))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "fallback": self.notice,
        }


Loader = Callable[[Any, int], DataBundle]
LoaderType = TypeVar("LoaderType", bound=Loader)

SOURCES: Registry[Loader] = Registry("data", __name__, SourceConfig)


def register_source(name: str, *, config: type[SourceConfig]) -> Callable[[LoaderType], LoaderType]:
    """Function decorator: the loader of ``data=name``, whose ``data.*`` keys ``config`` checks
    (one loader may serve several names, e.g. mnist and fashion_mnist)."""

    def decorate(load: LoaderType) -> LoaderType:
        SOURCES.add(name, load, config)
        return load

    return decorate


def load_data(config: SourceConfig, seed: int) -> DataBundle:
    """Load the configured source on the CPU (``seed`` drives generated data only)."""
    return SOURCES.entry(config.name)(config, seed)


def source_names() -> list[str]:
    """Every registered data source, sorted."""
    return SOURCES.names()


def source_config(name: str) -> type[SourceConfig]:
    """The config schema of the data source registered as ``name``."""
    return SOURCES.config(name)
