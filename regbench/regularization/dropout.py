"""Dropout variants and the dropout schedule (curriculum dropout).

Three implementations, picked by ``dropout_impl``:

- ``inverted`` (default): in training keep each unit with probability 1-p and scale kept units by
  1/(1-p); identity at test. The expected training activation equals the test activation.
- ``vanilla`` (Srivastava et al., 2014): no scaling in training; multiply by 1-p at test. A net
  trained this way is the inverted net with the next layer's weights scaled by 1-p.
- ``torch``: ``nn.Dropout`` itself (inverted, torch's own kernel).

Masks are drawn from torch's global RNG on the tensor's device, so the run's seed fixes them and
the loop's RNG capture/restore makes resume exact. Eval mode never draws a mask.

Channel dropout (``channel=True``, the CNN's conv blocks; Dropout2d's semantics, Tompson et al.,
2015): one draw per example and feature map of x [..., C, H, W], so a dropped map is zero
everywhere; scaled like the element-wise variant of the same implementation.

``dropout_schedule=ramp`` raises every dropout module's p linearly from 0 at epoch 1 to its
configured value after ``dropout_ramp_epochs`` epochs: epoch e trains with p * min(1, (e-1)/k).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from regbench.core.config import Settings


def _keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """1 with probability 1-p, else 0; from the global RNG of x's device."""
    return torch.empty_like(x).bernoulli_(1.0 - p)


class InvertedDropout(nn.Module):
    """Training: x * mask / (1-p). Test: x."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = self.base_p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # p == 0 draws nothing: a zero-p epoch of a ramp leaves the RNG stream untouched.
        if not self.training or self.p == 0:
            return x
        return x * _keep_mask(x, self.p) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class VanillaDropout(nn.Module):
    """Training: x * mask (no scaling). Test: x * (1-p), the expected training activation."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = self.base_p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x * (1.0 - self.p) if self.p else x
        return x * _keep_mask(x, self.p) if self.p else x

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class TorchDropout(nn.Dropout):
    """``nn.Dropout`` plus the configured p the schedule scales from."""

    def __init__(self, p: float) -> None:
        super().__init__(p)
        self.base_p = p


def channel_mask_like(x: torch.Tensor) -> torch.Tensor:
    """An empty mask with one entry per example and feature map of x [..., C, H, W]."""
    return x.new_empty(*x.shape[:-2], 1, 1)


class InvertedChannelDropout(InvertedDropout):
    """Whole feature maps: training x * mask / (1-p) with mask [..., C, 1, 1]; test x."""

    mask_like = staticmethod(channel_mask_like)  # the stacked launcher draws masks this shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * channel_mask_like(x).bernoulli_(1.0 - self.p) / (1.0 - self.p)


class VanillaChannelDropout(VanillaDropout):
    """Whole feature maps: training x * mask [..., C, 1, 1] (no scaling); test x * (1-p)."""

    mask_like = staticmethod(channel_mask_like)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.p:
            return super().forward(x)
        return x * channel_mask_like(x).bernoulli_(1.0 - self.p)


class TorchChannelDropout(nn.Dropout2d):
    """``nn.Dropout2d`` plus the configured p the schedule scales from."""

    def __init__(self, p: float) -> None:
        super().__init__(p)
        self.base_p = p


IMPLEMENTATIONS: dict[str, type[nn.Module]] = {
    "inverted": InvertedDropout,
    "vanilla": VanillaDropout,
    "torch": TorchDropout,
}
CHANNEL_IMPLEMENTATIONS: dict[str, type[nn.Module]] = {
    "inverted": InvertedChannelDropout,
    "vanilla": VanillaChannelDropout,
    "torch": TorchChannelDropout,
}
SCHEDULED = (InvertedDropout, VanillaDropout, TorchDropout, TorchChannelDropout)
# Every module that draws a dropout mask in training mode (MC dropout switches these on).
STOCHASTIC = (InvertedDropout, VanillaDropout, nn.modules.dropout._DropoutNd)


def make_dropout(impl: str, p: float, channel: bool = False) -> nn.Module:
    """A dropout module of implementation ``impl`` (a validated config name); ``channel``:
    one that drops whole feature maps."""
    return (CHANNEL_IMPLEMENTATIONS if channel else IMPLEMENTATIONS)[impl](p)


def schedule_factor(schedule: str, ramp_epochs: int, epoch: int) -> float:
    """Fraction of the configured p used in ``epoch`` (1-based)."""
    if schedule == "ramp":
        return min(1.0, (epoch - 1) / ramp_epochs)
    return 1.0


def set_dropout_factor(networks: Iterable[nn.Module], factor: float) -> None:
    """Set p = factor * configured p on every scheduled dropout module of ``networks``."""
    for net in networks:
        for module in net.modules():
            if isinstance(module, SCHEDULED):
                module.p = module.base_p * factor


def apply_schedule(networks: Iterable[nn.Module], settings: Settings, epoch: int) -> None:
    """The loop's per-epoch hook: dropout p for ``epoch`` under ``settings.dropout_schedule``."""
    factor = schedule_factor(settings.dropout_schedule, settings.dropout_ramp_epochs, epoch)
    set_dropout_factor(networks, factor)


def dropout_modules(networks: Iterable[nn.Module]) -> list[nn.Module]:
    """Every mask-drawing dropout module inside ``networks``."""
    return [m for net in networks for m in net.modules() if isinstance(m, STOCHASTIC)]
