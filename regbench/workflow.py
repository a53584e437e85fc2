"""The one sequence behind each command, for both faces: ``regbench run/sweep/compare`` (cli/,
which parses and prints) and ``regbench.run/sweep/compare`` (api.py, which returns objects).

- :func:`run`, :func:`resume`, :func:`rerun`: one run, through regbench.training.runner.
- :func:`sweep`: the checks, the memory budget, the plan (a grid or a sweeper's search), the
  launcher (sequential, a Hydra launcher or stacked), the jobs, then :func:`compare_and_write`
  into the sweep folder.
- :func:`compare_and_write`: the comparison of run folders, and its files when asked for.

What a caller hears as it goes comes through a :class:`Listener`: the CLI's prints tables and
lines, the base one says nothing. Runs and sweeps in one process take turns (:func:`one_at_a_time`):
they seed and read the global RNGs and torch's flags, so two at once in two threads would each
change the other's numbers.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.core.errors import Notice, RegbenchError, UsageError

if TYPE_CHECKING:
    from regbench.analysis.comparison import Comparison
    from regbench.core.progress import Reporter
    from regbench.sweeps.plan import Launcher, SweepResult
    from regbench.sweeps.search import Search, Trial
    from regbench.training.session import RunResult

# Re-entrant: the API holds it around its own guards (environment, RNGs), and the workflow's
# functions take it again inside.
_TURN = threading.RLock()


@contextmanager
def one_at_a_time() -> Iterator[None]:
    """Hold this process's turn to train: a run or sweep in another thread waits for it."""
    with _TURN:
        yield


class Listener:
    """What a workflow says to its caller as it goes. This one prints nothing (the API's);
    the CLI's prints each event. A comparison that cannot be made is a Notice warning."""

    def option_name(self, name: str) -> str:
        """How the caller spells an option in a message: ``stack_memory`` (the CLI's listener:
        ``--stack-memory``)."""
        return name

    def sweep_starts(self, plan: SweepPlan) -> None:
        pass

    def sweep_interrupted(self, plan: SweepPlan) -> None:
        pass

    def compared(self, comparison: Comparison) -> None:
        pass

    def written(self, compared: Compared) -> None:
        pass

    def no_comparison(self, error: RegbenchError) -> None:
        warnings.warn(Notice(f"no comparison: {error}"), stacklevel=2)


QUIET = Listener()


# ----------------------------------------------------------------------------- one run
def run(
    overrides: Sequence[str],
    reporter: Reporter | None = None,
    config_dir: str | Path | None = None,
    config_name: str | None = None,
) -> RunResult:
    """Train one model of ``overrides`` into a new run folder (``regbench run``)."""
    with one_at_a_time(), config_search(config_dir, config_name):
        from regbench.compose.hydra import load_settings
        from regbench.training.runner import execute

        return execute(load_settings(overrides), overrides, reporter or _silent())


def resume(run_dir: Path, reporter: Reporter | None = None) -> RunResult:
    """Go on with an interrupted or failed run from its last checkpoint, in its folder."""
    with one_at_a_time():
        from regbench.core.rundir import RunDir
        from regbench.training import runner

        return runner.resume(RunDir.open(run_dir), reporter or _silent())


def rerun(run_dir: Path, reporter: Reporter | None = None) -> RunResult:
    """Run a past run's saved config again, into a new folder beside it; a stacked member
    with its whole stack, in the arithmetic it was trained with (regbench/stacked/rerun.py)."""
    with one_at_a_time():
        from regbench.core.rundir import RunDir
        from regbench.stacked.rerun import rerun_member, stack_of
        from regbench.training import runner

        original = RunDir.open(run_dir)
        stack = stack_of(original)
        if stack is not None:
            return rerun_member(original, stack, reporter or _silent())
        return runner.rerun(original, reporter or _silent())


def _silent() -> Reporter:
    from regbench.core.progress import Reporter

    return Reporter()


def config_search(config_dir: str | Path | None, config_name: str | None) -> Any:
    """Compose from ``config_dir`` too, with ``config_name`` as the primary config; neither
    given, the search the caller has set stays as it is."""
    if config_dir is None and config_name is None:
        return nullcontext()
    from regbench.compose.hydra import searching

    return searching(config_dir, config_name)


# ----------------------------------------------------------------------------- sweeps
@dataclass
class SweepPlan:
    """A checked sweep, nothing written yet: its jobs (a search's come with its trials), the
    launcher that will carry them out, and the sweep as command-line words (to go on with it)."""

    overrides: list[str]
    prepared: SweepResult
    launcher: Launcher
    search: Search | None
    words: list[str]  # overrides and options, as `regbench sweep` takes them (no --dir)

    @property
    def sweep_dir(self) -> Path:
        return self.prepared.sweep_dir


@dataclass
class SweepRun:
    """A sweep carried out (or, for a dry run, only planned): each job's status and the
    comparison written into the sweep folder (None when nothing could be compared)."""

    plan: SweepPlan
    statuses: dict[str, str] = field(default_factory=dict)  # job folder -> status; dry run: {}
    compared: Compared | None = None
    ran: bool = False
    confirmed: Compared | None = None  # --confirm: the best trial on fresh seeds, on test

    @property
    def sweep_dir(self) -> Path:
        return self.plan.sweep_dir

    @property
    def trials(self) -> list[Trial]:
        """A search's trials in the order the sampler asked for them ([] for a grid)."""
        return list(getattr(self.plan.launcher, "trials", []))

    @property
    def failed(self) -> list[str]:
        return [key for key, status in self.statuses.items() if status == "failed"]


def plan_sweep(
    overrides: Sequence[str],
    *,
    dir: str | Path | None = None,
    stacked: bool = False,
    stack_memory: float | None = None,
    objective: str | None = None,
    at: str | None = None,
    select: str | None = None,
    listener: Listener = QUIET,
) -> SweepPlan:
    """Check and plan a sweep (every job's config validates) and choose its launcher; nothing
    is written. A sweeper's override (``hydra/sweeper=optuna``) makes it a search."""
    plan = _plan(overrides, dir, stacked, stack_memory, objective, at, listener)
    _check_select(plan, select, listener)
    return plan


def _plan(
    overrides: Sequence[str],
    dir: str | Path | None,
    stacked: bool,
    stack_memory: float | None,
    objective: str | None,
    at: str | None,
    listener: Listener,
) -> SweepPlan:
    from regbench.sweeps import plan as sweeps
    from regbench.sweeps import search as searches

    overrides, name = list(overrides), listener.option_name
    named = [o for o in overrides if sweeps.is_launcher_override(o)]
    if stacked and named:
        raise UsageError(f"{name('stacked')} is the launcher; drop {named[0]}")
    if stack_memory is not None and not stacked:
        raise UsageError(f"{name('stack_memory')} goes with {name('stacked')}")
    if stack_memory is not None and not stack_memory >= 1:  # the CLI's min=1, for the API
        raise UsageError(f"{name('stack_memory')} {stack_memory}: give at least 1 (MiB)")
    budget = int(stack_memory * 2**20) if stack_memory else None  # MiB -> bytes
    folder = None if dir is None else Path(dir)
    stack = ["--stacked"] if stacked else []
    if searches.is_search(overrides):
        search = searches.plan(overrides, objective, at)
        options = [f"--objective={search.objective}", f"--at={search.at}"]
        launcher = search.launcher(stacked, budget)
        words = [*overrides, *options, *stack]
        return SweepPlan(overrides, search.prepare(folder), launcher, search, words)
    if objective or at:
        both = f"{name('objective')} and {name('at')}"
        raise UsageError(f"{both} go with a sweeper, e.g. hydra/sweeper=optuna")
    prepared = sweeps.prepare(overrides, folder)
    launcher = sweeps.choose_launcher(overrides, stacked, budget)
    return SweepPlan(overrides, prepared, launcher, None, [*overrides, *stack])


def _check_select(plan: SweepPlan, select: str | None, listener: Listener) -> None:
    """``select`` picks each run's epoch for a comparison at best: refused before anything
    trains when the sweep's comparison is at another point (a search's ``at``; a grid's is its
    experiment's, else final)."""
    if select is None:
        return
    name = listener.option_name
    if plan.search is not None:
        at, source = plan.search.at, f"its {name('at')}"
    else:
        experiments = [job.settings.experiment for job in plan.prepared.jobs]
        ats = {e.at if e is not None else "final" for e in experiments}
        at, source = (ats.pop() if len(ats) == 1 else "final"), "its experiment's at, else final"
    if at != "best":
        raise UsageError(
            f"{name('select')} {select} picks each run's epoch for a comparison at best; this "
            f"sweep compares at {at} ({source})"
        )


def sweep(
    overrides: Sequence[str],
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
    listener: Listener = QUIET,
    confirm: int | None = None,
) -> SweepRun:
    """Plan a sweep (see :func:`plan_sweep`), carry its jobs out with its launcher, then
    compare them and write the comparison into the sweep folder. ``dry_run``: plan only.

    A search (``hydra/sweeper=optuna``) optimizes the mean ``objective`` over a trial's seeds,
    each run's value read at ``at``; its comparison is of that metric at that point. A job that
    fails is recorded in its folder (``statuses``), never raised. ``confirm`` (a search's): the
    best trial's configuration on that many fresh seeds, against the baseline, on test."""
    with one_at_a_time(), config_search(config_dir, config_name):
        launch = {"dir": dir, "stacked": stacked, "stack_memory": stack_memory}
        asked = {"objective": objective, "at": at, "select": select}
        plan = plan_sweep(overrides, listener=listener, **launch, **asked)
        _check_confirm(plan, confirm, listener)
        if dry_run:
            return SweepRun(plan)
        listener.sweep_starts(plan)
        swept = _carry_out(plan, quiet, listener, tex=tex, select=select)
        if confirm:
            swept.confirmed = _confirm(swept, confirm, quiet, listener, tex=tex)
        return swept


def _check_confirm(plan: SweepPlan, confirm: int | None, listener: Listener) -> None:
    name = listener.option_name("confirm")
    if confirm is None:
        return
    if isinstance(confirm, bool) or not isinstance(confirm, int) or confirm < 2:
        raise UsageError(f"{name} {confirm}: give a number of fresh seeds, from 2")
    if plan.search is None or plan.search.optuna is None:
        raise UsageError(f"{name} goes with a search (hydra/sweeper=optuna)")


def _confirm(swept: SweepRun, n: int, quiet: bool, listener: Listener, **options: Any) -> Compared:
    """The best trial's configuration on ``n`` fresh seeds into <sweep>/confirm/, with the
    baseline when the space holds one, compared on the test counterpart of the objective: the
    number to report (the search's best value is a maximum over trials, so optimistic)."""
    from regbench.figures.drawing import in_workers
    from regbench.sweeps import plan as sweeps
    from regbench.sweeps import search as searches

    search = swept.plan.search
    assert search is not None  # _check_confirm
    planned = searches.plan_confirmation(search, swept.trials, swept.sweep_dir, n)
    stacked = bool(getattr(swept.plan.launcher, "stacked", False))
    budget = getattr(swept.plan.launcher, "memory_budget", None)
    launcher = sweeps.choose_launcher((), stacked, budget)
    with in_workers():
        sweeps.run(planned.prepared, planned.overrides, quiet, launcher)
        folders = [planned.prepared.sweep_dir / job.key for job in planned.prepared.jobs]
        columns = _columns(folders)
        metric = searches.test_metric(search.objective, columns)
        chosen = {"at": search.at, "select": search.objective if search.at == "best" else None}
        return compare_and_write(
            folders, planned.prepared.sweep_dir, metrics=[metric], experiment_report=True,
            listener=listener, **chosen, **options,
        )  # fmt: skip


def _columns(folders: Sequence[Path]) -> list[str]:
    from regbench.analysis.runs import load_run

    rows = next((load_run(f).rows for f in folders if (f / "metrics.csv").is_file()), [])
    return sorted({key for row in rows for key in row})


def _carry_out(plan: SweepPlan, quiet: bool, listener: Listener, **options: Any) -> SweepRun:
    """The jobs, then the comparison; the jobs' figures and the comparison's are drawn in the
    same figure workers. An interrupt is told to the listener (to say how to go on)."""
    from regbench.figures.drawing import in_workers
    from regbench.sweeps import plan as sweeps

    search = plan.search
    if search is not None:  # a search is compared on what it optimized, where it read it
        options |= {"metrics": [search.objective], "at": search.at}
    with in_workers():
        try:
            result = sweeps.run(plan.prepared, plan.overrides, quiet, plan.launcher)
        except KeyboardInterrupt:
            listener.sweep_interrupted(plan)
            raise
        paths = _search_runs(result.sweep_dir) if search else [result.sweep_dir]
        _evaluate_masks(plan, paths)
        compared = _sweep_comparison(result.sweep_dir, paths, listener, **options)
    return SweepRun(plan, dict(result.statuses), compared, ran=True)


def _evaluate_masks(plan: SweepPlan, paths: Sequence[Path]) -> None:
    """An experiment with mc_masks: each trained run's model.pt evaluated at each number of
    masks (analysis/mask_curve.py), before the comparison reads the curves. The plan's jobs
    say whether it is one, so other sweeps read no run folder for it."""
    from regbench.analysis.mask_curve import write_curves
    from regbench.analysis.runs import find_runs

    blocks = [job.settings.experiment for job in plan.prepared.jobs]
    masks = next((block.mc_masks for block in blocks if block and block.mc_masks), None)
    if masks is None:
        return
    try:
        runs = find_runs(paths)
    except RegbenchError:
        return  # nothing ran: the comparison says so
    write_curves(runs, masks)


def _search_runs(sweep_dir: Path) -> list[Path]:
    """A search's job folders, every trial's: not its confirm/ folder, which holds the best
    trial's configuration on other seeds (it would join that trial's group)."""
    from regbench.core.rundir import RunDir
    from regbench.sweeps.search import CONFIRM_DIR

    found = [
        p
        for p in sorted(sweep_dir.iterdir())
        if p.name != CONFIRM_DIR and not p.is_symlink() and RunDir.is_run(p)
    ]
    return found or [sweep_dir]  # none: compare says there is nothing to compare


def _without_confirmation(path: Path) -> list[Path]:
    """A search folder's trials without its confirm/ folder (the best trial's configuration on
    fresh seeds would join that trial's group, as more seeds of it), said in a note; any other
    path as given. ``regbench compare <sweep>/confirm`` compares the confirmation itself."""
    from regbench.core.jobs import SWEEP_FILE
    from regbench.sweeps.search import CONFIRM_DIR

    confirm = path / CONFIRM_DIR
    if not ((path / SWEEP_FILE).is_file() and (confirm / SWEEP_FILE).is_file()):
        return [path]
    warnings.warn(
        Notice(
            f"left out {confirm}: the search's --confirm runs (the best trial on fresh seeds) "
            f"are compared on their own: regbench compare {confirm}"
        ),
        stacklevel=3,
    )
    return _search_runs(path)


def _sweep_comparison(
    sweep_dir: Path, paths: Sequence[Path], listener: Listener, **options: Any
) -> Compared | None:
    try:
        return compare_and_write(
            paths, sweep_dir, experiment_report=True, listener=listener, **options
        )
    except RegbenchError as exc:  # e.g. every job failed: nothing to compare, the sweep still ran
        listener.no_comparison(exc)
        return None


# ----------------------------------------------------------------------------- comparisons
@dataclass
class Compared:
    """A comparison, and the files written for it (none when it was not asked to write)."""

    comparison: Comparison
    out: Path | None = None
    written: list[Path] = field(default_factory=list)
    report: Path | None = None  # an experiment's sweep ends in its report.html


def compare_and_write(
    paths: Sequence[Path],
    out: Path | None = None,
    *,
    metrics: Sequence[str] = (),
    at: str | None = None,
    select: str | None = None,
    over: Sequence[str] = (),
    baseline: str | None = None,
    ci: str = "t",
    margin: float | None = None,
    within: str | None = None,
    tex: bool = False,
    plots: bool = True,
    experiment_report: bool = False,
    listener: Listener = QUIET,
) -> Compared:
    """Compare the runs under ``paths`` (regbench.analysis.comparison) and, given ``out``, write
    comparison.md/.csv (``tex``: .tex; ``plots``: the figures) there. ``experiment_report``: a
    sweep's own comparison, which for an experiment's sweep ends in its report.html."""
    from regbench.analysis import report
    from regbench.analysis.comparison import compare

    options = {"at": at, "over": over, "baseline": baseline, "ci": ci, "margin": margin}
    paths = [found for path in paths for found in _without_confirmation(Path(path))]
    comparison = compare(list(paths), metrics=metrics, select=select, within=within, **options)
    listener.compared(comparison)
    if out is None:
        return Compared(comparison)
    if experiment_report:  # the figures too: the report shows them
        written, page = report.write_sweep_comparison(out, comparison, tex=tex)
    else:
        written, page = report.write_comparison(comparison, out, tex=tex, plots=plots), None
    compared = Compared(comparison, out, written, page)
    listener.written(compared)
    return compared
