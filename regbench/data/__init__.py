"""Data sources: each turns its validated config into tensors, loaded once.

A source returns a :class:`DataBundle` on the CPU; the runner moves it to the device once. Images
stay uint8 (4x smaller than float32); studies convert each batch as they use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from regbench.config import DataConfig


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


def _registry() -> dict[str, Loader]:
    from regbench.data import mnist, synthetic

    return {
        "mnist": mnist.load_files,
        "fashion_mnist": mnist.load_files,
        "mnist_small": mnist.load_small,
        "toy_regression": synthetic.load_toy_regression,
        "sine": synthetic.load_sine,
    }


def load_data(config: DataConfig, seed: int) -> DataBundle:
    """Load the configured source on the CPU (``seed`` drives generated data only)."""
    return _registry()[config.name](config, seed)


def registered_names() -> set[str]:
    return set(_registry())
