"""The command line: the Typer app, its error boundary and ``main``. The commands live one family
a module (cli/run.py, cli/sweep.py, cli/compare.py), each a thin layer over regbench.workflow;
they are registered here, so importing regbench.cli gives the whole app.

Heavy libraries (torch, matplotlib, hydra) are imported inside the commands, so ``--help`` stays
fast. User errors (RegbenchError) become one line on stderr and a non-zero exit; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import typer

from regbench.cli import compare, run, sweep
from regbench.cli.console import stderr, stdout
from regbench.core.errors import RegbenchError

app = typer.Typer(
    name="regbench",
    help="Train and compare the classic regularization studies (dropout, L1, L2, weight decay).",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; overrides complete as Hydra's
    pretty_exceptions_enable=False,
)
INTERRUPTED_EXIT = 130


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
    (something skipped, e.g. an unreadable model.pt) into one ``note:`` line (a log record)."""
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
    """Notes and notices are records of the ``regbench`` logger (a Notice warning becomes one):
    for the command, rich's handler shows each as a line on stderr."""
    from regbench.cli.console import ConsoleHandler
    from regbench.core import log

    with log.handled_by(ConsoleHandler(stderr)), log.notices_logged():
        yield


def _register(command: Callable[..., Any], settings: Mapping[str, Any]) -> None:
    """Add ``command`` to the app, run inside the error boundary. functools.wraps keeps its
    name, help and signature, which Typer reads for the options."""

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with user_errors():
            return command(*args, **kwargs)

    app.command(**settings)(guarded)


for _command, _settings in (*run.COMMANDS, *sweep.COMMANDS, *compare.COMMANDS):
    _register(_command, _settings)


def main() -> None:
    try:
        app(prog_name="regbench")
    except SystemExit as exc:
        if exc.code == INTERRUPTED_EXIT:
            _leave_now(INTERRUPTED_EXIT)
        raise
    finally:
        # The command is done: keep the interpreter's last garbage collection from walking the
        # million objects torch's compiler stack imports (about 0.9 s of every command's end
        # here, benchmarks/bench.py [5]). Objects are still freed by their reference counts.
        gc.freeze()


def _leave_now(code: int) -> None:
    """Exit an interrupted command without the interpreter's exit handlers. Every run has
    already written how it ended; what is left is multiprocessing's join of the figure
    workers, which can wait forever for a worker that the interrupt caught in the middle of
    the pool's traffic (seen about 1 in 6 with a signal during a sweep's figures). The workers
    end with the command (drawing.py: PR_SET_PDEATHSIG)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
