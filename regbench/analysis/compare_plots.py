"""Comparison figures, drawn from saved metrics (so ``regbench plot`` can redraw them any time).

- ``comparison_loss_curves.png``: every group's train and test loss per epoch, the mean over
  seeds as a line and a band of ±1 std;
- ``comparison_metrics.png``: each metric's group means with 95% confidence intervals, the
  baseline as a dashed line and the best group highlighted;
- ``comparison_heatmap.png``: when exactly two keys vary (e.g. dropout x weight_decay), the main
  metric's mean in each cell of the grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.analysis.comparison import Comparison, Group, Row, compare, show
from regbench.core.errors import UsageError
from regbench.core.rundir import CONFIG, RunDir
from regbench.figures.plots import new_figure, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOSS_FILE, METRICS_FILE, HEATMAP_FILE = (
    "comparison_loss_curves.png",
    "comparison_metrics.png",
    "comparison_heatmap.png",
)
WEIGHTS_FILE = "comparison_weight_hist.png"
RUN_LOSS_FILE = "loss_curve.png"
CURVE_COLUMNS = ("train_loss", "test_loss")
BAND_ALPHA = 0.2
LABEL_BOX = {"facecolor": "black", "alpha": 0.35, "linewidth": 0}  # readable on any cell colour


def write_plots(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Every comparison figure that applies, written into ``out_dir`` (side by side in the
    figure workers, when there are some: drawing.py); their paths."""
    from regbench.figures.drawing import Drawing, draw_now

    names = [name for name, applies in FIGURES.items() if applies(comparison)]
    drawings = [Drawing(_write_figure, (comparison, name, out_dir / name)) for name in names]
    weights = _final_weights_by_group(comparison)
    if weights:
        drawings.append(Drawing(_write_weight_histograms, (weights, out_dir / WEIGHTS_FILE)))
    draw_now(drawings)
    return [out_dir / name for name in names] + ([out_dir / WEIGHTS_FILE] if weights else [])


def _write_figure(comparison: Comparison, name: str, path: Path) -> None:
    fig = FIGURE_FUNCTIONS[name](comparison)
    if fig is not None:
        save(fig, path)


def figures(comparison: Comparison) -> dict[str, Figure]:
    """The comparison figures that apply, by file name, drawn and not saved (the weight
    histograms, drawn from each run's model.pt, are only written)."""
    names = [name for name, applies in FIGURES.items() if applies(comparison)]
    return {name: FIGURE_FUNCTIONS[name](comparison) for name in names}


def weight_histograms_figure(comparison: Comparison, path: Path) -> Path | None:
    """Each group's final weights overlaid per layer (L1's spike at 0 against L2's narrower
    bell); None when no group has a finished run with saved weights."""
    groups = _final_weights_by_group(comparison)
    return _write_weight_histograms(groups, path) if groups else None


def _final_weights_by_group(comparison: Comparison) -> dict[str, list[Path]]:
    """Group label -> its completed runs that saved model.pt (groups without one left out)."""
    from regbench.core.rundir import MODEL

    groups = {
        row.group.label: [run.path for run in row.group.completed if (run.path / MODEL).is_file()]
        for row in comparison.rows
    }
    return {label: runs for label, runs in groups.items() if runs}


def _write_weight_histograms(groups: dict[str, list[Path]], path: Path) -> Path:
    from regbench.regularization.weights import compare_histograms

    return compare_histograms(groups, path, "final weights per group (counts averaged per run)")


def redraw(path: Path) -> list[Path]:
    """``regbench plot PATH``: a run's loss curve; for a sweep (any folder of runs) every completed
    run's loss curve and the comparison figures. Only saved metrics are read."""
    from regbench.analysis.runs import load_run

    if (path / CONFIG).is_file():
        return [redraw_run(load_run(path).path)]
    comparison = compare([path])
    written = [redraw_run(r.path) for row in comparison.rows for r in row.group.completed]
    return written + write_plots(comparison, path)


def redraw_run(folder: Path) -> Path:
    """A run's ``loss_curve.png`` from its metrics.csv, titled like the original."""
    from regbench.compose.validate import validate
    from regbench.core.config import ConfigError
    from regbench.figures.plots import loss_curve
    from regbench.figures.titles import plot_title
    from regbench.studies import study_class

    run_dir = RunDir.open(folder)
    try:
        settings = validate(run_dir.read_config() or {})
    except ConfigError as exc:
        raise UsageError(f"{folder / CONFIG} is not a valid config: {exc}") from exc
    rows = run_dir.read_metrics()
    if not rows:
        raise UsageError(f"{folder} has no metrics yet; nothing to plot")
    target = folder / RUN_LOSS_FILE
    loss_curve(rows, study_class(settings.model.name).loss_columns, plot_title(settings), target)
    return target


# ----------------------------------------------------------------------------- loss curves
def curve_columns(comparison: Comparison) -> list[str]:
    logged = {k for row in comparison.rows for r in row.group.completed for k in r.rows[0]}
    return [c for c in CURVE_COLUMNS if c in logged] or [comparison.main]


def mean_curve(group: Group, column: str) -> tuple[list[float], Any, Any]:
    """Epochs every completed run logged ``column`` at, and the mean and std (ddof=1; 0 for a
    single run) over the runs at each of them."""
    import numpy as np

    per_run = [{r["epoch"]: r[column] for r in run.rows if column in r} for run in group.completed]
    epochs = sorted(set.intersection(*(set(p) for p in per_run))) if per_run else []
    values = np.array([[p[e] for e in epochs] for p in per_run], dtype=float)
    if not epochs:
        return [], np.array([]), np.array([])
    std = values.std(axis=0, ddof=1) if len(per_run) > 1 else np.zeros(len(epochs))
    return epochs, values.mean(axis=0), std


def has_curves(comparison: Comparison) -> bool:
    return any(row.group.completed for row in comparison.rows)


def loss_curves_figure(comparison: Comparison) -> Figure | None:
    rows = [row for row in comparison.rows if row.group.completed]
    if not rows:
        return None
    columns = curve_columns(comparison)
    fig, axes = new_figure(ncols=len(columns), width=6.0)
    colors = _colors(len(rows))
    for ax, column in zip(axes[0], columns, strict=True):
        for row, color in zip(rows, colors, strict=True):
            epochs, mean, std = mean_curve(row.group, column)
            if not epochs:
                continue
            label = f"{row.group.label} (n={len(row.group.completed)})"
            ax.plot(epochs, mean, color=color, marker="o", markersize=3, label=label)
            ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=BAND_ALPHA)
        ax.set_xlabel("epoch")
        ax.set_ylabel(column)
        ax.set_title(f"{column}: mean ± 1 std over seeds", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


# ----------------------------------------------------------------------------- metrics
def has_metrics(comparison: Comparison) -> bool:
    return any(row.cells[comparison.main].stats for row in comparison.rows)


def metrics_figure(comparison: Comparison) -> Figure | None:
    if not has_metrics(comparison):
        return None
    fig, axes = new_figure(ncols=len(comparison.metrics), width=4.6)
    fig.set_size_inches(3.0 + 4.6 * len(comparison.metrics), 2.2 + 0.4 * len(comparison.rows))
    for i, (ax, metric) in enumerate(zip(axes[0], comparison.metrics, strict=True)):
        _metric_panel(ax, comparison, metric, labels=i == 0)
    axes[0, 0].legend(
        handles=_metric_legend(comparison.baseline is not None),
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(0.0, -0.22),
        ncol=3,
    )
    return fig


def _metric_panel(ax: Any, comparison: Comparison, metric: str, labels: bool) -> None:
    rows = comparison.rows
    for y, row in enumerate(rows):
        stats = row.cells[metric].stats
        if stats is None:
            continue
        low, high = stats.ci
        error = None if math.isnan(low) else [[stats.mean - low], [high - stats.mean]]
        color = "tab:green" if row.is_best else ("tab:gray" if row.is_baseline else "tab:blue")
        ax.errorbar(stats.mean, y, xerr=error, fmt="o", color=color, capsize=4)
    base = comparison.baseline
    if base is not None and base.cells[metric].stats is not None:
        ax.axvline(base.cells[metric].stats.mean, color="tab:gray", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), [_row_label(row) for row in rows] if labels else [])
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the table's order, best on top
    ax.set_title(f"mean and 95% CI over seeds{_better_text(comparison, metric)}", fontsize=9)
    ax.set_xlabel(f"{metric} ({comparison.at})")
    ax.grid(alpha=0.3, axis="x")


def _better_text(comparison: Comparison, metric: str) -> str:
    """ " (lower is better)", or nothing for a metric without a direction."""
    direction = comparison.spec(metric).direction
    return {"min": " (lower is better)", "max": " (higher is better)"}.get(direction, "")


def _row_label(row: Row) -> str:
    return f"{row.group.label} (n={len(row.group.completed)})"


def _metric_legend(with_baseline: bool) -> list[Any]:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color="tab:green", marker="o", linestyle="", label="best"),
        Line2D([], [], color="tab:blue", marker="o", linestyle="", label="group mean, 95% CI"),
    ]
    if with_baseline:
        handles.append(Line2D([], [], color="tab:gray", linestyle="--", label="baseline mean"))
    return handles


# ----------------------------------------------------------------------------- heatmap
def has_grid(comparison: Comparison) -> bool:
    return len(comparison.varying) == 2


def heatmap_figure(comparison: Comparison) -> Figure | None:
    """The main metric's mean over a two-key grid (None unless exactly two keys vary)."""
    import numpy as np

    if not has_grid(comparison):
        return None
    y_key, x_key = comparison.varying
    y_values = _sorted_values(comparison, y_key)
    x_values = _sorted_values(comparison, x_key)
    means = np.full((len(y_values), len(x_values)), np.nan)
    notes = [["n=0"] * len(x_values) for _ in y_values]
    for row in comparison.rows:
        i = y_values.index(row.group.config.get(y_key))
        j = x_values.index(row.group.config.get(x_key))
        stats = row.cells[comparison.main].stats
        if stats is not None:
            means[i, j] = stats.mean
            notes[i][j] = _cell_text(stats)
    fig, axes = new_figure(width=1.6 * len(x_values) + 3.2)
    ax = axes[0, 0]
    cmap = "viridis_r" if comparison.spec(comparison.main).direction == "min" else "viridis"
    image = ax.imshow(np.ma.masked_invalid(means), cmap=cmap, aspect="auto")
    for i, row_notes in enumerate(notes):
        for j, text in enumerate(row_notes):
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white", bbox=LABEL_BOX)
    ax.set_xticks(range(len(x_values)), [show(v) for v in x_values])
    ax.set_yticks(range(len(y_values)), [show(v) for v in y_values])
    ax.set_xlabel(x_key)
    ax.set_ylabel(y_key)
    ax.set_title(f"{comparison.main} ({comparison.at}): mean over seeds", fontsize=10)
    label = f"mean {comparison.main}{_better_text(comparison, comparison.main)}"
    fig.colorbar(image, ax=ax, label=label)
    return fig


def _sorted_values(comparison: Comparison, key: str) -> list[Any]:
    values = list(dict.fromkeys(row.group.config.get(key) for row in comparison.rows))
    try:
        return sorted(values)
    except TypeError:  # mixed types (e.g. None and numbers): keep the table's order
        return values


def _cell_text(stats: Any) -> str:
    if math.isnan(stats.ci[0]):
        return f"{stats.mean:.4g}\nn={stats.n}"
    return f"{stats.mean:.4g}\n±{(stats.ci[1] - stats.ci[0]) / 2:.2g} (95% CI)\nn={stats.n}"


def _colors(n: int) -> Sequence[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# Each comparison figure: when it applies, and how it is drawn.
FIGURES = {LOSS_FILE: has_curves, METRICS_FILE: has_metrics, HEATMAP_FILE: has_grid}
FIGURE_FUNCTIONS = {
    LOSS_FILE: loss_curves_figure,
    METRICS_FILE: metrics_figure,
    HEATMAP_FILE: heatmap_figure,
}
