"""The sine RNN: windows of a noisy sine series predict the next value.

A stack of ``num_layers`` single-layer ``nn.RNN`` modules (tanh, batch_first; one layer by
default: exactly the classic ``nn.RNN`` -> last step -> dropout -> linear), trained with MSE and
Adam. Where dropout goes is ``model.rnn_dropout``:

- ``output``: on the last step's output, before the linear head (the classic example).
- ``variational`` (Gal & Ghahramani, 2016): one mask per sequence, drawn once and reused at every
  time step, on each layer's input and on its hidden state before the recurrent product. The
  recurrence then runs step by step in Python (nn.RNN has no per-sequence masks).
- ``between_layers``: on each layer's output sequence before the next layer (fresh mask per step),
  what ``nn.RNN(num_layers=k, dropout=p)`` does; needs ``num_layers >= 2``.

Every mask comes from ``regularize.dropout_layer``, so dropout variants apply here too: a
variational mask is that module applied to a tensor of ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from regbench.core.config import ConfigError, StudyConfig, key
from regbench.figures.titles import plot_title
from regbench.regularization.penalties import dropout_layer
from regbench.studies import register_study
from regbench.studies.mse import MSEStudy

if TYPE_CHECKING:
    from regbench.core.config import Settings
    from regbench.data import DataBundle
    from regbench.figures.drawing import Drawing

PLOT_FILE = "predictions.png"
ZOOM_PERIODS = 2  # the detail panel shows this many sine periods each side of the split
FEW_POINTS = 50  # up to this many predictions, each is drawn as a marker
Placement = Literal["output", "variational", "between_layers"]


@dataclass(frozen=True)
class RNNConfig(StudyConfig):
    """nn.RNN layers (tanh) + linear head on the last step; ``rnn_dropout`` places dropout."""

    name: Literal["rnn"]
    hidden_size: int = key("units per RNN layer", lo=1)
    num_layers: int = key("stacked RNN layers", lo=1)
    rnn_dropout: Placement = key(
        "where dropout goes: output (on the last step's output) | variational (one mask per "
        "sequence on inputs and hidden state) | between_layers (needs num_layers >= 2)"
    )

    data_sources: ClassVar[tuple[str, ...] | None] = ("sine",)

    def __post_init__(self) -> None:
        if self.rnn_dropout == "between_layers" and self.num_layers < 2:
            raise ConfigError(
                "model.rnn_dropout=between_layers needs model.num_layers >= 2 "
                f"(got {self.num_layers}); use output or variational for one layer"
            )


class SineRNN(nn.Module):
    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        placement: Placement,
        make_dropout: Callable[[], nn.Module],
    ) -> None:
        super().__init__()
        self.placement = placement
        sizes = [1] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(
            nn.RNN(sizes[i], sizes[i + 1], batch_first=True) for i in range(num_layers)
        )
        per_layer = lambda on: nn.ModuleList(  # noqa: E731
            make_dropout() if on else nn.Identity() for _ in range(num_layers)
        )
        # Dropout modules only where the placement puts them (state dicts do not depend on it).
        self.between = per_layer(placement == "between_layers")
        self.input_masks = per_layer(placement == "variational")
        self.hidden_masks = per_layer(placement == "variational")
        self.output_dropout = make_dropout() if placement == "output" else nn.Identity()
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, seq_len, 1] windows -> [batch, 1] next values (any leading dimensions are
        batch dimensions: the stacked launcher adds one)."""
        for i, rnn in enumerate(self.layers):
            if i > 0:
                x = self.between[i](x)
            if self.placement == "variational":
                x = variational_layer(rnn, x, self.input_masks[i], self.hidden_masks[i])
            else:
                x, _ = rnn(x)
        return self.head(self.output_dropout(x[..., -1, :]))


def variational_layer(
    rnn: nn.RNN, x: torch.Tensor, input_dropout: nn.Module, hidden_dropout: nn.Module
) -> torch.Tensor:
    """One tanh RNN layer with per-sequence masks on its input and its hidden state.

    h_t = tanh(W_ih (m_x * x_t) + b_ih + W_hh (m_h * h_{t-1}) + b_hh), with m_x, m_h drawn once
    per sequence (a dropout module applied to ones: identity or its test-time scaling in eval).
    """
    batch, steps, _ = x.shape
    input_mask = input_dropout(x.new_ones(batch, 1, x.shape[2]))
    hidden_mask = hidden_dropout(x.new_ones(batch, rnn.hidden_size))
    # The input projection of every step at once; only the recurrence is sequential.
    projected = F.linear(x * input_mask, rnn.weight_ih_l0, rnn.bias_ih_l0) + rnn.bias_hh_l0
    h = x.new_zeros(batch, rnn.hidden_size)
    outputs = []
    for t in range(steps):
        h = torch.tanh(projected[:, t] + F.linear(h * hidden_mask, rnn.weight_hh_l0))
        outputs.append(h)
    return torch.stack(outputs, dim=1)


@register_study("rnn", config=RNNConfig)
class RNNStudy(MSEStudy):
    """Metrics: ``train_loss`` (training-mode MSE, mean over the steps since the last row),
    ``train_eval_loss`` (MSE on all training windows, eval mode), ``test_loss`` (test MSE)."""

    def __init__(self, settings: Settings, data: DataBundle, device: torch.device) -> None:
        super().__init__(settings, data, device)
        model = settings.model
        net = SineRNN(
            model.hidden_size, model.num_layers, model.rnn_dropout, lambda: dropout_layer(settings)
        ).to(device)
        self.train_one_network(net)

    def check_stackable(self) -> None:
        if self.settings.model.rnn_dropout == "variational":
            from regbench.core.errors import NotStackable

            raise NotStackable("variational dropout (one mask per sequence) has no stacked form")

    def mc_bands(self) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None:
        """Part name -> (target indices, MC mean, MC std) on the CPU; None without MC."""
        if not self.settings.mc_samples:
            return None
        bands = {}
        for part, split in (("train", self.data.train), ("test", self.data.test)):
            mean, std = self.mc_predict(split["x"])
            bands[part] = (self.data.extra[f"{part}_targets"], mean[:, 0].cpu(), std[:, 0].cpu())
        return bands

    def predictions(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Part name -> (target indices in the series, eval-mode predictions), on the CPU."""
        self.train_mode(False)
        with torch.no_grad():
            return {
                part: (self.data.extra[f"{part}_targets"], self.net(split["x"])[:, 0].cpu())
                for part, split in (("train", self.data.train), ("test", self.data.test))
            }

    def figures(self, run_dir: Path, rows: list[dict[str, Any]]) -> list[Drawing]:
        from regbench.figures.drawing import Drawing

        series = {"observed": self.data.extra["series"], "clean": self.data.extra["clean"]}
        split = int(self.data.extra["test_targets"][0])
        span = max(ZOOM_PERIODS * self.settings.data.period, self.settings.data.seq_len + 1)
        zoom = (max(0.0, split - span), min(len(series["observed"]) - 0.5, split + span))
        title = plot_title(self.settings, self.data.name)
        data = (series, self.predictions(), zoom, rows, title, run_dir / PLOT_FILE)
        return [Drawing(series_predictions, data, {"bands": self.mc_bands()})]


def series_predictions(
    series: dict[str, Any],
    predictions: dict[str, tuple[Any, Any]],
    zoom: tuple[float, float],
    rows: Sequence[dict[str, Any]],
    title: str,
    path: Path,
    bands: dict[str, tuple[Any, Any, Any]] | None = None,
) -> None:
    """A series with the one-step-ahead predictions of its train and test parts: the whole
    series on top; below, the t range ``zoom`` (around the train/test split) and the loss curves
    (``predictions.png``).

    ``series`` holds ``observed`` (what the model saw) and ``clean`` values over t = 0..n-1;
    ``predictions`` maps a part name to (target indices, predicted values); ``bands`` maps a
    part to (target indices, MC dropout mean, std), drawn as mean +- 2 std.
    """
    from regbench.figures.plots import (
        draw_mc_band,
        figure,
        figure_legend,
        mse_loss_panel,
        save_fixed,
    )
    from regbench.figures.titles import title_figure

    fig = figure(12.8, 8.0)
    grid = fig.add_gridspec(2, 2)
    top, detail = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0])
    for ax in (top, detail):
        draw_series(ax, series, predictions)
        for part, (t, mean, std) in (bands or {}).items():
            color = "tab:cyan" if part == "train" else "tab:orange"
            draw_mc_band(ax, t, mean, std, color, f" ({part})")
    top.set_title("the whole series: one-step-ahead predictions", fontsize=9)
    detail.set_xlim(*zoom)
    detail.set_title("around the train/test split", fontsize=9)
    losses = fig.add_subplot(grid[1, 1])
    mse_loss_panel(losses, rows)
    figure_legend(fig)
    title_figure(fig, title)
    save_fixed(fig, path)


def draw_series(ax: Any, series: dict[str, Any], predictions: dict[str, tuple[Any, Any]]) -> None:
    ax.plot(series["observed"], color="0.65", linewidth=0.8, label="observed")
    ax.plot(series["clean"], color="black", linewidth=0.8, linestyle="--", label="true sine")
    colors = {"train": "tab:blue", "test": "tab:red"}
    for part, (t, values) in predictions.items():
        marker = "o" if len(t) <= FEW_POINTS else None  # a lone point draws no line
        ax.plot(
            t,
            values,
            color=colors.get(part),
            linewidth=1.1,
            marker=marker,
            label=f"predicted ({part})",
        )
    if "test" in predictions and len(predictions["test"][0]):
        ax.axvline(float(predictions["test"][0][0]) - 0.5, color="0.3", linewidth=0.8)
    ax.set_xlabel("t")
    ax.set_ylabel("value")
    ax.grid(alpha=0.3)
