"""Figures a paper can use (issue 25), checked on matplotlib's objects, not on pixels: integer
epoch ticks, a title on every figure, one colour per group in every figure of a sweep, the
effect figure's x values, readable log axes, layers by shape, and vector formats."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from regbench.analysis import compare_plots
from regbench.analysis.comparison import Comparison, compare
from regbench.cli import app
from regbench.figures import plots
from regbench.figures.axes import log_axis
from regbench.figures.titles import layer_labels
from tests.conftest import run_dirs

SWEEP = (
    "sweep", "model=regression", "epochs=4", "eval_every=1", "model.hidden=[8]",
    "weight_decay=0,0.0001,0.001,0.01", "dropout=0,0.5", "seed=1,2",
)  # fmt: skip


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small regression sweep (4 weight decays x 2 dropouts x 2 seeds), shared."""
    folder = tmp_path_factory.mktemp("figures") / "sweep"
    os.environ.setdefault("REGBENCH_FIGURE_WORKERS", "0")
    result = CliRunner().invoke(app, [*SWEEP, "--dir", str(folder), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def comparison(sweep: Path) -> Comparison:
    return compare([sweep])


def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the run figures' save_fixed is handed, in order."""
    figures: list[Any] = []
    real = plots.save_fixed
    monkeypatch.setattr(
        plots, "save_fixed", lambda fig, path: (figures.append(fig), real(fig, path))
    )
    return figures


def fits(fig: Any, text: Any) -> bool:
    """``text`` lies inside the figure, as drawn (its extent, not its pixels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    box = text.get_window_extent(canvas.get_renderer())
    return box.x0 >= 0 and box.x1 <= fig.bbox.width


def epoch_rows(epochs: int) -> list[dict[str, float]]:
    return [
        {"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "test_loss": 1.2 / e,
         "train_eval_acc": 0.5 + e / 100, "val_acc": 0.5, "test_acc": 0.49}
        for e in range(1, epochs + 1)
    ]  # fmt: skip


def tick_values(ax: Any) -> list[float]:
    low, high = ax.get_xlim()
    return [t for t in ax.get_xticks() if low <= t <= high]


# ----------------------------------------------------------------------------- axes and titles
@pytest.mark.parametrize("epochs", [2, 3, 5])
def test_epoch_ticks_are_whole_numbers_and_accuracy_has_its_panel(monkeypatch, tmp_path, epochs):
    figures = captured(monkeypatch)
    plots.loss_curve(epoch_rows(epochs), ("train_loss", "test_loss"), "t", tmp_path / "c.png")
    (fig,) = figures
    loss, accuracy = fig.axes
    for ax in (loss, accuracy):
        assert ax.get_xlabel() == "epoch"
        assert all(float(t).is_integer() for t in tick_values(ax)), tick_values(ax)
    assert accuracy.get_ylabel() == "accuracy"
    names = [text.get_text() for text in fig.legends[0].get_texts()]
    assert "validation" in names and "test" in names


def test_a_run_s_curves_start_at_epoch_0(monkeypatch, tmp_path) -> None:
    """With eval_at_start the first row is the untrained model: every held-out curve starts at
    epoch 0; the training-mode loss (NaN there: no step taken) starts at 1, on the same axis."""
    from regbench.studies.gan import gan_scores

    figures = captured(monkeypatch)
    untrained = {"epoch": 0, "train_loss": math.nan, "val_loss": 2.3, "test_loss": 2.3,
                 "train_eval_acc": 0.1, "val_acc": 0.1, "test_acc": 0.1}  # fmt: skip
    rows = [untrained, *epoch_rows(3)]
    plots.loss_curve(rows, ("train_loss", "test_loss"), "t", tmp_path / "c.png")
    gan = [{**r, "d_real": 0.6, "d_fake": 0.4, "fid": 300.0 - r["epoch"]} for r in rows]
    gan[0].update(d_real=math.nan, d_fake=math.nan)  # means over D's steps: none at epoch 0
    gan_scores(gan, "t", tmp_path / "g.png")
    curve, scores = figures
    for ax in curve.axes:
        starts = {line.get_label(): line.get_xdata()[0] for line in ax.get_lines()}
        assert all(start == 0 for start in starts.values()), starts  # NaN points stay in
        assert ax.get_xlim()[0] < 0 and 0 in tick_values(ax)
        assert all(float(t).is_integer() for t in tick_values(ax)), tick_values(ax)
    train = next(line for line in curve.axes[0].get_lines() if "running" in line.get_label())
    assert math.isnan(train.get_ydata()[0]) and not math.isnan(train.get_ydata()[1])
    outputs, fid = scores.axes[:2]
    assert outputs.get_xlim() == fid.get_xlim() and fid.get_lines()[0].get_xdata()[0] == 0


def test_every_run_figure_has_one_title(monkeypatch, tmp_path) -> None:
    from regbench.studies.gan import gan_scores, image_grid

    figures = captured(monkeypatch)
    rows = [{**r, "d_real": 0.6, "d_fake": 0.4, "fid": 30.0 / r["epoch"]} for r in epoch_rows(3)]
    long = "a very long title " * 12
    plots.loss_curve(rows, ("train_loss", "test_loss"), long, tmp_path / "a.png")
    plots.weight_histograms({"hidden 1 (1→8)": np.linspace(-1, 1, 50)}, long, tmp_path / "b.png")
    weights = [{"epoch": e, "network": "model", "layer": "layers.0.weight", "size": 8,
                "l1": e, "l2": e, "near_zero": 0.1, "max_abs": 1.0} for e in (1, 2, 3)]  # fmt: skip
    plots.weight_norms(weights, long, tmp_path / "c.png", threshold=0.001)
    gan_scores(rows, long, tmp_path / "d.png")
    image_grid(np.zeros((4, 28, 28)), long, tmp_path / "e.png")
    assert len(figures) == 5
    for fig in figures:
        assert fig.get_suptitle()
        assert fits(fig, fig._suptitle), fig.get_suptitle()  # the Text the suptitle is
        assert all(not ax.get_title().startswith("a very") for ax in fig.axes)  # one title
    assert "|w| < 0.001" in figures[2].axes[2].get_ylabel()


def test_a_log_axis_over_one_decade_is_labelled_more_than_twice() -> None:
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    ax.plot([1, 2, 3], [0.5, 1.5, 4.0])
    log_axis(ax)
    low, high = ax.get_ylim()
    shown = [t for t in ax.get_yticks() if low <= t <= high]
    assert len(shown) >= 3, shown
    ax.figure.canvas.draw() if ax.figure.canvas else None
    labels = [ax.yaxis.get_major_formatter()(t) for t in shown]
    assert "1" in labels and "2" in labels


def test_layers_are_named_by_position_and_shape() -> None:
    shapes = {"layers.0.weight": (512, 784), "layers.3.weight": (256, 512),
              "layers.6.weight": (10, 256)}  # fmt: skip
    assert list(layer_labels(shapes).values()) == [
        "hidden 1 (784→512)", "hidden 2 (512→256)", "output (256→10)"
    ]  # fmt: skip
    gan = {"discriminator/layers.0.weight": (64, 784), "discriminator/layers.3.weight": (1, 64)}
    assert layer_labels(gan)["discriminator/layers.3.weight"] == "discriminator output (64→1)"
    rnn = {"layers.0.weight_ih_l0": (16, 1), "layers.0.weight_hh_l0": (16, 16),
           "head.weight": (1, 16)}  # fmt: skip
    assert list(layer_labels(rnn).values()) == [
        "RNN 1 input (1→16)", "RNN 1 recurrent (16→16)", "output (16→1)"
    ]  # fmt: skip


def test_a_cell_prints_the_digits_its_interval_justifies() -> None:
    from regbench.analysis.stats import Stats

    text = compare_plots.cell_text(Stats(5, 1234.5678, 0.4, (1234.2678, 1234.8678)))
    assert text.split("\n")[:2] == ["1234.6", "±0.3"]
    # A leading 1 keeps a second digit (0.10, not 0.1: rounding 0.14 to 0.1 loses a third).
    text = compare_plots.cell_text(Stats(5, 1234.5678, 0.2, (1234.4678, 1234.6678)))
    assert text.split("\n")[:2] == ["1234.57", "±0.10"]
    text = compare_plots.cell_text(Stats(5, 0.116321, 0.03, (0.0863, 0.1463)))
    assert text.split("\n")[:2] == ["0.12", "±0.03"]


# ----------------------------------------------------------------------------- comparisons
def test_every_comparison_figure_is_titled_with_model_data_and_epochs(comparison) -> None:
    drawn = compare_plots.figures(comparison)
    assert set(drawn) >= {compare_plots.LOSS_FILE, compare_plots.METRICS_FILE,
                          compare_plots.EFFECT_FILE, compare_plots.HEATMAP_FILE}  # fmt: skip
    for name, fig in drawn.items():
        title = fig.get_suptitle()
        assert "regression" in title and "toy_regression" in title and "4 epochs" in title, name


def test_a_group_has_one_colour_in_every_figure(comparison) -> None:
    from matplotlib.colors import to_hex

    drawn = compare_plots.figures(comparison)
    curves = {}
    for line in drawn[compare_plots.LOSS_FILE].axes[0].get_lines():
        curves[line.get_label().rsplit(" (n=", 1)[0]] = to_hex(line.get_color())
    metrics_ax = drawn[compare_plots.METRICS_FILE].axes[0]
    labels = [t.get_text().rsplit(" (n=", 1)[0] for t in metrics_ax.get_yticklabels()]
    marks = {}
    for container in metrics_ax.containers:
        y = container.lines[0].get_ydata()[0]
        marks[labels[round(y)]] = to_hex(container.lines[0].get_color())
    assert curves and curves == marks
    # Value order, not rank: the table's first row is not necessarily the figure's first.
    assert labels[0].startswith("dropout=0 weight_decay=0") or labels[0].startswith(
        "weight_decay=0 dropout=0"
    )
    # The colour follows weight_decay's value (the numeric key with the most values).
    by_decay: dict[str, set[str]] = {}
    for label, color in curves.items():
        decay = next(p for p in label.split() if p.startswith("weight_decay="))
        by_decay.setdefault(decay, set()).add(color)
    assert all(len(colors) == 1 for colors in by_decay.values()) and len(by_decay) == 4


def test_the_effect_figure_puts_the_keys_values_on_x(comparison) -> None:
    fig = compare_plots.effect_figure(comparison)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "weight_decay" in ax.get_xlabel()
    points = [line for line in ax.get_lines() if line.get_marker() == "o"]
    xs = {round(x, 12) for line in points for x in line.get_xdata()}
    # zero's mean runs across the panel (axes coordinates 0 to 1), unmarked: the reference
    references = [line for line in ax.get_lines() if list(line.get_xdata()) == [0, 1]]
    assert references and all(line.get_marker() in ("None", "", None) for line in references)
    nonzero = sorted(x for x in xs if x >= 1e-4)
    assert nonzero == [0.0001, 0.001, 0.01]
    zero = min(xs)  # zero has its own place, left of the smallest value, labelled 0
    assert zero < 1e-4 and "0" in [t.get_text() for t in ax.get_xticklabels()]
    labels = [text.get_text() for text in fig.axes[-1].get_legend().get_texts()]
    assert any(label.startswith("train (eval mode)") for label in labels)
    assert any(label.startswith("test") for label in labels)
    assert any("dropout=0.5" in label for label in labels)  # one line per other value


def test_the_metrics_figure_claims_no_best_when_none_is_shown(comparison) -> None:
    fig = compare_plots.metrics_figure(comparison)
    labels = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert any(row.is_best for row in comparison.rows) == any("best" in t for t in labels)


def test_every_group_curve_starts_at_the_untrained_model(comparison) -> None:
    fig = compare_plots.loss_curves_figure(comparison)
    lines = [line for ax in fig.axes for line in ax.get_lines() if len(line.get_xdata()) > 1]
    assert lines and all(list(line.get_xdata()) == [0, 1, 2, 3, 4] for line in lines)


def test_the_comparison_band_says_what_it_is(comparison) -> None:
    fig = compare_plots.loss_curves_figure(comparison)
    labels = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert "band: ±1 std over seeds (2 seeds)" in labels


# ----------------------------------------------------------------------------- formats
def test_plot_format_pdf_and_svg_writes_vector_files(cli, tmp_path) -> None:
    result = cli("run", "model=regression", "epochs=2", "model.hidden=[8]",
                 "plot_format=[pdf,svg]", "plot_dpi=72", "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert not list(run.glob("*.png"))
    for name in ("loss_curve", "fit", "weight_hist", "weight_norms"):
        assert (run / f"{name}.pdf").read_bytes().startswith(b"%PDF"), name
        assert b"<svg" in (run / f"{name}.svg").read_bytes()[:2000], name


def test_plot_redraws_every_figure_in_the_formats_asked(cli, sweep, tmp_path) -> None:
    run = run_dirs(sweep)[0]
    result = cli("plot", str(run), "--format", "svg", "--dpi", "50")
    assert result.exit_code == 0, result.stderr
    assert {p.stem for p in run.glob("*.svg")} == {
        "loss_curve", "fit", "weight_hist", "weight_norms"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("plot_format=bmp", "png, pdf, svg"),
        ("plot_dpi=0", "plot_dpi"),
        ("plot_style=nope", "style"),
    ],
)
def test_a_bad_figure_setting_is_one_line_and_no_folder(cli, tmp_path, override, says) -> None:
    result = cli("run", "model=regression", "epochs=1", override, "-q")
    assert result.exit_code == 2 and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()


def test_plot_refuses_a_bad_option_in_one_line(cli, sweep) -> None:
    for args in (("--format", "bmp"), ("--dpi", "0"), ("--style", "no-such-style")):
        result = cli("plot", str(sweep), *args)
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, args


def test_a_style_applies_to_the_figures(monkeypatch, tmp_path) -> None:
    from regbench.figures.drawing import Drawing
    from regbench.figures.output import Output

    figures = captured(monkeypatch)
    drawing = Drawing(plots.loss_curve, (epoch_rows(2), ("train_loss",), "t", tmp_path / "s.png"))
    drawing.written_as(Output(("png",), 40, "dark_background"))()
    facecolor = figures[0].axes[0].get_facecolor()
    assert math.isclose(sum(facecolor[:3]), 0.0, abs_tol=1e-6)  # the style's black axes


@pytest.mark.parametrize(
    ("values", "log"),
    [([2.3, 0.2, 0.01], True), ([0.3, 0.2, 0.1], False), ([2.3, 0.0, 0.01], False)],
)
def test_a_loss_spanning_a_decade_gets_a_log_axis(values: list[float], log: bool) -> None:
    """Epoch 0's untrained loss beside trained ones spans decades: a linear axis would flatten
    every trained epoch; values at or below zero cannot go on a log axis."""
    from matplotlib.figure import Figure

    from regbench.figures.plots import log_y_if_spread

    fig = Figure()
    ax, other = fig.subplots(1, 2, sharey=True)
    ax.plot(range(len(values)), values)
    assert log_y_if_spread(ax, other) is log
    assert {ax.get_yscale(), other.get_yscale()} == {"log" if log else "linear"}
