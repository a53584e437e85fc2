"""The command line: a thin Typer layer over hydra_app, runner and rundir.

Heavy libraries (torch, matplotlib, hydra) are imported inside the commands, so ``--help`` stays
fast. User errors (RegbenchError) become one line on stderr and a non-zero exit; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import gc
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from regbench.cli.hydra_flags import (
    CFG_OPTION,
    CONFIG_DIR_OPTION,
    CONFIG_NAME_OPTION,
    INFO_OPTION,
    OVERRIDES_ARGUMENT,
    PACKAGE_OPTION,
    RESOLVE_OPTION,
    HydraFlagsCommand,
    check_hydra_flags,
    complete_overrides,
    config_search,
    hydra_text,
)
from regbench.core.errors import RegbenchError, UsageError
from regbench.core.progress import PipeSafeConsole

app = typer.Typer(
    name="regbench",
    help="Train and compare the classic regularization studies (dropout, L1, L2, weight decay).",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; overrides complete as Hydra's
    pretty_exceptions_enable=False,
)
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}
INTERRUPTED_EXIT = 130

# Outside a terminal rich assumes 80 columns; logs and pipes get wide lines instead of wrapping.
PIPE_WIDTH = 200
# A closed pipe drops output rather than stopping the command (progress.PipeSafeConsole).
stdout = PipeSafeConsole()
stderr = PipeSafeConsole(stderr=True)
for _console in (stdout, stderr):
    if not _console.is_terminal:
        _console.width = PIPE_WIDTH


class State:
    debug = False


def _show_version(wanted: bool) -> None:
    if wanted:
        from regbench.core.version import regbench_version

        stdout.print(f"regbench {regbench_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Show regbench's version and exit.",
    ),
) -> None:
    State.debug = debug


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn RegbenchError into one line + its exit code; Ctrl-C into exit 130; a Notice
    (something skipped, e.g. an unreadable model.pt) into one ``note:`` line."""
    try:
        with _notices_as_lines():
            yield
    except RegbenchError as exc:
        if State.debug:
            raise
        stderr.print(
            f"error: {exc}", style="bold red", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        stderr.print("interrupted", style="bold red")
        raise typer.Exit(INTERRUPTED_EXIT) from None
    except typer.Exit:  # a command's own exit code (e.g. rerun --check): not an error to report
        raise
    except Exception as exc:  # a bug or an unforeseen failure: still one line, unless --debug
        if State.debug:
            raise
        stderr.print(
            f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            style="bold red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


@contextmanager
def _notices_as_lines() -> Iterator[None]:
    import warnings

    from regbench.core.errors import Notice

    shown = warnings.showwarning

    def show(message, category, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if issubclass(category, Notice):
            stderr.print(
                f"note: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True
            )
        else:
            shown(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", Notice)  # each skipped file is its own line
        warnings.showwarning = show
        yield


def _reporter(quiet: bool):
    from regbench.core.progress import Reporter, RichReporter

    return (Reporter if quiet else RichReporter)(stderr)


def _show_result(result, quiet: bool) -> None:
    from regbench.core.progress import metrics_table

    if not quiet and result.rows:
        stdout.print(metrics_table(result.rows, f"{result.summary.name} metrics"))
    stdout.print(f"run {result.summary.status}: outputs in {result.run_dir}", highlight=False)


def _show_hydra(overrides: list[str], *flags, multirun: bool) -> bool:
    """Print what --cfg or --info asks for (True), or nothing (False, when neither is given)."""
    text = hydra_text(overrides, *flags, multirun=multirun)
    if text is not None:
        stdout.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    return text is not None


def _as_sweep(ctx: typer.Context, args: list[str]) -> None:
    """``regbench run -m ARGS`` is ``regbench sweep ARGS``, every sweep option included."""
    command = ctx.parent.command.get_command(ctx.parent, "sweep")  # type: ignore[union-attr]
    with command.make_context("sweep", args, parent=ctx.parent) as sweep_ctx:
        command.invoke(sweep_ctx)


def _flags_back(**flags: object) -> list[str]:
    """Parsed options back as command-line words (for passing them on to `sweep`)."""
    words: list[str] = []
    for name, value in flags.items():
        if value is True:
            words.append(f"--{name.replace('_', '-')}")
        elif value not in (None, False):
            words += [f"--{name.replace('_', '-')}", str(value)]
    return words


@app.command(context_settings=EXTRA_ARGS, cls=HydraFlagsCommand)
def run(
    ctx: typer.Context,
    overrides: list[str] = OVERRIDES_ARGUMENT,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables."),
    multirun: bool = typer.Option(
        False,
        "--multirun",
        "-m",
        help="Run OVERRIDES as a sweep: the same as `regbench sweep` (its options apply).",
    ),
    cfg: str = CFG_OPTION,
    resolve: bool = RESOLVE_OPTION,
    package: str = PACKAGE_OPTION,
    info: str = INFO_OPTION,
    config_dir: Path = CONFIG_DIR_OPTION,
    config_name: str = CONFIG_NAME_OPTION,
) -> None:
    """Train one model and write its run folder (metrics, summary, plots, weights)."""
    with user_errors():
        overrides = overrides or []
        if multirun:
            flags = {"cfg": cfg, "resolve": resolve, "package": package, "info": info}
            where = {"config_dir": config_dir, "config_name": config_name, "quiet": quiet}
            return _as_sweep(ctx, [*_flags_back(**flags, **where), *overrides])
        check_hydra_flags(cfg, resolve, package, info)
        with config_search(config_dir, config_name):
            from regbench.compose.hydra import load_settings
            from regbench.training.runner import execute

            # --info is Hydra's view, shown for any config; --cfg prints a config that would run.
            if _show_hydra(overrides, None, None, False, info, multirun=False):
                return
            settings = load_settings(overrides)
            if _show_hydra(overrides, cfg, package, resolve, None, multirun=False):
                return
            _show_result(execute(settings, overrides, _reporter(quiet)), quiet)


@app.command(context_settings=EXTRA_ARGS)
def configs(
    overrides: list[str] = OVERRIDES_ARGUMENT,
    config_dir: Path = CONFIG_DIR_OPTION,
    config_name: str = CONFIG_NAME_OPTION,
) -> None:
    """List every config group and option Hydra sees (your --config-dir and hydra.searchpath
    folders and Hydra's plugins included), and print the resolved config for OVERRIDES."""
    with user_errors(), config_search(config_dir, config_name):
        import yaml

        from regbench.compose.hydra import group_options, hydra_group_options, load_settings

        for group, options in group_options(overrides or []).items():
            stdout.print(f"{group}: {', '.join(options)}", highlight=False)
        stdout.print("\n# Hydra's groups (launchers and sweepers go with `regbench sweep`)")
        for group, options in hydra_group_options(overrides or []).items():
            stdout.print(f"{group}: {', '.join(options)}", highlight=False)
        settings = load_settings(overrides or [])
        stdout.print("\n# resolved config")
        stdout.print(yaml.safe_dump(settings.to_dict(), sort_keys=False), highlight=False)


@app.command()
def resume(
    run_dir: Path = typer.Argument(..., help="An interrupted or failed run folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables."),
) -> None:
    """Continue an interrupted run from its last checkpoint, in the same folder."""
    with user_errors():
        from regbench.core.rundir import RunDir
        from regbench.training import runner

        _show_result(runner.resume(RunDir.open(run_dir), _reporter(quiet)), quiet)


@app.command()
def rerun(
    run_dir: Path = typer.Argument(..., help="A run folder to run again from its config.yaml."),
    check: bool = typer.Option(
        False, "--check", help="Compare the new metrics with the original's; exit 1 if they differ."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables."),
) -> None:
    """Run a past run again from its saved config, into a new folder beside it."""
    with user_errors():
        from regbench.core.rundir import RunDir
        from regbench.training import runner

        original = RunDir.open(run_dir)
        result = runner.rerun(original, _reporter(quiet))
        _show_result(result, quiet)
        if check and not _show_check(original, result):
            raise typer.Exit(1)


def _show_check(original, result) -> bool:
    """Print the per-column comparison and any environment differences; True when they match."""
    from rich.table import Table

    from regbench.analysis import reproduce

    exact, rule = reproduce.check_rule(original.read_summary(), result.summary)
    checks = reproduce.compare_metrics(original.read_metrics(), result.rows, exact=exact)
    table = Table(title=f"rerun --check: {rule}")
    for column in ("column", "identical", "max |diff|", "verdict"):
        table.add_column(column)
    for c in checks:
        verdict = "[green]match[/]" if c.ok else "[bold red]DIFFERS[/]"
        table.add_row(c.column, "yes" if c.identical else "no", f"{c.max_abs_diff:.3g}", verdict)
    stdout.print(table)
    for note in reproduce.environment_differences(original.read_summary(), result.summary):
        stderr.print(f"warning: differs from the original: {note}", style="yellow", markup=False)
    matched = all(c.ok for c in checks)
    stdout.print("reproduced" if matched else "NOT reproduced", style="green" if matched else "red")
    return matched


# ----------------------------------------------------------------------------- sweeps
SWEEP_HELP = (
    "Hydra overrides with sweeps, e.g. dropout=0,0.2,0.5 weight_decay=0,1e-4 'seed=range(1,4)' "
    "(add hydra/launcher=joblib hydra.launcher.n_jobs=4 to run jobs in parallel)"
)


@app.command(context_settings=EXTRA_ARGS, cls=HydraFlagsCommand)
def sweep(
    overrides: list[str] = typer.Argument(
        None, help=SWEEP_HELP, show_default=False, autocompletion=complete_overrides
    ),
    sweep_dir: Path = typer.Option(
        None,
        "--dir",
        help="The sweep folder: a new one, or an earlier sweep's to resume or grow "
        "(default: <out_dir>/sweeps/<timestamp>-<id>).",
        show_default=False,
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the jobs; run nothing."),
    tex: bool = typer.Option(False, "--tex", help="Also write comparison.tex."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or epoch lines."),
    stacked: bool = typer.Option(
        False,
        "--stacked",
        help="Train the jobs that share model, data and schedule together, as one stacked "
        "model (each still gets its own run folder); see the README's Performance section.",
    ),
    stack_memory: float = typer.Option(
        None,
        "--stack-memory",
        min=1,
        help="MiB one stacked chunk may use (default: half the free memory; 80% on CUDA).",
        show_default=False,
    ),
    objective: str = typer.Option(
        None,
        "--objective",
        help="With a sweeper (hydra/sweeper=optuna): the metric whose mean over a trial's seeds "
        "the sweeper optimizes (default test_loss; minimized or maximized by its name).",
        show_default=False,
    ),
    at: str = typer.Option(
        None,
        "--at",
        help="With a sweeper: the objective of each run at final, best or epoch=N (default final).",
        show_default=False,
    ),
    cfg: str = CFG_OPTION,
    resolve: bool = RESOLVE_OPTION,
    package: str = PACKAGE_OPTION,
    info: str = INFO_OPTION,
    config_dir: Path = CONFIG_DIR_OPTION,
    config_name: str = CONFIG_NAME_OPTION,
) -> None:
    """Run a grid of runs (Hydra's sweep syntax), or a search with a sweeper such as
    hydra/sweeper=optuna; rerun with --dir to resume or grow it."""
    with user_errors(), config_search(config_dir, config_name):
        from regbench.sweeps import plan as sweeps
        from regbench.sweeps import search as searches

        overrides = overrides or []
        check_hydra_flags(cfg, resolve, package, info)
        if cfg is not None or info is not None:
            actions = {"--dir": sweep_dir, "--dry-run": dry_run, "--stacked": stacked, "--tex": tex}
            given = [flag for flag, value in actions.items() if value]
            if given:
                raise UsageError(f"--cfg and --info run nothing; drop {given[0]}")
        if info is not None:
            sweeps.check_overrides(overrides)
            _show_hydra(overrides, None, None, False, info, multirun=True)
            return
        named = [o for o in overrides if sweeps.is_launcher_override(o)]
        if stacked and named:
            raise UsageError(f"--stacked is the launcher; drop {named[0]}")
        if stack_memory is not None and not stacked:
            raise UsageError("--stack-memory goes with --stacked")
        budget = int(stack_memory * 2**20) if stack_memory else None
        if searches.is_search(overrides):
            search = searches.plan(overrides, objective, at)
            _run_search(search, overrides, sweep_dir, dry_run, quiet, tex, stacked, budget)
            return
        if objective or at:
            raise UsageError("--objective and --at go with a sweeper, e.g. hydra/sweeper=optuna")
        prepared = sweeps.prepare(overrides, sweep_dir)  # --cfg too: every job must validate
        if _show_hydra(overrides, cfg, package, resolve, None, multirun=True):
            return
        if dry_run:
            stdout.print(_jobs_table(prepared))
            stdout.print(f"dry run: {_job_counts(prepared)}; nothing was run", highlight=False)
            return
        stderr.print(f"sweep: {_job_counts(prepared)}", highlight=False, soft_wrap=True)
        launcher = sweeps.choose_launcher(overrides, stacked, budget)
        stack = ["--stacked"] if stacked else []
        again = _sweep_again([*_search_flags(), *overrides, *stack], prepared.sweep_dir)
        _launch(prepared, overrides, quiet, launcher, again, tex)


def _run_search(search, overrides, sweep_dir, dry_run, quiet, tex, stacked, budget) -> None:
    """A sweeper's search (regbench/search.py): trials as they come, each over its seeds."""
    prepared = search.prepare(sweep_dir)
    if dry_run:
        line = f"dry run: search of {search.describe()}; nothing was run"
        stdout.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    where = f"search: {search.describe()}; in {prepared.sweep_dir}"
    stderr.print(where, markup=False, highlight=False, soft_wrap=True)
    options = [f"--objective={search.objective}", f"--at={search.at}"]
    stack = ["--stacked"] if stacked else []
    again = _sweep_again([*_search_flags(), *overrides, *options, *stack], prepared.sweep_dir)
    launcher = search.launcher(stacked, budget)
    _launch(
        prepared, overrides, quiet, launcher, again, tex, metrics=[search.objective], at=search.at
    )


def _launch(prepared, overrides, quiet, launcher, again: str, tex: bool, **options) -> None:
    """Carry a sweep's (or search's) jobs out, then its comparison and outcome; an interrupt
    says how to go on."""
    from regbench.figures.drawing import in_workers
    from regbench.sweeps import plan as sweeps

    with in_workers():  # the jobs' figures and then the comparison's, in the same workers
        try:
            result = sweeps.run(prepared, overrides, quiet, launcher)
        except KeyboardInterrupt:
            stderr.print(f"to go on: {again}", markup=False, highlight=False, soft_wrap=True)
            raise
        _sweep_comparison(result.sweep_dir, tex, **options)
    _sweep_outcome(result, again)


def _job_counts(prepared) -> str:
    from regbench.sweeps.plan import describe_states

    counts = ", ".join(f"{n} to {action}" for action, n in describe_states(prepared).items())
    return f"{len(prepared.jobs)} jobs ({counts}) in {prepared.sweep_dir}"


def _jobs_table(prepared):
    from rich.table import Table

    from regbench.sweeps.plan import decide

    table = Table(title=f"sweep jobs in {prepared.sweep_dir}")
    for column in ("#", "job", "folder", "state", "action"):
        table.add_column(column)
    for i, job in enumerate(prepared.jobs, 1):
        state = prepared.states[job.key]
        table.add_row(str(i), job.label, job.key, state, decide(state).value)
    return table


def _sweep_comparison(sweep_dir: Path, tex: bool, **options) -> None:
    from regbench.analysis.comparison import compare as compare_runs
    from regbench.analysis.report import write_sweep_comparison

    try:
        comparison = compare_runs([sweep_dir], **options)
        _print_comparison(comparison)
        written, report = write_sweep_comparison(sweep_dir, comparison, tex=tex)
    except RegbenchError as exc:  # e.g. every job failed: nothing to compare, the sweep still ran
        stderr.print(f"no comparison: {exc}", style="yellow", markup=False, highlight=False)
        return
    _print_written(sweep_dir, written)
    if report is not None:  # an experiment ends in its report
        stdout.print(f"report written to {report}", highlight=False)


def _sweep_again(overrides: list[str], sweep_dir: Path) -> str:
    """The command that resumes, retries or grows a sweep, shell-quoted so that it pastes back
    into a shell as is ('seed=range(1,4)' and [csv,tensorboard] survive)."""
    return shlex.join(["regbench", "sweep", *overrides, "--dir", str(sweep_dir)])


def _search_flags() -> list[str]:
    from regbench.compose.hydra import hydra_flags

    return hydra_flags()


def _sweep_outcome(result, again: str) -> None:
    counts: dict[str, int] = {}
    for status in result.statuses.values():
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    stdout.print(f"sweep done: {summary}; outputs in {result.sweep_dir}", highlight=False)
    # Without rich markup, which would eat the brackets, and on one line however long (a
    # wrapped line pastes as two commands).
    stdout.print(
        f"to resume, retry or grow it: {again}", markup=False, highlight=False, soft_wrap=True
    )
    failed = counts.get("failed", 0)
    if failed:
        raise RegbenchError(
            f"{failed} of {len(result.statuses)} jobs failed (their summary.json says why); "
            f"run the same command with --dir {result.sweep_dir} to retry them"
        )


# ----------------------------------------------------------------------------- comparisons
@app.command()
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
) -> None:
    """Group runs over seeds; mean, std, 95% CI, difference from a baseline, effect sizes,
    Holm-adjusted p-values and a verdict per group."""
    with user_errors():
        options = {"metrics": metric or [], "at": at, "over": over or [], "baseline": baseline}
        options.update(ci=ci, margin=margin)
        # The options that differ from the defaults, as words (they name where the tables go).
        given = {"metric": "+".join(metric or []), "at": at or "", "over": "+".join(over or [])}
        given |= {"baseline": baseline or "", "ci": "" if ci == "t" else ci}
        given["margin"] = "" if margin is None else str(margin)
        chosen = [f"{key}={value}" for key, value in given.items() if value]
        _show_comparison(paths, out or _default_out(paths, chosen), tex=tex, plots=plots, **options)


def _default_out(paths: list[Path], given: list[str]) -> Path:
    """The one folder given, else the working folder. A sweep's own comparison.md/.csv belong to
    the sweep: a comparison with other options goes to ``comparisons/<options>/`` inside it
    instead of replacing them (``--out <sweep>`` replaces them on purpose)."""
    import re

    from regbench.core.jobs import SWEEP_FILE

    if len(paths) != 1 or not paths[0].is_dir():
        return Path(".")
    if given and (paths[0] / SWEEP_FILE).is_file():
        return paths[0] / "comparisons" / re.sub(r"[^\w=.,+-]+", "_", ",".join(given))
    return paths[0]


def _show_comparison(paths: list[Path], out: Path, tex: bool, plots: bool, **options) -> None:
    from regbench.analysis.comparison import compare as compare_runs
    from regbench.analysis.report import write_comparison

    comparison = compare_runs(paths, **options)
    _print_comparison(comparison)
    _print_written(out, write_comparison(comparison, out, tex=tex, plots=plots))


def _print_comparison(comparison) -> None:
    """The experiment's question, the table, a verdict per group and metric, and the notes."""
    from regbench.analysis.tables import claim_lines, rich_table, verdicts

    for line in claim_lines(comparison):
        stdout.print(line, markup=False, highlight=False, soft_wrap=True)
    stdout.print(rich_table(comparison))
    for verdict in verdicts(comparison):
        stdout.print(f"verdict: {verdict}", markup=False, highlight=False, soft_wrap=True)
    for note in comparison.notes:
        stderr.print(f"note: {note}", style="yellow", markup=False, highlight=False, soft_wrap=True)


def _print_written(out: Path, written: list[Path]) -> None:
    names = ", ".join(p.name for p in written)
    stdout.print(f"comparison written to {out}: {names}", highlight=False, soft_wrap=True)


@app.command()
def plot(
    paths: list[Path] = typer.Argument(..., help="Run or sweep folders."),
) -> None:
    """Redraw the plots of runs or sweeps from their saved metrics (no training)."""
    with user_errors():
        from regbench.analysis.compare_plots import redraw

        for path in paths:
            written = redraw(path)
            stdout.print(f"{path}: redrew {len(written)} plot(s)", highlight=False)


@app.command()
def report(
    path: Path = typer.Argument(..., help="A run or sweep folder (any folder of runs)."),
) -> None:
    """Write one self-contained report.html (table, plots, configs) into PATH."""
    with user_errors():
        from regbench.analysis.report import write_report

        stdout.print(f"report written to {write_report(path)}", highlight=False, soft_wrap=True)


def main() -> None:
    try:
        app(prog_name="regbench")
    finally:
        # The command is done: keep the interpreter's last garbage collection from walking the
        # million objects torch's compiler stack imports (about 0.9 s of every command's end
        # here, benchmarks/bench.py [5]). Objects are still freed by their reference counts.
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
