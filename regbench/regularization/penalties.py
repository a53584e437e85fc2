"""Penalties and optimizers shared by every study.

``l1`` and ``l2`` are added to the loss (so they show in the logged loss); ``weight_decay`` is
the optimizer's own term. All three touch the same parameters: weights only (tensors with more
than one dimension) by default, every parameter with ``penalize=all``. ``max_norm`` is no term
of the loss: after each step it rescales every unit's incoming weights (max_norm.py), whatever
``penalize`` says: a bias is no unit's incoming weight.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

    from regbench.core.config import Settings


@dataclass(frozen=True)
class Penalty:
    """The regularization strengths one network is trained with."""

    l1: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.0
    penalize: Literal["weights", "all"] = "weights"
    max_norm: float | None = None  # None: no constraint

    @classmethod
    def from_settings(cls, settings: Settings) -> Penalty:
        return cls(
            settings.l1, settings.l2, settings.weight_decay, settings.penalize, settings.max_norm
        )


NO_PENALTY = Penalty()


def split_parameters(
    modules: Iterable[nn.Module], penalize: Literal["weights", "all"]
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(penalized, free) parameters: biases and other 1-D tensors are free unless ``all``."""
    penalized, free = [], []
    for module in modules:
        for param in module.parameters():
            (penalized if penalize == "all" or param.dim() > 1 else free).append(param)
    return penalized, free


def penalty_terms(
    params: Sequence[torch.Tensor], l1: float, l2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(l1 * sum|w|, l2 * sum w^2) over ``params``; exact zeros when a strength is 0."""
    import torch

    zero = params[0].new_zeros(()) if params else torch.zeros(())
    l1_term = l1 * sum(p.abs().sum() for p in params) if l1 > 0 and params else zero
    l2_term = l2 * sum(p.pow(2).sum() for p in params) if l2 > 0 and params else zero
    return l1_term, l2_term  # type: ignore[return-value]


def make_optimizer(
    modules: Sequence[nn.Module], settings: Settings, penalty: Penalty, lr: float | None = None
) -> torch.optim.Optimizer:
    """The configured optimizer; ``weight_decay`` only on the penalized parameter group."""
    import torch

    penalized, free = split_parameters(modules, penalty.penalize)
    groups = [
        {"params": penalized, "weight_decay": penalty.weight_decay},
        {"params": free, "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    lr = settings.lr if lr is None else lr
    if settings.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=settings.momentum)
    optimizer_class = torch.optim.AdamW if settings.optimizer == "adamw" else torch.optim.Adam
    # beta2 stays torch's 0.999; only beta1 is a knob (GANs train better with 0.5, see gan.yaml).
    return optimizer_class(groups, lr=lr, betas=(settings.adam_beta1, 0.999))


def dropout_layer(settings: Settings, p: float | None = None, channel: bool = False) -> nn.Module:
    """The dropout module every study uses (p defaults to ``settings.dropout``).

    One factory for all models, so that dropout variants configured in settings apply to every
    study the same way: ``dropout_impl`` picks the variant (regbench/dropout.py), and the loop's
    ``dropout_schedule`` scales the p given here. ``channel``: whole feature maps (conv layers).
    """
    from regbench.regularization.dropout import make_dropout

    return make_dropout(settings.dropout_impl, settings.dropout if p is None else p, channel)


class PenalizedObjective:
    """Adds a network's penalties to its data loss and takes one optimizer step (then applies
    the max-norm constraint, when there is one)."""

    def __init__(
        self, modules: Sequence[nn.Module], optimizer: torch.optim.Optimizer, penalty: Penalty
    ) -> None:
        from regbench.regularization.max_norm import unit_weights

        self.params, _ = split_parameters(modules, penalty.penalize)
        self.optimizer = optimizer
        self.penalty = penalty
        self.constrained = unit_weights(modules) if penalty.max_norm is not None else []

    def step(self, data_loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Backward + step on data loss + penalties; returns the detached terms for logging."""
        l1_term, l2_term = penalty_terms(self.params, self.penalty.l1, self.penalty.l2)
        total = data_loss + l1_term + l2_term
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        if self.penalty.max_norm is not None:
            from regbench.regularization.max_norm import constrain

            constrain(self.constrained, self.penalty.max_norm)
        return {
            "train_loss": data_loss.detach(),
            "l1_penalty": l1_term.detach(),
            "l2_penalty": l2_term.detach(),
            "total_loss": total.detach(),
        }
