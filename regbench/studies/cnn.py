"""A small conv net on MNIST-like images: two conv blocks and a classifier.

The shape, with the defaults (``model.channels=[16,32]``, ``model.hidden=128``)::

    image            [N, 1, 28, 28]   standardized like the MLP's input
    block 1          conv 5x5 pad 2, 1 -> 16, [BatchNorm], ReLU, conv dropout, max-pool 2
                     -> [N, 16, 14, 14]
    block 2          conv 5x5 pad 2, 16 -> 32, the same     -> [N, 32, 7, 7]
    classifier       flatten 1568 -> linear 128, ReLU, dropout -> linear 10, log-softmax

``model.conv_dropout`` (p) drops whole feature maps (``model.conv_dropout_kind=channel``,
Dropout2d's semantics) or single activations (``element``) in each conv block, in the
``dropout_impl`` chosen (inverted, vanilla or torch); ``dropout`` acts on the classifier's hidden
layer, as in the MLP. With ``model.batchnorm=true`` each block normalizes its conv's output, and
``model.dropout_position`` places the conv dropout relative to it:

- ``after_bn``: conv, BatchNorm, ReLU, dropout (Li et al. 2019's advice: no variance shift);
- ``before_bn``: conv, dropout, BatchNorm, ReLU: BatchNorm's running statistics are gathered
  on dropped activations and used on undropped ones at test time (the variance shift).

Without BatchNorm a block is conv, ReLU, dropout whatever the position (dropout before or after
a ReLU is the same maths). Loss, evaluation, MC dropout and metrics are the MLP study's: the
network takes the same flattened images. Stacked (``sweep --stacked``), each convolution runs
all members as one grouped convolution; with BatchNorm (running statistics per member) the
jobs run one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from regbench.core.config import StudyConfig, key
from regbench.figures.titles import plot_title
from regbench.regularization.penalties import dropout_layer
from regbench.studies import register_study
from regbench.studies.mlp import CLASSES, MLPStudy

if TYPE_CHECKING:
    from regbench.figures.drawing import Drawing

SIDE, KERNEL = 28, 5
FILTERS_FILE = "filters.png"


@dataclass(frozen=True)
class CNNConfig(StudyConfig):
    """Two conv blocks (conv 5x5, optional BatchNorm, ReLU, conv dropout, max-pool 2) and a
    classifier (linear, ReLU, dropout, linear)."""

    name: Literal["cnn"]
    channels: tuple[int, ...] = key("output channels of each conv block, e.g. [16,32]")
    hidden: int = key("units of the classifier's hidden layer", lo=1)
    conv_dropout: float = key(
        "dropout probability in each conv block (model.conv_dropout_kind says what it drops)",
        member=True,
        off=0.0,
        lo=0,
        hi=1,
        hi_open=True,
    )
    conv_dropout_kind: Literal["channel", "element"] = key(
        "channel: whole feature maps (Dropout2d) | element: single activations"
    )
    batchnorm: bool = key("BatchNorm after each convolution")
    dropout_position: Literal["before_bn", "after_bn"] = key(
        "the conv dropout before BatchNorm (conv, dropout, BN, ReLU) or after it (conv, BN, "
        "ReLU, dropout); the same maths without BatchNorm"
    )
    eval_train: bool = key(
        "also evaluate the training set in eval mode (train_eval_loss, train_eval_acc), which "
        "gap then uses instead of the running training loss with dropout on",
        role="evaluation",
        touches=("train_eval_*", "gap"),
    )

    data_sources: ClassVar[tuple[str, ...] | None] = ("mnist", "fashion_mnist", "mnist_small")


class Pool(nn.Module):
    """2x2 max-pooling over the last two dimensions, any leading dimensions (a stack's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(x.reshape(-1, *x.shape[-3:]), 2)
        return pooled.view(*x.shape[:-2], *pooled.shape[-2:])


def conv_block(
    width: int,
    size: int,
    batchnorm: bool,
    position: str,
    make_dropout: Callable[[], nn.Module],
) -> list[nn.Module]:
    """One block's modules in order (see the module docstring)."""
    conv = nn.Conv2d(width, size, KERNEL, padding=KERNEL // 2)
    if not batchnorm:
        return [conv, nn.ReLU(), make_dropout(), Pool()]
    if position == "before_bn":
        return [conv, make_dropout(), nn.BatchNorm2d(size), nn.ReLU(), Pool()]
    return [conv, nn.BatchNorm2d(size), nn.ReLU(), make_dropout(), Pool()]


class CNN(nn.Module):
    def __init__(
        self,
        config: CNNConfig,
        conv_dropout: Callable[[], nn.Module],
        dropout: Callable[[], nn.Module],
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width, side = 1, SIDE
        for size in config.channels:
            layers += conv_block(
                width, size, config.batchnorm, config.dropout_position, conv_dropout
            )
            width, side = size, side // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(width * side * side, config.hidden),
            nn.ReLU(),
            dropout(),
            nn.Linear(config.hidden, CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the 10 classes for flattened, standardized images [..., 784]
        (every leading dimension is a batch dimension: the stacked launcher adds one)."""
        maps = self.features(x.unflatten(-1, (1, SIDE, SIDE)))
        return F.log_softmax(self.classifier(maps.flatten(-3)), dim=-1)


@register_study("cnn", config=CNNConfig)
class CNNStudy(MLPStudy):
    """The MLP study's loss, evaluation and metrics with a conv net."""

    def build_net(self) -> nn.Module:
        return CNN(self.settings.model, self.conv_dropout, lambda: dropout_layer(self.settings))

    def conv_dropout(self) -> nn.Module:
        """A conv block's dropout module: model.conv_dropout's p, model.conv_dropout_kind's unit."""
        model = self.settings.model
        return dropout_layer(
            self.settings, model.conv_dropout, channel=model.conv_dropout_kind == "channel"
        )

    def check_stackable(self) -> None:
        if self.settings.model.batchnorm:
            from regbench.core.errors import NotStackable

            raise NotStackable(
                "model.batchnorm=true: BatchNorm's running statistics have no stacked form"
            )

    def figures(self, run_dir: Path, rows: list[dict[str, Any]]) -> list[Drawing]:
        """``filters.png``: the first conv layer's filters, one grey tile each."""
        from regbench.figures.drawing import Drawing

        first = self.net.features[0].weight.detach().cpu()[:, 0].clone()
        title = f"first layer's filters\n{plot_title(self.settings, self.data.name)}"
        return [Drawing(filter_grid, (first.numpy(), title, run_dir / FILTERS_FILE))]


def filter_grid(filters: Any, title: str, path: Path) -> None:
    """Filters [n, k, k] as a grid of tiles, each scaled to its own largest |w| (grey: 0)."""
    import numpy as np

    from regbench.figures.plots import new_figure, save_fixed

    filters = np.asarray(filters)
    n, k, _ = filters.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    canvas = np.full((rows * (k + 1) + 1, cols * (k + 1) + 1), np.nan)  # blank borders
    for i, tile in enumerate(filters):
        r, c = divmod(i, cols)
        scale = np.abs(tile).max() or 1.0
        canvas[1 + r * (k + 1) : 1 + r * (k + 1) + k, 1 + c * (k + 1) : 1 + c * (k + 1) + k] = (
            tile / scale
        )
    fig, axes = new_figure(width=5.0)
    axes[0, 0].imshow(canvas, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    axes[0, 0].set_axis_off()
    axes[0, 0].set_title(title, fontsize=8, wrap=True)
    save_fixed(fig, path)
