"""The command line: a thin Typer layer over hydra_app, runner and rundir.

Heavy libraries (torch, matplotlib, hydra) are imported inside the commands, so ``--help`` stays
fast. User errors (RegbenchError) become one line on stderr and a non-zero exit; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from regbench.errors import RegbenchError

app = typer.Typer(
    name="regbench",
    help="Train and compare the classic regularization studies (dropout, L1, L2, weight decay).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
OVERRIDES_HELP = "Hydra overrides, e.g. model=mlp dropout=0.2 seed=3 epochs=10 device=cpu"
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}
INTERRUPTED_EXIT = 130

# Outside a terminal rich assumes 80 columns; logs and pipes get wide lines instead of wrapping.
PIPE_WIDTH = 200
stdout = Console()
stderr = Console(stderr=True)
for _console in (stdout, stderr):
    if not _console.is_terminal:
        _console.width = PIPE_WIDTH


class State:
    debug = False


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    State.debug = debug


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn RegbenchError into one line + its exit code; Ctrl-C into exit 130."""
    try:
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


def _reporter(quiet: bool):
    from regbench.progress import Reporter, RichReporter

    return (Reporter if quiet else RichReporter)(stderr)


def _show_result(result, quiet: bool) -> None:
    from regbench.progress import metrics_table

    if not quiet and result.rows:
        stdout.print(metrics_table(result.rows, f"{result.summary['name']} metrics"))
    stdout.print(f"run {result.summary['status']}: outputs in {result.run_dir}", highlight=False)


@app.command(context_settings=EXTRA_ARGS)
def run(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables."),
) -> None:
    """Train one model and write its run folder (metrics, summary, plots, weights)."""
    with user_errors():
        from regbench.hydra_app import load_settings
        from regbench.runner import execute

        overrides = overrides or []
        settings = load_settings(overrides)
        _show_result(execute(settings, overrides, _reporter(quiet)), quiet)


@app.command(context_settings=EXTRA_ARGS)
def configs(
    overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP, show_default=False),
) -> None:
    """List config groups and options, and print the resolved config for OVERRIDES."""
    with user_errors():
        import yaml

        from regbench.hydra_app import group_options, load_settings

        for group, options in group_options().items():
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
        from regbench import runner
        from regbench.rundir import RunDir

        _show_result(runner.resume(RunDir.open(run_dir), _reporter(quiet)), quiet)


def main() -> None:
    app(prog_name="regbench")


if __name__ == "__main__":
    sys.exit(main())
