"""The trials of searches: a sampler proposes configurations (``hydra/sweeper=optuna``) over
regbench's job folders, with seeds as replicates.

A grid is planned upfront (regbench/sweeps/plan.py); a search cannot be, since its trials come
from the sampler as it goes. Each trial runs its configuration once per seed as ordinary sweep
jobs (``<hash>-seed=<N>`` folders in the sweep folder, recorded in sweep.json, through the
sequential or the stacked launcher), and its value is the mean of the objective over the seeds.

``hydra/sweeper=optuna`` is regbench's own: Optuna's ask-and-tell API in this process
(regbench/sweeps/optuna_search.py), with the space in Hydra's override grammar and the plugin's
keys (configs/hydra/sweeper/). Any other Hydra sweeper a user installs runs through Hydra's
multirun, with :meth:`SearchLauncher.trial` as its task.

Before anything trains, the sweeper's config and the fixed overrides are composed, and a job's
config is validated at both ends of every searched range and at every choice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.analysis.runs import load_run, parse_at, value_at
from regbench.compose.validate import check_selection_metric
from regbench.core.config import ConfigError
from regbench.core.errors import RegbenchError, UsageError
from regbench.core.jobs import Job, job_key
from regbench.core.metrics import Metric, undeclared
from regbench.core.overrides import override_key, override_pairs
from regbench.core.rundir import RunDir, Status
from regbench.figures.drawing import settle_all
from regbench.studies import study_class
from regbench.sweeps import plan as sweeps
from regbench.sweeps.sharing import claimed

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from regbench.core.config import Settings
    from regbench.stacked.launcher import EvaluationHook
    from regbench.sweeps.optuna_space import OptunaSettings

# (composed multirun config, the overrides without seed, the seeds, the objective, at) -> Search
OwnPlanner = Callable[[Any, Sequence[str], tuple[int, ...], Metric, str], "Search"]
DEFAULT_OBJECTIVE, DEFAULT_AT = "val_loss", "final"
# The sampler's seed when the user gives none: a constant, so that the same command always asks
# for the same trials (and a rerun with --dir finds them done).
DEFAULT_SAMPLER_SEED = 0
DIRECTIONS = ("minimize", "maximize")
RESULTS_FILE = "optimization_results.yaml"  # written by the Optuna sweeper into the sweep folder


def is_search(overrides: Sequence[str]) -> bool:
    """Whether ``overrides`` pick a sweeper other than Hydra's basic one (a grid)."""
    return any(
        override_key(item) == "hydra/sweeper" and item.split("=", 1)[-1] != "basic"
        for item in overrides
    )


def _is_sweeper_override(item: str) -> bool:
    key = override_key(item)
    return key in ("hydra/sweeper", "hydra.sweeper") or key.startswith("hydra.sweeper.")


# ----------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Search:
    """A checked search: what Hydra's multirun gets, and what each trial makes of it."""

    overrides: tuple[str, ...]  # for Hydra's multirun: the user's without seed, plus ours
    seeds: tuple[int, ...]  # every trial runs once per seed
    objective: str
    at: str
    direction: str  # minimize | maximize
    space: tuple[str, ...]  # the searched keys
    n_trials: int | None
    sampler: str  # how the sampler is seeded, for the reader
    multirun_config: Any  # the DictConfig multirun.yaml records
    checked: tuple[Settings, ...]  # configs validated before the search
    goal: Metric = field(default_factory=lambda: undeclared(DEFAULT_OBJECTIVE))  # its declaration
    optuna: OptunaSettings | None = None  # hydra/sweeper=optuna: regbench's own ask-and-tell
    runner: type[SearchLauncher] | None = None  # who runs the trials (None: Hydra's multirun)

    def record(self) -> dict[str, Any]:
        """What sweep.json's ``search`` entry says of this search, whichever sampler runs it."""
        return {
            "overrides": list(self.overrides),
            "seeds": list(self.seeds),
            "objective": self.objective,
            "at": self.at,
            "direction": self.direction,
        }

    def describe(self) -> str:
        trials = f"{self.n_trials} trials" if self.n_trials else "trials"
        seeds = ", ".join(map(str, self.seeds))
        return (
            f"{trials} over {', '.join(self.space)}, each run with seed {seeds}; objective: the "
            f"mean {self.objective} ({self.at}) over the seeds, {self.direction}d; {self.sampler}"
        )

    def prepare(self, sweep_dir: Path | None) -> sweeps.SweepResult:
        """The sweep as it starts: no jobs yet (they come with the trials); nothing is written."""
        sweep_dir = sweep_dir or sweeps.default_dir([Job(s) for s in self.checked])
        sweeps.check_sweep_dir(sweep_dir)
        return sweeps.SweepResult(sweep_dir, [], {}, {}, self.multirun_config)

    def launcher(self, stacked: bool = False, memory_budget: int | None = None) -> SearchLauncher:
        return (self.runner or SearchLauncher)(self, stacked, memory_budget)


def plan(
    overrides: Sequence[str],
    objective: str | None = None,
    at: str | None = None,
    own: Mapping[str, OwnPlanner] | None = None,
) -> Search:
    """Check a search before anything trains: options, seeds, the sweeper's config, the fixed
    overrides and the searched ranges. Every problem is one line. ``own``: the sweepers regbench
    runs itself (hydra/sweeper=optuna), by name, and what plans them from the composed config."""
    from regbench.compose import hydra as hydra_app

    sweeps.check_overrides([o for o in overrides if not _is_sweeper_override(o)])
    launchers = [o for o in overrides if sweeps.is_launcher_override(o)]
    if launchers:
        raise UsageError(
            f"a search runs its trials in this process, one after another; drop {launchers[0]} "
            f"(--stacked trains each trial's seeds together)"
        )
    at = at or DEFAULT_AT
    parse_at(at)
    seeds, rest = _split_seeds(overrides)
    composed = hydra_app.load_multirun_config(rest)
    sweeper = composed.hydra.sweeper
    if "seed" in (sweeper.get("params") or {}):
        raise UsageError("seed is searched in hydra.sweeper.params; seeds are replicates: seed=1,2")
    goal = _objective_metric(str(composed.model.name), objective)
    planner = (own or {}).get(composed.hydra.runtime.choices.get("hydra/sweeper"))
    if planner is not None:
        return planner(composed, rest, seeds, goal, at)
    objective = goal.name
    direction, direction_override = _direction(sweeper, rest, goal)
    sampler_override, sampler = _sampler_seed(sweeper)
    overrides_for_hydra = (*rest, *direction_override, *sampler_override)
    master = hydra_app.load_multirun_config(overrides_for_hydra)
    arguments = [*(f"{k}={v}" for k, v in (sweeper.get("params") or {}).items())]
    space, fixed = space_of([*arguments, *master.hydra.overrides.task])
    checked = check_corners(fixed, space)
    n_trials = sweeper.get("n_trials")
    return Search(
        overrides=overrides_for_hydra,
        seeds=seeds or (checked[0].seed,),
        objective=objective,
        goal=goal,
        at=at,
        direction=direction,
        space=tuple(space),
        n_trials=n_trials if isinstance(n_trials, int) else None,
        sampler=sampler,
        multirun_config=master,
        checked=tuple(checked),
    )


def _split_seeds(overrides: Sequence[str]) -> tuple[tuple[int, ...], list[str]]:
    """The replicate seeds (``seed=1,2,3``, ``'seed=range(1,4)'``) and the other overrides."""
    items = [o for o in overrides if override_key(o) == "seed"]
    rest = [o for o in overrides if override_key(o) != "seed"]
    if not items:
        return (), rest
    if len(items) > 1:
        raise UsageError(f"seed is given twice ({items[0]}, {items[1]}); give the seeds once")
    values = _values(items[0])
    if values is None:
        raise UsageError(
            f"{items[0]}: the seeds are replicates, not searched: give a list, seed=1,2,3 or "
            f"'seed=range(1,4)'"
        )
    try:
        seeds = tuple(int(v) for v in values)
    except ValueError:
        raise UsageError(f"{items[0]}: seeds are integers") from None
    if not seeds:
        raise UsageError(f"{items[0]} gives no seeds")
    if len(set(seeds)) < len(seeds):
        raise UsageError(f"{items[0]} repeats a seed; give each seed once")
    return seeds, rest


def _values(item: str) -> list[str] | None:
    """The values a list/range override gives (one for a plain value); None for an interval."""
    override = parse([item])[0]
    if not override.is_sweep_override():
        return [override.get_value_element_as_str()]
    if override.is_interval_sweep():
        return None
    return list(override.sweep_string_iterator())


def parse(items: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(list(items))
    except HydraException as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"cannot parse the overrides ({first}); write key=value") from exc


def _objective_metric(model: str, objective: str | None) -> Metric:
    """The objective's declaration: a validation metric with a direction (default: the study's
    primary validation metric). A test metric is refused: the best trial's value would be a
    maximum over trials of the very numbers it is reported on."""
    study = study_class(model)
    return check_selection_metric("--objective", objective or study.selection_metric(), study)


def _direction(
    sweeper: DictConfig, overrides: Sequence[str], goal: Metric
) -> tuple[str, list[str]]:
    """The objective's declared direction (as `regbench compare` ranks), and the override
    that gives it to the sweeper; a direction the user set must agree with it."""
    objective = goal.name
    wanted = DIRECTIONS[goal.direction == "max"]
    if "direction" not in sweeper:  # a sweeper without one: its own settings decide
        return wanted, []
    from omegaconf import ListConfig

    given = [o.split("=", 1)[1] for o in overrides if override_key(o) == "hydra.sweeper.direction"]
    configured = sweeper.direction  # Optuna's: an enum, or a list for several objectives
    if given:
        setting = given[-1]
    elif isinstance(configured, ListConfig):
        setting = f"[{','.join(getattr(d, 'name', str(d)) for d in configured)}]"
    else:
        setting = getattr(configured, "name", str(configured))
        if setting == DIRECTIONS[0]:  # the sweeper's default: not a choice the user made
            return wanted, [f"hydra.sweeper.direction={wanted}"]
    if setting not in DIRECTIONS:
        raise UsageError(
            f"hydra.sweeper.direction={setting}: a search has one objective (--objective); "
            f"give one of {', '.join(DIRECTIONS)}, or leave it out"
        )
    if setting != wanted:
        raise UsageError(
            f"hydra.sweeper.direction={setting} contradicts --objective {objective}, which is "
            f"{wanted}d (by its name); drop hydra.sweeper.direction"
        )
    return wanted, []


def _sampler_seed(sweeper: DictConfig) -> tuple[list[str], str]:
    """The override that seeds the sampler when the user did not, and a line saying how."""
    sampler = sweeper.get("sampler")
    if sampler is None or "seed" not in sampler:
        return [], "the sampler takes no seed (hydra.sweeper.sampler.seed)"
    if sampler.seed is not None:
        return [], f"sampler seed {sampler.seed}"
    return (
        [f"hydra.sweeper.sampler.seed={DEFAULT_SAMPLER_SEED}"],
        f"sampler seed {DEFAULT_SAMPLER_SEED} (the default; set hydra.sweeper.sampler.seed)",
    )


def space_of(arguments: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The searched keys with the values to check each at (both ends of a range or interval,
    every choice), and the fixed overrides."""
    from hydra.core.override_parser.types import ValueType

    space: dict[str, list[str]] = {}
    fixed: list[str] = []
    for override in parse(arguments):
        line = override.input_line
        if not override.is_sweep_override():
            fixed.append(line)
        elif override.value_type is ValueType.GLOB_CHOICE_SWEEP:
            raise UsageError(f"{line}: glob() is for grids; search a list: key=choice(a,b)")
        elif override.is_interval_sweep():
            # The ends are checked: a sampler may pick either.
            value = check_interval(override)
            space[override.get_key_element()] = [str(value.start), str(value.end)]
        else:
            space[override.get_key_element()] = check_values(override)
    if not space:
        raise UsageError(
            "the search has nothing to search; give a key a range, e.g. 'dropout=interval(0,0.5)' "
            "'weight_decay=tag(log,interval(1e-5,1e-2))'"
        )
    return space, fixed


def check_interval(override: Any) -> Any:
    """An interval a sampler can draw from: low below high, and above 0 on a log scale."""
    value, line = override.value(), override.input_line
    if not value.start < value.end:
        raise UsageError(f"{line}: an interval goes from low to high, e.g. interval(0.1,0.5)")
    if "log" in value.tags and value.start <= 0:
        raise UsageError(
            f"{line}: a log scale starts above 0, e.g. tag(log,interval(1e-5,{value.end:g}))"
        )
    return value


def check_values(override: Any) -> list[str]:
    """A list, choice() or range() with at least one value (range(3,3) has none)."""
    values = list(override.sweep_string_iterator())
    if not values:
        raise UsageError(
            f"{override.input_line} gives no value (a range stops before its end); "
            f"e.g. range(3,6) is 3, 4, 5"
        )
    return values


def check_corners(fixed: Sequence[str], space: Mapping[str, list[str]]) -> list[Settings]:
    """Validate a job's config with every searched key at its first value, and each other value
    of each key in turn: a bad key, type or bound is one line before any trial trains."""
    from regbench.compose.hydra import compose
    from regbench.compose.validate import validate

    first = {key: values[0] for key, values in space.items()}
    cells = [first, *({**first, key: v} for key, values in space.items() for v in values[1:])]
    checked = []
    for cell in cells:
        searched = [f"{k}={v}" for k, v in cell.items()]
        try:
            checked.append(validate(compose([*fixed, *searched])))
        except ConfigError as exc:
            raise ConfigError(f"search at {' '.join(searched)}: {exc}") from exc
    return checked


# ----------------------------------------------------------------------------- the launcher
class TrialFailed(RegbenchError):
    """A seed of the trial failed (an error, not a divergence): the sweeper counts the trial as
    failed, and stops unless hydra.sweeper.max_failure_rate allows it."""


class _Stop(BaseException):  # not an Exception, so that Hydra does not catch it
    """Carries an error that ends the whole search (a bad --objective, an edited job folder)
    out of Hydra's job and the sweeper's loop, which catch Exception."""

    def __init__(self, error: RegbenchError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Trial:
    number: int
    params: dict[str, str]
    jobs: list[str]  # job keys, one per seed
    value: float | None = None
    note: str = ""
    pruned_epoch: int | None = None  # the evaluation at which the pruner stopped its seeds

    def record(self) -> dict[str, Any]:
        """For sweep.json: a diverged trial's infinite value as "inf" (JSON has no infinity);
        pruned_epoch only for a pruned trial."""
        entry = dataclasses.asdict(self)
        if self.pruned_epoch is None:
            del entry["pruned_epoch"]
        if self.value is not None and not math.isfinite(self.value):
            entry["value"] = str(self.value)
        return entry


@dataclass
class SearchLauncher:
    """Runs the search through Hydra's multirun; each trial's seeds run as sweep jobs with the
    sequential launcher, or stacked together (``--stacked``)."""

    search: Search
    stacked: bool = False
    memory_budget: int | None = None
    trials: list[Trial] = field(default_factory=list)
    _prepared: sweeps.SweepResult | None = None
    _context: sweeps.LaunchContext | None = None

    def shares(self, sweep_dir: Path) -> str | None:
        """What processes running this search share its folder by; None: it keeps the folder
        to itself (a Hydra sweeper plugin's search, which has no storage regbench knows)."""
        return None

    def launch(self, prepared: sweeps.SweepResult, context: sweeps.LaunchContext) -> None:
        from regbench.compose import hydra as hydra_app

        self._prepared, self._context, self.trials = prepared, context, []
        record = self._record()
        record["search"] = {**self.search.record(), "trials": []}
        if self.search.n_trials:
            record["current"]["total"] = self.search.n_trials * len(self.search.seeds)
        try:
            with _optuna_quiet():
                hydra_app.multirun(self.trial, self.search.overrides, prepared.sweep_dir)
        except _Stop as stop:
            raise stop.error from None
        except TrialFailed as exc:  # the sweeper re-raises it past hydra.sweeper.max_failure_rate
            raise RegbenchError(
                f"{exc}; the search stops at a failed trial (hydra.sweeper.max_failure_rate=0.5 "
                f"lets it go on past some)"
            ) from exc
        except ValueError as exc:  # the sweeper's "No trials are completed yet."
            if any(t.value is not None for t in self.trials):
                raise
            raise RegbenchError("no trial completed: each one had a failed seed") from exc
        finally:
            self._update_record()
        self._show_best(prepared.sweep_dir)

    def trial(self, cfg: DictConfig) -> float:
        """Hydra's task for one trial: its seeds' jobs, then the mean objective over them.

        A diverged seed makes the trial's value the worst there is (inf when minimizing); a
        failed one raises TrialFailed, which the sweeper counts as a failed trial. Any other
        error stops the whole search at once (``_Stop`` passes through Hydra and the sweeper,
        which would otherwise record it as one more failed trial)."""
        from hydra.core.hydra_config import HydraConfig

        try:
            overrides = tuple(HydraConfig.get().overrides.task)
            params = {k: v for k, v in override_pairs(overrides) if k in self.search.space}
            label = " ".join(f"{k}={short(v)}" for k, v in params.items())
            jobs = [self._job(cfg, overrides, seed, label) for seed in self.search.seeds]
            trial = Trial(len(self.trials) + 1, params, [job.key for job in jobs])
            self.trials.append(trial)
            self._run(jobs)
            trial.value, trial.note = self._objective(jobs)
        except RegbenchError as exc:
            raise _Stop(exc) from exc
        self._update_record()
        self._say(trial, label)
        if trial.value is None:
            raise TrialFailed(f"trial {trial.number} ({label}): {trial.note}")
        return trial.value

    def _job(self, cfg: DictConfig, overrides: Sequence[str], seed: int, label: str) -> Job:
        from omegaconf import OmegaConf, open_dict

        from regbench.compose.validate import validate

        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.seed = seed  # as the override seed=N would, before interpolations resolve
        with_seed = (*overrides, f"seed={seed}")
        try:
            settings = validate(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
        except ConfigError as exc:
            raise ConfigError(f"trial {' '.join(with_seed)}: {exc}") from exc
        key = job_key(settings)
        folder = self._sweep().sweep_dir / key
        return Job(settings, with_seed, folder, key, f"{label} seed={seed}".strip())

    def _run(self, jobs: Sequence[Job], on_evaluation: EvaluationHook | None = None) -> None:
        """Record the trial's jobs in sweep.json, then carry them out as any sweep's jobs.
        With ``on_evaluation`` (a pruner) the seeds always train stacked, in lockstep, so that
        the pruner sees their mean at every evaluation."""
        prepared = self._sweep()
        keys = [job.key for job in jobs]
        # Another process sharing the folder (and the study) may train the same jobs: a
        # trial that repeats its configuration waits for them, then finds them done.
        with claimed(prepared.sweep_dir, keys, self._note):
            states = {job.key: sweeps.job_state(job.planned_folder()) for job in jobs}
            self._record_jobs(jobs, states)
            trial = sweeps.SweepResult(
                prepared.sweep_dir, list(jobs), states, {}, prepared.multirun_config
            )
            launcher: sweeps.Launcher = sweeps.choose_launcher((), self.stacked, self.memory_budget)
            if on_evaluation is not None:
                launcher = sweeps.StackedLauncher(self.memory_budget, on_evaluation)
            launcher.launch(trial, self._ctx())
            settle_all()  # the sampler reads the trial's summaries: their figures must be done

    def _record_jobs(self, jobs: Sequence[Job], states: Mapping[str, str]) -> None:
        prepared, record = self._sweep(), self._record()
        for job in jobs:
            if job.key not in prepared.states:  # a trial may repeat an earlier one's config
                prepared.jobs.append(job)
                prepared.states[job.key] = states[job.key]
                record["current"]["order"].append(job.key)
            record["jobs"][job.key] = {
                **record["jobs"].get(job.key, {}),
                "folder": job.key,
                "overrides": list(job.overrides),
                "label": job.label,
                "status": states[job.key],
            }
        sweeps.commit(prepared.sweep_dir, record, prepared.states)

    def _objective(self, jobs: Sequence[Job]) -> tuple[float | None, str]:
        """The mean objective over the trial's seeds; the worst value when a seed diverged;
        None when one failed. The second item says why it is not the mean."""
        summaries = {job.key: RunDir(job.planned_folder()).summary_or_none() for job in jobs}
        for job in jobs:
            summary = summaries[job.key]
            if summary is None or summary.status not in (Status.COMPLETED, Status.DIVERGED):
                why = f": {summary.error}" if summary and summary.error else ""
                return None, f"seed {job.settings.seed} failed{why}"
        for job in jobs:
            if summaries[job.key].status is Status.DIVERGED:  # type: ignore[union-attr]
                worst = -math.inf if self.search.direction == DIRECTIONS[1] else math.inf
                return worst, f"seed {job.settings.seed} diverged, so the worst value"
        values = []
        for job in jobs:
            rows = load_run(job.planned_folder()).rows
            value = value_at(rows, self.search.objective, self.search.at, self.search.goal)
            if value is None:
                raise UsageError(_no_value(rows, self.search.objective, self.search.at))
            values.append(value)
        return sum(values) / len(values), ""

    def _note(self, text: str) -> None:
        self._ctx().console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _say(self, trial: Trial, label: str) -> None:
        n = f"/{self.search.n_trials}" if self.search.n_trials else ""
        seeds = f"{len(trial.jobs)} seed" + ("s" if len(trial.jobs) > 1 else "")
        what = f"mean {self.search.objective} ({self.search.at}) over {seeds}"
        result = f"{what} {trial.value:.6g}" if trial.value is not None else f"{what} failed"
        result += f" ({trial.note})" if trial.note else ""
        if trial.pruned_epoch is not None:
            result = f"pruned at epoch {trial.pruned_epoch} (its {what} was behind)"
        self._ctx().console.print(
            f"trial {trial.number}{n}: {label}: {result}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def _show_best(self, sweep_dir: Path) -> None:
        from regbench.core.rundir import read_yaml

        results = sweep_dir / RESULTS_FILE
        if not results.is_file():
            return
        best = read_yaml(results)
        chosen = (best.get("best_params") or {}).items()
        params = " ".join(f"{k}={short(str(v))}" for k, v in chosen)
        value = short(str(best.get("best_value")))
        self._ctx().console.print(
            f"best trial: {params}: {self.search.objective} {value} ({results})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def _update_record(self) -> None:
        prepared, record = self._sweep(), self._record()
        self.trials.sort(key=lambda t: t.number)  # a trial asked again keeps its number
        record["search"]["trials"] = [t.record() for t in self.trials]
        record["invocations"][-1].update(
            jobs=len(prepared.jobs), actions=sweeps.describe_states(prepared)
        )
        # Merged with what other processes sharing the study wrote (the grid of every job).
        sweeps.commit(prepared.sweep_dir, record, prepared.states)

    def _sweep(self) -> sweeps.SweepResult:
        if self._prepared is None:
            raise RegbenchError("the search's trial ran before its launch")  # a bug
        return self._prepared

    def _ctx(self) -> sweeps.LaunchContext:
        if self._context is None:
            raise RegbenchError("the search's trial ran before its launch")  # a bug
        return self._context

    def _record(self) -> dict[str, Any]:
        return self._ctx().record  # type: ignore[return-value]  # this invocation's own dict


def _no_value(rows: Sequence[Mapping[str, Any]], metric: str, at: str) -> str:
    columns = sorted({k for row in rows for k in row if k not in ("epoch", "seconds")})
    if any(metric in row for row in rows):
        return f"--at {at}: the runs have no {metric} there; use final, best or an evaluated epoch"
    return f"--objective {metric} is not a metric of these runs; they have {', '.join(columns)}"


def short(value: str) -> str:
    """A sampled float in 4 significant digits for the progress lines (folders keep it all)."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() and "." not in value else f"{number:.4g}"


@contextlib.contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna's own log lines (a study created, a trial finished) off while regbench prints one
    line per trial; the caller's verbosity is put back."""
    try:
        import optuna
    except ImportError:  # another sweeper
        yield
        return
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
