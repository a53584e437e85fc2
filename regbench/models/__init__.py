"""Built-in registry of studies: config names map to classes here, never to import paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regbench.models.base import Study


def study_class(name: str) -> type[Study]:
    """The Study class registered as ``name`` (a validated config name)."""
    return _registry()[name]


def registered_names() -> set[str]:
    return set(_registry())


def _registry() -> dict[str, type[Study]]:
    # Imported here so that `regbench --help` does not pay for torch.
    from regbench.models.gan import GANStudy
    from regbench.models.mlp import MLPStudy
    from regbench.models.regression import RegressionStudy
    from regbench.models.rnn import RNNStudy

    return {"mlp": MLPStudy, "gan": GANStudy, "regression": RegressionStudy, "rnn": RNNStudy}
