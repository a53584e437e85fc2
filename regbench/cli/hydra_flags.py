"""Hydra's own command-line flags on `regbench run` and `regbench sweep`, with Hydra's names and
meaning: --cfg/--resolve/--package, --info, --config-dir, --config-name, and override completion.
The commands (cli/run.py, cli/sweep.py) take these options; this module checks them and prints
what they show."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from typer.core import TyperCommand

from regbench.cli.console import stdout
from regbench.core.errors import RegbenchError, UsageError

OVERRIDES_HELP = "Hydra overrides, e.g. model=mlp dropout=0.2 seed=3 epochs=10 device=cpu"
# The context of a command that takes overrides: +key=v and ~key are overrides, not options.
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

# The flags a Hydra app (@hydra.main) takes, on `run` and `sweep`, with Hydra's names and meaning.
CFG_KINDS = ("job", "hydra", "all")
INFO_KINDS = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
INFO_FLAGS = ("--info", "-i")


class HydraFlagsCommand(TyperCommand):
    """A command whose ``--info`` may go without a value, as in Hydra's apps (``--info`` is
    ``--info all``): a value is taken only when it is one of INFO_KINDS, so ``--info
    model=mlp`` is ``--info all model=mlp``."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
        given = list(args)
        for i in reversed(range(len(given))):
            following = given[i + 1] if i + 1 < len(given) else None
            if given[i] in INFO_FLAGS and following not in INFO_KINDS:
                given.insert(i + 1, "all")
        return super().parse_args(ctx, given)


def complete_overrides(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of overrides: Hydra's own (groups, their options, config keys)."""
    from regbench.compose.hydra import complete_override, searching

    words = [w for w in (ctx.params.get("overrides") or []) if not w.startswith("-")]
    try:
        with searching(ctx.params.get("config_dir"), ctx.params.get("config_name")):
            return complete_override(words, incomplete)
    except RegbenchError:
        return []


OVERRIDES_ARGUMENT = typer.Argument(
    None, help=OVERRIDES_HELP, show_default=False, autocompletion=complete_overrides
)
CFG_OPTION = typer.Option(
    None,
    "--cfg",
    "-c",
    help="Print the composed config and run nothing: job (regbench's keys), hydra (Hydra's "
    "node) or all, as Hydra's apps do; the config must validate.",
    show_default=False,
)
RESOLVE_OPTION = typer.Option(False, "--resolve", help="With --cfg: resolve interpolations.")
PACKAGE_OPTION = typer.Option(
    None,
    "--package",
    "-p",
    help="With --cfg: print only this key (e.g. model).",
    show_default=False,
)
INFO_OPTION = typer.Option(
    None,
    "--info",
    "-i",
    help="Print Hydra's information and run nothing: all (the default), config, defaults, "
    "defaults-tree, plugins or searchpath.",
    show_default=False,
)
CONFIG_DIR_OPTION = typer.Option(
    None,
    "--config-dir",
    "-cd",
    help="A folder of your own configs, added to the config search path (e.g. "
    "myconfigs/experiment/foo.yaml for +experiment=foo).",
    show_default=False,
)
CONFIG_NAME_OPTION = typer.Option(
    None,
    "--config-name",
    "-cn",
    help="The primary config's name in the search path (default: regbench's config).",
    show_default=False,
)


def check_hydra_flags(
    cfg: str | None, resolve: bool, package: str | None, info: str | None
) -> None:
    """Hydra's rules for its flags, as one-line errors."""
    if cfg is not None and cfg not in CFG_KINDS:
        raise UsageError(f"--cfg {cfg}: choose one of {', '.join(CFG_KINDS)}")
    if info is not None and info not in INFO_KINDS:
        raise UsageError(f"--info {info}: choose one of {', '.join(INFO_KINDS)}")
    if cfg is not None and info is not None:
        raise UsageError("--cfg and --info: give one of them")
    if cfg is None and (resolve or package is not None):
        raise UsageError(f"{'--resolve' if resolve else '--package'} goes with --cfg")


@contextmanager
def config_search(config_dir: Path | None, config_name: str | None) -> Iterator[None]:
    from regbench.compose.hydra import searching

    with searching(config_dir, config_name):
        yield


def show_hydra(overrides: list[str], *flags: str | bool | None, multirun: bool) -> bool:
    """Print what --cfg or --info asks for (True), or nothing (False, when neither is given).
    ``flags``: cfg, package, resolve, info, as :func:`hydra_text` takes them."""
    text = hydra_text(overrides, *flags, multirun=multirun)  # type: ignore[arg-type]
    if text is not None:
        stdout.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    return text is not None


def hydra_text(
    overrides: list[str],
    cfg: str | None,
    package: str | None,
    resolve: bool,
    info: str | None,
    multirun: bool,
) -> str | None:
    """What --cfg or --info asks for, or None when neither is given."""
    from regbench.compose import hydra as hydra_app

    if info is not None:
        text = hydra_app.info_text(overrides, info, multirun=multirun)
    elif cfg is not None:
        text = hydra_app.config_text(overrides, cfg, package, resolve, multirun=multirun)
    else:
        return None
    return text
