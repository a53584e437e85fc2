"""The classic overfitting demo: a 1-300-300-1 ReLU net fitted to 20 noisy points of y = x.

Without regularization the net threads every training point (train MSE far below the noise
variance) and its test MSE is worse than the noise's; dropout after each hidden layer keeps the
fit close to the line. Full batch (``batch_size`` larger than ``data.n_train``), MSE, Adam.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from torch import nn

from regbench.core.config import StudyConfig, key
from regbench.figures.titles import plot_title
from regbench.regularization.penalties import dropout_layer
from regbench.studies import register_study
from regbench.studies.mse import MSEStudy

if TYPE_CHECKING:
    from regbench.core.config import Settings
    from regbench.data import DataBundle
    from regbench.figures.drawing import Drawing

GRID_POINTS = 400  # dense x grid for the fitted curve
GRID_MARGIN = 0.1  # the curve extends this fraction of the data's x range beyond it
PLOT_FILE = "fit.png"


@dataclass(frozen=True)
class RegressionConfig(StudyConfig):
    """1-hidden...-1 regressor with ReLU and dropout after each hidden layer, full batch."""

    name: Literal["regression"]
    hidden: tuple[int, ...] = key("hidden layer sizes, e.g. [300,300]")

    data_sources: ClassVar[tuple[str, ...] | None] = ("toy_regression",)


class Regressor(nn.Module):
    """1-hidden...-1 with ReLU and dropout after each hidden layer."""

    def __init__(self, hidden: tuple[int, ...], make_dropout: Callable[[], nn.Module]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 1
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), make_dropout()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@register_study("regression", config=RegressionConfig)
class RegressionStudy(MSEStudy):
    """The classic overfitting demo: 20 noisy points, full batch; metrics as MSEStudy's."""

    def __init__(self, settings: Settings, data: DataBundle, device: torch.device) -> None:
        super().__init__(settings, data, device)
        net = Regressor(settings.model.hidden, lambda: dropout_layer(settings)).to(device)
        self.train_one_network(net)

    def _grid(self) -> torch.Tensor:
        xs = torch.cat([self.data.train["x"], self.data.test["x"]])
        lo, hi = xs.min().item(), xs.max().item()
        margin = GRID_MARGIN * (hi - lo or 1.0)
        return torch.linspace(lo - margin, hi + margin, GRID_POINTS, device=self.device)[:, None]

    def fitted_curve(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, prediction) on a dense grid over the data's x range (plus a margin), eval mode."""
        grid = self._grid()
        self.train_mode(False)
        with torch.no_grad():
            return grid.cpu(), self.net(grid).cpu()

    def mc_band(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """MC mean and std on the fitted curve's grid (None when ``mc_samples`` is 0). Each
        pass draws one set of dropout masks for the whole grid: each pass is then one
        function of x, and the band a smooth one (a mask per grid point made it saw-toothed)."""
        from regbench.regularization.dropout import dropout_modules
        from regbench.regularization.mc_dropout import mc_dropout, mc_moments

        if not self.settings.mc_samples:
            return None
        grid = self._grid()
        droppers = {id(m) for m in dropout_modules([self.net])}

        def one_pass() -> torch.Tensor:
            x = grid
            for module in self.net.layers:
                shared = id(module) in droppers  # its mask drawn once, for every grid point
                x = x * module(x.new_ones(1, x.shape[-1])) if shared else module(x)
            return x

        self.train_mode(False)
        with torch.no_grad(), mc_dropout([self.net], self.device):
            mean, std = mc_moments(one_pass, self.settings.mc_samples)
        return mean.cpu(), std.cpu()

    def figures(self, run_dir: Path, rows: list[dict[str, Any]]) -> list[Drawing]:
        from regbench.figures.drawing import Drawing

        curve = self.fitted_curve()
        band = self.mc_band()  # after the curve, as ever: MC dropout draws from the RNG
        title = plot_title(self.settings, self.data.name)
        data = (self.data.train, self.data.test, curve, rows, title, run_dir / PLOT_FILE)
        return [Drawing(regression_fit, data, {"band": band})]


def regression_fit(
    train: dict[str, Any],
    test: dict[str, Any],
    curve: tuple[Any, Any],
    rows: Sequence[dict[str, Any]],
    title: str,
    path: Path,
    band: tuple[Any, Any] | None = None,
) -> None:
    """Training and test points with the fitted curve, next to the loss curves (``fit.png``).

    ``train``/``test`` hold ``x`` and ``y`` [n, 1]; ``curve`` is (x, prediction) on a dense grid;
    ``band`` is the MC dropout (mean, std) [n, 1] on the same grid, drawn as mean +- 2 std.
    """
    from regbench.figures.plots import (
        draw_mc_band,
        figure_legend,
        mse_loss_panel,
        new_figure,
        save_fixed,
    )
    from regbench.figures.titles import title_figure

    fig, axes = new_figure(ncols=2, reuse=True)
    ax = axes[0, 0]
    if band is not None:
        draw_mc_band(ax, curve[0][:, 0], band[0][:, 0], band[1][:, 0], "tab:green")
    ax.scatter(train["x"][:, 0], train["y"][:, 0], s=22, color="tab:blue", label="train points")
    ax.scatter(
        test["x"][:, 0], test["y"][:, 0], s=22, color="tab:red", marker="x", label="test points"
    )
    ax.plot(curve[0][:, 0], curve[1][:, 0], color="black", linewidth=1.6, label="fit (eval mode)")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(alpha=0.3)
    ax.set_title("data and fit", fontsize=9)
    losses = axes[0, 1]
    mse_loss_panel(losses, rows)
    figure_legend(fig)
    title_figure(fig, title)
    save_fixed(fig, path)
