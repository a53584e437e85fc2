"""The small interface every study implements; the training loop (train.py) knows only this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

    from regbench.config import Settings
    from regbench.data import DataBundle

    Forward = Callable[[torch.Tensor], torch.Tensor]


class Study(ABC):
    """One regularization study: its networks, optimizers, training step, evaluation and plots.

    Subclasses set ``networks`` and ``optimizers`` in ``__init__``; the loop saves and restores
    them for checkpoints, switches train/eval mode, and handles batching, logging and seeding.
    """

    # Which logged columns make the loss curve: (train column, test column).
    loss_columns: ClassVar[tuple[str, str]] = ("train_loss", "test_loss")
    # Evaluation metrics and whether lower or higher is better (for "best" in the summary).
    goals: ClassVar[dict[str, Literal["min", "max"]]] = {"test_loss": "min"}

    def __init__(self, settings: Settings, data: DataBundle, device: torch.device) -> None:
        self.settings = settings
        self.data = data
        self.device = device
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @property
    def n_train(self) -> int:
        """Number of training examples the loop batches over."""
        return self.data.n_train

    def train_one_network(self, net: nn.Module) -> None:
        """The common case: one network (``"model"``) trained with the settings' penalties."""
        from regbench.regularize import PenalizedObjective, Penalty, make_optimizer

        penalty = Penalty.from_settings(self.settings)
        optimizer = make_optimizer([net], self.settings, penalty)
        self.objective = PenalizedObjective([net], optimizer, penalty)
        self.networks = {"model": net}
        self.optimizers = {"model": optimizer}

    def train_mode(self, training: bool) -> None:
        for net in self.networks.values():
            net.train(training)

    @abstractmethod
    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimization step on the examples at indices ``batch``; detached scalar terms."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Metrics on the held-out data (called in eval mode, without gradients)."""

    def extra_plots(self, run_dir: Path, rows: list[dict[str, Any]]) -> None:  # noqa: B027
        """Study-specific figures beyond the loss curve (none by default)."""

    def stack_loss(self) -> Callable[[Forward, dict[str, torch.Tensor]], torch.Tensor] | None:
        """The stacked launcher's hook (regbench/stacked.py): ``loss(forward, batch)``, each
        member's data loss [K] on its training batch as in ``train_step``, given the batch's
        tensors [K, B, ...] by data key and the stacked network as a function ``forward(x)``
        (x [K, B, ...]). The network's own forward must treat leading dimensions as batch
        dimensions; the launcher checks that it does. None (the default): this study is never
        stacked; a study that cannot stack only some settings raises
        ``regbench.stacked_net.NotStackable`` saying why (those jobs then run alone)."""
        return None

    def state_dicts(self) -> dict[str, Any]:
        return {name: net.state_dict() for name, net in self.networks.items()}
