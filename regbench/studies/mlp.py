"""The classic dropout study: an MNIST MLP 784-512-256-10, ReLU, dropout after each hidden layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from regbench.core.config import StudyConfig, key
from regbench.core.metrics import (
    MC_LOSS,
    MC_STD,
    Metric,
    accuracy,
    loss,
    on_training_data,
    on_validation,
)
from regbench.regularization.mc_dropout import (
    classifier_metrics,
    mc_dropout,
    mc_moments,
    probability_metrics,
    running_means,
)
from regbench.regularization.penalties import dropout_layer
from regbench.studies import register_study
from regbench.studies.base import Study

if TYPE_CHECKING:
    from regbench.core.config import Settings
    from regbench.data import DataBundle
    from regbench.studies.base import Forward

PIXELS, CLASSES = 28 * 28, 10
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # standardize pixels/255 as the classic tutorial does
EVAL_CHUNK = 4096  # test examples per forward pass: bounded memory, few Python steps


@dataclass(frozen=True)
class MLPConfig(StudyConfig):
    """784-hidden...-10 classifier with ReLU and dropout after each hidden layer."""

    name: Literal["mlp"]
    hidden: tuple[int, ...] = key("hidden layer sizes, e.g. [512,256]")
    eval_train: bool = key(
        "also evaluate the training set in eval mode (train_eval_loss, train_eval_acc), which "
        "gap then uses instead of the running training loss with dropout on",
        role="evaluation",
        touches=("train_eval_*", "gap"),
        legacy=False,
    )

    data_sources: ClassVar[tuple[str, ...] | None] = ("mnist", "fashion_mnist", "mnist_small")


class MLP(nn.Module):
    def __init__(self, hidden: tuple[int, ...], make_dropout: Callable[[], nn.Module]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = PIXELS
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), make_dropout()]
            width = size
        layers.append(nn.Linear(width, CLASSES))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the 10 classes for flattened, standardized images (any leading
        dimensions are batch dimensions: the stacked launcher adds one)."""
        return F.log_softmax(self.layers(x), dim=-1)


def standardize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images [..., 28, 28] -> float [..., 784], standardized with MNIST's statistics."""
    return (images.flatten(-2).float().div_(255) - MNIST_MEAN).div_(MNIST_STD)


TEST_LOSS = loss("test_loss", "cross-entropy (mean NLL) on the test set, eval mode", "test")
TEST_ACC = accuracy("test_acc", "share of test images classified right, eval mode", "test")


@register_study("mlp", config=MLPConfig)
class MLPStudy(Study):
    compared: ClassVar[tuple[str, ...]] = ("test_loss", "test_acc")
    metrics: ClassVar[tuple[Metric, ...]] = (
        on_training_data(TEST_LOSS),
        on_training_data(TEST_ACC),
        on_validation(TEST_LOSS),
        on_validation(TEST_ACC),
        TEST_LOSS,
        TEST_ACC,
        MC_LOSS,
        accuracy("mc_test_acc", "test accuracy of the mean over mc_samples dropout passes", "test"),
        MC_STD,
        Metric(
            "test_ece",
            "expected calibration error of the eval-mode probabilities (15 bins)",
            "min",
            0.0,
            1.0,
            "test",
        ),
        Metric(
            "mc_test_ece",
            "expected calibration error of the MC-averaged probabilities (15 bins)",
            "min",
            0.0,
            1.0,
            "test",
        ),
    )

    def __init__(self, settings: Settings, data: DataBundle, device: torch.device) -> None:
        super().__init__(settings, data, device)
        self.train_one_network(self.build_net().to(device))

    def build_net(self) -> nn.Module:
        """The classifier: flattened standardized images [..., 784] -> log-probabilities
        (the CNN study, which shares this study's loss and evaluation, builds its own)."""
        return MLP(self.settings.model.hidden, lambda: dropout_layer(self.settings))

    def batch_loss(self, forward: Forward, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean NLL over each member's batch: x [..., B, 28, 28], y [..., B] -> [...]."""
        log_probs = forward(standardize(batch["x"]))
        labels = batch["y"]
        if not self.member_dims(batch):
            # A solo step: torch's own mean reduction, the op solo runs have always used (a
            # 'none' reduction and .mean() round differently: not bitwise the same loss).
            return F.nll_loss(log_probs, labels)
        per_example = F.nll_loss(log_probs.flatten(0, -2), labels.flatten(), reduction="none")
        return per_example.view(labels.shape).mean(dim=-1)

    def evaluate(self) -> dict[str, float]:
        metrics = {}
        if self.settings.model.eval_train:
            metrics.update(self._classify(self.data.train, "train_eval")[0])
        if self.data.val is not None:
            metrics.update(self._classify(self.data.val, "val")[0])
        test, probs = self._classify(self.data.test, "test", keep=bool(self.settings.mc_samples))
        metrics.update(test)
        if self.settings.mc_samples:  # the deterministic probabilities, for the ECE
            metrics.update(self._mc_metrics(probs))
        return metrics

    def _classify(
        self, split: dict[str, torch.Tensor], prefix: str, keep: bool = False
    ) -> tuple[dict[str, float], torch.Tensor | None]:
        """{prefix}_loss and {prefix}_acc on ``split`` (eval mode), in chunks; with ``keep``
        also the class probabilities."""
        images, labels = split["x"], split["y"]
        loss_sum = images.new_zeros((), dtype=torch.float64)
        correct = images.new_zeros((), dtype=torch.int64)
        chunks = []
        for start in range(0, len(labels), EVAL_CHUNK):
            y = labels[start : start + EVAL_CHUNK]
            log_probs = self.net(standardize(images[start : start + EVAL_CHUNK]))
            loss_sum += F.nll_loss(log_probs, y, reduction="sum").double()
            correct += (log_probs.argmax(dim=1) == y).sum()
            if keep:
                chunks.append(log_probs.exp())
        metrics = {
            f"{prefix}_loss": loss_sum.item() / len(labels),
            f"{prefix}_acc": correct.item() / len(labels),
        }
        return metrics, torch.cat(chunks) if keep else None

    def mask_curve(self, masks: Sequence[int]) -> list[dict[str, float]]:
        """Test loss and accuracy of the class probabilities averaged over the first k dropout
        masks, for each k in ``masks`` (one growing set of masks, dropout on, a forked RNG);
        k = 0: the weight-scaling rule (eval mode, dropout off), the deterministic net."""
        images, labels = self.data.test["x"], self.data.test["y"]
        self.train_mode(False)
        with torch.no_grad():
            rows = [{"mc_masks": 0, **self._classify(self.data.test, "test")[0]}]

            def probabilities() -> torch.Tensor:
                chunks = range(0, len(labels), EVAL_CHUNK)
                return torch.cat(
                    [self.net(standardize(images[i : i + EVAL_CHUNK])).exp() for i in chunks]
                )

            with mc_dropout([self.net], self.device):
                for k, mean in running_means(probabilities, masks):
                    rows.append({"mc_masks": k, **probability_metrics(mean, labels)})
        return rows

    def _mc_metrics(self, det_probs: torch.Tensor) -> dict[str, float]:
        """MC dropout: class probabilities averaged over ``mc_samples`` passes, dropout on."""
        images, labels = self.data.test["x"], self.data.test["y"]
        means, stds = [], []
        with mc_dropout([self.net], self.device):
            for start in range(0, len(labels), EVAL_CHUNK):
                x = standardize(images[start : start + EVAL_CHUNK])
                mean, std = mc_moments(lambda x=x: self.net(x).exp(), self.settings.mc_samples)
                means.append(mean)
                stds.append(std)
        return classifier_metrics(det_probs, torch.cat(means), torch.cat(stds), labels)
