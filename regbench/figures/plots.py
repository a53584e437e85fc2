"""Figures, drawn from saved metrics with matplotlib's object-oriented API.

Figures are plain ``matplotlib.figure.Figure`` objects saved straight to files: pyplot is never
imported and its backend never switched, so a notebook's inline plots keep working after a run.

The shared ones and their helpers: loss curves, weight plots, MC dropout bands. A study's own
figures (the regression fit, the RNN's predictions, the GAN's samples) live in its module.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def figure(width: float, height: float) -> Figure:
    """A figure of its own (not pyplot's: nothing global to switch, nothing to close)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def new_figure(ncols: int = 1, width: float = 6.4, reuse: bool = False) -> tuple[Figure, Any]:
    """A row of ``ncols`` panels; ``reuse``: see ``reused_panels`` (a run's figures only)."""
    return panels(width * ncols, 4.2, 1, ncols, reuse)


def panels(
    width: float, height: float, nrows: int, ncols: int, reuse: bool = False
) -> tuple[Figure, Any]:
    """A figure with a grid of panels: a new one, or with ``reuse`` the ``reused_panels`` one."""
    if reuse:
        return reused_panels(width, height, nrows, ncols)
    fig = figure(width, height)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


# A run's figures are drawn again on the figure its kind used last in this thread (a sweep draws
# the same four for every job): building a figure's axes and ticks was about half of its cost.
_reusable = threading.local()


def reused_panels(width: float, height: float, nrows: int, ncols: int) -> tuple[Figure, Any]:
    """A figure with a grid of panels, the one this thread drew on last at this shape, cleared
    of what it showed (data, legends, titles, colour cycle); each figure function sets its own
    scales, labels and limits again. Only for figures whose shape stays as made (no colorbar,
    no resize) and that are saved with ``save_fixed``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    cache = _reusable.__dict__.setdefault("figures", {})
    key = (width, height, nrows, ncols)
    if key not in cache:
        fig = figure(width, height)
        FigureCanvasAgg(fig)  # one canvas (and renderer) kept with the figure
        cache[key] = fig, fig.subplots(nrows, ncols, squeeze=False)
    fig, axes = cache[key]
    for ax in axes.flat:
        _clear(ax)
    fig.suptitle("")
    return fig, axes


def forget_reused_figures() -> None:
    """Drop this thread's reused figures (a forked figure worker starts with none)."""
    _reusable.__dict__.pop("figures", None)


def _clear(ax: Any) -> None:
    """Remove what ``ax`` showed but keep the axes and their ticks (unlike ``ax.clear()``)."""
    for artist in [*ax.lines, *ax.collections, *ax.patches, *ax.texts, *ax.images]:
        artist.remove()
    for container in list(ax.containers):
        container.remove()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_title("")
    ax.set_prop_cycle(None)
    ax.set_autoscale_on(True)
    ax.relim()
    ax.set_visible(True)


def save(fig: Figure, path: Path) -> None:
    """``fig`` laid out by tight_layout (for figures whose labels vary, such as comparisons')."""
    fig.tight_layout()
    _write(fig, path)


# A run's own figures get fixed margins, in inches, sized for the tick labels, axis labels and
# titles they carry: tight_layout measures every text of a figure in an extra draw, about half
# the time a run spent on its figures (benchmarks/bench.py [5]).
MARGINS = {"left": 0.9, "right": 0.3, "bottom": 0.55, "top": 0.35, "wspace": 1.05, "hspace": 0.9}
SUPTITLE_SPACE = 0.3  # above the panels' own titles


def save_fixed(fig: Figure, path: Path) -> None:
    """``fig`` (one grid of panels, perhaps a suptitle) with fixed margins (MARGINS)."""
    width, height = fig.get_size_inches()
    nrows, ncols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    top = MARGINS["top"] + (SUPTITLE_SPACE if fig.get_suptitle() else 0.0)
    left, right, bottom = MARGINS["left"], MARGINS["right"], MARGINS["bottom"]
    panel_width = (width - left - right - (ncols - 1) * MARGINS["wspace"]) / ncols
    panel_height = (height - top - bottom - (nrows - 1) * MARGINS["hspace"]) / nrows
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=MARGINS["wspace"] / panel_width,  # matplotlib's: a fraction of a panel's size
        hspace=MARGINS["hspace"] / panel_height,
    )
    _write(fig, path)


def _write(fig: Figure, path: Path) -> None:
    from regbench.core.rundir import atomic_write

    # A temp file renamed over ``path``: a link planted under a figure's name in a received
    # folder is replaced, never written through; a full disk is one line naming the figure.
    fmt = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=110))


# Minor ticks of a log axis at 2 and 5 of each decade rather than matplotlib's eight: each tick is
# a handful of artists to build and draw, and log axes held most of a run's figures' ticks.
LOG_MINOR_SUBS = (2.0, 5.0)


def log_y(ax: Any) -> None:
    """A log-scale y axis with fewer minor ticks (LOG_MINOR_SUBS)."""
    from matplotlib.ticker import LogLocator

    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(LogLocator(subs=LOG_MINOR_SUBS))


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
    fig, axes = new_figure(reuse=True)
    draw_loss_curves(axes[0, 0], rows, columns)
    axes[0, 0].set_title(title, fontsize=10)
    save_fixed(fig, path)


# ----------------------------------------------------------------------------- weights
HIST_BINS = 81  # odd: one bin is centred on 0, where L1 piles weights up
MAX_GRID_COLUMNS = 3


def layer_grid(n: int, width: float = 4.6, reuse: bool = False) -> tuple[Figure, list[Any]]:
    """A figure with one panel per layer (at most MAX_GRID_COLUMNS a row); ``reuse``: see
    ``reused_panels``."""
    ncols = min(n, MAX_GRID_COLUMNS)
    nrows = -(-n // ncols)
    fig, axes = panels(width * ncols, 3.6 * nrows, nrows, ncols, reuse)
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

    fig, axes = layer_grid(len(weights), reuse=True)
    for ax, (layer, values) in zip(axes, weights.items(), strict=True):
        counts, edges = np.histogram(values, bins=symmetric_bins([values]))
        # One stairs artist instead of a patch per bin: several times faster to draw.
        ax.stairs(counts, edges, fill=True, color="tab:blue")
        log_y(ax)
        ax.set_title(f"{layer} ({values.size:,} weights)", fontsize=9)
        ax.set_xlabel("w")
        ax.set_ylabel("count (log)")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    save_fixed(fig, path)


def weight_norms(rows: Sequence[dict[str, Any]], title: str, path: Path) -> None:
    """Per-layer L1 and L2 norms and near-zero fraction over epochs (``weight_norms.png``)."""
    fig, axes = new_figure(ncols=3, width=4.6, reuse=True)
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
            log_y(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    save_fixed(fig, path)


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
        log_y(ax)
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("w")
        ax.set_ylabel("count per run (log)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    save(fig, path)


# ----------------------------------------------------------------------------- MC dropout
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
