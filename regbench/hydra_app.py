"""Hydra composition: ``configs/`` + the user's overrides -> a plain mapping -> Settings.

Hydra's own errors are multi-line and mention internals; they are turned into one-line
:class:`ConfigError` messages here, so the CLI never shows a traceback for a typo.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Callable, Sequence
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


def compose(overrides: Sequence[str]) -> dict[str, Any]:
    """Compose the primary config with ``overrides`` (as typed by users) into a plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            cfg = hydra_compose(PRIMARY_CONFIG, overrides=list(overrides))
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc, overrides)) from exc


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

    ``task`` must be a module-level function: launchers such as joblib pickle it by reference and
    call it in other processes. Hydra's errors come back as one-line ConfigErrors.
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
        entry()
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc, overrides)) from exc
    finally:
        sys.argv = saved_argv
        if saved_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full_error


def check_launcher(overrides: Sequence[str]) -> None:
    """Compose Hydra's own config with the launcher ``overrides`` (e.g. hydra/launcher=joblib
    hydra.launcher.n_jobs=2): a missing plugin or a bad launcher key is a one-line error."""
    if not overrides:
        return
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            hydra_compose(PRIMARY_CONFIG, overrides=list(overrides), return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc, overrides)) from exc


def _one_line(exc: Exception, overrides: Sequence[str]) -> str:
    text = str(exc)
    missing = re.search(r"Could not find '([\w/]+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        if group.startswith("hydra/"):
            return (
                f"unknown {group} '{option}'; is its Hydra plugin installed? (joblib: pip "
                f"install 'regbench[joblib]'; see the README's Sweeps section)"
            )
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
