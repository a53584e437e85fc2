"""The MNIST GAN: an MLP discriminator and generator trained against each other.

D: 784-1024-512-256-1, LeakyReLU(0.2), dropout after each hidden layer, a logit out (its sigmoid
is the probability that the image is real; the loss uses the stable logits form of BCE).
G: 100-256-512-1024-784, LeakyReLU(0.2), tanh out; images are scaled to [-1, 1] to match.
Each step updates D on a real and a generated batch, then G to make D call its batch real.

``model.regularize`` (d, g or both) picks the network(s) that dropout, l1, l2 and weight_decay
apply to; the other network has no dropout modules and no penalty. Sample quality is the FID of
regbench's own classifier features (gan_fid.py), recorded at every evaluation.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from regbench.core.config import StudyConfig, key
from regbench.core.metrics import Metric, on_validation
from regbench.figures.titles import plot_title
from regbench.regularization.penalties import (
    NO_PENALTY,
    PenalizedObjective,
    Penalty,
    dropout_layer,
    make_optimizer,
)
from regbench.studies import register_study
from regbench.studies.base import Study
from regbench.studies.gan_fid import build_scorer, to_unit_range

if TYPE_CHECKING:
    from regbench.core.config import Settings
    from regbench.data import DataBundle
    from regbench.figures.drawing import Drawing

PIXELS, SIDE = 28 * 28, 28
SLOPE = 0.2  # LeakyReLU negative slope
GRID = 64  # samples in each samples_epoch_XXX.png (8 x 8)
GENERATE_CHUNK = 4096  # generated images per forward pass when scoring
NOISE_STREAM = 0x5EED  # the fixed noise's generator differs from the data-order generator
SCORES_FILE = "gan_scores.png"


@dataclass(frozen=True)
class GANConfig(StudyConfig):
    """MNIST GAN: D 784-d_hidden-1 and G noise_dim-g_hidden-784; ``regularize`` picks which
    network(s) dropout, l1, l2 and weight_decay apply to."""

    name: Literal["gan"]
    regularize: Literal["d", "g", "both"] = key(
        "the network(s) dropout, l1, l2 and weight_decay apply to: d, g or both"
    )
    noise_dim: int = key("the generator's input size", lo=1)
    d_hidden: tuple[int, ...] = key("the discriminator's hidden layer sizes")
    g_hidden: tuple[int, ...] = key("the generator's hidden layer sizes")
    sample_every: int = key(
        "write samples_epoch_XXX.png every N epochs (and at the last)",
        role="evaluation",
        touches=(),
        lo=1,
    )
    fid_samples: int = key(
        "generated images per FID evaluation", role="evaluation", touches=("fid",), lo=2
    )

    data_sources: ClassVar[tuple[str, ...] | None] = ("mnist", "fashion_mnist", "mnist_small")


def mlp(
    sizes: list[int], make_dropout: Callable[[], nn.Module], last: nn.Module | None
) -> nn.Sequential:
    """Linear layers of ``sizes``; LeakyReLU and dropout after each hidden one; ``last`` on top."""
    layers: list[nn.Module] = []
    for i, (width, size) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(width, size))
        if i < len(sizes) - 2:
            layers += [nn.LeakyReLU(SLOPE), make_dropout()]
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    def __init__(self, hidden: tuple[int, ...], make_dropout: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.layers = mlp([PIXELS, *hidden, 1], make_dropout, None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits [N] that images [N, 784] in [-1, 1] are real."""
        return self.layers(images).squeeze(1)


class Generator(nn.Module):
    def __init__(
        self, noise_dim: int, hidden: tuple[int, ...], make_dropout: Callable[[], nn.Module]
    ) -> None:
        super().__init__()
        self.layers = mlp([noise_dim, *hidden, PIXELS], make_dropout, nn.Tanh())

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        """Images [N, 784] in [-1, 1] from noise [N, noise_dim]."""
        return self.layers(noise)


FID = Metric(
    "fid",
    "Frechet distance between generated and real test images in a small MNIST classifier's "
    "features (lower: closer)",
    "min",
    0.0,
    None,
    "test",
    "FID",
)


@register_study("gan", config=GANConfig)
class GANStudy(Study):
    """Metrics: ``d_loss`` and ``g_loss`` (mean BCE), ``d_real`` = mean D(x) and ``d_fake`` =
    mean D(G(z)) over the D steps, ``l1_penalty``/``l2_penalty`` (summed over the regularized
    networks), and ``fid`` (evaluation: generated vs real test images)."""

    loss_columns: ClassVar[tuple[str, str]] = ("d_loss", "g_loss")
    step_terms: ClassVar[tuple[str, ...]] = (
        "d_loss", "g_loss", "d_real", "d_fake", "l1_penalty", "l2_penalty"
    )  # fmt: skip
    metrics: ClassVar[tuple[Metric, ...]] = (
        # The two players' losses trade off against each other: neither is "better" lower.
        Metric(
            "d_loss", "the discriminator's mean BCE over the epoch's D steps", lo=0.0, split="train"
        ),
        Metric(
            "g_loss", "the generator's mean BCE over the epoch's G steps", lo=0.0, split="train"
        ),
        Metric(
            "d_real", "mean D(x) on real images over the D steps", lo=0.0, hi=1.0, split="train"
        ),
        Metric(
            "d_fake",
            "mean D(G(z)) on generated images over the D steps",
            lo=0.0,
            hi=1.0,
            split="train",
        ),
        on_validation(FID),
        FID,
    )
    primary: ClassVar[str] = "fid"

    def __init__(self, settings: Settings, data: DataBundle, device: torch.device) -> None:
        super().__init__(settings, data, device)
        model = settings.model
        on_d, on_g = model.regularize in ("d", "both"), model.regularize in ("g", "both")
        self.discriminator = Discriminator(model.d_hidden, self._dropout(on_d)).to(device)
        self.generator = Generator(model.noise_dim, model.g_hidden, self._dropout(on_g)).to(device)
        self.networks = {"discriminator": self.discriminator, "generator": self.generator}
        penalty = Penalty.from_settings(settings)
        self.objectives: dict[str, PenalizedObjective] = {}
        for name, regularized in (("discriminator", on_d), ("generator", on_g)):
            net_penalty = penalty if regularized else NO_PENALTY
            optimizer = make_optimizer([self.networks[name]], settings, net_penalty)
            self.objectives[name] = PenalizedObjective(
                [self.networks[name]], optimizer, net_penalty
            )
            self.optimizers[name] = optimizer
        # Fixed noise from its own generator: the same grid and FID inputs at every evaluation.
        noise = torch.Generator().manual_seed(settings.seed ^ NOISE_STREAM)
        self.grid_noise = torch.randn(GRID, model.noise_dim, generator=noise).to(device)
        self.fid_noise = torch.randn(model.fid_samples, model.noise_dim, generator=noise).to(device)
        self.scorer = build_scorer(data.train, data.test, data.name, device)
        # The same classifier, against the validation images: what selection reads.
        self.val_scorer = None if data.val is None else self.scorer.against(data.val, device)
        self.samples: list[torch.Tensor] = []  # one grid per evaluation, for figures

    def _dropout(self, regularized: bool) -> Callable[[], nn.Module]:
        return (lambda: dropout_layer(self.settings)) if regularized else nn.Identity

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        real = to_unit_range(self.data.train["x"][batch])
        ones, zeros = real.new_ones(len(real)), real.new_zeros(len(real))
        fake = self.generator(
            torch.randn(len(real), self.settings.model.noise_dim, device=real.device)
        )
        bce = F.binary_cross_entropy_with_logits
        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake.detach())
        d_terms = self.objectives["discriminator"].step(
            bce(real_logits, ones) + bce(fake_logits, zeros)
        )
        # G's step sees the updated D; the non-saturating loss: make D call the fakes real.
        g_loss = bce(self.discriminator(fake), ones)
        g_terms = self.objectives["generator"].step(g_loss)
        return {
            "d_loss": d_terms["train_loss"],
            "g_loss": g_terms["train_loss"],
            "d_real": torch.sigmoid(real_logits.detach()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
            "l1_penalty": d_terms["l1_penalty"] + g_terms["l1_penalty"],
            "l2_penalty": d_terms["l2_penalty"] + g_terms["l2_penalty"],
        }

    def check_stackable(self) -> None:
        from regbench.core.errors import NotStackable

        raise NotStackable(
            f"the {self.settings.model.name} study has no stacked form (its two networks train "
            "against each other, each step in turn)"
        )

    def generate(self, noise: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.generator(chunk) for chunk in noise.split(GENERATE_CHUNK)])

    def evaluate(self) -> dict[str, float]:
        self.samples.append(self.generate(self.grid_noise).reshape(-1, SIDE, SIDE).cpu())
        generated = self.generate(self.fid_noise)
        if self.val_scorer is None:
            return {"fid": self.scorer.fid(generated)}
        return {"val_fid": self.val_scorer.fid(generated), "fid": self.scorer.fid(generated)}

    def figures(self, run_dir: Path, rows: list[dict[str, Any]]) -> list[Drawing]:
        """``samples_epoch_XXX.png`` every ``sample_every`` epochs and at the last evaluation
        (only those evaluated in this process: a resumed run has none from before the resume),
        and ``gan_scores.png``."""
        from regbench.figures.drawing import Drawing

        title = plot_title(self.settings, self.data.name)
        every = self.settings.model.sample_every
        evaluated = rows[len(rows) - len(self.samples) :]
        drawings = []
        for i, (row, images) in enumerate(zip(evaluated, self.samples, strict=True)):
            epoch = row["epoch"]
            if epoch % every == 0 or i == len(evaluated) - 1:
                path = run_dir / f"samples_epoch_{epoch:03d}.png"
                when = f"after epoch {epoch}" if epoch else "before training (epoch 0)"
                label = f"generated samples {when}\n{title}"
                drawings.append(Drawing(image_grid, (images.float(), label, path)))
        return [*drawings, Drawing(gan_scores, (rows, title, run_dir / SCORES_FILE))]


def image_grid(images: Any, title: str, path: Path) -> None:
    """Square-ish grid of grey images [n, h, w] with values in [-1, 1] (GAN samples)."""
    import numpy as np

    from regbench.figures.plots import panels, save_fixed
    from regbench.figures.titles import title_figure

    images = np.asarray(images)
    n, h, w = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    canvas = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), 0.0)  # grey cell borders
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = image
    fig, axes = panels(5.0, 5.6, 1, 1)
    axes[0, 0].imshow(canvas, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    axes[0, 0].set_axis_off()
    title_figure(fig, title, fontsize=9)
    save_fixed(fig, path)


def gan_scores(rows: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """D(x) and D(G(z)) per epoch, and the FID of generated samples against the test images
    (and the validation images, where the run has them) (``gan_scores.png``)."""
    from regbench.figures.axes import SPLIT_COLORS, epoch_axis
    from regbench.figures.plots import figure_legend, new_figure, save_fixed
    from regbench.figures.titles import title_figure

    fig, axes = new_figure(ncols=2)
    epochs = [row["epoch"] for row in rows]
    ax = axes[0, 0]
    ax.plot(epochs, [r["d_real"] for r in rows], marker="o", markersize=3, label="D(x), real")
    ax.plot(epochs, [r["d_fake"] for r in rows], marker="o", markersize=3, label="D(G(z)), fake")
    ax.set_ylim(0, 1)
    epoch_axis(ax)
    ax.set_ylabel("mean discriminator output")
    ax.set_title("the discriminator's outputs", fontsize=9)
    ax.grid(alpha=0.3)
    ax = axes[0, 1]
    for column, split, label in (
        ("val_fid", "val", "FID vs validation"),
        ("fid", "test", "FID vs test"),
    ):
        points = [(r["epoch"], r[column]) for r in rows if column in r]
        if points:
            x, y = zip(*points, strict=True)
            ax.plot(x, y, marker="o", markersize=3, color=SPLIT_COLORS[split], label=label)
    epoch_axis(ax)
    ax.set_ylabel("FID, classifier features (lower is better)")
    ax.set_title("sample quality", fontsize=9)
    ax.grid(alpha=0.3)
    # One epoch axis for both: FID starts at epoch 0 (eval_at_start), D's outputs at 1 (means
    # over training steps).
    axes[0, 0].set_xlim(ax.get_xlim())
    figure_legend(fig)
    title_figure(fig, title)
    save_fixed(fig, path)
