"""The command line: ``regbench`` and its commands (Typer), over regbench.workflow."""

from regbench.cli.main import app, main

__all__ = ["app", "main"]
