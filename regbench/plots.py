"""Figures, drawn from saved metrics with matplotlib's file-only (Agg) backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(ncols: int = 1, width: float = 6.4) -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.subplots(1, ncols, figsize=(width * ncols, 4.2), squeeze=False)


def save(fig: Figure, path: Path) -> None:
    from matplotlib import pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_loss_curves(ax: Any, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    epochs = [row["epoch"] for row in rows]
    for column in columns:
        if column in rows[0]:
            ax.plot(epochs, [row[column] for row in rows], marker="o", markersize=3, label=column)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()


def loss_curve(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str, path: Path
) -> None:
    """Train and test loss per epoch (``loss_curve.png``)."""
    fig, axes = new_figure()
    draw_loss_curves(axes[0, 0], rows, columns)
    axes[0, 0].set_title(title, fontsize=10)
    save(fig, path)


# ----------------------------------------------------------------------------- weights
HIST_BINS = 81  # odd: one bin is centred on 0, where L1 piles weights up
MAX_GRID_COLUMNS = 3


def layer_grid(n: int, width: float = 4.6) -> tuple[Figure, list[Any]]:
    """A figure with one panel per layer (at most MAX_GRID_COLUMNS a row)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    ncols = min(n, MAX_GRID_COLUMNS)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 3.6 * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def symmetric_bins(arrays: Sequence[Any]) -> Any:
    import numpy as np

    largest = max((float(np.abs(a).max()) for a in arrays if a.size), default=1.0) or 1.0
    return np.linspace(-largest, largest, HIST_BINS + 1)


def weight_histograms(weights: dict[str, Any], title: str, path: Path) -> None:
    """Final weights per layer, log-scale counts (``weight_hist.png``)."""
    import numpy as np

    fig, axes = layer_grid(len(weights))
    for ax, (layer, values) in zip(axes, weights.items(), strict=True):
        counts, edges = np.histogram(values, bins=symmetric_bins([values]))
        # One stairs artist instead of a patch per bin: several times faster to draw.
        ax.stairs(counts, edges, fill=True, color="tab:blue")
        ax.set_yscale("log")
        ax.set_title(f"{layer} ({values.size:,} weights)", fontsize=9)
        ax.set_xlabel("w")
        ax.set_ylabel("count (log)")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    save(fig, path)


def weight_norms(rows: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """Per-layer L1 and L2 norms and near-zero fraction over epochs (``weight_norms.png``)."""
    fig, axes = new_figure(ncols=3, width=4.6)
    series: dict[str, list[dict[str, Any]]] = {}
    single = len({row["network"] for row in rows}) == 1
    for row in rows:
        label = row["layer"] if single else f"{row['network']}/{row['layer']}"
        series.setdefault(label, []).append(row)
    panels = (("l1", "L1 norm  sum|w|", True), ("l2", "L2 norm", True))
    panels += (("near_zero", "fraction |w| < threshold", False),)
    for ax, (column, label, log) in zip(axes[0], panels, strict=True):
        for layer, layer_rows in series.items():
            epochs = [r["epoch"] for r in layer_rows]
            ax.plot(epochs, [r[column] for r in layer_rows], marker="o", markersize=3, label=layer)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    save(fig, path)


def overlaid_weight_histograms(
    groups: dict[str, list[dict[str, Any]]], title: str, path: Path
) -> None:
    """Per-layer histograms of several groups of runs on shared bins, log-scale counts.

    ``groups`` maps a label to its runs' final weights (layer -> array); counts are averaged over
    a group's runs so groups with different numbers of seeds compare fairly.
    """
    import numpy as np

    layers = list(dict.fromkeys(layer for runs in groups.values() for r in runs for layer in r))
    fig, axes = layer_grid(len(layers))
    for ax, layer in zip(axes, layers, strict=True):
        per_group = {
            label: [r[layer] for r in runs if layer in r] for label, runs in groups.items()
        }
        bins = symmetric_bins([a for arrays in per_group.values() for a in arrays])
        for label, arrays in per_group.items():
            if not arrays:
                continue
            counts, edges = np.histogram(np.concatenate(arrays), bins=bins)
            ax.stairs(counts / len(arrays), edges, linewidth=1.4, label=label)
        ax.set_yscale("log")
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("w")
        ax.set_ylabel("count per run (log)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    save(fig, path)


# ----------------------------------------------------------------------------- studies
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
    fig, axes = new_figure(ncols=2)
    ax = axes[0, 0]
    if band is not None:
        draw_mc_band(ax, curve[0][:, 0], band[0][:, 0], band[1][:, 0], "tab:green")
    ax.scatter(train["x"][:, 0], train["y"][:, 0], s=22, color="tab:blue", label="train")
    ax.scatter(test["x"][:, 0], test["y"][:, 0], s=22, color="tab:red", marker="x", label="test")
    ax.plot(curve[0][:, 0], curve[1][:, 0], color="black", linewidth=1.6, label="fit (eval mode)")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    draw_loss_curves(axes[0, 1], rows, ("train_loss", "train_eval_loss", "test_loss"))
    axes[0, 1].set_yscale("log")
    axes[0, 1].set_ylabel("MSE (log)")
    save(fig, path)


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
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig = plt.figure(figsize=(12.8, 8.0))
    grid = fig.add_gridspec(2, 2)
    top, detail = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0])
    for ax in (top, detail):
        _draw_series(ax, series, predictions)
        for part, (t, mean, std) in (bands or {}).items():
            color = "tab:cyan" if part == "train" else "tab:orange"
            draw_mc_band(ax, t, mean, std, color, f" ({part})")
    top.set_title(title, fontsize=10)
    top.legend(fontsize=8, loc="upper left", ncols=4)
    detail.set_xlim(*zoom)
    detail.set_title("around the train/test split", fontsize=9)
    losses = fig.add_subplot(grid[1, 1])
    draw_loss_curves(losses, rows, ("train_loss", "train_eval_loss", "test_loss"))
    losses.set_yscale("log")
    losses.set_ylabel("MSE (log)")
    save(fig, path)


FEW_POINTS = 50


def _draw_series(ax: Any, series: dict[str, Any], predictions: dict[str, tuple[Any, Any]]) -> None:
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


def image_grid(images: Any, title: str, path: Path) -> None:
    """Square-ish grid of grey images [n, h, w] with values in [-1, 1] (GAN samples)."""
    import numpy as np

    images = np.asarray(images)
    n, h, w = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    canvas = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), 0.0)  # grey cell borders
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = image
    fig, axes = new_figure(width=5.0)
    fig.set_size_inches(5.0, 5.3)
    axes[0, 0].imshow(canvas, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    axes[0, 0].set_axis_off()
    axes[0, 0].set_title(title, fontsize=9)
    save(fig, path)


def gan_scores(rows: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """D(x) and D(G(z)) per epoch, and the FID of generated samples (``gan_scores.png``)."""
    fig, axes = new_figure(ncols=2)
    epochs = [row["epoch"] for row in rows]
    ax = axes[0, 0]
    ax.plot(epochs, [r["d_real"] for r in rows], marker="o", markersize=3, label="D(x)")
    ax.plot(epochs, [r["d_fake"] for r in rows], marker="o", markersize=3, label="D(G(z))")
    ax.set_ylim(0, 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean discriminator output")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    ax = axes[0, 1]
    ax.plot(epochs, [r["fid"] for r in rows], marker="o", markersize=3, color="tab:green")
    ax.set_xlabel("epoch")
    ax.set_ylabel("FID (classifier features, lower is better)")
    ax.grid(alpha=0.3)
    save(fig, path)


MC_FEW_POINTS = 3  # up to this many points, MC bands are error bars


def draw_mc_band(ax: Any, x: Any, mean: Any, std: Any, color: str, suffix: str = "") -> None:
    """MC dropout mean and a mean +- 2 std band."""
    import numpy as np

    x, mean, std = (np.asarray(a, dtype=float) for a in (x, mean, std))
    if len(x) <= MC_FEW_POINTS:  # a band over one or two points would not show
        ax.errorbar(
            x, mean, yerr=2 * std, fmt="D", color=color, capsize=4, label=f"MC ±2 std{suffix}"
        )
        return
    ax.fill_between(
        x, mean - 2 * std, mean + 2 * std, color=color, alpha=0.25, label=f"MC ±2 std{suffix}"
    )
    ax.plot(x, mean, color=color, linewidth=1.2, linestyle="-.", label=f"MC mean{suffix}")
