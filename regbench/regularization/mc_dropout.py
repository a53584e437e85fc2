"""MC dropout (Gal & Ghahramani, 2016): N stochastic forward passes with dropout on at test time.

The spread of the N predictions is the model's uncertainty; their mean is the MC prediction.
The passes run on a forked RNG, so switching ``mc_samples`` on never changes the training
stream: the same seed trains the same weights with or without MC evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from regbench.regularization.dropout import dropout_modules

ECE_BINS = 15  # equal-width confidence bins, the usual choice (Guo et al., 2017)


@contextmanager
def mc_dropout(networks: Iterable[nn.Module], device: torch.device) -> Iterator[None]:
    """Dropout modules in training mode (all else unchanged) on a forked RNG, for the block."""
    modules = dropout_modules(networks)
    modes = [m.training for m in modules]
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        try:
            for module in modules:
                module.train(True)
            yield
        finally:
            for module, mode in zip(modules, modes, strict=True):
                module.train(mode)


def mc_moments(
    forward: Callable[[], torch.Tensor], samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over ``samples`` calls of ``forward`` (inside mc_dropout)."""
    stacked = torch.stack([forward() for _ in range(samples)])
    return stacked.mean(dim=0), stacked.std(dim=0, correction=0)


def running_means(
    forward: Callable[[], torch.Tensor], counts: Iterable[int]
) -> Iterator[tuple[int, torch.Tensor]]:
    """(k, mean of the first k calls of ``forward``) for each k in ``counts``, from max(counts)
    calls in all: the averages over 1, 2, ... masks share their masks, as one model's
    predictions over a growing number of masks do (Srivastava et al. 2014, Figure 11)."""
    wanted = sorted(set(counts))
    total: torch.Tensor | None = None
    for k in range(1, wanted[-1] + 1):
        sample = forward()
        total = sample if total is None else total + sample
        if k in wanted:
            yield k, total / k


def expected_calibration_error(
    probs: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS
) -> float:
    """Sum over confidence bins of (bin share) * |accuracy - mean confidence|.

    ``probs`` [n, classes] are predicted probabilities; confidence is the top probability.
    """
    confidence, predicted = probs.max(dim=1)
    correct = (predicted == labels).double()
    # Bin b holds confidences in (b/bins, (b+1)/bins]; confidence 0 cannot occur (max of a simplex).
    index = (confidence.double() * bins).ceil().long().clamp(1, bins) - 1
    count = torch.zeros(bins, dtype=torch.float64, device=probs.device)
    count.index_add_(0, index, torch.ones_like(correct))
    conf_sum = torch.zeros_like(count).index_add_(0, index, confidence.double())
    acc_sum = torch.zeros_like(count).index_add_(0, index, correct)
    return ((acc_sum - conf_sum).abs().sum() / len(labels)).item()


def classifier_metrics(
    det_probs: torch.Tensor,
    mc_mean: torch.Tensor,
    mc_std: torch.Tensor,
    labels: torch.Tensor,
) -> dict[str, float]:
    """MC metrics of a classifier from its deterministic and MC-averaged class probabilities.

    ``mc_std`` is the per-class std over the passes; ``mc_std`` reported is that of the class
    the MC mean predicts, averaged over examples.
    """
    predicted = mc_mean.argmax(dim=1)
    averaged = probability_metrics(mc_mean, labels)
    return {
        "mc_test_loss": averaged["test_loss"],
        "mc_test_acc": averaged["test_acc"],
        "mc_std": mc_std.gather(1, predicted[:, None]).double().mean().item(),
        "test_ece": expected_calibration_error(det_probs, labels),
        "mc_test_ece": expected_calibration_error(mc_mean, labels),
    }


def probability_metrics(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """test_loss (mean NLL) and test_acc of class probabilities ``probs`` [n, classes]."""
    log_probs = probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
    return {
        "test_loss": F.nll_loss(log_probs.double(), labels).item(),
        "test_acc": (probs.argmax(dim=1) == labels).double().mean().item(),
    }


def regression_metrics(
    mc_mean: torch.Tensor, mc_std: torch.Tensor, targets: torch.Tensor
) -> dict[str, float]:
    """MSE of the MC mean prediction and the mean predictive std."""
    return {
        "mc_test_loss": F.mse_loss(mc_mean.double(), targets.double()).item(),
        "mc_std": mc_std.double().mean().item(),
    }
