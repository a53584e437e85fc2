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

    from regbench.figures.output import current

    cache = _reusable.__dict__.setdefault("figures", {})
    key = (width, height, nrows, ncols, current().style)  # a style shapes the axes as made
    if key not in cache:
        fig = figure(width, height)
        FigureCanvasAgg(fig)  # one canvas (and renderer) kept with the figure
        cache[key] = fig, fig.subplots(nrows, ncols, squeeze=False)
    fig, axes = cache[key]
    for ax in axes.flat:
        _clear(ax)
    for legend in list(fig.legends):
        legend.remove()
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


def save(fig: Figure, path: Path) -> list[Path]:
    """``fig`` laid out by tight_layout (for figures whose labels vary, such as comparisons'),
    with room for a title and for legends beside the panels; the files written."""
    fig.tight_layout()
    return _write(fig, path, tight=True)


# A run's own figures get fixed margins, in inches, sized for the tick labels, axis labels and
# titles they carry: tight_layout measures every text of a figure in an extra draw, about half
# the time a run spent on its figures (benchmarks/bench.py [5]).
MARGINS = {"left": 0.9, "right": 0.3, "bottom": 0.55, "top": 0.35, "wspace": 1.05, "hspace": 0.9}
SUPTITLE_LINE = 0.22  # inches a line of the figure's title takes
LEGEND_ROW = 0.24  # inches a row of a legend below the panels takes
LEGEND_COLUMNS = 4  # entries a row of a legend below the panels


def save_fixed(fig: Figure, path: Path) -> list[Path]:
    """``fig`` (one grid of panels, perhaps a title and a legend below) with fixed margins
    (MARGINS); the files written."""
    from regbench.figures.titles import title_lines

    width, height = fig.get_size_inches()
    nrows, ncols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    top = MARGINS["top"] + SUPTITLE_LINE * title_lines(fig)
    left, right = MARGINS["left"], MARGINS["right"]
    bottom = MARGINS["bottom"] + sum(legend_height(legend) for legend in fig.legends)
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
    return _write(fig, path)


def legend_height(legend: Any) -> float:
    """Inches a legend below the panels takes (legend_below), a half row of air included."""
    rows = -(-len(legend.get_texts()) // LEGEND_COLUMNS)
    return LEGEND_ROW * (rows + 0.5)


def legend_below(fig: Figure, handles: Sequence[Any], labels: Sequence[str]) -> None:
    """One legend for the figure, under its panels (save_fixed leaves room for it)."""
    fig.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.01),
        ncols=min(LEGEND_COLUMNS, len(labels)),
        fontsize=8,
        frameon=False,
    )


def _write(fig: Figure, path: Path, tight: bool = False) -> list[Path]:
    """``fig`` in every format of the current output (output.py), beside ``path``."""
    from regbench.core.rundir import atomic_write
    from regbench.figures.output import current

    output = current()
    written = []
    for target in output.paths(path):
        # A temp file renamed over ``target``: a link planted under a figure's name in a
        # received folder is replaced, never written through; a full disk is one line.
        options = {"format": target.suffix.lstrip("."), "dpi": output.dpi}
        options |= {"bbox_inches": "tight", "pad_inches": 0.08} if tight else {}
        atomic_write(target, lambda f, options=options: fig.savefig(f, **options))
        written.append(target)
    return written


def log_y(ax: Any) -> None:
    """A log-scale y axis labelled densely enough to read values (axes.log_axis)."""
    from regbench.figures.axes import log_axis

    log_axis(ax, "y")


# A loss that falls by this factor or more (an untrained model's epoch 0 against the trained
# epochs) is drawn on a log axis: on a linear one the trained epochs' differences are flat.
LOG_SPREAD = 10.0


def log_y_if_spread(*axes: Any) -> bool:
    """A log y axis on ``axes`` (panels sharing it) when the values their lines draw are all
    positive and span LOG_SPREAD or more; whether it was set."""
    import numpy as np

    values = np.concatenate(
        [np.asarray(line.get_ydata(), float) for ax in axes for line in ax.get_lines()] or [[]]
    )
    values = values[np.isfinite(values)]
    spread = values.size and values.min() > 0 and values.max() / values.min() >= LOG_SPREAD
    for ax in axes:
        if spread:
            log_y(ax)
        else:  # a reused panel (reused_panels) may hold a log scale from the figure before
            ax.set_yscale("linear")
    return bool(spread)


# Per-run curves: which columns a panel shows, by what they measure.
LOSS_PANEL, ACCURACY_PANEL = "loss", "accuracy"
ACCURACY_COLUMNS = ("train_eval_acc", "val_acc", "test_acc")


def split_of(column: str) -> str:
    """The split a logged column measures, by its name (train_eval_*, val_*, test_*, train_*)."""
    for split in ("train_eval", "train", "val", "test"):
        if column.startswith(split + "_"):
            return split
    return ""


def column_label(column: str) -> str:
    from regbench.figures.axes import SPLIT_NAMES

    return SPLIT_NAMES.get(split_of(column), column)


def loss_columns_of(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """The study's loss columns plus the training data in eval mode and the validation split,
    where logged, in split order (train, train eval, validation, test)."""
    logged = set().union(*(row.keys() for row in rows)) if rows else set()
    extra = [c for c in ("train_eval_loss", "val_loss") if c in logged]
    chosen = [c for c in dict.fromkeys([*columns, *extra]) if c in logged]
    order = {"train": 0, "train_eval": 1, "val": 2, "test": 3, "": 4}
    return sorted(chosen, key=lambda c: order[split_of(c)])


def draw_loss_curves(
    ax: Any, rows: Sequence[dict[str, Any]], columns: Sequence[str], ylabel: str = "loss"
) -> None:
    """Each of ``columns`` (that the rows hold) per epoch, coloured by its split."""
    from regbench.figures.axes import SPLIT_COLORS, epoch_axis

    for column in columns:
        points = [(row["epoch"], row[column]) for row in rows if column in row]
        if not points:
            continue
        epochs, values = zip(*points, strict=True)
        style = {"color": SPLIT_COLORS[split_of(column)]} if split_of(column) else {}
        dashed = "--" if split_of(column) == "train" else "-"
        ax.plot(
            epochs, values, marker="o", markersize=3, linestyle=dashed, label=column_label(column),
            **style,
        )  # fmt: skip
    epoch_axis(ax)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def mse_loss_panel(ax: Any, rows: Sequence[dict[str, Any]]) -> None:
    """The regression studies' "loss per epoch" panel (fit.png, predictions.png): every split's
    MSE on a log axis, a loss that spans decades as a net threads its points."""
    draw_loss_curves(ax, rows, loss_columns_of(rows, ("train_loss", "test_loss")))
    log_y(ax)
    ax.set_ylabel("MSE (log)")
    ax.set_title("loss per epoch", fontsize=9)


def loss_curve(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str, path: Path
) -> list[Path]:
    """Loss per epoch on every split logged, and accuracy beside it where the study logs it
    (``loss_curve.png``); one legend below both panels."""
    from regbench.figures.titles import title_figure

    logged = set().union(*(row.keys() for row in rows)) if rows else set()
    accuracy = [c for c in ACCURACY_COLUMNS if c in logged]
    ncols = 2 if accuracy else 1
    fig, axes = panels(5.2 * ncols, 4.4, 1, ncols, reuse=True)
    draw_loss_curves(axes[0, 0], rows, loss_columns_of(rows, columns))
    axes[0, 0].set_title(LOSS_PANEL, fontsize=9)
    if log_y_if_spread(axes[0, 0]):
        axes[0, 0].set_ylabel("loss (log)")
    if accuracy:
        draw_loss_curves(axes[0, 1], rows, accuracy, "accuracy")
        axes[0, 1].set_title(ACCURACY_PANEL, fontsize=9)
    figure_legend(fig)
    title_figure(fig, title)
    return save_fixed(fig, path)


def figure_legend(fig: Figure) -> None:
    """One legend below the panels for every labelled artist of the figure."""
    legend_below(fig, *_figure_handles(fig))


def _figure_handles(fig: Figure) -> tuple[list[Any], list[str]]:
    """Every panel's lines, one legend entry per label."""
    entries: dict[str, Any] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    return list(entries.values()), list(entries)


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


def weight_histograms(weights: dict[str, Any], title: str, path: Path) -> list[Path]:
    """Final weights per layer, log-scale counts (``weight_hist.png``); ``weights`` maps a
    layer's label (titles.layer_labels) to its weights."""
    import numpy as np

    from regbench.figures.titles import title_figure

    fig, axes = layer_grid(len(weights), reuse=True)
    for ax, (layer, values) in zip(axes, weights.items(), strict=True):
        counts, edges = np.histogram(values, bins=symmetric_bins([values]))
        # One stairs artist instead of a patch per bin: several times faster to draw.
        ax.stairs(counts, edges, fill=True, color="tab:blue")
        log_y(ax)
        ax.set_title(f"{layer}, {values.size:,} weights", fontsize=9)
        ax.set_xlabel("w")
        ax.set_ylabel("count (log)")
        ax.grid(alpha=0.3)
    title_figure(fig, f"final weights per layer\n{title}")
    return save_fixed(fig, path)


def weight_norms(
    rows: Sequence[dict[str, Any]],
    title: str,
    path: Path,
    names: dict[str, str] | None = None,
    threshold: float | None = None,
) -> list[Path]:
    """Per-layer L1 and L2 norms and near-zero fraction over epochs (``weight_norms.png``);
    ``names`` maps weights.csv's layer (``network/layer`` for several networks) to its label,
    ``threshold`` is the weight_threshold the near-zero share counts below."""
    from regbench.figures.axes import epoch_axis
    from regbench.figures.titles import title_figure

    fig, axes = new_figure(ncols=3, width=4.6, reuse=True)
    series: dict[str, list[dict[str, Any]]] = {}
    single = len({row["network"] for row in rows}) == 1
    for row in rows:
        raw = row["layer"] if single else f"{row['network']}/{row['layer']}"
        series.setdefault((names or {}).get(raw, raw), []).append(row)
    below = f"{threshold:g}" if threshold is not None else "threshold"
    shown = (("l1", "L1 norm, sum |w| (log)", True), ("l2", "L2 norm, ||w|| (log)", True))
    shown += (("near_zero", f"share of weights with |w| < {below}", False),)
    for ax, (column, label, log) in zip(axes[0], shown, strict=True):
        for layer, layer_rows in series.items():
            epochs = [r["epoch"] for r in layer_rows]
            ax.plot(epochs, [r[column] for r in layer_rows], marker="o", markersize=3, label=layer)
        if log:
            log_y(ax)
        epoch_axis(ax)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    legend_below(fig, *axes[0, 0].get_legend_handles_labels())
    title_figure(fig, f"weights per layer over training\n{title}")
    return save_fixed(fig, path)


def overlaid_weight_histograms(
    groups: dict[str, list[dict[str, Any]]],
    title: str,
    path: Path,
    styles: dict[str, dict[str, Any]] | None = None,
) -> list[Path]:
    """Per-layer histograms of several groups of runs on shared bins, log-scale counts.

    ``groups`` maps a label to its runs' final weights (layer -> array); counts are averaged over
    a group's runs so groups with different numbers of seeds compare fairly.
    """
    import numpy as np

    from regbench.figures.axes import legend_beside
    from regbench.figures.titles import title_figure

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
            style = (styles or {}).get(label, {})
            ax.stairs(
                counts / len(arrays), edges, linewidth=1.4, label=label,
                color=style.get("color"), linestyle=style.get("linestyle", "-"),
            )  # fmt: skip
        log_y(ax)
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("w")
        ax.set_ylabel("count per run (log)")
        ax.grid(alpha=0.3)
    legend_beside(axes[-1])
    title_figure(fig, title)
    return save(fig, path)


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
