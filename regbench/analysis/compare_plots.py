"""Comparison figures, drawn from saved metrics (so ``regbench plot`` can redraw them any time).

- ``comparison_loss_curves``: every group's loss per epoch on each split, the mean over seeds as
  a line and a band (95% CI of the mean, or ±1 std with two seeds);
- ``comparison_metrics``: each metric's group means with 95% confidence intervals, the baseline
  as a dashed line and the best group (where one is shown) marked;
- ``comparison_effect``: each metric against a numeric key that varies (dropout, l2, ...), the
  mean and 95% CI over seeds, train, validation and test together so the gap shows;
- ``comparison_heatmap``: when exactly two keys vary (e.g. dropout x weight_decay), the main
  metric's mean in each cell of the grid.

A group has one colour (and line style) in all of them, set by its values (figures/axes.py);
groups are listed in value order, and each figure is titled with the model, data, epochs and
experiment. Figures are written in the runs' plot_format, plot_dpi and plot_style (output.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.analysis.comparison import Comparison, Group, Row, compare, show
from regbench.analysis.runs import row_at, saved_settings, trained_study
from regbench.analysis.stats import describe
from regbench.core.errors import UsageError
from regbench.core.rundir import CONFIG, RunDir
from regbench.figures.axes import (
    SPLIT_COLORS,
    SPLIT_NAMES,
    group_styles,
    is_numeric,
    legend_beside,
    log_axis,
    value_order,
)
from regbench.figures.output import Output
from regbench.figures.plots import new_figure, save
from regbench.figures.titles import title_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOSS_FILE, METRICS_FILE, HEATMAP_FILE = (
    "comparison_loss_curves.png",
    "comparison_metrics.png",
    "comparison_heatmap.png",
)
EFFECT_FILE = "comparison_effect.png"
WEIGHTS_FILE = "comparison_weight_hist.png"
RUN_LOSS_FILE = "loss_curve.png"
BAND_ALPHA = 0.18
LABEL_BOX = {"facecolor": "black", "alpha": 0.35, "linewidth": 0}  # readable on any cell colour
MIN_CI_SEEDS = 3  # the fewest seeds a band is a 95% CI of the mean with (describe's rule)
SPLITS = ("train_eval", "train", "val", "test")  # a family's members, in the effect figure
DECADES_FOR_LOG = 2.0  # nonzero values spanning this many decades get a log axis


def write_plots(comparison: Comparison, out_dir: Path, output: Output | None = None) -> list[Path]:
    """Every comparison figure that applies, written into ``out_dir`` (side by side in the
    figure workers, when there are some: drawing.py) in ``output``'s formats (default: those
    the runs were made with); the files written."""
    from regbench.figures.drawing import Drawing, draw_now

    output = output or runs_output(comparison)
    names = [name for name, applies in FIGURES.items() if applies(comparison)]
    drawings = [Drawing(_write_figure, (comparison, name, out_dir / name)) for name in names]
    weights = _final_weights_by_group(comparison)
    if weights:
        styles = styles_by_label(comparison)
        drawings.append(
            Drawing(_write_weight_histograms, (weights, out_dir / WEIGHTS_FILE, comparison, styles))
        )
    draw_now([drawing.written_as(output) for drawing in drawings])
    drawn = names + ([WEIGHTS_FILE] if weights else [])
    return [p for name in drawn for p in output.paths(out_dir / name) if p.is_file()]


def runs_output(comparison: Comparison) -> Output:
    """The formats, dpi and style the compared runs were made with (the first run's)."""
    runs = [run for row in comparison.rows for run in row.group.runs]
    return Output.from_config(runs[0].config) if runs else Output()


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
    if not groups:
        return None
    return _write_weight_histograms(groups, path, comparison, styles_by_label(comparison))


def _final_weights_by_group(comparison: Comparison) -> dict[str, list[Path]]:
    """Group label -> its completed runs that saved model.pt (groups without one left out),
    in value order."""
    from regbench.core.rundir import MODEL

    groups = {
        row.group.label: [run.path for run in row.group.completed if (run.path / MODEL).is_file()]
        for row in ordered_rows(comparison)
    }
    return {label: runs for label, runs in groups.items() if runs}


def _write_weight_histograms(
    groups: dict[str, list[Path]],
    path: Path,
    comparison: Comparison | None = None,
    styles: dict[str, dict[str, Any]] | None = None,
) -> Path | None:
    from regbench.regularization.weights import compare_histograms

    title = "final weights per group (counts averaged over each group's runs)"
    if comparison is not None:
        title += "\n" + comparison_title(comparison)
    return compare_histograms(groups, path, title, styles)


def redraw(path: Path, changes: Mapping[str, Any] | None = None) -> list[Path]:
    """``regbench plot PATH``: every figure of a run (its loss curve, the study's figures, the
    weight figures); for a sweep (any folder of runs) every completed run's and the comparison
    figures. Only saved files are read; ``changes``: Output fields (formats, dpi, style) that
    replace the runs' own plot_format, plot_dpi and plot_style."""
    from regbench.analysis.runs import load_run

    if (path / CONFIG).is_file():
        return redraw_run(load_run(path).path, changes)
    comparison = compare([path])
    written = [
        p
        for row in comparison.rows
        for r in row.group.completed
        for p in redraw_run(r.path, changes)
    ]
    output = dataclasses.replace(runs_output(comparison), **(changes or {}))
    return written + write_plots(comparison, path, output)


def redraw_run(folder: Path, changes: Mapping[str, Any] | None = None) -> list[Path]:
    """Every figure a run's ``plots`` setting asks for, from its files, titled like the
    original; the files written."""
    import time

    from regbench.figures.drawing import Drawing, draw_now
    from regbench.figures.plots import loss_curve
    from regbench.figures.titles import plot_title
    from regbench.regularization.weights import redraw_weight_plots
    from regbench.studies import study_class

    settings = saved_settings(folder)
    run_dir = RunDir.open(folder)
    rows = run_dir.read_metrics()
    if not rows:
        raise UsageError(f"{folder} has no metrics yet; nothing to plot")
    output = dataclasses.replace(Output.of(settings), **(changes or {}))
    title = plot_title(settings, _data_name(run_dir))
    columns = study_class(settings.model.name).loss_columns
    drawings = [Drawing(loss_curve, (rows, columns, title, folder / RUN_LOSS_FILE))]
    if settings.plots == "all" and _model_readable(run_dir):
        drawings += _study_figures(settings, run_dir, rows)
        drawings += redraw_weight_plots(run_dir, title, settings.weight_threshold)
    started = time.time()
    draw_now([drawing.written_as(output) for drawing in drawings])
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lstrip(".") in output.formats and p.stat().st_mtime >= started - 1
    )


def _data_name(run_dir: RunDir) -> str | None:
    """The data source the run really used (its summary's), else None (the config's)."""
    data = run_dir.read_summary().data
    return str(data["name"]) if isinstance(data, dict) and data.get("name") else None


def _model_readable(run_dir: RunDir) -> bool:
    """Whether the run's model.pt (if any) loads; one notice naming it when it does not: the
    figures drawn from it are skipped, the run's others are redrawn."""
    import warnings

    from regbench.core.errors import Notice, RegbenchError
    from regbench.core.rundir import MODEL

    if not (run_dir.path / MODEL).is_file():
        return True  # the weight figures say themselves what they lack
    try:
        run_dir.load_model()
    except RegbenchError as exc:
        note = f"skipped {run_dir.path / MODEL}: {exc}; its study and weight figures not redrawn"
        warnings.warn(Notice(note), stacklevel=3)
        return False
    return True


def _study_figures(settings: Any, run_dir: RunDir, rows: list[dict[str, Any]]) -> list[Any]:
    """The study's own figures (fit.png, predictions.png, gan_scores.png), from the run's
    model.pt and its data loaded again; none, with a Notice, when either cannot be had (a GAN's
    samples are drawn only while it trains)."""
    import warnings

    from regbench.core.errors import Notice, RegbenchError
    from regbench.core.rundir import MODEL

    if not (run_dir.path / MODEL).is_file():
        return []
    try:
        with trained_study(run_dir, settings) as study:
            return study.figures(run_dir.path, rows)
    except (RegbenchError, OSError, KeyError, RuntimeError) as exc:
        warnings.warn(
            Notice(f"{run_dir.path}: the study's figures not redrawn: {exc}"), stacklevel=2
        )
        return []


# ----------------------------------------------------------------------------- shared
def comparison_title(comparison: Comparison) -> str:
    """Model and architecture, data, epochs, the experiment, the runs and when they are read."""
    configs = [row.group.config for row in comparison.rows]
    common = {k: v for k, v in configs[0].items() if all(c.get(k) == v for c in configs)}
    model = str(common.get("model.name", "model"))
    for key in ("model.hidden", "model.hidden_size", "model.d_hidden"):
        if key in common:
            model += f" {key.split('.')[-1]}={show(common[key])}"
    data = common.get("data.used") or common.get("data.name") or "several data sets"
    epochs = f"{common['epochs']} epochs" if "epochs" in common else "epochs varied"
    experiment = comparison.experiment.name if comparison.experiment else ""
    parts = [f"{model} on {data}, {epochs}"]
    parts += [f"experiment {experiment}"] if experiment else []
    parts.append(f"{comparison.n_runs} runs, values at {comparison.at}")
    return " · ".join(parts)


def style_keys(comparison: Comparison) -> list[str]:
    """The varying keys in the order they style groups: numeric ones first (the colour), the
    one with the most values leading."""

    def values(key: str) -> list[Any]:
        return value_order([row.group.config.get(key) for row in comparison.rows])

    return sorted(comparison.varying, key=lambda k: (not is_numeric(values(k)), -len(values(k))))


def styles_by_label(comparison: Comparison) -> dict[str, dict[str, Any]]:
    """Group label -> its colour, line style and marker, the same in every figure."""
    configs = [row.group.config for row in comparison.rows]
    styles = group_styles(configs, style_keys(comparison))
    return {row.group.label: style for row, style in zip(comparison.rows, styles, strict=True)}


def ordered_rows(comparison: Comparison) -> list[Row]:
    """The rows in value order of the style keys (not by rank: an order that does not change
    from one sweep to the next)."""
    keys = style_keys(comparison)
    orders = {k: value_order([row.group.config.get(k) for row in comparison.rows]) for k in keys}
    return sorted(
        comparison.rows, key=lambda row: [orders[k].index(row.group.config.get(k)) for k in keys]
    )


def label_of(row: Row) -> str:
    return f"{row.group.label} (n={len(row.group.completed)})"


def metric_label(comparison: Comparison, metric: str) -> str:
    spec = comparison.spec(metric)
    return spec.label if spec.label == metric else f"{spec.label} ({metric})"


# ----------------------------------------------------------------------------- loss curves
def curve_columns(comparison: Comparison) -> list[str]:
    """One panel per split: the training loss ``gap`` uses (train_eval_loss where logged, else
    train_loss), the validation and the test loss; the main metric without any of them."""
    logged = {k for row in comparison.rows for r in row.group.completed for k in r.rows[0]}
    train = "train_eval_loss" if "train_eval_loss" in logged else "train_loss"
    return [c for c in (train, "val_loss", "test_loss") if c in logged] or [comparison.main]


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


def band_half_width(std: Any, n: int) -> Any:
    """The band's half width: the 95% CI of the mean (Student t) from MIN_CI_SEEDS seeds on,
    ±1 std with two (a t interval of two values is 25 std wide), none for one."""
    from scipy.stats import t

    if n >= MIN_CI_SEEDS:
        return t.ppf(0.975, n - 1) * std / math.sqrt(n)
    return std if n == 2 else 0 * std


def band_meaning(comparison: Comparison) -> str:
    counts = [len(row.group.completed) for row in comparison.rows if row.group.completed]
    fewest = min(counts, default=1)
    if fewest >= MIN_CI_SEEDS:
        return "band: 95% CI of the mean over seeds"
    if fewest == 2:
        return "band: ±1 std over seeds (2 seeds)"
    return "one seed: no band" if max(counts, default=1) == 1 else "band: 95% CI (±1 std for n=2)"


def has_curves(comparison: Comparison) -> bool:
    return any(row.group.completed for row in comparison.rows)


def loss_curves_figure(comparison: Comparison) -> Figure | None:
    """Each group's mean curve per split, the panels sharing one y axis so the gap shows."""
    from matplotlib.patches import Patch

    from regbench.figures.axes import epoch_axis
    from regbench.figures.plots import log_y_if_spread

    rows = [row for row in ordered_rows(comparison) if row.group.completed]
    if not rows:
        return None
    columns = curve_columns(comparison)
    styles = styles_by_label(comparison)
    fig, axes = new_figure(ncols=len(columns), width=4.4)
    fig.set_size_inches(4.4 * len(columns) + 2.6, 4.4)
    # Many groups' bands stack into one mass: the more groups, the fainter each band.
    alpha = BAND_ALPHA * min(1.0, 3 / len(rows))
    for ax, column in zip(axes[0], columns, strict=True):
        bounds = comparison.spec(column).bounds
        for row in rows:
            _draw_group_curve(ax, row, column, styles[row.group.label], alpha, bounds)
        epoch_axis(ax)
        ax.set_ylabel("loss" if ax is axes[0, 0] else "")
        ax.set_title(f"{SPLIT_NAMES.get(_split(column), column)}: {column}", fontsize=10)
        ax.grid(alpha=0.3)
        if ax is not axes[0, 0]:
            ax.sharey(axes[0, 0])
    if log_y_if_spread(*axes[0]):
        axes[0, 0].set_ylabel("loss (log)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(Patch(color="0.5", alpha=0.35))
    labels.append(band_meaning(comparison))
    legend_beside(axes[0, -1], handles=handles, labels=labels)
    title_figure(fig, "loss per epoch, mean over seeds\n" + comparison_title(comparison))
    return fig


def _draw_group_curve(
    ax: Any,
    row: Row,
    column: str,
    style: dict[str, Any],
    alpha: float,
    bounds: tuple[float | None, float | None],
) -> None:
    """A group's mean curve and its band, the band kept inside the values the metric can
    take (a loss band below zero would show values no run can have)."""
    import numpy as np

    epochs, mean, std = mean_curve(row.group, column)
    if not epochs:
        return
    color, linestyle = style["color"], style["linestyle"]
    ax.plot(
        epochs, mean, color=color, linestyle=linestyle, marker=style["marker"], markersize=3,
        label=label_of(row),
    )  # fmt: skip
    half = band_half_width(np.asarray(std), len(row.group.completed))
    if np.any(half > 0):
        low, high = mean - half, mean + half
        low = low if bounds[0] is None else np.maximum(low, bounds[0])
        high = high if bounds[1] is None else np.minimum(high, bounds[1])
        ax.fill_between(epochs, low, high, color=color, alpha=alpha, lw=0)


def _split(column: str) -> str:
    for split in SPLITS:
        if column.startswith(split + "_"):
            return split
    return ""


# ----------------------------------------------------------------------------- metrics
def has_metrics(comparison: Comparison) -> bool:
    return any(row.cells[comparison.main].stats for row in comparison.rows)


def metrics_figure(comparison: Comparison) -> Figure | None:
    """Each metric's group means and 95% CIs, one panel per metric, groups in value order."""
    if not has_metrics(comparison):
        return None
    rows = ordered_rows(comparison)
    count = len(comparison.metrics)
    fig, axes = new_figure(ncols=count, width=4.2)
    fig.set_size_inches(3.2 + 4.2 * count, 2.4 + 0.38 * len(rows))
    styles = styles_by_label(comparison)
    for i, (ax, metric) in enumerate(zip(axes[0], comparison.metrics, strict=True)):
        _metric_panel(ax, comparison, rows, metric, styles, labels=i == 0)
    legend_beside(axes[0, -1], handles=_metric_legend(comparison))
    title_figure(fig, "mean and 95% CI over seeds\n" + comparison_title(comparison))
    return fig


def _metric_panel(
    ax: Any,
    comparison: Comparison,
    rows: Sequence[Row],
    metric: str,
    styles: dict[str, dict[str, Any]],
    labels: bool,
) -> None:
    from regbench.figures.titles import wrapped

    for y, row in enumerate(rows):
        stats = row.cells[metric].stats
        if stats is None:
            continue
        low, high = stats.ci
        error = None if math.isnan(low) else [[stats.mean - low], [high - stats.mean]]
        color = styles[row.group.label]["color"]
        edge = (
            {"markeredgecolor": "black", "markeredgewidth": 1.5, "markersize": 9}
            if row.is_best
            else {}
        )
        marker = "*" if row.is_best else styles[row.group.label]["marker"]
        ax.errorbar(stats.mean, y, xerr=error, fmt=marker, color=color, capsize=4, **edge)
    base = comparison.baseline
    if base is not None and base.cells[metric].stats is not None:
        ax.axvline(base.cells[metric].stats.mean, color="tab:gray", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), [label_of(row) for row in rows] if labels else [])
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first value on top
    title = f"{metric_label(comparison, metric)}{_better_text(comparison, metric)}"
    ax.set_title(wrapped(title, 4.0, 9), fontsize=9)
    ax.set_xlabel(f"{metric} ({comparison.at})")
    ax.grid(alpha=0.3, axis="x")


def _better_text(comparison: Comparison, metric: str) -> str:
    """ " (lower is better)", or nothing for a metric without a direction."""
    direction = comparison.spec(metric).direction
    return {"min": ", lower is better", "max": ", higher is better"}.get(direction, "")


def _metric_legend(comparison: Comparison) -> list[Any]:
    """What the marks mean: "best" only when a group is shown best, the baseline when there is
    one."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.3", marker="o", linestyle="-", label="group mean, 95% CI")]
    if any(row.is_best for row in comparison.rows):
        best = Line2D([], [], color="0.3", marker="*", markersize=9, markeredgecolor="black",
                      linestyle="", label="best (shown after Holm)")  # fmt: skip
        handles.append(best)
    if comparison.baseline is not None:
        handles.append(Line2D([], [], color="tab:gray", linestyle="--", label="baseline mean"))
    return handles


# ----------------------------------------------------------------------------- effect
def effect_key(comparison: Comparison) -> str | None:
    """The numeric key the effect figure puts on its x axis: a varying key whose values are all
    numbers and that has at least three of them (or two, when it is the only varying key);
    the one with the most values."""
    candidates = []
    for key in comparison.varying:
        values = value_order([row.group.config.get(key) for row in comparison.rows])
        enough = len(values) >= 3 or (len(values) == 2 and len(comparison.varying) == 1)
        if is_numeric(values) and enough:
            candidates.append((len(values), key))
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def has_effect(comparison: Comparison) -> bool:
    return effect_key(comparison) is not None and has_metrics(comparison)


def family(comparison: Comparison, metric: str) -> list[str]:
    """``metric`` and its counterparts on the other splits that the runs logged, in split order
    (test_loss -> train_eval_loss (else train_loss), val_loss, test_loss); a metric of no split
    alone."""
    split = _split(metric)
    if not split:
        return [metric]
    base = metric.removeprefix(split + "_")
    logged = {k for row in comparison.rows for r in row.group.completed for k in r.rows[-1]}
    train = f"train_eval_{base}" if f"train_eval_{base}" in logged else f"train_{base}"
    return [m for m in (train, f"val_{base}", f"test_{base}") if m in logged] or [metric]


def effect_panels(comparison: Comparison) -> list[list[str]]:
    """One panel per compared metric's family, each family once."""
    panels: list[list[str]] = []
    for metric in comparison.metrics:
        members = family(comparison, metric)
        if members not in panels:
            panels.append(members)
    return panels


def group_stats(comparison: Comparison, row: Row, metric: str) -> Any:
    """``metric``'s statistics over the group's completed runs, at the comparison's ``at``
    (the compared metrics' cells as they are; a family member read the same way)."""
    cell = row.cells.get(metric)
    if cell is not None:
        return cell.stats
    values = []
    for run in row.group.completed:
        when = (
            f"epoch={run.restored_epoch}"
            if comparison.at == "final" and run.restored_epoch is not None
            else comparison.at
        )
        found = row_at(run.rows, when, comparison.select)
        value = found.get(metric) if found is not None else None
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            values.append(float(value))
    return describe(values, bounds=comparison.spec(metric).bounds) if values else None


def effect_figure(comparison: Comparison) -> Figure | None:
    """Each compared metric (with its train, validation and test counterparts) against the
    numeric key that varies: the mean and 95% CI over seeds at each of its values, one line per
    split and value of the other varying keys (Srivastava et al. 2014, figure 9)."""
    key = effect_key(comparison)
    if key is None or not has_metrics(comparison):
        return None
    panels = effect_panels(comparison)
    others = [k for k in style_keys(comparison) if k != key]
    fig, axes = new_figure(ncols=len(panels), width=4.6)
    fig.set_size_inches(4.6 * len(panels) + 2.8, 4.4)
    for ax, members in zip(axes[0], panels, strict=True):
        _effect_panel(ax, comparison, key, members, others)
    handles, labels = _unique_handles(axes[0])
    legend_beside(axes[0, -1], handles=handles, labels=labels)
    title_figure(
        fig, f"effect of {key}: mean and 95% CI over seeds\n{comparison_title(comparison)}"
    )
    return fig


def _effect_panel(
    ax: Any, comparison: Comparison, key: str, members: list[str], others: list[str]
) -> None:
    from regbench.figures.axes import LINESTYLES

    values = value_order([row.group.config.get(key) for row in comparison.rows])
    log = _log_worthy(values)
    position = _positions(values, log)
    lines = _lines(comparison, others)
    for metric in members:
        color = SPLIT_COLORS.get(_split(metric), "tab:purple")
        for n, (rest, rows) in enumerate(lines.items()):
            points = []
            for row in rows:
                stats = group_stats(comparison, row, metric)
                if stats is not None:
                    points.append((position[row.group.config.get(key)], stats))
            if not points:
                continue
            points.sort(key=lambda p: p[0])
            xs = [x for x, _ in points]
            means = [st.mean for _, st in points]
            low = [st.mean - st.ci[0] if not math.isnan(st.ci[0]) else 0.0 for _, st in points]
            high = [st.ci[1] - st.mean if not math.isnan(st.ci[1]) else 0.0 for _, st in points]
            name = SPLIT_NAMES.get(_split(metric), metric) if len(members) > 1 else metric
            label = f"{name}, {rest}" if rest else name
            style = LINESTYLES[n % len(LINESTYLES)]
            # Zero set apart on a log axis: its point stands alone (no line across the break)
            # and its mean runs across the panel as a reference the other values are read by.
            apart = 1 if log and 0 in values and len(xs) > 1 else 0
            if apart:
                ax.errorbar(
                    xs[:1], means[:1], yerr=[low[:1], high[:1]], color=color, marker="o",
                    markersize=4, capsize=3, linestyle="none",
                )  # fmt: skip
                ax.axhline(means[0], color=color, linestyle=style, linewidth=0.8, alpha=0.45)
            ax.errorbar(
                xs[apart:], means[apart:], yerr=[low[apart:], high[apart:]], color=color,
                linestyle=style, marker="o", markersize=4, capsize=3, label=label,
            )  # fmt: skip
    _key_axis(ax, key, values, position, log)
    spec = comparison.spec(members[-1])
    ax.set_ylabel(spec.label.removeprefix("test ") if len(members) > 1 else spec.label)
    ax.set_title(_panel_title(comparison, members), fontsize=9)
    ax.grid(alpha=0.3)


def _panel_title(comparison: Comparison, members: list[str]) -> str:
    from regbench.figures.titles import wrapped

    text = " / ".join(members) + _better_text(comparison, members[-1])
    return wrapped(text, 4.2, 9)


def _lines(comparison: Comparison, others: list[str]) -> dict[str, list[Row]]:
    """Rows by their values of the other varying keys (one line each), in value order."""
    lines: dict[str, list[Row]] = {}
    for row in ordered_rows(comparison):
        rest = " ".join(f"{k}={show(row.group.config.get(k))}" for k in others)
        lines.setdefault(rest, []).append(row)
    return lines


def _log_worthy(values: Sequence[float]) -> bool:
    """A log axis when the nonzero values span DECADES_FOR_LOG decades or more."""
    positive = [v for v in values if v > 0]
    return len(positive) >= 2 and math.log10(max(positive) / min(positive)) >= DECADES_FOR_LOG


def _positions(values: Sequence[float], log: bool) -> dict[float, float]:
    """Where each value sits on the x axis: itself; on a log axis, zero sits one step (the
    values' typical ratio) left of the smallest nonzero value, and is marked apart."""
    if not log or min(values) > 0:
        return {v: float(v) for v in values}
    positive = sorted(v for v in values if v > 0)
    ratio = (positive[-1] / positive[0]) ** (1 / max(1, len(positive) - 1))
    return {v: float(v) if v > 0 else positive[0] / max(ratio, 10.0) for v in values}


def _key_axis(
    ax: Any, key: str, values: Sequence[float], position: dict[float, float], log: bool
) -> None:
    if log:
        log_axis(ax, "x")
        if min(values) == 0:  # zero has no place on a log axis: its own tick, past a break
            zero = position[0] if 0 in position else position[0.0]
            ax.axvline(zero * 1.9, color="0.6", linestyle=(0, (2, 3)), linewidth=0.8)
            ticks = [t for t in ax.get_xticks() if t > zero * 1.9]
            ax.set_xticks([zero, *ticks], ["0", *[f"{t:.3g}" for t in ticks]])
            ax.set_xlim(zero / 1.6, max(position.values()) * 1.6)
    ax.set_xlabel(key + (" (log scale; 0 set apart)" if log and min(values) == 0 else ""))


def _unique_handles(axes: Sequence[Any]) -> tuple[list[Any], list[str]]:
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    return list(entries.values()), list(entries)


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
            notes[i][j] = cell_text(stats)
    fig, axes = new_figure(width=1.7 * len(x_values) + 3.4)
    fig.set_size_inches(1.7 * len(x_values) + 3.4, 1.1 * len(y_values) + 2.4)
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
    main = comparison.main
    label = f"mean {metric_label(comparison, main)}{_better_text(comparison, main)}"
    fig.colorbar(image, ax=ax, label=label)
    title = f"{comparison.main} ({comparison.at}): mean ± half the 95% CI, over seeds"
    title_figure(fig, f"{title}\n{comparison_title(comparison)}")
    return fig


def _sorted_values(comparison: Comparison, key: str) -> list[Any]:
    values = list(dict.fromkeys(row.group.config.get(key) for row in comparison.rows))
    try:
        return sorted(values)
    except TypeError:  # mixed types (e.g. None and numbers): keep the table's order
        return values


def cell_text(stats: Any) -> str:
    """A cell's mean with the digits its interval justifies: both rounded at the interval's
    half width's first significant digit (two when that digit is 1)."""
    if math.isnan(stats.ci[0]):
        return f"{stats.mean:.3g}\nn={stats.n}"
    half = (stats.ci[1] - stats.ci[0]) / 2
    if half <= 0:
        return f"{stats.mean:.4g}\n±0\nn={stats.n}"
    lead = math.floor(math.log10(half))
    digits = lead - (1 if f"{half:.1e}".startswith("1") else 0)
    decimals = max(0, -digits)
    mean, width = round(stats.mean, -digits), round(half, -digits)
    return f"{mean:.{decimals}f}\n±{width:.{decimals}f}\nn={stats.n}"


# Each comparison figure: when it applies, and how it is drawn.
FIGURES = {
    LOSS_FILE: has_curves,
    METRICS_FILE: has_metrics,
    EFFECT_FILE: has_effect,
    HEATMAP_FILE: has_grid,
}
FIGURE_FUNCTIONS = {
    LOSS_FILE: loss_curves_figure,
    METRICS_FILE: metrics_figure,
    EFFECT_FILE: effect_figure,
    HEATMAP_FILE: heatmap_figure,
}
