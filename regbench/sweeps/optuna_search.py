"""``hydra/sweeper=optuna``: regbench's search on Optuna's ask-and-tell API, in this process.

Each trial is asked of the study, run as its seeds' sweep jobs (regbench/sweeps/search.py) and
told the mean objective over the seeds. ``hydra.sweeper.n_trials`` is the number of finished
trials the study should hold, so the same command again finds the search done, and a larger
``n_trials`` grows it:

- with ``hydra.sweeper.storage`` the study is read back from the storage (Optuna's
  ``load_if_exists``);
- without one, the finished trials in the ``--dir`` folder's sweep.json are added to a new
  study (``study.add_trials``); a trial whose job folders are gone is asked again (its jobs
  retrain into the same folders), and one interrupted is asked again and resumes its jobs.

Pruning (``hydra/sweeper/pruner=median|successive_halving|hyperband``) is on the mean over a
trial's seeds: with a pruner the seeds of each trial always train stacked, in lockstep (with or
without ``--stacked``), and after every evaluation the trial reports the mean of the objective
so far (``trial.report(mean, step=epoch)``); a seed that stopped early counts with its selected
epoch's value. When the pruner says so, the runs still training end ``pruned`` (with the epoch)
and the trial is told pruned. A trial whose seeds do not train in one stack (a model that cannot
be stacked, or a memory budget that splits them) is not pruned.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.analysis.runs import value_at
from regbench.core.errors import RegbenchError, UsageError
from regbench.core.jobs import Job, job_key
from regbench.core.rundir import RunDir, Status, atomic_text
from regbench.sweeps import plan as sweeps
from regbench.sweeps import trials as base
from regbench.sweeps.optuna_space import (
    PRUNERS,
    SAMPLERS,
    OptunaSettings,
    as_text,
    distributions,
    from_text,
    grid_size,
)
from regbench.sweeps.sharing import describe, me, short_lock, worker_alive

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from regbench.core.metrics import Metric
    from regbench.stacked.launcher import EvaluationHook
    from regbench.training.session import RunSession

KNOWN_KEYS = (
    "n_trials", "direction", "storage", "study_name", "max_failure_rate", "params", "sampler",
    "pruner",
)  # fmt: skip
INTERRUPTED = "interrupted"  # a trial's user attribute: Ctrl-C ended it, so it is asked again
WAIT_SECONDS = 2.0  # between two looks at the trials other processes are running

__all__ = ["OptunaLauncher", "OptunaSettings", "plan_optuna"]


# ----------------------------------------------------------------------------- the plan
def plan_optuna(
    composed: DictConfig, rest: Sequence[str], seeds: tuple[int, ...], goal: Metric, at: str
) -> base.Search:
    """The search of ``composed`` (the multirun config with hydra/sweeper=optuna), checked
    before anything is written: every problem is one line."""
    from omegaconf import OmegaConf

    _require_optuna()
    sweeper: dict[str, Any] = OmegaConf.to_container(composed.hydra.sweeper, resolve=True)  # type: ignore[assignment]
    unknown = [k for k in sweeper if k not in KNOWN_KEYS]
    if unknown:
        raise UsageError(
            f"hydra.sweeper.{unknown[0]} is not a setting of hydra/sweeper=optuna; it has "
            f"{', '.join(KNOWN_KEYS)}"
        )
    direction = _direction(sweeper.get("direction"), goal)
    params = sweeper.get("params") or {}
    arguments = [*(f"{k}={v}" for k, v in params.items()), *composed.hydra.overrides.task]
    space, fixed = base.space_of(arguments)
    found = distributions(base.parse(arguments))
    sampler, sampler_options, sampler_line = _sampler(sweeper["sampler"])
    n_trials = _n_trials(sweeper.get("n_trials"), sampler, found)
    pruner, pruner_options = _pruner(sweeper.get("pruner") or {"name": "none"})
    if sweeper.get("storage") is not None:
        sampler_line += (
            "; with a storage, processes running this command share its trials (each that "
            "joins a running one draws its own sampler seed)"
        )
    if pruner != "none":  # said once, in the search's first line
        sampler_line += (
            f"; {pruner} pruner on the mean over seeds (each trial's seeds train stacked; "
            f"hydra/sweeper/pruner=none trains every trial to the end)"
        )
    settings = OptunaSettings(
        n_trials=n_trials,
        distributions=found,
        fixed=tuple(fixed),
        sampler=sampler,
        sampler_options=sampler_options,
        storage=sweeper.get("storage"),
        study_name=sweeper.get("study_name"),
        max_failure_rate=_rate(sweeper.get("max_failure_rate")),
        pruner=pruner,
        pruner_options=pruner_options,
    )
    settings.make_sampler()  # its options, checked now
    settings.make_pruner()
    checked = base.check_corners(fixed, space)
    settings.open_storage()
    return base.Search(
        overrides=tuple(rest),
        seeds=seeds or (checked[0].seed,),
        objective=goal.name,
        goal=goal,
        at=at,
        direction=direction,
        space=tuple(space),
        n_trials=n_trials,
        sampler=sampler_line,
        multirun_config=composed,
        checked=tuple(checked),
        optuna=settings,
        runner=OptunaLauncher,
    )


def _require_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UsageError(
            "hydra/sweeper=optuna needs Optuna: pip install 'regbench[optuna]'"
        ) from None


def _direction(given: Any, goal: Metric) -> str:
    wanted = base.DIRECTIONS[goal.direction == "max"]
    if given is None or given == wanted:
        return wanted
    if given not in base.DIRECTIONS:
        raise UsageError(
            f"hydra.sweeper.direction={given}: a search has one objective (--objective); "
            f"give one of {', '.join(base.DIRECTIONS)}, or leave it out"
        )
    raise UsageError(
        f"hydra.sweeper.direction={given} contradicts --objective {goal.name}, which is "
        f"{wanted}d (by its name); drop hydra.sweeper.direction"
    )


def _sampler(config: Mapping[str, Any]) -> tuple[str, dict[str, Any], str]:
    """The sampler's name, its options (the seed defaulted) and a line saying how it is seeded."""
    name = str(config.get("name"))
    if name not in SAMPLERS:
        raise UsageError(f"hydra/sweeper/sampler: no sampler {name}; one of {', '.join(SAMPLERS)}")
    options = {k: v for k, v in config.items() if k != "name"}
    if options.get("seed") is not None:
        return name, options, f"{name} sampler, seed {options['seed']}"
    # A constant seed: the same command asks for the same trials (and --dir finds them done).
    options["seed"] = base.DEFAULT_SAMPLER_SEED
    line = f"{name} sampler, sampler seed {base.DEFAULT_SAMPLER_SEED} (the default; set "
    return name, options, line + "hydra.sweeper.sampler.seed)"


def _pruner(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    name = str(config.get("name"))
    if name not in PRUNERS:
        raise UsageError(f"hydra/sweeper/pruner: no pruner {name}; one of {', '.join(PRUNERS)}")
    options = {k: v for k, v in config.items() if k != "name"}
    factor = options.get("reduction_factor")
    # Optuna checks it only when the first trial is judged, after training: checked now.
    whole = isinstance(factor, int) and not isinstance(factor, bool)
    if factor is not None and not (whole and factor >= 2):
        raise UsageError(
            f"hydra.sweeper.pruner.reduction_factor={factor}: give a whole number from 2"
        )
    return name, options


def _n_trials(value: Any, sampler: str, found: Mapping[str, Any]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"hydra.sweeper.n_trials={value}: give a whole number of trials, from 1")
    if sampler == "grid":  # the grid sampler has nothing new to ask past its grid
        return min(value, grid_size(found))
    return value


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UsageError(f"hydra.sweeper.max_failure_rate={value}: give a share from 0 to 1")
    return float(value)


# ----------------------------------------------------------------------------- the launcher
class OptunaLauncher(base.SearchLauncher):
    """Asks the study for trials until it holds ``n_trials`` finished ones; tells it each
    trial's mean objective over its seeds. ``study`` is the optuna.Study after the launch."""

    study: Any = None

    @property
    def settings(self) -> OptunaSettings:
        assert self.search.optuna is not None  # an OptunaLauncher is made for an Optuna search
        return self.search.optuna

    def shares(self, sweep_dir: Path) -> str | None:
        """Processes with one storage and study share the folder (and the study's trials);
        without a storage the study lives in this process, which keeps the folder."""
        if self.settings.storage is None:
            return None
        storage, name = self.settings.storage, self._study_name(sweep_dir)
        return f"hydra.sweeper.storage={storage} hydra.sweeper.study_name={name}"

    def launch(self, prepared: sweeps.SweepResult, context: sweeps.LaunchContext) -> None:
        self._prepared, self._context, self.trials = prepared, context, []
        record = self._record()
        record["search"] = {
            **self.search.record(),
            "sampler": self.settings.sampler,
            "storage": self.settings.storage,
            "study_name": self._study_name(prepared.sweep_dir),
            "trials": [],
        }
        record["current"]["total"] = self.settings.n_trials * len(self.search.seeds)
        with _optuna_quiet():
            # One process at a time opens the study: the first to find it empty fills it
            # from the folder's sweep.json (which it reads again, now: another may have
            # written it since this invocation began).
            with short_lock(prepared.sweep_dir):
                earlier = sweeps.read_record(prepared.sweep_dir).get("search") or {}
                self.study = self._open_study(earlier)
            try:
                self._optimize()
            finally:
                self._update_record()
            self._results(prepared.sweep_dir)

    def _study_name(self, sweep_dir: Path) -> str:
        return self.settings.study_name or f"regbench-{sweep_dir.name}"

    def _open_study(self, earlier: Mapping[str, Any]) -> Any:
        import optuna

        name = self._study_name(self._sweep().sweep_dir)
        study = optuna.create_study(
            storage=self.settings.open_storage(),
            sampler=self.settings.make_sampler(),
            pruner=self.settings.make_pruner(),
            study_name=name,
            direction=self.search.direction,
            load_if_exists=True,
        )
        if study.direction.name.lower() != self.search.direction:
            raise UsageError(
                f"the study {study.study_name} in {self.settings.storage} is "
                f"{study.direction.name.lower()}d; this search's objective is "
                f"{self.search.direction}d: give another hydra.sweeper.study_name"
            )
        if study.trials:
            self.trials = [_from_frozen(t) for t in study.trials if t.state.is_finished()]
        elif earlier.get("trials"):
            self._add_earlier(study, earlier)
        if self._ctx().joined:
            study.sampler = self._own_sampler()
        elif study.trials:
            # A sampler seeded as before would start again where the first process started
            # (the same random startup trials): its seed moves on by the trials it finds.
            study.sampler = self.settings.make_sampler(len(study.trials))
        return study

    def _own_sampler(self) -> Any:
        """A process that joins others on one study draws its sampler's seed: seeded alike,
        two processes would ask for the same trials (the random startup ones at least)."""
        import secrets

        seed = secrets.randbelow(2**31)
        others = ", ".join(describe(o) for o in self._ctx().joined)
        self._note(
            f"joined the search that {others} runs in {self._sweep().sweep_dir}: sampler seed "
            f"{seed}, drawn for this process (processes sharing a study ask for different "
            f"trials; the same command asks for the same ones only when it runs alone)"
        )
        self._record()["invocations"][-1]["sampler_seed"] = seed
        return self.settings.make_sampler(seed=seed)

    def _add_earlier(self, study: Any, earlier: Mapping[str, Any]) -> None:
        """The folder's finished trials into the new study; one whose jobs are not all there
        (or whose objective was another) is refused or asked again."""
        for name in ("objective", "at", "direction"):
            if earlier.get(name) != getattr(self.search, name):
                raise UsageError(
                    f"this folder's search has {name} {earlier.get(name)} (sweep.json), not "
                    f"{getattr(self.search, name)}: give the same, or a new --dir"
                )
        for entry in earlier["trials"]:
            params = self._params_of(entry)
            if entry.get("note") == INTERRUPTED or not self._jobs_there(entry):
                study.enqueue_trial(params)
                continue
            frozen = _frozen(entry, params, self.settings.distributions)
            study.add_trial(frozen)
            self.trials.append(_from_frozen(study.trials[-1]))

    def _params_of(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        dists = self.settings.distributions
        given = entry.get("params") or {}
        params = {k: from_text(dists[k], str(v)) for k, v in given.items() if k in dists}
        if set(given) != set(dists) or any(v is None for v in params.values()):
            raise UsageError(
                f"trial {entry.get('number')} in sweep.json ({_label(given)}) is outside this "
                f"search's space ({', '.join(dists)}): give the same space, or a new --dir"
            )
        return params

    def _jobs_there(self, entry: Mapping[str, Any]) -> bool:
        folder = self._sweep().sweep_dir
        states = [sweeps.job_state(folder / key) for key in entry.get("jobs") or []]
        return len(states) == len(self.search.seeds) and all(s != "new" for s in states)

    def _optimize(self) -> None:
        """Ask for trials until the study holds ``n_trials`` finished or running ones (every
        process's), then wait for those other processes are running in this folder, so that
        the comparison covers every trial."""
        failed = asked = 0
        waiting = False
        while True:
            with short_lock(self._sweep().sweep_dir):  # one process asks at a time
                next_trial, others = self._next()
            if next_trial is None:
                if not others:
                    break
                if not waiting:
                    self._note(_waiting_line(others))
                    waiting = True
                time.sleep(WAIT_SECONDS)
                continue
            trial = self._one_trial(next_trial)
            asked += 1
            if trial.value is None and trial.pruned_epoch is None:
                failed += 1
                if failed / asked > self.settings.max_failure_rate:
                    raise RegbenchError(
                        f"trial {trial.number} ({_label(trial.params)}): {trial.note}; the "
                        f"search stops at a failed trial (hydra.sweeper.max_failure_rate=0.5 "
                        f"lets it go on past some)"
                    )
        if not any(t.state.name == "COMPLETE" for t in self.study.get_trials(deepcopy=False)):
            raise RegbenchError("no trial completed: each one had a failed seed")

    def _next(self) -> tuple[Any, list[Any]]:
        """The next trial to run, asked of the study (None when it holds enough), and the
        trials other live processes are running in this folder. Trials whose process is gone
        are failed first, and asked again."""
        self._fail_orphans()
        _ask_again_interrupted(self.study)
        trials = self.study.get_trials(deepcopy=False)
        counted = sum(_counts(t) for t in trials)
        running = [t for t in trials if t.state.name == "RUNNING" and self._here(t)]
        if counted >= self.settings.n_trials:
            return None, running
        asked = self.study.ask(self.settings.distributions)
        asked.set_user_attr("worker", me())
        asked.set_user_attr("folder", str(self._sweep().sweep_dir.resolve()))
        return asked, running

    def _here(self, trial: Any) -> bool:
        """Whether ``trial`` was asked by a process working in this folder (a study shared
        with another folder's processes has trials whose process cannot be judged here)."""
        return trial.user_attrs.get("folder", str(self._sweep().sweep_dir.resolve())) == str(
            self._sweep().sweep_dir.resolve()
        )

    def _fail_orphans(self) -> None:
        """Fail the running trials of this folder whose process is gone (killed, or its node
        lost): Optuna's own heartbeat runs only inside ``study.optimize`` and its journal
        storage has none, so the folder's workers (sharing.py) stand in for it. The trial is
        then asked again (``_ask_again_interrupted``) and its jobs resume."""
        import optuna

        folder = self._sweep().sweep_dir
        for t in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            worker = t.user_attrs.get("worker")
            # This process runs no trial now: one it asked earlier and left running is gone too.
            live = worker is not None and worker != me() and worker_alive(folder, worker)
            if live or not self._here(t):
                continue
            self.study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            gone = describe(worker) if worker else "an earlier process"
            self._note(f"trial {t.number + 1}: {gone} is gone; it is asked again")
            params = {k: as_text(v) for k, v in t.params.items()}
            jobs = list(t.user_attrs.get("jobs") or [])
            self.trials.append(base.Trial(t.number + 1, params, jobs, note=INTERRUPTED))

    def _one_trial(self, asked: Any) -> base.Trial:
        """Run the asked trial's seeds, then tell; an error or Ctrl-C tells it failed first."""
        import optuna

        params = {k: as_text(v) for k, v in asked.params.items()}
        label = _label(params)
        jobs = [self._job_of(params, seed, label) for seed in self.search.seeds]
        trial = base.Trial(asked.number + 1, params, [job.key for job in jobs])
        self.trials.append(trial)
        asked.set_user_attr("jobs", trial.jobs)
        state = optuna.trial.TrialState
        try:
            self._run(jobs, self._pruning(asked, jobs) if self.settings.prunes else None)
            trial.pruned_epoch = _pruned_epoch(jobs)
            if trial.pruned_epoch is None:
                trial.value, trial.note = self._objective(jobs)
            else:
                trial.note = f"pruned at epoch {trial.pruned_epoch}"
        except BaseException:
            trial.note = INTERRUPTED
            self._tell(asked, INTERRUPTED, state.FAIL)
            raise
        if trial.pruned_epoch is not None:
            self._tell(asked, trial.note, state.PRUNED)
        elif trial.value is None:
            self._tell(asked, trial.note, state.FAIL)
        else:
            self._tell(asked, trial.note, state.COMPLETE, trial.value)
        self._update_record()
        self._say(trial, label)
        return trial

    def _tell(self, asked: Any, note: str, state: Any, value: float | None = None) -> None:
        """Tell the study how the trial ended, unless another process has already failed it
        (it took this one for dead: its clock, or a pause past the workers' stale time)."""
        import optuna

        try:
            asked.set_user_attr("note", note)
        except optuna.exceptions.UpdateFinishedTrialError:
            self._note(
                f"trial {asked.number + 1} was failed by another process that took this one for "
                f"gone; its runs are in its job folders, and it is asked again"
            )
            return
        self.study.tell(asked, value, state=state)

    def _pruning(self, asked: Any, jobs: Sequence[Job]) -> EvaluationHook:
        """The stack's hook: report the mean over the trial's seeds of the objective so far,
        and stop them when the pruner says so (never at the last epoch: the trial is done)."""
        last = jobs[0].settings.epochs

        def consult(epoch: int, sessions: Sequence[RunSession]) -> bool:
            values = [self._so_far(session) for session in sessions]
            if len(sessions) < len(jobs) or any(v is None for v in values):
                return False  # a seed diverged or is trained apart: no mean to judge by
            asked.report(sum(values) / len(values), step=epoch)  # type: ignore[arg-type]
            return epoch < last and bool(asked.should_prune())

        return consult

    def _so_far(self, session: RunSession) -> float | None:
        """A seed's objective so far; one that stopped early, at its selected epoch."""
        rows = session.rows
        if not session.is_open:
            if session.summary.status is not Status.COMPLETED:
                return None
            chosen = (session.summary.selected or {}).get("epoch")
            rows = [r for r in rows if chosen is None or r.get("epoch", 0) <= chosen]
        return value_at(rows, self.search.objective, self.search.at, self.search.goal)

    def _job_of(self, params: Mapping[str, str], seed: int, label: str) -> Job:
        from regbench.compose.hydra import compose
        from regbench.compose.validate import validate
        from regbench.core.config import ConfigError

        overrides = (*self.settings.fixed, *(f"{k}={v}" for k, v in params.items()))
        with_seed = (*overrides, f"seed={seed}")
        try:
            settings = validate(compose(with_seed))
        except ConfigError as exc:
            raise ConfigError(f"trial {' '.join(with_seed)}: {exc}") from exc
        key = job_key(settings)
        folder = self._sweep().sweep_dir / key
        return Job(settings, with_seed, folder, key, f"{label} seed={seed}".strip())

    def _results(self, sweep_dir: Path) -> None:
        """optimization_results.yaml (as Hydra's plugin wrote it), the best trial's line and
        the search's figures."""
        from regbench.sweeps.optuna_figures import draw_search

        try:
            best = self.study.best_trial
        except ValueError:  # no trial has a value
            return
        params = {k: as_text(v) for k, v in best.params.items()}
        result = {"name": self.study.study_name, "best_params": params, "best_value": best.value}
        atomic_text(sweep_dir / base.RESULTS_FILE, _yaml(result))
        self._ctx().console.print(
            f"best trial {best.number + 1}: {_label(params)}: {self.search.objective} "
            f"{base.short(str(best.value))} ({sweep_dir / base.RESULTS_FILE})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        for note in draw_search(self.study, sweep_dir):
            self._ctx().console.print(note, markup=False, highlight=False, soft_wrap=True)


def _pruned_epoch(jobs: Sequence[Job]) -> int | None:
    """The epoch at which the trial's seeds were pruned; None when they were not."""
    for job in jobs:
        summary = RunDir(job.planned_folder()).summary_or_none()
        if summary is not None and summary.status is Status.PRUNED:
            return summary.pruned_epoch
    return None


def _counts(trial: Any) -> bool:
    """Whether ``trial`` counts toward n_trials: completed, pruned or failed (not interrupted),
    or running, in whichever process."""
    return trial.state.name == "RUNNING" or (trial.state.is_finished() and not _interrupted(trial))


def _interrupted(trial: Any) -> bool:
    """Failed by Ctrl-C, or because its process died (told failed by another process, so with
    its worker and without a note): asked again, its jobs resume from their checkpoints."""
    note = trial.user_attrs.get("note")
    dead = note is None and "worker" in trial.user_attrs
    return trial.state.name == "FAIL" and (note == INTERRUPTED or dead)


def _ask_again_interrupted(study: Any) -> None:
    """Enqueue each interrupted trial's params unless a later trial (or one waiting in the
    queue, whose params are its fixed ones) already asks them again."""
    later: set[tuple[tuple[str, Any], ...]] = set()
    for t in reversed(study.get_trials(deepcopy=False)):
        params = t.params or t.system_attrs.get("fixed_params") or {}
        key = tuple(sorted(params.items()))
        if _interrupted(t) and key not in later:
            study.enqueue_trial(t.params)
        later.add(key)


def _waiting_line(running: Sequence[Any]) -> str:
    """The line said once while this process waits for the others' last trials."""
    shown = ", ".join(
        f"{t.number + 1} ({describe(t.user_attrs.get('worker') or '? ?')})" for t in running
    )
    return (
        f"the study holds its trials; waiting for trial {shown} to end, so that the "
        f"comparison covers them"
    )


def _frozen(entry: Mapping[str, Any], params: dict[str, Any], dists: Mapping[str, Any]) -> Any:
    """A sweep.json trial as Optuna's FrozenTrial: completed with its value, or failed."""
    import optuna

    value = entry.get("value")
    attrs = {"jobs": list(entry.get("jobs") or []), "note": entry.get("note") or ""}
    state = optuna.trial.TrialState
    pruned = entry.get("pruned_epoch")
    if pruned is not None:
        return optuna.trial.create_trial(
            state=state.PRUNED,
            params=params,
            distributions=dict(dists),
            user_attrs={**attrs, "pruned_epoch": pruned},
        )
    return optuna.trial.create_trial(
        state=state.FAIL if value is None else state.COMPLETE,
        value=None if value is None else float(value),
        params=params,
        distributions=dict(dists),
        user_attrs=attrs,
    )


def _from_frozen(frozen: Any) -> base.Trial:
    params = {k: as_text(v) for k, v in frozen.params.items()}
    value = frozen.value if frozen.state.name == "COMPLETE" else None
    jobs = list(frozen.user_attrs.get("jobs") or [])
    note = INTERRUPTED if _interrupted(frozen) else frozen.user_attrs.get("note", "")
    pruned = None
    if frozen.state.name == "PRUNED":
        steps = list(frozen.intermediate_values)
        pruned = frozen.user_attrs.get("pruned_epoch") or (max(steps) if steps else None)
    return base.Trial(frozen.number + 1, params, jobs, value, note, pruned)


def _label(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={base.short(str(v))}" for k, v in params.items())


def _yaml(data: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(data), sort_keys=False)


@contextlib.contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna's own log lines and experimental-feature warnings off while regbench prints one
    line per trial; the caller's verbosity and warning filters are put back."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
