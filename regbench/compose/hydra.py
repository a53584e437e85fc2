"""Hydra composition: ``configs/`` + the user's overrides -> a plain mapping -> Settings.

Hydra's own errors are multi-line and mention internals; they are turned into one-line
:class:`ConfigError` messages here, so the CLI never shows a traceback for a typo.

Where configs come from is one :class:`ConfigSearch` (regbench's tree, the user's
``--config-dir`` and ``--config-name``), set for the length of a command with :func:`searching`:
every composition here (one run, a sweep's plan and each of its jobs, Hydra's multirun for a
launcher plugin, ``regbench configs``) reads it, so a user's folder reaches all of them.
``hydra.searchpath=[...]`` is an override like any other and goes wherever the overrides go.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from regbench.compose.validate import validate
from regbench.core.config import ConfigError, Settings
from regbench.core.overrides import override_key, refuse_unshown_characters
from regbench.core.seeding import preserved_logging

PRIMARY_CONFIG = "config"


def config_dir() -> Path:
    """The config tree: the copy inside an installed wheel, else the top-level ``configs/`` of
    the checkout an editable install runs from. The wheel's copy is looked for first: next to
    an installed package is site-packages, where a ``configs/`` could belong to anyone."""
    package = Path(__file__).resolve().parents[1]  # regbench/, above compose/
    for candidate in (package / "_configs", package.parent / "configs"):
        if (candidate / f"{PRIMARY_CONFIG}.yaml").is_file():
            return candidate
    raise ConfigError(f"regbench's configs were not found next to {package}; reinstall regbench")


@dataclasses.dataclass(frozen=True)
class ConfigSearch:
    """Where Hydra looks for configs, as a Hydra app's ``--config-dir``/``--config-name`` set it:
    regbench's tree (Hydra's "main" source), then ``user_dir`` (searched after it, where Hydra
    puts ``--config-dir``; a name only the user's folder has is found there), then any
    ``hydra.searchpath`` entries of the overrides; ``config_name`` is the primary config."""

    config_name: str = PRIMARY_CONFIG
    user_dir: Path | None = None  # absolute


_SEARCH: ContextVar[ConfigSearch | None] = ContextVar("regbench_config_search", default=None)


@contextmanager
def searching(
    user_dir: str | Path | None = None, config_name: str | None = None
) -> Iterator[ConfigSearch]:
    """Compose from ``user_dir`` too, with ``config_name`` as the primary config, until the
    block ends (then the search is as it was)."""
    folder = None
    if user_dir is not None:
        folder = Path(user_dir).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(
                f"--config-dir {user_dir}: no such folder; give a folder of yaml configs "
                f"(e.g. myconfigs/, holding experiment/foo.yaml)"
            )
    if config_name is not None and (not config_name or config_name.endswith((".yaml", "/"))):
        raise ConfigError(
            f"--config-name {config_name!r}: give a config's name without .yaml (e.g. -cn mine "
            f"for mine.yaml in a --config-dir folder)"
        )
    token = _SEARCH.set(ConfigSearch(config_name or PRIMARY_CONFIG, folder))
    try:
        yield current_search()
    finally:
        _SEARCH.reset(token)


def current_search() -> ConfigSearch:
    return _SEARCH.get() or ConfigSearch()


def hydra_flags() -> list[str]:
    """The search as the flags a Hydra app takes (for Hydra's own multirun, and for the command
    line that runs a sweep again)."""
    search = current_search()
    flags = ["--config-dir", str(search.user_dir)] if search.user_dir else []
    if search.config_name != PRIMARY_CONFIG:
        flags += ["--config-name", search.config_name]
    return flags


def group_options(overrides: Sequence[str] = ()) -> dict[str, list[str]]:
    """The app's config groups and their options as Hydra's config repository sees them (the
    search path of :func:`current_search` and of ``hydra.searchpath`` overrides included), e.g.
    {'model': ['mlp', ...], 'data': [...]}; Hydra's own groups are :func:`hydra_group_options`.
    For ``model`` every registered study too (a study may bring its defaults in
    ``register_study`` instead of a yaml file)."""
    from regbench.studies import study_names

    options = {
        group: names
        for group, names in _all_group_options(overrides).items()
        if not _is_hydra_group(group)
    }
    options["model"] = sorted({*options.get("model", []), *study_names()})
    return dict(sorted(options.items()))


def hydra_group_options(overrides: Sequence[str] = ()) -> dict[str, list[str]]:
    """Hydra's own groups (``hydra/launcher``, ``hydra/sweeper``, ...) and their options, the
    installed plugins' included."""
    return {g: o for g, o in _all_group_options(overrides).items() if _is_hydra_group(g)}


def _is_hydra_group(group: str) -> bool:
    return group == "hydra" or group.startswith("hydra/")


def _all_group_options(overrides: Sequence[str]) -> dict[str, list[str]]:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType

    name = current_search().config_name
    with _hydra_errors(overrides), regbench_configs():
        loader = GlobalHydra.instance().config_loader()

        def options(group: str, kind: ObjectType) -> list[str]:
            return loader.get_group_options(group, kind, config_name=name, overrides=[*overrides])

        found: dict[str, list[str]] = {}
        todo = options("", ObjectType.GROUP)
        while todo:
            group = todo.pop(0)
            configs = options(group, ObjectType.CONFIG)
            if configs:
                found[group] = sorted(configs)
            todo += [f"{group}/{sub}" for sub in options(group, ObjectType.GROUP)]
    return dict(sorted(found.items()))


@contextmanager
def regbench_configs() -> Iterator[None]:
    """Hydra's global state set up for regbench's config tree (and :func:`current_search`'s
    folder), and the caller's put back after: inside a running Hydra app (or a notebook that
    initialized Hydra) the global is already taken, and Hydra's own ``initialize_config_dir``
    refuses to start then."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    callers = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    GlobalHydra.instance().clear()
    try:
        # What initialize_config_dir does, plus --config-dir where a Hydra app puts it.
        version.setbase(None)
        search_path = create_config_search_path(str(config_dir()))
        user_dir = current_search().user_dir
        if user_dir is not None:
            search_path.prepend(
                "command-line", f"file://{user_dir}", anchor=SearchPathQuery(provider="schema")
            )
        Hydra.create_main_hydra2(task_name="regbench", config_search_path=search_path)
        yield
    finally:
        GlobalHydra.instance().clear()
        if callers is not None:
            GlobalHydra.instance().initialize(callers)


@contextmanager
def _hydra_errors(overrides: Sequence[str]) -> Iterator[None]:
    """Hydra's errors as one-line ConfigErrors; a ``hydra.searchpath`` folder that does not exist
    (only a warning in Hydra) is one too: its configs would silently be missing."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    refuse_unshown_characters(overrides)  # every composition of a user's overrides starts here
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    except Exception as exc:
        # Ctrl-C inside Hydra or OmegaConf can make their cleanup code fail in turn (an
        # UnboundLocalError, an AttributeError): it was still an interrupt.
        if _interrupted(exc):
            raise KeyboardInterrupt from exc
        if isinstance(exc, HydraException | OmegaConfBaseException):
            raise ConfigError(_one_line(exc, overrides)) from exc
        cycle = _defaults_cycle(exc) if isinstance(exc, RecursionError) else None
        if cycle is not None:
            raise ConfigError(_cycle_message(cycle)) from exc
        raise
    for warning in caught:
        missing = re.search(r"provider=(.*), path=(.*) is not available", str(warning.message))
        if missing:
            raise ConfigError(
                f"hydra.searchpath: {missing.group(2)} is not a folder (or package) of configs; "
                f"give existing folders, e.g. 'hydra.searchpath=[file:///abs/myconfigs]'"
            )
        # Anything else goes on as it came, through the caller's warning filters.
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while a KeyboardInterrupt was being handled."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False


def _cycle_message(cycle: list[str]) -> str:
    if len(cycle) == 2:
        return (
            f"config {cycle[0]} includes itself in its defaults list ({cycle[0]} -> {cycle[0]}); "
            f"remove that entry"
        )
    return (
        f"configs include each other in their defaults lists: {' -> '.join(cycle)}; remove "
        f"one of these entries"
    )


def _defaults_cycle(exc: RecursionError) -> list[str] | None:
    """``[rec, rec]`` (``[data/a, data/b, data/a]``): the configs Hydra's defaults tree was
    expanding, read from the frames of its recursion, up to the first one that repeats; None
    when the recursion was not in a defaults list."""
    import traceback

    path: list[str] = []
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        root = frame.f_locals.get("root") if frame.f_code.co_name == DEFAULTS_FRAME else None
        node = getattr(root, "node", None)
        name = node.get_config_path() if node is not None else None
        if name is None or name == "_dummy_empty_config_":  # Hydra's virtual root
            continue
        if name in path:
            return [*path[path.index(name) :], name]
        path.append(name)
    return None


# The function of Hydra's defaults list that recurses into each config's defaults.
DEFAULTS_FRAME = "_create_defaults_tree_impl"


def compose(overrides: Sequence[str]) -> dict[str, Any]:
    """Compose the primary config with ``overrides`` (as typed by users) into a plain dict."""
    refuse_hydra_keys(overrides)
    from hydra import compose as hydra_compose
    from omegaconf import OmegaConf, open_dict

    with _hydra_errors(overrides), regbench_configs():
        name = current_search().config_name
        cfg = hydra_compose(name, overrides=list(overrides), return_hydra_config=True)
        with open_dict(cfg):
            hydra = cfg.pop("hydra")
        refuse_hydra_settings(OmegaConf.to_container(hydra, resolve=False))  # type: ignore[arg-type]
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def refuse_hydra_settings(hydra: dict[str, Any]) -> None:
    """The same refusal as refuse_hydra_keys for a config file (a user's experiment or primary
    config) that sets the run folder or the working folder: it would do nothing for one run."""
    if hydra["job"].get("chdir"):
        raise ConfigError(
            "hydra.job.chdir: true (set in a config file) does nothing for one run: regbench "
            "never changes the working folder; remove it"
        )
    if hydra["run"]["dir"] != _hydra_default_run_dir():
        raise ConfigError(
            f"hydra.run.dir: {hydra['run']['dir']} (set in a config file) does nothing for one "
            f"run: regbench names the run folder <out_dir>/<name>/<timestamp>; set out_dir and "
            f"name instead"
        )


def _hydra_default_run_dir() -> str:
    """Hydra's own default ``hydra.run.dir``, read from Hydra's config package."""
    from importlib.resources import files

    import yaml

    text = (files("hydra.conf") / "hydra" / "output" / "default.yaml").read_text()
    return yaml.safe_load(text)["run"]["dir"]  # (the file is "# @package hydra")


# The one Hydra key a run reads: where else to look for configs.
RUN_HYDRA_KEYS = ("hydra.searchpath",)


def refuse_hydra_keys(overrides: Sequence[str]) -> None:
    """Hydra's other keys do nothing for one run (regbench writes its own run folder and never
    changes the working folder), so instead of silently ignoring them, say where they belong."""
    refuse_unshown_characters(overrides)  # first: the messages below show the key
    for item in overrides:
        key = override_key(item)
        if key in RUN_HYDRA_KEYS:
            continue
        if key.startswith(("hydra.run.", "hydra.job.chdir")):
            raise ConfigError(
                f"{key} does nothing for one run: regbench names the run folder "
                f"<out_dir>/<name>/<timestamp> (choose with out_dir=... name=...), where rerun, "
                f"compare and report find it, and never changes the working folder"
            )
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            raise ConfigError(
                f"{key} does nothing for one run: regbench writes the run folder under out_dir "
                f"(out_dir=..., name=...) and never changes the working folder; Hydra's "
                f"launchers and sweepers go with `regbench sweep`"
            )


def load_settings(overrides: Sequence[str]) -> Settings:
    composed = compose(overrides)
    try:
        return validate(composed)
    except ConfigError as exc:
        raise ConfigError(_missing_group(overrides) or str(exc)) from exc


def _missing_group(overrides: Sequence[str]) -> str | None:
    """``+experiment=foo`` with no ``experiment`` group in the search path adds a plain key
    ``experiment: foo`` (which validation then refuses): say that the group is missing."""
    for item in overrides:
        key = item.split("=", 1)[0]
        group = key.lstrip("+")
        if key.startswith("+") and "." not in key and group not in group_options(overrides):
            return (
                f"no config group '{group}' in the search path for {item}; put your "
                f"configs in a folder (e.g. myconfigs/{group}/NAME.yaml) and add "
                f"--config-dir myconfigs (see `regbench configs`)"
            )
    return None


# ----------------------------------------------------------------------------- Hydra's flags
def config_text(
    overrides: Sequence[str],
    kind: str,
    package: str | None = None,
    resolve: bool = False,
    multirun: bool = False,
) -> str:
    """What a Hydra app's ``--cfg job|hydra|all [--package P] [--resolve]`` prints: the config
    for one run, or with ``multirun`` the config a sweep starts from (``multirun.yaml``'s)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import Container, OmegaConf

    if not multirun:
        refuse_hydra_keys(overrides)
    with _hydra_errors(overrides), regbench_configs():
        hydra = GlobalHydra.instance().hydra
        if multirun:
            cfg = multirun_config(overrides)
        else:
            name = current_search().config_name
            cfg = hydra.compose_config(name, list(overrides), run_mode=RunMode.RUN)
        with _hydra_config_set(cfg):
            OmegaConf.set_readonly(cfg.hydra, None)
            cfg = hydra.get_sanitized_cfg(cfg, kind)
            if package in (None, "_global_"):
                return OmegaConf.to_yaml(cfg, resolve=resolve)
            chosen = OmegaConf.select(cfg, package)
            if chosen is None:
                raise ConfigError(f"--package {package}: no such key in the {kind} config")
            if not isinstance(chosen, Container):
                return f"{chosen}\n"
            return f"# @package {package}\n" + OmegaConf.to_yaml(chosen, resolve=resolve)


def info_text(overrides: Sequence[str], what: str, multirun: bool = False) -> str:
    """What a Hydra app's ``--info [all|config|defaults|defaults-tree|plugins|searchpath]``
    prints (Hydra's own code writes it), for one run or a sweep's multirun."""
    import io
    from contextlib import redirect_stdout

    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    if not multirun:
        refuse_hydra_keys(overrides)
    mode = RunMode.MULTIRUN if multirun else RunMode.RUN
    extra = SWEEP_HYDRA_OVERRIDES if multirun else ()
    name = current_search().config_name
    text = io.StringIO()
    # Hydra logs it through a handler on sys.stdout that it adds to the root logger.
    with _hydra_errors(overrides), regbench_configs(), preserved_logging(), redirect_stdout(text):
        GlobalHydra.instance().hydra.show_info(what, name, [*overrides, *extra], run_mode=mode)
    return text.getvalue()


@contextmanager
def _hydra_config_set(cfg: Any) -> Iterator[None]:
    """HydraConfig set to ``cfg`` (``${hydra:...}`` resolves from it), the caller's after."""
    from hydra.core.hydra_config import HydraConfig

    before = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(cfg)
    try:
        yield
    finally:
        HydraConfig.instance().cfg = before


def complete_override(words: Sequence[str], incomplete: str) -> list[str]:
    """Hydra's own completion of the override being typed (``mod`` -> ``model=``, ``model=r``
    -> ``model=regression``, ``+experiment=`` -> the experiments, keys of the composed config),
    after ``words`` (the overrides before it); nothing when the line does not compose."""
    from hydra._internal.core_plugins.bash_completion import BashCompletion
    from hydra.core.global_hydra import GlobalHydra

    try:
        with regbench_configs(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            completion = BashCompletion(GlobalHydra.instance().config_loader())
            line = " ".join([*words, incomplete])
            return completion._query(current_search().config_name, line)
    except Exception:  # completion never breaks the shell; a bad line completes to nothing
        return []


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
    # --config-dir/--config-name as Hydra's own flags: Hydra builds the same search path as
    # regbench_configs, and launchers in other processes get configs composed from it.
    where = f"hydra.sweep.dir='{sweep_dir.resolve()}'"
    argv = ["regbench", "--multirun", *hydra_flags(), *overrides, where]
    saved_argv, saved_full_error = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = [*argv, *SWEEP_HYDRA_OVERRIDES]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # raise errors to us instead of printing and exiting
    try:
        with preserved_logging():
            entry()
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_one_line(exc, overrides)) from exc
    finally:
        sys.argv = saved_argv
        if saved_full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full_error


@dataclasses.dataclass(frozen=True)
class SweepGrid:
    """A sweep expanded in this process: each job's overrides and composed config, in Hydra's
    order, and the multirun config Hydra's own sweeper would save as ``multirun.yaml``."""

    jobs: list[tuple[tuple[str, ...], dict[str, Any]]]
    multirun_config: Any  # a DictConfig, hydra node included
    empty: list[str]  # sweep overrides that give no value (why a grid has no jobs)


def expand_sweep(
    overrides: Sequence[str], progress: Callable[[int, int], None] | None = None
) -> SweepGrid:
    """Expand sweep ``overrides`` (``a=1,2``, ``range()``, ``choice()``, ``glob()``) into jobs the
    way a multirun does, without running one: the multirun config is composed once (which also
    checks launcher overrides such as ``hydra/launcher=joblib``), its task overrides are parsed
    and crossed by Hydra's basic sweeper, and each job is composed as the launcher would (by
    :class:`JobComposer`). ``progress(done, total)`` hears of each job composed."""
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    with _hydra_errors(overrides), regbench_configs():
        loader = GlobalHydra.instance().config_loader()
        master = multirun_config(overrides, loader)
        _refuse_file_launcher(master, overrides)
        cells, empty = _cross(master, loader)
        # Each job as Hydra's launchers compose it: the invocation's hydra overrides (its
        # hydra.searchpath among them) and the job's own.
        composer = JobComposer(loader, OmegaConf.to_container(master.hydra.overrides.hydra))
        jobs = []
        for cell in cells:
            jobs.append((tuple(cell), composer.compose(cell)))
            if progress is not None:
                progress(len(jobs), len(cells))
    return SweepGrid(jobs, master, empty)


class JobComposer:
    """A sweep's jobs composed as Hydra's launchers compose them (``hydra.compose`` with the
    invocation's hydra overrides and the job's own), inside :func:`regbench_configs`.

    Hydra composes in two steps: the defaults tree (the configs that the primary config and
    the group overrides such as ``model=mlp`` or ``+experiment/penalty=l1`` choose, read from
    their yaml files and merged), then the other overrides (``seed=3``, ``dropout=0.5``) applied
    to the merged config. The first step is nearly all of the cost (about 0.15 s a job: a
    1,000-job grid planned in minutes) and the same for every job that chooses the same configs,
    so it is done once per choice (``reuse_trees``; False composes every job from scratch, as a
    reference) and each job applies its own overrides, with Hydra's own code, to a copy."""

    def __init__(self, loader: Any, hydra_overrides: Sequence[str], reuse_trees: bool = True):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self.hydra_overrides = list(hydra_overrides)
        self.reuse_trees = reuse_trees
        self.parser = OverridesParser.create()
        # The repository Hydra asks which keys are config groups (hydra.searchpath included).
        _, self.repo = loader._parse_overrides_and_create_caching_repo(
            current_search().config_name, self.hydra_overrides
        )
        self.trees: dict[tuple[str, ...], Any] = {}
        # A grid repeats each override in many jobs (seed=3 in every cell with seed 3): each
        # is parsed, and its kind found, once.
        self.parsed: dict[str, tuple[Any, bool]] = {}

    def compose(self, cell: Sequence[str]) -> dict[str, Any]:
        """The job ``cell``'s config as a plain dict, resolved."""
        import copy

        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from omegaconf import OmegaConf

        if not self.reuse_trees:
            return _compose_job([*self.hydra_overrides, *cell])
        parsed = [self._parse(item) for item in cell]
        choices = tuple(o.input_line for o, chooses in parsed if chooses)
        if choices not in self.trees:
            self.trees[choices] = _compose_tree([*self.hydra_overrides, *choices])
        cfg = copy.deepcopy(self.trees[choices])
        values = [o for o, chooses in parsed if not chooses]
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)  # Hydra's own second step
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]

    def _parse(self, item: str) -> tuple[Any, bool]:
        """The override ``item`` parsed, and whether it chooses configs."""
        if item not in self.parsed:
            (override,) = self.parser.parse_overrides([item])
            self.parsed[item] = (override, self._chooses_configs(override))
        return self.parsed[item]

    def _chooses_configs(self, override: Any) -> bool:
        """Hydra's own split of overrides (defaults_list.Overrides): one whose key is a config
        group (and whose value is not a dict) chooses configs; Hydra's own keys go with them."""
        if override.is_hydra_override():
            return True
        group = self.repo.group_exists(override.key_or_group)
        return group and not isinstance(override.value(), dict)


def _refuse_file_launcher(master: Any, overrides: Sequence[str]) -> None:
    """regbench picks the launcher from the command line (``hydra/launcher=...``); one chosen in
    a config file (an experiment's ``override /hydra/launcher: joblib``) would be ignored."""
    chosen = master.hydra.runtime.choices.get("hydra/launcher")
    named = any(override_key(o) == "hydra/launcher" for o in overrides)
    if chosen not in (None, "basic") and not named:
        raise ConfigError(
            f"hydra/launcher: {chosen} is chosen in a config file; name the launcher on the "
            f"command line instead (hydra/launcher={chosen}), where regbench sweep looks for it"
        )


def multirun_config(overrides: Sequence[str], loader: Any = None) -> Any:
    """The config a multirun of ``overrides`` starts from (hydra node included), as Hydra's
    sweeper saves it in ``multirun.yaml``; inside :func:`regbench_configs`."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    loader = loader or GlobalHydra.instance().config_loader()
    return loader.load_configuration(
        current_search().config_name,
        [*overrides, *SWEEP_HYDRA_OVERRIDES],
        run_mode=RunMode.MULTIRUN,
    )


def load_multirun_config(overrides: Sequence[str]) -> Any:
    """:func:`multirun_config` on its own, Hydra's errors as one line: composing it checks the
    fixed overrides and the hydra/sweeper, hydra.sweeper.* ones. Searches (regbench/search.py)
    plan from it."""
    with _hydra_errors(overrides), regbench_configs():
        return multirun_config(overrides)


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
    from omegaconf import OmegaConf

    return OmegaConf.to_container(_compose_tree(cell), resolve=True)  # type: ignore[return-value]


def _compose_tree(overrides: Sequence[str]) -> Any:
    """Hydra's composition of ``overrides`` (inside an initialized Hydra context), without its
    hydra node: a DictConfig, unresolved."""
    from hydra import compose as hydra_compose

    return hydra_compose(current_search().config_name, overrides=list(overrides))


def save_multirun_config(multirun_config: Any, sweep_dir: Path) -> None:
    """Write ``multirun.yaml`` as Hydra's sweeper does, for sweeps that run without Hydra's
    launchers: the record of the latest invocation's config and overrides."""
    from omegaconf import OmegaConf, open_dict

    from regbench.core.rundir import atomic_text

    with open_dict(multirun_config):
        multirun_config.hydra.sweep.dir = str(sweep_dir.resolve())
    # OmegaConf.save's text, replacing the file (never writing through a link planted there).
    atomic_text(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(multirun_config))


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


def _searchpath_only(overrides: Sequence[str]) -> list[str]:
    """The overrides that say where configs are (the rest may be what failed to compose)."""
    return [o for o in overrides if o.split("=", 1)[0] == "hydra.searchpath"]


def _hydra_key_hint(key: str, overrides: Sequence[str]) -> str:
    """A ``hydra.*`` key Hydra's config lacks (a plugin's option such as
    ``hydra.launcher.ray.init.num_cpus``) is added with a ``+``, as in any Hydra app."""
    typed = next((o for o in overrides if override_key(o) == key), f"{key}=VALUE")
    launcher = next(
        (o.split("=", 1)[1] for o in overrides if override_key(o) == "hydra/launcher"), "basic"
    )
    return (
        f"{key} is not in Hydra's config (with hydra/launcher={launcher}); to add a key Hydra's "
        f"config lacks, write it with a +: +{typed.lstrip('+~')}"
    )


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
    primary = re.search(r"Cannot find primary config '([^']*)'", text)
    if primary:
        return (
            f"--config-name {primary.group(1)}: no {primary.group(1)}.yaml in the config search "
            f"path (regbench's configs, --config-dir, hydra.searchpath; see --info searchpath)"
        )
    missing = re.search(r"Could not find '([\w/]+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        if group.startswith("hydra/"):
            hint = _plugin_hint(group, option)
            return f"unknown {group} '{option}'; is its Hydra plugin installed? {hint}"
        options = group_options(_searchpath_only(overrides)).get(group, [])
        return f"unknown {group} '{option}'; available: {', '.join(options)}"
    unknown = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Key '([^']+)' is not in struct", text
    )
    if unknown:
        key = unknown.group(1)
        if key in group_options(_searchpath_only(overrides)):  # a group not in the defaults list
            typed = next((o for o in overrides if o.split("=", 1)[0] == key), f"{key}=NAME")
            return f"{key} is a config group that is added, not overridden: write +{typed}"
        if key.startswith("hydra."):
            return _hydra_key_hint(key, overrides)
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
