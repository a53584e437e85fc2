"""`regbench run`, `configs`, `resume` and `rerun`: one run at a time, over regbench.workflow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from regbench import workflow
from regbench.cli.console import progress, stderr, stdout
from regbench.cli.hydra_flags import (
    CFG_OPTION,
    CONFIG_DIR_OPTION,
    CONFIG_NAME_OPTION,
    EXTRA_ARGS,
    INFO_OPTION,
    OVERRIDES_ARGUMENT,
    PACKAGE_OPTION,
    RESOLVE_OPTION,
    HydraFlagsCommand,
    check_hydra_flags,
    config_search,
    show_hydra,
)

if TYPE_CHECKING:
    from regbench.training.session import RunResult

QUIET_OPTION = typer.Option(False, "--quiet", "-q", help="No progress bars or tables.")


def run(
    ctx: typer.Context,
    overrides: list[str] = OVERRIDES_ARGUMENT,
    quiet: bool = QUIET_OPTION,
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
    overrides = overrides or []
    if multirun:
        flags = {"cfg": cfg, "resolve": resolve, "package": package, "info": info}
        where = {"config_dir": config_dir, "config_name": config_name, "quiet": quiet}
        return _as_sweep(ctx, [*_flags_back(**flags, **where), *overrides])
    check_hydra_flags(cfg, resolve, package, info)
    with config_search(config_dir, config_name):
        # --info is Hydra's view, shown for any config; --cfg prints a config that would run.
        if show_hydra(overrides, None, None, False, info, multirun=False):
            return
        if cfg is not None:
            from regbench.compose.hydra import load_settings

            load_settings(overrides)
            show_hydra(overrides, cfg, package, resolve, None, multirun=False)
            return
        _show_result(workflow.run(overrides, progress(quiet)), quiet)


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


def configs(
    overrides: list[str] = OVERRIDES_ARGUMENT,
    config_dir: Path = CONFIG_DIR_OPTION,
    config_name: str = CONFIG_NAME_OPTION,
) -> None:
    """List every config group and option Hydra sees (your --config-dir and hydra.searchpath
    folders and Hydra's plugins included), and print the resolved config for OVERRIDES."""
    with config_search(config_dir, config_name):
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


def resume(
    run_dir: Path = typer.Argument(..., help="An interrupted or failed run folder."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Continue an interrupted run from its last checkpoint, in the same folder."""
    _show_result(workflow.resume(run_dir, progress(quiet)), quiet)


def rerun(
    run_dir: Path = typer.Argument(..., help="A run folder to run again from its config.yaml."),
    check: bool = typer.Option(
        False, "--check", help="Compare the new metrics with the original's; exit 1 if they differ."
    ),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Run a past run again from its saved config, into a new folder beside it."""
    result = workflow.rerun(run_dir, progress(quiet))
    _show_result(result, quiet)
    if check and not _show_check(run_dir, result):
        raise typer.Exit(1)


def _show_result(result: RunResult, quiet: bool) -> None:
    from regbench.core.progress import metrics_table

    if not quiet and result.rows:
        stdout.print(metrics_table(result.rows, f"{result.summary.name} metrics"))
    stdout.print(f"run {result.summary.status}: outputs in {result.run_dir}", highlight=False)


def _show_check(run_dir: Path, result: RunResult) -> bool:
    """Print the per-column comparison and any environment differences; True when they match."""
    from rich.table import Table

    from regbench.analysis import reproduce
    from regbench.core.rundir import RunDir

    original = RunDir.open(run_dir)
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


# This module's commands, in `regbench --help`'s order, with their Typer settings (main.py
# registers them, each inside the error boundary).
COMMANDS = (
    (run, {"context_settings": EXTRA_ARGS, "cls": HydraFlagsCommand}),
    (configs, {"context_settings": EXTRA_ARGS}),
    (resume, {}),
    (rerun, {}),
)
