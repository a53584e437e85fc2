"""The small interface every study implements; the training loop (train.py) knows only this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from regbench.core.metrics import COMMON_METRICS, Metric, loss, validation_name

if TYPE_CHECKING:
    import torch
    from torch import nn

    from regbench.core.config import Settings
    from regbench.data import DataBundle
    from regbench.figures.drawing import Drawing
    from regbench.regularization.penalties import PenalizedObjective

    Forward = Callable[[torch.Tensor], torch.Tensor]


class Study(ABC):
    """One regularization study: its networks, optimizers, loss, evaluation and plots.

    Subclasses set ``networks`` and ``optimizers`` in ``__init__`` (one network: build it and
    call ``train_one_network``); the loop saves and restores them for checkpoints, switches
    train/eval mode, and handles batching, logging and seeding. A one-network study writes its
    loss once, in ``batch_loss``: the solo step below and the stacked launcher both use it.
    """

    # Which logged columns make the loss curve: (train column, test column).
    loss_columns: ClassVar[tuple[str, str]] = ("train_loss", "test_loss")
    # The terms train_step returns, in its order: the row of epoch 0 (eval_at_start), made
    # before any step, has them as NaN (a study with its own train_step names its own).
    step_terms: ClassVar[tuple[str, ...]] = ("train_loss", "l1_penalty", "l2_penalty", "total_loss")
    # The metrics evaluate() returns, each declared once (regbench/core/metrics.py); the loop's
    # and weights.csv's are declared for every study. ``primary`` leads compare's table.
    metrics: ClassVar[tuple[Metric, ...]] = (
        loss("test_loss", "the data loss on the test set, in eval mode", "test", "test loss"),
    )
    primary: ClassVar[str] = "test_loss"
    # What compare shows when no --metric is given (primary first); by default the primary.
    compared: ClassVar[tuple[str, ...]] = ()
    net: nn.Module
    objective: PenalizedObjective

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

    @classmethod
    def declared_metrics(cls) -> dict[str, Metric]:
        """Every metric a run of this study can log, by name."""
        return {metric.name: metric for metric in (*COMMON_METRICS, *cls.metrics)}

    @classmethod
    def selection_metric(cls) -> str:
        """What selects by default (--at best, early stopping, a search's objective): the
        primary metric on the validation split, never on test."""
        return validation_name(cls.primary)

    @classmethod
    def default_metrics(cls) -> tuple[str, ...]:
        """The metrics compare shows when none are asked for, the primary one first."""
        return tuple(dict.fromkeys((cls.primary, *cls.compared)))

    def train_one_network(self, net: nn.Module) -> None:
        """The common case: one network (``"model"``) trained with the settings' penalties."""
        from regbench.regularization.penalties import PenalizedObjective, Penalty, make_optimizer

        penalty = Penalty.from_settings(self.settings)
        optimizer = make_optimizer([net], self.settings, penalty)
        self.net = net
        self.objective = PenalizedObjective([net], optimizer, penalty)
        self.networks = {"model": net}
        self.optimizers = {"model": optimizer}

    def train_mode(self, training: bool) -> None:
        for net in self.networks.values():
            net.train(training)

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimization step on the examples at indices ``batch``; detached scalar terms.
        This one is a one-network study's (``batch_loss`` on the training tensors); a study
        with several networks (the GAN) overrides it."""
        tensors = {key: values[batch] for key, values in self.data.train.items()}
        return self.objective.step(self.batch_loss(self.net, tensors))

    def batch_loss(self, forward: Forward, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The data loss, the mean over the batch dimension: ``forward`` is the network as a
        function, ``batch`` the batch's tensors by data key. Their leading dimensions may
        include member dimensions (the stacked launcher's: x [K, B, ...] -> loss [K]; solo:
        x [B, ...] -> a scalar), which the loss keeps; ``member_dims`` says how many. The
        network's forward must treat leading dimensions as batch dimensions; the launcher
        checks that it does."""
        raise NotImplementedError(f"{type(self).__name__} has no batch_loss")

    def member_dims(self, batch: dict[str, torch.Tensor], key: str = "y") -> int:
        """How many member dimensions lead ``batch``: its ``key`` tensor's dimensions beyond
        those of a solo batch of the training data (0 in a solo step)."""
        return batch[key].dim() - self.data.train[key].dim()

    def check_stackable(self) -> None:
        """Raise ``regbench.core.errors.NotStackable`` saying why when the stacked launcher
        (regbench/stacked.py) cannot train this study with these settings; those jobs then run
        alone. By default a study is stackable when it has a ``batch_loss``."""
        if type(self).batch_loss is Study.batch_loss:
            from regbench.core.errors import NotStackable

            raise NotStackable(f"the {self.settings.model.name} study has no stacked form")

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """Metrics on the held-out data (called in eval mode, without gradients)."""

    def figures(self, run_dir: Path, rows: list[dict[str, Any]]) -> list[Drawing]:
        """Study-specific figures beyond the loss curve and the weight figures (none by
        default), to draw: the drawing function and plain data (drawing.py)."""
        return []

    def state_dicts(self) -> dict[str, Any]:
        return {name: net.state_dict() for name, net in self.networks.items()}
