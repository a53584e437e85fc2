"""Max-norm constraints (Srivastava et al., 2014, section 5.1): after each optimizer step, every
unit's incoming weight vector is rescaled to norm <= c.

A unit's incoming weights are one row of a weight tensor along its first dimension: a row of a
Linear weight [out, in], one output channel's filter of a convolution [out, in, kh, kw]
(flattened), one row of an RNN's input and hidden weights [hidden, in]. Biases and BatchNorm's
scale and shift are 1-D tensors and are left alone (they are no unit's incoming weights).

Solo: ``constrain`` on a network's weight tensors. Stacked: ``constrain_stacked`` on [K, ...]
tensors with one c per member (inf: that member unconstrained).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torch import nn


def unit_weights(modules: Iterable[nn.Module]) -> list[torch.Tensor]:
    """The tensors whose rows are units' incoming weights: every parameter with dim > 1."""
    return [p for module in modules for p in module.parameters() if p.dim() > 1]


def row_norms(weight: torch.Tensor, members: int = 0) -> torch.Tensor:
    """The L2 norm of each row of ``weight`` (its dims after the first ``members + 1`` flattened):
    [out] solo, [K, out] with one member dimension."""
    return torch.linalg.vector_norm(weight.flatten(members + 1), dim=-1)


@torch.no_grad()
def constrain(weights: Sequence[torch.Tensor], c: float) -> None:
    """Rescale, in place, every row of ``weights`` whose norm exceeds ``c`` to norm ``c``."""
    for weight in weights:
        norms = row_norms(weight)
        # Rows within the ball keep their exact values (a factor of 1.0 would round nothing,
        # but torch.where says so without relying on it).
        scale = torch.where(norms > c, c / norms, torch.ones_like(norms))
        weight.mul_(scale.view(-1, *[1] * (weight.dim() - 1)))


@torch.no_grad()
def constrain_stacked(weights: Sequence[torch.Tensor], c: torch.Tensor) -> None:
    """``constrain`` for K members at once: ``weights`` [K, out, ...] (views are fine: they are
    written through), ``c`` [K] per member, inf where a member has no constraint."""
    for weight in weights:
        norms = row_norms(weight, members=1)
        limit = c.view(-1, 1).to(norms.dtype)
        scale = torch.where(norms > limit, limit / norms, torch.ones_like(norms))
        weight.mul_(scale.view(*scale.shape, *[1] * (weight.dim() - 2)))


def largest_row_norm(weight: torch.Tensor) -> torch.Tensor:
    """The largest row norm of one weight tensor (what weights.csv records per layer)."""
    return row_norms(weight).max()
