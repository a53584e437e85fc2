"""The Python API for scripts and notebooks: the same steps as the CLI (regbench.workflow, which
both call), returning objects where the CLI prints.

>>> import regbench
>>> result = regbench.run(["model=regression", "dropout=0.5", "seed=1"])
>>> result.run_dir, result.summary.final["test_loss"]
>>> swept = regbench.sweep(["model=regression", "dropout=0,0.5", "seed=1,2,3"])
>>> swept.comparison                                # the comparison table (pandas), best first
>>> swept.runs.final().groupby("dropout")["test_loss"].mean()  # final rows
>>> swept.figures["loss_curves"]                    # a matplotlib Figure; a notebook shows it
>>> regbench.compare("outputs/sweeps/x", baseline="dropout=0").table  # as `regbench compare`

Every call leaves the caller's process as it found it (``leaving_no_trace``): torch's threads
and flags, every RNG, the environment, the warning filters, logging and a running Hydra app's
globals; matplotlib's backend is never touched (figures are plain ``Figure`` objects, pyplot is
never imported). Calls from several threads take turns. Arguments of the wrong type are a
``regbench.UsageError`` naming the argument. Notices (a skipped file, failed jobs, a resumed run)
are WARNING records of the ``regbench`` logger: shown on stderr when logging is not set up,
silenced by ``logging.getLogger("regbench").setLevel(logging.ERROR)``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench import workflow
from regbench.core import log
from regbench.core.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from regbench.analysis.comparison import Comparison
    from regbench.analysis.expectations import Answer
    from regbench.analysis.frames import RunsFrame
    from regbench.core.progress import Reporter
    from regbench.sweeps.search import Trial
    from regbench.training.session import RunResult


def as_overrides(overrides: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """Overrides as the command line takes them: a list of ``key=value`` strings, or a dict
    (``{"dropout": 0.5, "model.hidden": [64, 32]}``). A bare string is refused: iterated, it
    would be its characters."""
    if isinstance(overrides, str):
        raise UsageError(
            f"overrides must be a list of key=value strings or a dict, not the string "
            f"{overrides!r}; e.g. regbench.run({overrides.split()!r})"
        )
    if isinstance(overrides, Mapping):
        return [f"{key}={_value(value)}" for key, value in overrides.items()]
    words = _items("overrides", overrides, "key=value strings or a dict")
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise UsageError(
                f"overrides[{i}] is {word!r} ({type(word).__name__}); each override is a "
                f"key=value string, e.g. 'dropout=0.5'"
            )
    return words


def _value(value: Any) -> str:
    """A Python value in Hydra's override syntax (lists as [a,b], None as null)."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _items(name: str, given: Any, what: str) -> list[Any]:
    """``given`` as a list; a value that is not a list (or a bare string, which would be
    iterated as its characters) is a UsageError naming the argument."""
    if isinstance(given, str | bytes) or not isinstance(given, Iterable):
        raise UsageError(f"{name} must be a list of {what}, not {given!r}; e.g. {name}=[...]")
    return list(given)


def _names(name: str, given: Sequence[str]) -> list[str]:
    """A list of names (metrics, keys): ``metrics="test_loss"`` is refused, not split."""
    names = _items(name, given, "names")
    wrong = [n for n in names if not isinstance(n, str)]
    if wrong:
        raise UsageError(f"{name} must be a list of names (strings); {wrong[0]!r} is not one")
    return names


def _folder(name: str, given: Any) -> Path:
    if not isinstance(given, str | os.PathLike):
        raise UsageError(f"{name} must be a folder (a str or a Path), not {given!r}")
    return Path(given)


def _folders(name: str, given: Any) -> list[Path]:
    """A folder or a list of folders, as Paths."""
    if isinstance(given, str | os.PathLike):
        return [Path(given)]
    if isinstance(given, bytes) or not isinstance(given, Iterable):
        raise UsageError(
            f"{name} must be a folder (a str or a Path) or a list of them, not {given!r}"
        )
    return [_folder(f"{name}[{i}]", folder) for i, folder in enumerate(given)]


def _texts(**options: Any) -> None:
    """Options that are a string or None (at, baseline, ...): anything else is refused here,
    not deep inside as an AttributeError."""
    for name, value in options.items():
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{name} must be a string, not {value!r}")


def _reporter(quiet: bool) -> Reporter:
    from regbench.core.progress import Reporter, RichReporter

    return Reporter() if quiet else RichReporter()


def run(
    overrides: Sequence[str] | Mapping[str, Any] = (),
    *,
    quiet: bool = True,
    config_dir: str | Path | None = None,
    config_name: str | None = None,
) -> RunResult:
    """Train one model, exactly like ``regbench run OVERRIDES... [--config-dir DIR]
    [--config-name NAME]``.

    Returns a RunResult: ``run_dir`` (a RunDir; ``.path`` is the folder), ``summary`` (the typed
    summary.json) and ``rows`` (the metrics rows). Bad overrides raise ``regbench.ConfigError``.
    The caller's torch threads, determinism flags, RNG states and matplotlib backend are as
    they were afterwards; runs in several threads take turns.
    """
    overrides = as_overrides(overrides)
    _texts(config_name=config_name)
    config_dir = None if config_dir is None else _folder("config_dir", config_dir)
    # Around the imports too: a library may draw from python's RNG when first imported.
    with leaving_no_trace():
        return workflow.run(overrides, _reporter(quiet), config_dir, config_name)


def load_runs(*paths: str | Path) -> RunsFrame:
    """A tidy table of every run at or under ``paths``: one row per run and metrics row.

    Columns: ``run`` (folder), ``status``, every config key flattened with dots
    (``model.name``, ``data.root``, ``dropout``, ...), then the metric columns of metrics.csv
    (with weights.csv's ``weights_*`` summaries where a run has them). It is the same run table
    ``compare`` groups (regbench.analysis.runs). A DataFrame with two more methods, which take
    one row per run: ``final()`` (each run's last evaluation) and ``selected(metric)`` (its
    best by ``metric``), so ``runs.final().groupby("dropout")["test_loss"].mean()`` gives the
    final numbers ``compare`` reports.
    """
    folders = _folders("paths", list(paths))
    with leaving_no_trace(training=False):
        from regbench.analysis.frames import RunsFrame
        from regbench.analysis.runs import find_runs, records

        # Notebooks usually sit next to outputs/, regbench's default out_dir.
        return RunsFrame.from_records(records(find_runs(folders or [Path("outputs")])))


def sweep(
    overrides: Sequence[str] | Mapping[str, Any],
    *,
    dir: str | Path | None = None,
    stacked: bool = False,
    stack_memory: float | None = None,
    dry_run: bool = False,
    tex: bool = False,
    objective: str | None = None,
    at: str | None = None,
    select: str | None = None,
    quiet: bool = True,
    config_dir: str | Path | None = None,
    config_name: str | None = None,
    confirm: int | None = None,
) -> SweepOutcome:
    """Run a grid or a search, exactly like ``regbench sweep OVERRIDES... [--dir DIR]
    [--stacked] ...``: the same job folders, sweep.json and comparison files, resumed or grown
    when ``dir`` is an earlier sweep's folder. A dict takes Hydra's sweep syntax as strings
    (``{"dropout": "0,0.5", "seed": "range(1,4)"}``); ``hydra/launcher=...`` overrides work as on
    the command line, and ``hydra/sweeper=optuna`` makes it a search of the mean ``objective``
    over each trial's seeds, read at ``at``. The other options are the command's:
    ``stack_memory`` is ``--stack-memory`` (MiB), ``tex`` ``--tex``, ``select`` ``--select``,
    ``confirm`` ``--confirm`` (its comparison in ``<sweep_dir>/confirm/``).

    Returns a SweepOutcome: ``sweep_dir``, ``statuses``, ``runs`` and ``comparison`` (pandas),
    ``figures`` (matplotlib), and for a search its ``trials`` and ``best`` trial; a dry run's
    ``planned`` says what each job would do. Failed jobs are a note on the ``regbench`` logger,
    not an exception: the outcome still holds the jobs that worked.
    """
    overrides = as_overrides(overrides)
    _texts(objective=objective, at=at, select=select, config_name=config_name)
    dir = None if dir is None else _folder("dir", dir)
    config_dir = None if config_dir is None else _folder("config_dir", config_dir)
    options = {"dir": dir, "stacked": stacked, "stack_memory": stack_memory, "tex": tex}
    options |= {"objective": objective, "at": at, "select": select, "dry_run": dry_run}
    options |= {"confirm": confirm}
    with leaving_no_trace():
        swept = workflow.sweep(
            overrides,
            quiet=quiet,
            config_dir=config_dir,
            config_name=config_name,
            listener=_API,
            **options,
        )
    outcome = SweepOutcome.of(swept)
    if swept.failed:
        log.note(
            f"{len(swept.failed)} of {len(outcome.statuses)} jobs failed (their summary.json "
            f"says why; regbench.sweep(..., dir={str(outcome.sweep_dir)!r}) retries them)"
        )
    return outcome


class _Listener(workflow.Listener):
    """The API's: silent, and naming options as Python does (``stacked=True``)."""

    def option_name(self, name: str) -> str:
        return f"{name}=True" if name == "stacked" else name


_API = _Listener()


@dataclass
class SweepOutcome:
    """A sweep that ran: its folder, each job's status, and its runs, comparison and figures
    (the comparison as the sweep made it; the runs read from the folder when first asked for).
    A search's outcome also holds its trials, in order, and the best one."""

    sweep_dir: Path
    statuses: dict[str, str]  # job folder name -> status after this call
    trials: list[Trial] = field(default_factory=list)  # a search's: number, params, jobs, value
    best: Trial | None = None  # a search's trial with the best value (None: no trial has one)
    planned: dict[str, str] = field(default_factory=dict)  # a dry run's: job folder -> action
    swept: Comparison | None = None  # the comparison the sweep wrote (None: nothing compared)
    study: Any = None  # a hydra/sweeper=optuna search's optuna.Study (None otherwise)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for status in (self.planned or self.statuses).values():
            counts[status] = counts.get(status, 0) + 1
        said = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no jobs"
        best = f", best trial {self.best.number}" if self.best is not None else ""
        return f"<SweepOutcome: {self.sweep_dir}: {said}{best}>"

    @classmethod
    def of(cls, swept: workflow.SweepRun) -> SweepOutcome:
        trials, search = swept.trials, swept.plan.search
        valued = [t for t in trials if t.value is not None]
        pick = max if search is not None and search.direction == "maximize" else min
        best = pick(valued, key=lambda t: t.value) if valued else None
        planned = {} if swept.ran else _planned(swept.plan)
        comparison = swept.compared.comparison if swept.compared else None
        study = getattr(swept.plan.launcher, "study", None)
        return cls(swept.sweep_dir, swept.statuses, trials, best, planned, comparison, study)

    @cached_property
    def runs(self) -> RunsFrame:
        """The jobs' runs as ``regbench.load_runs`` gives them: a row per run and evaluation
        (``.final()``: a row per run)."""
        return load_runs(self.sweep_dir)

    @property
    def comparison(self) -> pd.DataFrame:
        """The comparison table of the sweep (comparison.csv's rows), best first."""
        return self.compared.table

    @property
    def figures(self) -> dict[str, Figure]:
        return self.compared.figures

    @cached_property
    def compared(self) -> ComparisonResult:
        """The sweep's comparison as it wrote it (a search's: of its objective); ``compare``
        for other options."""
        if self.swept is not None:
            return ComparisonResult(self.swept, (self.sweep_dir,))
        return self.compare()

    def compare(self, **options: Any) -> ComparisonResult:
        """``regbench.compare(sweep_dir, **options)`` (metrics, at, select, over, baseline, ci)."""
        return compare(self.sweep_dir, **options)


def _planned(plan: workflow.SweepPlan) -> dict[str, str]:
    """What a sweep would do with each job folder (a search plans its jobs as it goes: {})."""
    from regbench.sweeps.plan import decide

    return {key: decide(state).value for key, state in plan.prepared.states.items()}


def compare(
    paths: str | Path | Sequence[str | Path],
    *,
    metrics: Sequence[str] = (),
    at: str | None = None,
    select: str | None = None,
    over: Sequence[str] = (),
    baseline: str | None = None,
    ci: str = "t",
    margin: float | None = None,
    within: str | None = None,
    out: str | Path | None = None,
    tex: bool = False,
    plots: bool = True,
) -> ComparisonResult:
    """The comparison ``regbench compare PATHS`` prints and draws: ``.table`` (a DataFrame, a
    row per group), ``.verdicts``, ``.notes``, ``.figures`` and ``.runs``; ``.comparison`` holds
    the objects (groups, statistics, baseline differences). The options are the command's
    (``--metric``, ``--at``, ``--select``, ``--over``, ``--baseline``, ``--ci``, ``--margin``;
    ``within`` compares each group with the baseline of its own value of a key); left out, they
    come from the runs' experiment when they were swept for one, else the defaults. Nothing is
    written unless ``out`` names a folder for comparison.md/.csv (``tex``: .tex; ``plots``: the
    figures), and no global state (matplotlib backend, working folder) changes. Bad options
    raise ``regbench.RegbenchError`` (a UsageError) with the command's message.
    """
    folders = _folders("paths", paths)
    metrics, over = _names("metrics", metrics), _names("over", over)
    _texts(at=at, select=select, baseline=baseline, ci=ci, within=within)
    if tex and out is None:
        raise UsageError("tex=True writes comparison.tex: give out=FOLDER")
    options = {"at": at, "select": select, "over": over, "baseline": baseline, "ci": ci}
    options |= {"margin": margin, "within": within, "tex": tex, "plots": plots}
    target = None if out is None else _folder("out", out)
    with leaving_no_trace(training=False):
        compared = workflow.compare_and_write(folders, target, metrics=metrics, **options)
    return ComparisonResult(compared.comparison, tuple(folders))


@dataclass
class ComparisonResult:
    """A comparison in the forms a notebook uses; a notebook cell shows it as its Markdown
    table."""

    comparison: Comparison
    paths: tuple[Path, ...]

    def __repr__(self) -> str:
        groups = len(self.comparison.rows)
        over = ", ".join(self.comparison.varying) or "nothing"
        paths = ", ".join(str(p) for p in self.paths)
        return f"<ComparisonResult: {groups} groups over {over}, from {paths}>"

    @cached_property
    def table(self) -> pd.DataFrame:
        """comparison.csv as a DataFrame: a row per group, best first, numbers in full; key
        columns typed (``dropout`` a float column), ``seeds`` a list of ints, seeds-needed
        counts nullable integers ("Int64": <NA> where there is none)."""
        from regbench.analysis.frames import comparison_table

        return comparison_table(self.comparison)

    @property
    def verdicts(self) -> list[str]:
        """One sentence per group on the main metric against the baseline."""
        from regbench.analysis.tables import verdicts

        return verdicts(self.comparison)

    @property
    def answer(self) -> Answer | None:
        """The experiment's claim answered from its expectations (``.verdict``: supported,
        partly or not shown; ``.line``; ``.findings``, one per expectation), or None."""
        from regbench.analysis.expectations import answer

        return answer(self.comparison)

    @property
    def notes(self) -> list[str]:
        return list(self.comparison.notes)

    @cached_property
    def runs(self) -> RunsFrame:
        return load_runs(*self.paths)

    @cached_property
    def figures(self) -> dict[str, Figure]:
        """The comparison figures that apply: ``loss_curves``, ``metrics`` and, when exactly two
        keys vary, ``heatmap``. Plain Figures: ``fig.savefig(...)``, or show one in a cell."""
        with leaving_no_trace(training=False):  # matplotlib's first import adds its filters
            from regbench.analysis.compare_plots import figures

            made = figures(self.comparison)
        drawn = {}
        for file, fig in made.items():
            fig.tight_layout()
            drawn[file.removeprefix("comparison_").removesuffix(".png")] = fig
        return drawn

    def _repr_markdown_(self) -> str:
        from regbench.analysis.tables import markdown

        return markdown(self.comparison)


@contextlib.contextmanager
def leaving_no_trace(*, training: bool = True) -> Iterator[None]:
    """Whatever a call changes in the process, put back: the environment (e.g. MLflow's
    file-store switch, torch's TORCHINDUCTOR_CACHE_DIR), the warning filters (libraries add
    theirs when first imported) and, around ``training``, torch's threads and flags and every
    RNG (seeding.preserved_globals), logging (Hydra's launchers reconfigure it) and a running
    Hydra app's globals. Calls in several threads take turns (workflow.one_at_a_time): each
    puts back what it found, which only holds if no other call changes it meanwhile."""
    from regbench.core.seeding import preserved_globals, preserved_logging

    with contextlib.ExitStack() as stack:
        # The turn first and the environment next: whatever the other guards do on their way
        # in and out (importing torch, restoring its flags) is inside both.
        stack.enter_context(workflow.one_at_a_time())
        stack.enter_context(_kept_environment())
        stack.enter_context(warnings.catch_warnings())
        stack.enter_context(log.notices_logged())  # a skipped file: a record, not a warning
        if training:
            stack.enter_context(preserved_globals())
            stack.enter_context(preserved_logging())
            stack.enter_context(_hydra_set_aside())
        yield


@contextlib.contextmanager
def _kept_environment() -> Iterator[None]:
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def _hydra_set_aside() -> Iterator[None]:
    """A running Hydra app's GlobalHydra and HydraConfig, set aside while regbench composes its
    own configs and runs Hydra's multirun (which refuses to start beside another and clears
    the global when done), and put back after."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    callers = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    hydra_config = HydraConfig.instance().cfg
    GlobalHydra.instance().clear()
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        if callers is not None:
            GlobalHydra.instance().initialize(callers)
        HydraConfig.instance().cfg = hydra_config
