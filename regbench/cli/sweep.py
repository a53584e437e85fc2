"""`regbench sweep`: a grid, a stacked grid or a search, over regbench.workflow.sweep."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from regbench import workflow
from regbench.cli.compare import SELECT_OPTION, ComparisonPrinter
from regbench.cli.console import stderr, stdout
from regbench.cli.hydra_flags import (
    CFG_OPTION,
    CONFIG_DIR_OPTION,
    CONFIG_NAME_OPTION,
    EXTRA_ARGS,
    INFO_OPTION,
    PACKAGE_OPTION,
    RESOLVE_OPTION,
    HydraFlagsCommand,
    check_hydra_flags,
    complete_overrides,
    config_search,
    show_hydra,
)
from regbench.core.errors import RegbenchError, UsageError

if TYPE_CHECKING:
    from rich.table import Table

    from regbench.sweeps.plan import SweepResult

SWEEP_HELP = (
    "Hydra overrides with sweeps, e.g. dropout=0,0.2,0.5 weight_decay=0,1e-4 'seed=range(1,4)' "
    "(add hydra/launcher=joblib hydra.launcher.n_jobs=4 to run jobs in parallel)"
)


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
        help="With a sweeper (hydra/sweeper=optuna): the validation metric whose mean over a "
        "trial's seeds the sweeper optimizes (default the study's primary one, val_loss; in "
        "its declared direction).",
        show_default=False,
    ),
    at: str = typer.Option(
        None,
        "--at",
        help="With a sweeper: the objective of each run at final, best or epoch=N (default final).",
        show_default=False,
    ),
    confirm: int = typer.Option(
        None,
        "--confirm",
        help="With hydra/sweeper=optuna: rerun the best trial's configuration on N fresh seeds "
        "into <sweep>/confirm/ and compare it on test with the baseline (the space's 0s).",
        show_default=False,
    ),
    select: str = SELECT_OPTION,
    cfg: str = CFG_OPTION,
    resolve: bool = RESOLVE_OPTION,
    package: str = PACKAGE_OPTION,
    info: str = INFO_OPTION,
    config_dir: Path = CONFIG_DIR_OPTION,
    config_name: str = CONFIG_NAME_OPTION,
) -> None:
    """Run a grid of runs (Hydra's sweep syntax), or a search with a sweeper such as
    hydra/sweeper=optuna; rerun with --dir to resume or grow it."""
    overrides = overrides or []
    with config_search(config_dir, config_name):
        check_hydra_flags(cfg, resolve, package, info)
        if cfg is not None or info is not None:
            actions = {"--dir": sweep_dir, "--dry-run": dry_run, "--stacked": stacked, "--tex": tex}
            _refuse_with_printing_flags(actions)
        if info is not None:
            from regbench.sweeps.plan import check_overrides

            check_overrides(overrides)
            show_hydra(overrides, None, None, False, info, multirun=True)
            return
        printer = SweepPrinter()
        options = {"dir": sweep_dir, "stacked": stacked, "stack_memory": stack_memory}
        options |= {"objective": objective, "at": at, "listener": printer}
        if cfg is not None:
            workflow.plan_sweep(overrides, **options)  # every job must validate
            show_hydra(overrides, cfg, package, resolve, None, multirun=True)
            return
        more = {"dry_run": dry_run, "tex": tex, "select": select, "quiet": quiet}
        more |= {"confirm": confirm}
        result = workflow.sweep(overrides, **options, **more)
        if result.ran:
            _show_outcome(result)
        else:
            _show_dry_run(result.plan)


def _refuse_with_printing_flags(actions: dict[str, object]) -> None:
    given = [flag for flag, value in actions.items() if value]
    if given:
        raise UsageError(f"--cfg and --info run nothing; drop {given[0]}")


class SweepPrinter(ComparisonPrinter):
    """A sweep's lines: what it will do, how to go on after an interrupt, its comparison."""

    def sweep_starts(self, plan: workflow.SweepPlan) -> None:
        if plan.search is not None:
            line = f"search: {plan.search.describe()}; in {plan.sweep_dir}"
            stderr.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            stderr.print(f"sweep: {_job_counts(plan.prepared)}", highlight=False, soft_wrap=True)

    def sweep_interrupted(self, plan: workflow.SweepPlan) -> None:
        line = f"to go on: {_sweep_again(plan)}"
        stderr.print(line, markup=False, highlight=False, soft_wrap=True)

    def no_comparison(self, error: RegbenchError) -> None:
        line = f"no comparison: {error}"
        stderr.print(line, style="yellow", markup=False, highlight=False)


def _show_dry_run(plan: workflow.SweepPlan) -> None:
    if plan.search is not None:
        line = f"dry run: search of {plan.search.describe()}; nothing was run"
        stdout.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    stdout.print(_jobs_table(plan.prepared))
    stdout.print(f"dry run: {_job_counts(plan.prepared)}; nothing was run", highlight=False)


def _job_counts(prepared: SweepResult) -> str:
    from regbench.sweeps.plan import describe_states

    counts = ", ".join(f"{n} to {action}" for action, n in describe_states(prepared).items())
    return f"{len(prepared.jobs)} jobs ({counts}) in {prepared.sweep_dir}"


def _jobs_table(prepared: SweepResult) -> Table:
    from rich.table import Table

    from regbench.sweeps.plan import decide

    table = Table(title=f"sweep jobs in {prepared.sweep_dir}")
    for column in ("#", "job", "folder", "state", "action"):
        table.add_column(column)
    for i, job in enumerate(prepared.jobs, 1):
        state = prepared.states[job.key]
        table.add_row(str(i), job.label, job.key, state, decide(state).value)
    return table


def _sweep_again(plan: workflow.SweepPlan) -> str:
    """The command that resumes, retries or grows a sweep, shell-quoted so that it pastes back
    into a shell as is ('seed=range(1,4)' and [csv,tensorboard] survive)."""
    from regbench.compose.hydra import hydra_flags

    words = [*hydra_flags(), *plan.words, "--dir", str(plan.sweep_dir)]
    return shlex.join(["regbench", "sweep", *words])


def _show_outcome(result: workflow.SweepRun) -> None:
    counts: dict[str, int] = {}
    for status in result.statuses.values():
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    stdout.print(f"sweep done: {summary}; outputs in {result.sweep_dir}", highlight=False)
    if result.confirmed is not None:
        where = result.confirmed.out
        stdout.print(f"--confirm: the best trial on fresh seeds, on test, in {where}")
    # Without rich markup, which would eat the brackets, and on one line however long (a
    # wrapped line pastes as two commands).
    again = _sweep_again(result.plan)
    stdout.print(
        f"to resume, retry or grow it: {again}", markup=False, highlight=False, soft_wrap=True
    )
    if result.failed:
        raise RegbenchError(
            f"{len(result.failed)} of {len(result.statuses)} jobs failed (their summary.json says "
            f"why); run the same command with --dir {result.sweep_dir} to retry them"
        )


# This module's command (main.py registers it).
COMMANDS = ((sweep, {"context_settings": EXTRA_ARGS, "cls": HydraFlagsCommand}),)
