"""`regbench compare`, `plot` and `report`: read run folders, print and write what they show."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from regbench import workflow
from regbench.cli.console import note, stdout

if TYPE_CHECKING:
    from regbench.analysis.comparison import Comparison

SELECT_HELP = (
    "with --at best: the metric that selects each run's epoch (default: the first --metric "
    "with a direction)"
)
SELECT_OPTION = typer.Option(None, "--select", help=SELECT_HELP, show_default=False)


def compare(
    paths: list[Path] = typer.Argument(..., help="Run and sweep folders, in any mix."),
    metric: list[str] = typer.Option(
        None,
        "--metric",
        "-m",
        help="Metric column to compare (repeatable; default test_loss and test_acc); the first "
        "ranks the groups.",
        show_default=False,
    ),
    at: str = typer.Option(
        None,
        "--at",
        help="Summarise each run at: final, best or epoch=N (default: the experiment's, else "
        "final).",
        show_default=False,
    ),
    select: str = SELECT_OPTION,
    over: list[str] = typer.Option(
        None,
        "--over",
        help="Also pool runs that differ in this key (repeatable).",
        show_default=False,
    ),
    baseline: str = typer.Option(
        None,
        "--baseline",
        help="The baseline group, e.g. 'dropout=0 weight_decay=0' (default: the one group "
        "without regularization).",
        show_default=False,
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Folder for comparison.md/.csv and plots (default: the one folder given, else .).",
        show_default=False,
    ),
    tex: bool = typer.Option(False, "--tex", help="Also write comparison.tex."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the comparison figures."),
    ci: str = typer.Option(
        "t", "--ci", help="Confidence intervals: t (Student t) or bootstrap (BCa, scipy)."
    ),
    margin: float = typer.Option(
        None,
        "--margin",
        help="Equivalence margin of the first metric: TOST against the baseline (default: "
        "the experiment's, if the runs were swept for one).",
        show_default=False,
    ),
    all_columns: bool = typer.Option(
        False,
        "--all-columns",
        help="Every column in the console table (by default fewer, to fit 120 columns; "
        "comparison.md and .csv have them all).",
    ),
) -> None:
    """Group runs over seeds; mean, std, 95% CI, difference from a baseline, effect sizes,
    Holm-adjusted p-values and a verdict per group."""
    options = {"at": at, "select": select, "over": over or [], "baseline": baseline, "ci": ci}
    options |= {"margin": margin, "tex": tex, "plots": plots}
    # The options that differ from the defaults, as words (they name where the tables go).
    given = {"metric": "+".join(metric or []), "at": at or "", "select": select or ""}
    given |= {"over": "+".join(over or []), "baseline": baseline or ""}
    given |= {"ci": "" if ci == "t" else ci, "margin": "" if margin is None else str(margin)}
    chosen = [f"{key}={value}" for key, value in given.items() if value]
    target = out or _default_out(paths, chosen)
    printer = ComparisonPrinter(all_columns)
    workflow.compare_and_write(paths, target, metrics=metric or [], listener=printer, **options)


def _default_out(paths: list[Path], given: list[str]) -> Path:
    """The one folder given, else the working folder. A sweep's own comparison.md/.csv belong to
    the sweep: a comparison with other options goes to ``comparisons/<options>/`` inside it
    instead of replacing them (``--out <sweep>`` replaces them on purpose)."""
    from regbench.core.jobs import SWEEP_FILE

    if len(paths) != 1 or not paths[0].is_dir():
        return Path(".")
    if given and (paths[0] / SWEEP_FILE).is_file():
        return paths[0] / "comparisons" / re.sub(r"[^\w=.,+-]+", "_", ",".join(given))
    return paths[0]


class ComparisonPrinter(workflow.Listener):
    """Prints a comparison as it is made and the files written for it (`compare`, `sweep`);
    ``all_columns``: the console table with every column, not the ones that fit 120."""

    def __init__(self, all_columns: bool = False) -> None:
        self.all_columns = all_columns

    def option_name(self, name: str) -> str:
        return "--" + name.replace("_", "-")

    def compared(self, comparison: Comparison) -> None:
        """The experiment's question, the table, a verdict per group and metric, the notes."""
        from regbench.analysis.tables import claim_lines, expectation_lines, rich_table, verdicts

        for line in claim_lines(comparison):
            stdout.print(line, markup=False, highlight=False, soft_wrap=True)
        stdout.print(rich_table(comparison, full=self.all_columns))
        for verdict in verdicts(comparison):
            stdout.print(f"verdict: {verdict}", markup=False, highlight=False, soft_wrap=True)
        for line in expectation_lines(comparison):
            stdout.print(f"expected, {line}", markup=False, highlight=False, soft_wrap=True)
        for line in comparison.notes:
            note(line)

    def written(self, compared: workflow.Compared) -> None:
        names = ", ".join(p.name for p in compared.written)
        line = f"comparison written to {compared.out}: {names}"
        stdout.print(line, highlight=False, soft_wrap=True)
        if compared.report is not None:  # an experiment's sweep ends in its report
            stdout.print(f"report written to {compared.report}", highlight=False)


PRINTER = ComparisonPrinter()


def plot(
    paths: list[Path] = typer.Argument(..., help="Run or sweep folders."),
    fmt: list[str] = typer.Option(
        None,
        "--format",
        "-f",
        help="png, pdf or svg (repeatable; default: each run's plot_format).",
        show_default=False,
    ),
    dpi: int = typer.Option(
        None, "--dpi", help="Resolution (default: each run's plot_dpi).", show_default=False
    ),
    style: str = typer.Option(
        None,
        "--style",
        help="A matplotlib style name or a .mplstyle file (default: each run's plot_style).",
        show_default=False,
    ),
) -> None:
    """Redraw every figure of runs or sweeps from their saved files (no training): a run's loss
    curve, its study's figures and its weight figures; a sweep's comparison figures."""
    from regbench.analysis.compare_plots import redraw

    changes = plot_changes(fmt, dpi, style)
    for path in paths:
        written = redraw(path, changes)
        stdout.print(f"{path}: redrew {len(written)} figure file(s)", highlight=False)


def plot_changes(fmt: list[str] | None, dpi: int | None, style: str | None) -> dict[str, Any]:
    """The options given, as changes to each run's own output (output.py's Output fields); a
    bad one is one line."""
    from regbench.core.config import style_problem
    from regbench.core.errors import UsageError
    from regbench.figures.output import FORMATS

    for choice in fmt or []:
        if choice not in FORMATS:
            raise UsageError(f"--format {choice}: use {', '.join(FORMATS)}")
    if dpi is not None and not 1 <= dpi <= MAX_DPI:
        raise UsageError(f"--dpi {dpi}: give a resolution from 1 to {MAX_DPI} dots per inch")
    problem = style_problem(style) if style is not None else None
    if problem:
        raise UsageError(f"--style {style}: {problem}")
    changes = {"formats": tuple(dict.fromkeys(fmt))} if fmt else {}
    return changes | ({"dpi": dpi} if dpi is not None else {}) | ({"style": style} if style else {})


MAX_DPI = 2400  # plot_dpi's bound


def report(
    path: Path = typer.Argument(..., help="A run or sweep folder (any folder of runs)."),
) -> None:
    """Write one self-contained report.html (table, plots, configs) into PATH."""
    from regbench.analysis.report import write_report

    stdout.print(f"report written to {write_report(path)}", highlight=False, soft_wrap=True)


# This module's commands, in `regbench --help`'s order (main.py registers them).
COMMANDS = ((compare, {}), (plot, {}), (report, {}))
