"""Data sources: each turns its validated config into tensors, loaded once.

A source is a function ``load(config, seed) -> DataBundle`` registered with
``@register_source(name, config=...)`` in a module of this package, which also defines its config
dataclass. It returns a :class:`DataBundle` on the CPU; the runner moves it to the device once.
Images stay uint8 (4x smaller than float32); studies convert each batch as they use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from regbench.core.config import ConfigError, SourceConfig
from regbench.core.registry import Registry

if TYPE_CHECKING:
    import torch


@dataclass
class DataBundle:
    """Train, validation and test tensors plus where they came from (recorded in every run's
    summary). ``val`` is None without a validation split (runs made before splits existed)."""

    name: str  # the source actually used (differs from the requested one after a fallback)
    source: str  # human-readable origin, e.g. a folder or a package file
    train: dict[str, torch.Tensor]
    test: dict[str, torch.Tensor]
    notice: str | None = None  # a line the user must see, e.g. about a fallback
    extra: dict[str, Any] = field(default_factory=dict)
    val: dict[str, torch.Tensor] | None = None
    split: str = ""  # how val was made, for the summary (empty: no validation split)
    fingerprint: str = ""  # of the files read (sources that read files; see fingerprint())

    def to(self, device: torch.device) -> DataBundle:
        move = lambda split: {k: v.to(device) for k, v in split.items()}  # noqa: E731
        val = None if self.val is None else move(self.val)
        return dataclasses.replace(self, train=move(self.train), test=move(self.test), val=val)

    @property
    def n_val(self) -> int:
        return 0 if self.val is None else len(next(iter(self.val.values())))

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
            "n_val": self.n_val,
            "n_test": self.n_test,
            "split": self.split,
            "fallback": self.notice,
            **({"fingerprint": self.fingerprint} if self.fingerprint else {}),
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


def fingerprint(*splits: dict[str, torch.Tensor]) -> str:
    """A short hash of the examples of ``splits`` (before any split of regbench's own): two runs
    with the same fingerprint read the same data, whatever folder or machine they read it on."""
    import hashlib

    digest = hashlib.sha256()
    for split in splits:
        for key in sorted(split):
            digest.update(key.encode())
            digest.update(split[key].contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def carve_validation(
    train: dict[str, torch.Tensor], size: float, split_seed: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None, str]:
    """Split ``train`` into (train, val, how): ``size`` a fraction in (0, 1) or a count >= 1
    of the examples, drawn by ``split_seed`` alone (never the run's seed), so that every seed
    of a sweep and every launcher trains on the same examples and validates on the same others.
    Both parts keep the original order. ``size`` 0: no validation split."""
    import torch

    n = len(next(iter(train.values())))
    count = round(size * n) if size < 1 else int(size)
    if count == 0:
        return train, None, ""
    if count >= n:
        raise ConfigError(
            f"data.val_size={size:g} takes {count} of the {n} training examples, leaving none to "
            f"train on; give a fraction in (0, 1) or a count below {n}"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    val_index, train_index = order[:count].sort().values, order[count:].sort().values
    how = f"{count} of {n} training examples held out for validation (split_seed {split_seed})"
    return (
        {k: v[train_index] for k, v in train.items()},
        {k: v[val_index] for k, v in train.items()},
        how,
    )


SUBSET_STREAM = 0x5B5E7  # the training subset's draws differ from the validation split's


def subset_indices(n: int, size: float, split_seed: int) -> torch.Tensor:
    """Sorted indices of the training subset ``size`` (a fraction in (0, 1) or a count >= 1)
    of ``n`` examples: the first ones of one permutation drawn by ``split_seed`` alone, so a
    smaller subset lies inside a larger one and every run seed trains on the same examples."""
    import torch

    count = round(size * n) if size < 1 else int(size)
    if count == 0 or count > n:
        raise ConfigError(
            f"data.train_size={size:g} takes {count} of the {n} training examples left after "
            f"the validation split; give a fraction in (0, 1) or a count from 1 to {n}"
        )
    generator = torch.Generator().manual_seed(split_seed ^ SUBSET_STREAM)
    return torch.randperm(n, generator=generator)[:count].sort().values


def training_subset(
    train: dict[str, torch.Tensor], size: float, split_seed: int
) -> tuple[dict[str, torch.Tensor], str]:
    """(the subset ``subset_indices`` picks, in the original order; how, for the summary)."""
    n = len(next(iter(train.values())))
    index = subset_indices(n, size, split_seed)
    how = (
        f"trains on {len(index)} of the {n} training examples (data.train_size, "
        f"split_seed {split_seed})"
    )
    return {k: v[index] for k, v in train.items()}, how


def source_names() -> list[str]:
    """Every registered data source, sorted."""
    return SOURCES.names()


def source_config(name: str) -> type[SourceConfig]:
    """The config schema of the data source registered as ``name``."""
    return SOURCES.config(name)
