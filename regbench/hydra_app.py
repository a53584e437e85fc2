"""Hydra composition: ``configs/`` + the user's overrides -> a plain mapping -> Settings.

Hydra's own errors are multi-line and mention internals; they are turned into one-line
:class:`ConfigError` messages here, so the CLI never shows a traceback for a typo.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from regbench.config import ConfigError, Settings
from regbench.validation import validate

PRIMARY_CONFIG = "config"


def config_dir() -> Path:
    """The config tree: the copy inside an installed wheel, else the top-level ``configs/`` of
    the checkout an editable install runs from. The wheel's copy is looked for first: next to
    an installed package is site-packages, where a ``configs/`` could belong to anyone."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_configs", package.parent / "configs"):
        if (candidate / f"{PRIMARY_CONFIG}.yaml").is_file():
            return candidate
    raise ConfigError(f"regbench's configs were not found next to {package}; reinstall regbench")


def group_options() -> dict[str, list[str]]:
    """Config groups and their options, e.g. {'model': ['mlp', ...], 'data': [...]}: the yaml
    files, and for ``model`` every registered study too (a study may bring its defaults in
    ``register_study`` instead of a yaml file)."""
    from regbench.studies import study_names

    root = config_dir()
    options = {
        group.name: {p.stem for p in group.glob("*.yaml")}
        for group in sorted(root.iterdir())
        if group.is_dir() and not group.name.startswith((".", "_"))
    }
    options.setdefault("model", set()).update(study_names())
    return {group: sorted(names) for group, names in options.items()}


@contextmanager
def regbench_configs() -> Iterator[None]:
    """Hydra's global state set up for regbench's config tree, and the caller's put back after:
    inside a running Hydra app (or a notebook that initialized Hydra) the global is already
    taken, and Hydra's own ``initialize_config_dir`` refuses to start then."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    callers = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            yield
    finally:
        # Looked up again: leaving initialize_config_dir swaps in another instance.
        GlobalHydra.instance().clear()
        if callers is not None:
            GlobalHydra.instance().initialize(callers)


def compose(overrides: Sequence[str]) -> dict[str, Any]:
    """Compose the primary config with ``overrides`` (as typed by users) into a plain dict."""
    refuse_hydra_keys(overrides)
    from hydra import compose as hydra_compose
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with regbench_configs():
            cfg = hydra_compose(PRIMARY_CONFIG, overrides=list(overrides))
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc, overrides)) from exc


def refuse_hydra_keys(overrides: Sequence[str]) -> None:
    """Hydra's own keys do nothing for one run (regbench writes its own run folder and never
    changes the working folder), so instead of silently ignoring them, say where they belong."""
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            raise ConfigError(
                f"{key} does nothing for one run: regbench writes the run folder under out_dir "
                f"(out_dir=..., name=...) and never changes the working folder; Hydra's "
                f"launchers and sweepers go with `regbench sweep`"
            )


def load_settings(overrides: Sequence[str]) -> Settings:
    return validate(compose(overrides))


# Hydra's own outputs (log files, .hydra/ copies, a numbered folder per job, a chdir) are switched
# off in sweeps: regbench writes its own run folders, keyed by config, inside the sweep folder.
SWEEP_HYDRA_OVERRIDES = (
    "hydra.sweep.subdir=.",
    "hydra.output_subdir=null",
    "hydra.job.chdir=false",
    "hydra/job_logging=disabled",
    "hydra/hydra_logging=disabled",
)


def multirun(task: Callable[[Any], Any], overrides: Sequence[str], sweep_dir: Path) -> None:
    """Run ``task`` once per job of the sweep ``overrides`` through Hydra's @hydra.main entry in
    multirun mode (so Hydra's sweep syntax, sweepers and launchers all apply).

    ``task`` must be a module-level function for launchers such as joblib, which pickle it by
    reference and call it in other processes (a search's in-process trials may be a bound method).
    Hydra's errors come back as one-line ConfigErrors; the caller's logging is put back after.
    """
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    entry = hydra.main(
        config_path=str(config_dir()), config_name=PRIMARY_CONFIG, version_base=None
    )(task)
    argv = ["regbench", "--multirun", *overrides, f"hydra.sweep.dir='{sweep_dir.resolve()}'"]
    saved_argv, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [*argv, *SWEEP_HYDRA_OVERRIDES]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # raise errors to us instead of printing and exiting
    try:
        with _logging_as_found():
            entry()
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc, overrides)) from exc
    finally:
        sys.argv = saved_argv
        if saved_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full_error


@contextmanager
def _logging_as_found() -> Iterator[None]:
    """Hydra configures logging for a multirun (regbench's: off, SWEEP_HYDRA_OVERRIDES): the
    root logger's level and handlers, and which loggers are enabled, are put back after."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    loggers = logging.Logger.manager.loggerDict
    disabled = {n: lg.disabled for n, lg in loggers.items() if isinstance(lg, logging.Logger)}
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
        for name, logger in list(loggers.items()):
            if isinstance(logger, logging.Logger):
                logger.disabled = disabled.get(name, False)


@dataclasses.dataclass(frozen=True)
class SweepGrid:
    """A sweep expanded in this process: each job's overrides and composed config, in Hydra's
    order, and the multirun config Hydra's own sweeper would save as ``multirun.yaml``."""

    jobs: list[tuple[tuple[str, ...], dict[str, Any]]]
    multirun_config: Any  # a DictConfig, hydra node included
    empty: list[str]  # sweep overrides that give no value (why a grid has no jobs)


def expand_sweep(overrides: Sequence[str]) -> SweepGrid:
    """Expand sweep ``overrides`` (``a=1,2``, ``range()``, ``choice()``, ``glob()``) into jobs the
    way a multirun does, without running one: the multirun config is composed once (which also
    checks launcher overrides such as ``hydra/launcher=joblib``), its task overrides are parsed
    and crossed by Hydra's basic sweeper, and each job is composed as the launcher would."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf.errors import OmegaConfBaseException

    try:
        with regbench_configs():
            loader = GlobalHydra.instance().config_loader()
            master = loader.load_configuration(
                PRIMARY_CONFIG, [*overrides, *SWEEP_HYDRA_OVERRIDES], run_mode=RunMode.MULTIRUN
            )
            cells, empty = _cross(master, loader)
            jobs = [(tuple(cell), _compose_job(cell)) for cell in cells]
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc, overrides)) from exc
    return SweepGrid(jobs, master, empty)


def multirun_config(overrides: Sequence[str]) -> Any:
    """The multirun config of ``overrides`` (a DictConfig, hydra node included) as a sweeper gets
    it, without expanding a job: composing it checks the fixed overrides and the hydra/sweeper,
    hydra.sweeper.* ones. Searches (regbench/search.py) plan from it."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf.errors import OmegaConfBaseException

    try:
        with regbench_configs():
            loader = GlobalHydra.instance().config_loader()
            return loader.load_configuration(
                PRIMARY_CONFIG, [*overrides, *SWEEP_HYDRA_OVERRIDES], run_mode=RunMode.MULTIRUN
            )
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc, overrides)) from exc


def _cross(master: Any, loader: Any) -> tuple[list[list[str]], list[str]]:
    """The basic sweeper's cross product of the sweeper's params and the task overrides."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = master.hydra.sweeper.get("params") or {}
    arguments = [*(f"{k}={v}" for k, v in params.items()), *master.hydra.overrides.task]
    # The loader lets glob() list a config group's options.
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    (cells,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    empty = [
        o.input_line
        for o in parsed
        if o.is_discrete_sweep() and next(o.sweep_string_iterator(), None) is None
    ]
    return cells, empty


def _compose_job(cell: Sequence[str]) -> dict[str, Any]:
    """One job's config (inside an initialized Hydra context), as ``compose`` makes it."""
    from hydra import compose as hydra_compose
    from omegaconf import OmegaConf

    cfg = hydra_compose(PRIMARY_CONFIG, overrides=list(cell))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def save_multirun_config(multirun_config: Any, sweep_dir: Path) -> None:
    """Write ``multirun.yaml`` as Hydra's sweeper does, for sweeps that run without Hydra's
    launchers: the record of the latest invocation's config and overrides."""
    from omegaconf import OmegaConf, open_dict

    with open_dict(multirun_config):
        multirun_config.hydra.sweep.dir = str(sweep_dir.resolve())
    OmegaConf.save(multirun_config, sweep_dir / "multirun.yaml")


# The plugins regbench has an extra for; any other launcher or sweeper goes by Hydra's naming,
# hydra-<name>-launcher / hydra-<name>-sweeper (submitit_local: hydra-submitit-launcher).
PLUGIN_EXTRAS = {"hydra/launcher": {"joblib": "joblib"}, "hydra/sweeper": {"optuna": "optuna"}}


def _plugin_hint(group: str, option: str) -> str:
    kind = group.removeprefix("hydra/")
    if kind not in ("launcher", "sweeper"):
        return "(see Hydra's plugin list)"
    extra = PLUGIN_EXTRAS[group].get(option)
    package = f"'regbench[{extra}]'" if extra else f"hydra-{option.split('_')[0]}-{kind}"
    return f"(pip install {package}; see the README's Sweeps section)"


def _one_line(exc: Exception, overrides: Sequence[str]) -> str:
    text = str(exc)
    # dropout=0,0.5 and seed=range(1,3) are sweeps: Hydra calls them ambiguous, or asks for
    # --multirun, which regbench spells `regbench sweep`.
    sweep = re.search(r"Ambiguous value for argument '([^']*)'", text) or re.search(
        r"Sweep parameters '([^']*)' requires --multirun", text
    )
    if sweep:
        import shlex

        return (
            f"{sweep.group(1)} gives several values, which is a sweep; one run takes one "
            f"value each: regbench sweep {shlex.join(overrides)}"
        )
    missing = re.search(r"Could not find '([\w/]+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        if group.startswith("hydra/"):
            hint = _plugin_hint(group, option)
            return f"unknown {group} '{option}'; is its Hydra plugin installed? {hint}"
        options = group_options().get(group, [])
        return f"unknown {group} '{option}'; available: {', '.join(options)}"
    unknown = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Key '([^']+)' is not in struct", text
    )
    if unknown:
        known = ", ".join(f.name for f in dataclasses.fields(Settings))
        return (
            f"unknown key '{unknown.group(1)}'; known keys: {known} (model.*, data.*: see "
            "`regbench configs`)"
        )
    parse = re.search(r"Error parsing override '([^']*)'", text)
    if parse:
        return f"cannot parse override '{parse.group(1)}'; write overrides as key=value"
    if type(exc).__name__ == "OverrideParseException":
        return f"cannot parse the overrides ({text.strip().splitlines()[0]}); write key=value"
    return text.strip().splitlines()[0]
