"""Sweeps: a grid of runs, planned once, run by one of three launchers into job folders keyed
by config, safe to rerun.

::

    <sweep_dir>/
        sweep.json              the grid, every job (overrides, folder, status), each invocation
        multirun.yaml           Hydra's record of the latest invocation's config and overrides
        <hash>-seed=<N>/        one run folder per job (the same files as `regbench run` writes)
        by-settings/            readable names: dropout=0.5,seed=3 -> ../<hash>-seed=3 (browse.py)
        comparison.{md,csv}     the table `regbench compare` prints, and its plots

A job's folder is named by a short hash of its resolved config without ``seed`` (and without
``out_dir``, ``name``, ``logger`` and ``mlflow_uri``, which change no result) plus its seed.
Running the same sweep again with ``--dir`` therefore finds every job where it was: completed
jobs are skipped, interrupted ones resumed from their checkpoint, failed or diverged ones
retried from scratch, and cells that are new to the grid are added (``decide``).

The plan expands the grid in this process with Hydra's own override parser and basic sweeper and
validates every job's config before anything trains. Launchers then carry the jobs out:
``SequentialLauncher`` (the default, in this process), ``HydraLauncher`` (a ``hydra/launcher=``
plugin such as joblib, through Hydra's multirun) and ``StackedLauncher`` (``--stacked``). Jobs a
Hydra launcher runs in other processes get what they need from the driver on disk
(``sweep.json``) or in Hydra's own config. A search with a sweeper (``hydra/sweeper=optuna``) is
regbench/search.py's: its trials' seeds are jobs of this module, run by the same launchers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import secrets
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from regbench.core.config import ConfigError
from regbench.core.errors import Notice, RegbenchError, UsageError
from regbench.core.jobs import LEGACY_UNKEYED, SWEEP_FILE, Job, job_key
from regbench.core.overrides import override_key, refuse_unshown_characters
from regbench.core.rundir import (
    CONFIG,
    SUMMARY,
    RunDir,
    Status,
    Summary,
    atomic_write,
    read_yaml,
)
from regbench.core.signals import sigterm_as_interrupt
from regbench.figures.drawing import in_workers, settle_all
from regbench.sweeps.browse import write_links
from regbench.sweeps.legacy import describe as describe_legacy
from regbench.sweeps.legacy import legacy_overrides
from regbench.sweeps.sharing import CLAIMS, LOCK_FILE, WORKERS, short_lock, working

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from rich.console import Console

    from regbench.core.config import Settings
    from regbench.core.progress import Reporter

SKIPPED = "skipped (already completed)"


class Action(enum.StrEnum):
    """What a launcher does with a job folder."""

    SKIP = "skip"
    RESUME = "resume"
    RETRY = "retry"
    RUN = "run"

    @property
    def verb(self) -> str:
        return {"skip": "skipping", "resume": "resuming", "retry": "retrying", "run": "running"}[
            self.value
        ]


# A job folder's state (``job_state``) -> what to do with it.
ACTIONS = {
    "new": Action.RUN,
    "completed": Action.SKIP,
    "interrupted": Action.RESUME,
    "running": Action.RESUME,  # a sweep killed hard leaves "running"; the folder's workers and
    # claims rule out a live one (sharing.py)
    "failed": Action.RETRY,
    "diverged": Action.RETRY,
    "partial": Action.RUN,  # killed between creating the folder and writing its summary
    "damaged": Action.RETRY,  # completed, but a result file is gone
    "pruned": Action.SKIP,  # a search's pruner stopped it: final, as its trial was told
}


def decide(state: str) -> Action:
    """What every launcher does with a job whose folder is in ``state``."""
    return ACTIONS[state]


# ----------------------------------------------------------------------------- job keys
def refuse_legacy_folders(sweep_dir: Path, jobs: Sequence[Job]) -> None:
    """A sweep folder written before logger and mlflow_uri left the key names its jobs by the
    old hash: running it again would run every job a second time beside the old folders (and
    compare would count both). Say so instead, with the renames that carry it over."""
    moves = [
        (old, job.key)
        for job in jobs
        if not (sweep_dir / job.key).exists()
        and (sweep_dir / (old := job_key(job.settings, LEGACY_UNKEYED))).is_dir()
    ]
    if moves:
        old, new = moves[0]
        more = f" (and {len(moves) - 1} more the same way)" if len(moves) > 1 else ""
        raise UsageError(
            f"{sweep_dir} names its job folders as regbench did before logger and mlflow_uri "
            f"left the job hash: rename {old} to {new}{more} (mv {sweep_dir / old} "
            f"{sweep_dir / new}), or sweep into a new --dir"
        )


def job_state(folder: Path) -> str:
    """new | partial | running | completed | damaged | interrupted | failed | diverged | pruned.

    Raises UsageError when the folder's config.yaml does not hash to the folder's name: it was
    edited, or written for a different config, and reusing it would mix two experiments; and
    when the folder is a link (regbench's own links are in by-settings/, never under a job key).
    """
    if folder.is_symlink():  # planted in a received folder: a run would be written through it
        raise UsageError(
            f"job folder {folder} is a link; regbench writes no run through a link: put the "
            f"folder itself there or remove the link, and run again"
        )
    if not folder.exists():
        return "new"
    config_file = folder / CONFIG
    if config_file.is_file():
        _check_key(folder)
    if not (folder / SUMMARY).is_file():
        return "partial"
    run = RunDir(folder)
    summary = run.summary_or_none()
    if summary is None:
        return "partial"
    damage = run.damage() if summary.completed else None
    if damage:
        # Skipping it would leave a hole in the sweep's results: it is run again.
        note = f"job {folder.name} says completed but {damage}: running it again"
        warnings.warn(Notice(note), stacklevel=2)
        return "damaged"
    return summary.status.value


def _check_key(folder: Path) -> None:
    from regbench.compose.validate import validate

    try:
        # Validated, so that keys at their legacy values (and keys the folder predates) are
        # left out of the hash as they are out of every job key.
        found = f"it hashes to {job_key(validate(read_yaml(folder / CONFIG)))}"
    # UsageError: unreadable, too large, with an alias (read_yaml's bounds), or no longer valid
    except (UsageError, TypeError, KeyError, AttributeError):
        found = f"its {CONFIG} cannot be read"
    if found != f"it hashes to {folder.name}":
        raise UsageError(
            f"job folder {folder} holds a config that no longer matches its name ({found}): it "
            f"was edited or comes from another config; move it out of the sweep folder and run "
            f"again"
        )


# ----------------------------------------------------------------------------- the plan
def check_overrides(overrides: Sequence[str]) -> None:
    """Refuse what would break the sweep's own bookkeeping, before Hydra sees anything."""
    refuse_unshown_characters(overrides)  # a resume line printed later must be what ran
    for item in overrides:
        if item.startswith("-"):
            raise UsageError(f"unknown option {item}; sweep takes key=value overrides and --dir")
        key = override_key(item)
        if key.startswith(("hydra.sweep.", "hydra.run.", "hydra.output_subdir", "hydra.job.chdir")):
            raise UsageError(
                f"{key} is managed by regbench sweep; choose the sweep folder with --dir"
            )
        if key in ("hydra/sweeper", "hydra.sweeper") and not item.endswith("=basic"):
            # The plan expands grids as Hydra's basic sweeper does; a search is sweeps.search's.
            raise UsageError(
                f"{item} asks for a search, which is planned by regbench.sweeps.search "
                f"(as `regbench sweep` does), not as a grid"
            )


def is_launcher_override(item: str) -> bool:
    key = override_key(item)
    return key in ("hydra/launcher", "hydra.launcher") or key.startswith("hydra.launcher.")


def plan(overrides: Sequence[str]) -> tuple[list[Job], Any]:
    """Expand ``overrides`` into jobs with Hydra's override parser and basic sweeper, in this
    process, validating every job's config: the grid, a dry run and every config error are known
    before anything trains. Also returns the multirun config (for ``multirun.yaml``)."""
    from regbench.compose import hydra as hydra_app

    progress = PlanProgress()
    grid = hydra_app.expand_sweep(overrides, progress.composed)
    if not grid.jobs:
        cause = f"{grid.empty[0]} gives no values" if grid.empty else "no cell"
        raise UsageError(f"the sweep has no jobs ({cause}); give every swept key a value")
    jobs = []
    for cell, config in grid.jobs:
        settings = _validate(config, cell)
        jobs.append(Job(settings, cell, key=job_key(settings)))
        progress.checked(len(jobs), len(grid.jobs))
    _refuse_duplicates(jobs)
    if any(job.settings.experiment is not None for job in jobs):
        from regbench.analysis.answerable import check_answerable

        check_answerable([job.settings for job in jobs])
    return _label(jobs), grid.multirun_config


class PlanProgress:
    """``planning: 400/1000 jobs composed`` on stderr while a big grid is planned (a job takes
    milliseconds, a grid of thousands seconds): a first line once planning has taken
    EVERY_SECONDS, then one every EVERY_SECONDS; a grid planned sooner prints nothing."""

    EVERY_SECONDS = 2.0

    def __init__(self) -> None:
        self.last = time.monotonic()

    def composed(self, done: int, total: int) -> None:
        self._say(f"planning: {done}/{total} jobs composed", done == total)

    def checked(self, done: int, total: int) -> None:
        self._say(f"planning: {done}/{total} jobs checked", done == total)

    def _say(self, text: str, last: bool) -> None:
        now = time.monotonic()
        if now - self.last >= self.EVERY_SECONDS and not last:
            print(text, file=sys.stderr, flush=True)
            self.last = now


def _validate(config: Mapping[str, Any], overrides: Sequence[str]) -> Settings:
    """One job's Settings; a bad value is an error naming the job."""
    from regbench.compose.validate import validate

    try:
        return validate(dict(config))
    except ConfigError as exc:
        raise ConfigError(f"job {' '.join(overrides)}: {exc}") from exc


def _refuse_duplicates(jobs: Sequence[Job]) -> None:
    seen: dict[str, Job] = {}
    for job in jobs:
        if job.key in seen:
            raise UsageError(
                f"jobs '{' '.join(seen[job.key].overrides)}' and '{' '.join(job.overrides)}' "
                f"have the same config; remove the duplicate value from the grid"
            )
        seen[job.key] = job


def _label(jobs: list[Job]) -> list[Job]:
    """Give each job a short label made of the overrides that vary across the grid."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for key, value in _pairs(job.overrides):
            values.setdefault(key, set()).add(value)
    varying = {k for k, v in values.items() if len(v) > 1 or len(jobs) == 1}
    return [
        dataclasses.replace(
            job,
            label=" ".join(f"{k}={v}" for k, v in _pairs(job.overrides) if k in varying) or job.key,
        )
        for job in jobs
    ]


def _pairs(overrides: Sequence[str]) -> list[tuple[str, str]]:
    return [tuple(o.split("=", 1)) if "=" in o else (o, "") for o in overrides]  # type: ignore[misc]


def grid(jobs: Sequence[Job]) -> dict[str, list[str]]:
    """The swept keys and their values, in the order Hydra produced them."""
    return grid_of([job.overrides for job in jobs])


def grid_of(overrides: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """The keys that vary across these jobs' overrides, and their values in order."""
    values: dict[str, list[str]] = {}
    for items in overrides:
        for key, value in _pairs(items):
            if value not in values.setdefault(key, []):
                values[key].append(value)
    return {k: v for k, v in values.items() if len(v) > 1}


# ----------------------------------------------------------------------------- the driver
@dataclass
class SweepResult:
    sweep_dir: Path
    jobs: list[Job]  # each with its folder in sweep_dir
    states: dict[str, str]  # job key -> state before this invocation
    statuses: dict[str, str]  # job key -> status after it (empty for a dry run)
    multirun_config: Any = None  # what multirun.yaml records (the plan's Hydra config)


def default_dir(jobs: Sequence[Job]) -> Path:
    out_dirs = {job.settings.out_dir for job in jobs}
    out_dir = out_dirs.pop() if len(out_dirs) == 1 else "outputs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(out_dir).expanduser() / "sweeps" / f"{stamp}-{secrets.token_hex(3)}"


def prepare(overrides: Sequence[str], sweep_dir: Path | None) -> SweepResult:
    """Plan the sweep and find each job's state in ``sweep_dir``; nothing is written."""
    check_overrides(overrides)
    jobs, multirun_config = plan(overrides)
    sweep_dir = sweep_dir or default_dir(jobs)
    check_sweep_dir(sweep_dir)
    legacy = legacy_overrides(sweep_dir, jobs, overrides)
    if legacy:  # a sweep made before some keys existed grows with their legacy values
        warnings.warn(Notice(describe_legacy(legacy)), stacklevel=2)
        jobs, multirun_config = plan([*legacy, *overrides])
    jobs = [dataclasses.replace(job, folder=sweep_dir / job.key) for job in jobs]
    refuse_legacy_folders(sweep_dir, jobs)
    states = {job.key: job_state(sweep_dir / job.key) for job in jobs}
    return SweepResult(sweep_dir, jobs, states, {}, multirun_config)


def choose_launcher(
    overrides: Sequence[str], stacked: bool = False, memory_budget: int | None = None
) -> Launcher:
    """``--stacked``, else Hydra's multirun when the user names a launcher, else in-process."""
    if stacked:
        return StackedLauncher(memory_budget)
    if any(is_launcher_override(o) for o in overrides):
        return HydraLauncher()
    return SequentialLauncher()


def run(
    prepared: SweepResult,
    overrides: Sequence[str],
    quiet: bool,
    launcher: Launcher | None = None,
) -> SweepResult:
    """Run the planned sweep into its folder with ``launcher`` (by default the one the
    overrides ask for), holding the folder's lock and keeping sweep.json up to date."""
    from rich.console import Console

    launcher = launcher or choose_launcher(overrides)
    check_trackers(prepared)
    sweep_dir = prepared.sweep_dir
    sweep_dir.mkdir(parents=True, exist_ok=True)
    shares = getattr(launcher, "shares", None)
    # A job's figures are drawn while the next one trains (drawing.py). SIGTERM at any moment
    # (between jobs too) ends the sweep as Ctrl-C does: jobs recorded, the folder left.
    with (
        sigterm_as_interrupt(),
        working(sweep_dir, shares(sweep_dir) if shares else None) as joined,
        in_workers(),
    ):
        record = _begin(sweep_dir, prepared, overrides, quiet)
        console = Console(stderr=True)
        context = LaunchContext(sweep_dir, record, overrides, quiet, console, tuple(joined))
        try:
            launcher.launch(prepared, context)
        finally:
            try:
                settle_all()  # every job's summary is final before sweep.json records it
            finally:  # interrupted while figures are drawn: still record how each job ended
                prepared.statuses = _finish(sweep_dir, record, prepared.jobs)
    return prepared


def check_trackers(prepared: SweepResult) -> None:
    """The loggers' pre-flight (their libraries, a tracking store that opens or a server that
    answers), once per setting of the jobs to run, before any of them trains: a tracker that
    cannot work stops the sweep here instead of failing every job after its training."""
    from regbench.training.loggers import check

    checked: set[tuple[Any, ...]] = set()
    for job in prepared.jobs:
        settings = job.settings
        where = (settings.logger, settings.mlflow_uri, settings.out_dir)
        if decide(prepared.states.get(job.key, "new")) is Action.SKIP or where in checked:
            continue
        checked.add(where)
        check(settings)


def check_sweep_dir(sweep_dir: Path) -> None:
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise UsageError(f"{sweep_dir} is a file; --dir needs a folder")
    if sweep_dir.is_dir() and _holds_files(sweep_dir) and not (sweep_dir / SWEEP_FILE).exists():
        raise UsageError(
            f"{sweep_dir} is not a regbench sweep folder (no {SWEEP_FILE}); give a new or empty "
            f"folder, or one an earlier sweep wrote"
        )
    unsafe = [c for c in ("'", "\\", "${") if c in str(sweep_dir.resolve())]
    if unsafe:
        raise UsageError(f"the sweep folder's path must not contain {unsafe[0]}: {sweep_dir}")
    read_record(sweep_dir)  # a damaged record: said now, before the sweep plans and announces


def _holds_files(sweep_dir: Path) -> bool:
    """Whether the folder holds anything but what a sweep starting in it this moment (another
    process of a shared search) makes before its sweep.json: the lock, its worker file and a
    temporary sweep.json being written."""
    own = (LOCK_FILE, WORKERS, CLAIMS)
    return any(
        p.name not in own and not p.name.startswith(f".{SWEEP_FILE}.") for p in sweep_dir.iterdir()
    )


# ----------------------------------------------------------------------------- sweep.json
def read_record(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / SWEEP_FILE
    if not path.exists():
        return {"format": 1, "created_at": _now(), "invocations": [], "jobs": {}}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or bytes that are not UTF-8
        raise UsageError(f"cannot read {path}: {exc}") from exc
    problem = record_problem(record)
    if problem is not None:
        raise UsageError(
            f"cannot read {path}: {problem}, so it is not a sweep record regbench wrote; "
            f"restore it from a copy, or sweep into a new --dir"
        )
    return {"invocations": [], "jobs": {}, **record}  # the parts a sweep adds to, if missing


# The parts of sweep.json the sweep reads and updates, and the JSON type each must have: a
# received or hand-edited record is checked once here rather than failing deep in a launcher.
RECORD_PARTS = {"jobs": dict, "invocations": list, "grid": dict, "current": dict}
JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}


def record_problem(record: Any) -> str | None:
    """What makes ``record`` (sweep.json, parsed) not a sweep record, in a few words; None
    when it has the shape the sweep relies on."""
    if not isinstance(record, dict):
        return f"it holds {_json_type(record)}, not an object"
    for part, kind in RECORD_PARTS.items():
        if part in record and not isinstance(record[part], kind):
            return f"its {part!r} is {_json_type(record[part])}, not {JSON_TYPES[kind]}"
    jobs = record.get("jobs", {})
    bad = next((key for key, job in jobs.items() if not isinstance(job, dict)), None)
    if bad is not None:
        return f"its job {bad!r} is {_json_type(jobs[bad])}, not an object"
    if not isinstance(record.get("current", {}).get("order", []), list):
        return "its current order is not a list"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return JSON_TYPES.get(type(value), "a number")


def write_record(sweep_dir: Path, record: Mapping[str, Any]) -> None:
    """Atomically (temp file + rename): jobs in other processes read it while the sweep runs.
    The readable names in by-settings/ follow the record: every job folder there has one."""
    text = json.dumps(record, indent=2, default=str) + "\n"
    atomic_write(sweep_dir / SWEEP_FILE, lambda f: f.write(text.encode()))
    write_links(sweep_dir, record.get("jobs", {}))


def _begin(
    sweep_dir: Path, prepared: SweepResult, overrides: Sequence[str], quiet: bool
) -> dict[str, Any]:
    """This invocation's record, begun under the folder's short lock: another search process
    sharing the folder adds its own invocation and jobs meanwhile (``commit`` merges them)."""
    with short_lock(sweep_dir):
        record = read_record(sweep_dir)
        _begin_record(record, sweep_dir, prepared, overrides, quiet)
        write_record(sweep_dir, record)
    return record


def _begin_record(
    record: dict[str, Any],
    sweep_dir: Path,
    prepared: SweepResult,
    overrides: Sequence[str],
    quiet: bool,
) -> None:
    record["sweep_dir"] = str(sweep_dir)
    record["grid"] = grid(prepared.jobs)
    for job in prepared.jobs:
        entry = record["jobs"].setdefault(job.key, {"folder": job.key})
        entry.update(
            overrides=list(job.overrides),
            label=job.label,
            status=prepared.states[job.key],
        )
    record["current"] = {
        "order": [job.key for job in prepared.jobs],
        "progress": "lines" if quiet else "bars",
    }
    record["invocations"].append(
        {
            "id": secrets.token_hex(4),  # this invocation's entry, among concurrent ones' (merge)
            "started_at": _now(),
            "argv": sys.argv,
            "overrides": list(overrides),
            "jobs": len(prepared.jobs),
            "actions": describe_states(prepared),
        }
    )


def _finish(sweep_dir: Path, record: dict[str, Any], jobs: Sequence[Job]) -> dict[str, str]:
    statuses = {}
    for job in jobs:
        folder = sweep_dir / job.key
        summary = RunDir(folder).summary_or_none()
        statuses[job.key] = summary.status.value if summary else "not run"
        record["jobs"][job.key].update(status=statuses[job.key], error=summary and summary.error)
    record.pop("current", None)
    record["invocations"][-1].update(finished_at=_now(), outcome=_count(statuses.values()))
    commit(sweep_dir, record, [job.key for job in jobs])
    return statuses


def commit(sweep_dir: Path, record: Mapping[str, Any], own: Collection[str]) -> None:
    """Write this process's ``record`` into sweep.json under the folder's short lock, merged
    with what other processes sharing the folder (a search's) wrote since it was read: its own
    jobs (``own``) and invocation replace theirs, the rest is kept."""
    with short_lock(sweep_dir):
        write_record(sweep_dir, merge_records(read_record(sweep_dir), record, own))


def merge_records(
    disk: Mapping[str, Any], ours: Mapping[str, Any], own: Collection[str]
) -> dict[str, Any]:
    """``ours`` over ``disk``: our jobs, our invocation (by its id) and our search's trials (by
    number, when both searches are one study's) replace theirs; theirs are kept."""
    parts = ("jobs", "invocations", "search", "current")
    merged = {**disk, **{k: v for k, v in ours.items() if k not in parts}}
    merged.pop("current", None)
    if "current" in ours:  # only this process's launchers read it (and a grid has the folder)
        merged["current"] = ours["current"]
    jobs = dict(disk.get("jobs", {}))
    jobs.update({k: v for k, v in ours.get("jobs", {}).items() if k in own or k not in jobs})
    merged["jobs"] = jobs
    merged["invocations"] = _merged_invocations(disk.get("invocations", []), ours["invocations"])
    if "search" in ours:
        merged["search"] = _merged_search(disk.get("search"), ours["search"])
        merged["grid"] = grid_of([entry.get("overrides") or [] for entry in jobs.values()])
    return merged


def _merged_invocations(disk: Sequence[Any], ours: Sequence[Any]) -> list[Any]:
    """The disk's invocations with this one's entry (our last, found by its id) replaced."""
    mine = ours[-1] if ours and isinstance(ours[-1], dict) else None
    ident = mine.get("id") if mine else None
    if ident is None:
        return list(disk)
    merged = [mine if isinstance(i, dict) and i.get("id") == ident else i for i in disk]
    return merged if any(i is mine for i in merged) else [*merged, mine]


def _merged_search(disk: Any, ours: Mapping[str, Any]) -> dict[str, Any]:
    """Our search's entry, its trials merged with the disk's when both are one stored study's
    (processes sharing it); otherwise ours alone, as one process always wrote it."""
    where = ("storage", "study_name")
    shared = ours.get("storage") is not None and isinstance(disk, dict)
    same = shared and all(disk.get(k) == ours.get(k) for k in where)
    trials = {}
    for trial in [*((disk.get("trials") or []) if same else []), *ours.get("trials", [])]:
        if isinstance(trial, dict) and isinstance(trial.get("number"), int):
            trials[trial["number"]] = trial
    return {**ours, "trials": [trials[n] for n in sorted(trials)]}


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ----------------------------------------------------------------------------- launchers
@dataclass
class LaunchContext:
    """What a launcher needs besides the plan: where, how to report, and the user's overrides
    (Hydra's multirun expands them again, in its own processes)."""

    sweep_dir: Path
    record: Mapping[str, Any]  # sweep.json as this invocation began it: job order and labels
    overrides: Sequence[str]
    quiet: bool
    console: Console
    joined: tuple[str, ...] = ()  # the other processes working in the folder (a shared search)

    def say(self, key: str) -> Callable[[str], None]:
        return _announcer(self.console, self.record, key)


class Launcher(Protocol):
    def launch(self, prepared: SweepResult, context: LaunchContext) -> None:
        """Carry out every planned job as ``decide`` says; a failing job is recorded in its
        folder, never raised (Ctrl-C still stops everything)."""


class SequentialLauncher:
    """The default: each job in turn in this process, through regbench.training.runner."""

    def launch(self, prepared: SweepResult, context: LaunchContext) -> None:
        from regbench.compose import hydra as hydra_app

        hydra_app.save_multirun_config(prepared.multirun_config, context.sweep_dir)
        reporter = _reporter(not context.quiet, context.console)
        for job in prepared.jobs:
            carry_out(job, prepared.states[job.key], context.say(job.key), reporter)


class HydraLauncher:
    """A Hydra launcher plugin (``hydra/launcher=joblib``, submitit, ray): Hydra's multirun
    runs ``run_job`` once per job, possibly in other processes or on other machines. Jobs run
    elsewhere are followed from here (``FolderWatch``): their own output goes where the
    launcher sends it (submitit's log files, ray's deduplicating log stream)."""

    def launch(self, prepared: SweepResult, context: LaunchContext) -> None:
        from regbench.compose import hydra as hydra_app

        if _runs_in_process(prepared.multirun_config):
            hydra_app.multirun(run_job, context.overrides, context.sweep_dir)
            return
        with FolderWatch(prepared, context).watching():
            hydra_app.multirun(run_job, context.overrides, context.sweep_dir)


def _runs_in_process(config: Any) -> bool:
    """Whether the multirun config's launcher is Hydra's basic one (jobs in this process)."""
    from omegaconf import OmegaConf

    target = OmegaConf.select(config, "hydra.launcher._target_", default=None)
    return target is None or str(target).endswith("BasicLauncher")


class FolderWatch:
    """Each job's start and end, said from the sweep's process while a launcher runs the jobs
    elsewhere: every POLL_SECONDS each job folder's summary.json is read, and a change of its
    status (or of its ``started_at``, a retry) is a line as the default launcher prints it."""

    POLL_SECONDS = 1.0

    def __init__(self, prepared: SweepResult, context: LaunchContext) -> None:
        self.context = context
        self.jobs = [j for j in prepared.jobs if decide(prepared.states[j.key]) is not Action.SKIP]
        self.actions = {job.key: decide(prepared.states[job.key]) for job in self.jobs}
        self.skipped = [j for j in prepared.jobs if j not in self.jobs]
        self.seen = {job.key: self._mark(job) for job in self.jobs}
        self.started: set[str] = set()
        self.ended: set[str] = set()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        import threading

        for job in self.skipped:
            self.context.say(job.key)(SKIPPED)
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(stop,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.poll()  # the ends the last interval missed

    def _loop(self, stop: Any) -> None:
        while not stop.wait(self.POLL_SECONDS):
            self.poll()

    def poll(self) -> None:
        for job in self.jobs:
            mark = self._mark(job)
            if mark != self.seen[job.key] and mark[0] is not None:
                self._said(job, mark[0])
            self.seen[job.key] = mark

    def _said(self, job: Job, status: str) -> None:
        say = self.context.say(job.key)
        if job.key not in self.started:  # also a job that started and ended between two looks
            self.started.add(job.key)
            _announce_start(say, self.actions[job.key], job)
        if status != Status.RUNNING.value and job.key not in self.ended:
            self.ended.add(job.key)
            summary = RunDir(job.planned_folder()).summary_or_none()
            took = f" in {summary.wall_seconds:.1f}s" if summary and summary.wall_seconds else ""
            say(f"{status}{took}{_shown(summary)}")

    @staticmethod
    def _mark(job: Job) -> tuple[str | None, str | None]:
        """(status, started_at) of the job's summary.json; (None, None) while there is none."""
        with contextlib.suppress(OSError, ValueError):  # being written or cleared for a retry
            summary = RunDir(job.planned_folder()).summary_or_none()
            if summary is not None:
                return summary.status.value, summary.started_at
        return None, None


@dataclass
class StackedLauncher:
    """``--stacked`` (regbench/stacked.py): the jobs to run or retry train together wherever
    model, data and schedule agree, each into its own job folder; interrupted jobs resume one by
    one; completed ones are skipped."""

    memory_budget: int | None = None
    # A search's pruner, shown each evaluation of a stack (stacked.EvaluationHook).
    on_evaluation: Callable[[int, Sequence[Any]], bool] | None = None

    def launch(self, prepared: SweepResult, context: LaunchContext) -> None:
        from regbench.compose import hydra as hydra_app
        from regbench.stacked import launcher as stacked

        hydra_app.save_multirun_config(prepared.multirun_config, context.sweep_dir)
        reporter = _reporter(not context.quiet, context.console)
        todo: list[Job] = []
        for job in prepared.jobs:
            state = prepared.states[job.key]
            if decide(state) in (Action.RUN, Action.RETRY):
                _announce_start(context.say(job.key), decide(state), job, "stacked")
                _clear(job.folder)
                todo.append(job)
            else:
                carry_out(job, state, context.say(job.key), reporter)
        results = stacked.run_stacked(
            todo, reporter, self.memory_budget, on_failure=_fail, on_evaluation=self.on_evaluation
        )
        for job, result in zip(todo, results, strict=True):
            summary = result.summary if result else RunDir(job.planned_folder()).summary_or_none()
            status = summary.status.value if summary else Status.FAILED.value
            context.say(job.key)(status + _shown(summary))


# ----------------------------------------------------------------------------- one job
def carry_out(job: Job, state: str, say: Callable[[str], None], reporter: Reporter) -> str:
    """Skip, resume, retry or run ``job`` as ``decide`` says for ``state``; returns the status
    its folder then holds. Never raises for a failing job: the failure is recorded."""
    action = decide(state)
    if action is Action.SKIP:
        say(SKIPPED)
        return Status.COMPLETED.value
    _announce_start(say, action, job)
    started = time.time()
    status, detail = _attempt(job, action, reporter)
    say(f"{status} in {time.time() - started:.1f}s{detail}")
    return status


def run_job(cfg: DictConfig) -> str:
    """Hydra job function of HydraLauncher: this job of the plan, by its own config.

    The state is read again here: the job may run long after the plan, in another process.
    """
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf
    from rich.console import Console

    hydra_cfg = HydraConfig.get()
    overrides = tuple(hydra_cfg.overrides.task)
    sweep_dir = Path(hydra_cfg.sweep.dir)
    settings = _validate(OmegaConf.to_container(cfg, resolve=True), overrides)  # type: ignore[arg-type]
    key = job_key(settings)
    job = Job(settings, overrides, sweep_dir / key, key)
    record = read_record(sweep_dir)
    console = Console(stderr=True)
    in_process = hydra_cfg.launcher._target_.endswith("BasicLauncher")
    bars = in_process and record.get("current", {}).get("progress") == "bars"
    # Elsewhere, the sweep's process says each job's start and end (FolderWatch).
    say = _announcer(console, record, key) if in_process else _silent
    with _job_logging(console):
        return carry_out(job, job_state(job.planned_folder()), say, _reporter(bars, console))


def _silent(text: str) -> None:
    pass


@contextlib.contextmanager
def _job_logging(console: Console) -> Iterator[None]:
    """A job's notices shown wherever it runs. Hydra's logging config (``disabled``) disabled
    every logger in the job's process: ``regbench`` is enabled again for the job, and given a
    console handler where it has none to reach (a launcher's worker process)."""
    import logging

    from regbench.core import log
    from regbench.core.progress import ConsoleHandler

    handler = logging.NullHandler() if log.logger.hasHandlers() else ConsoleHandler(console)
    with log.handled_by(handler), log.notices_logged():
        yield


def _announce_start(say: Callable[[str], None], action: Action, job: Job, how: str = "") -> None:
    """``running -> <folder>`` (``running stacked -> ...``): the first line of every job."""
    say(" ".join(filter(None, (action.verb, how, "->", str(job.folder)))))


def _announcer(console: Console, record: Mapping[str, Any], key: str) -> Callable[[str], None]:
    """Prints ``[k/n] <label>: text``, the one line format of every job's progress."""
    order = record.get("current", {}).get("order", [])
    # A search learns its jobs as it goes: "total" is how many it will have (order grows).
    total = record.get("current", {}).get("total", len(order))
    position = f"[{order.index(key) + 1}/{total}]" if key in order else "[?]"
    label = record.get("jobs", {}).get(key, {}).get("label", key)

    def say(text: str) -> None:
        console.print(f"{position} {label}: {text}", markup=False, highlight=False, soft_wrap=True)

    return say


def _reporter(bars: bool, console: Console) -> Reporter:
    from regbench.core.progress import Reporter, RichReporter

    return RichReporter(console) if bars else Reporter(console)


def _attempt(job: Job, action: Action, reporter: Reporter) -> tuple[str, str]:
    """Run the job; returns (status, detail for the progress line)."""
    from regbench.training import runner

    folder = job.planned_folder()
    try:
        if action is Action.RESUME:
            result = runner.resume(RunDir.open(folder), reporter)
        else:
            _clear(folder)
            result = runner.execute(job.settings, job.overrides, reporter, run_path=folder)
    except Exception as exc:  # any failure of one job is recorded; the sweep goes on
        return _fail(job, exc), f": {_one_line(exc)}"
    return result.summary.status.value, _shown(result.summary)


def _fail(job: Job, exc: Exception) -> str:
    """Record ``exc`` as the job's failure (also stacked.run_stacked's on_failure)."""
    from regbench.training import runner

    return runner.record_failure(
        job.settings, job.overrides, job.planned_folder(), _one_line(exc)
    ).value


def _clear(folder: Path | None) -> None:
    if folder is not None and folder.exists():
        shutil.rmtree(folder)  # a failed/partial attempt: retried from scratch


def _shown(summary: Summary | None) -> str:
    final = (summary.final if summary else None) or {}
    return "".join(f"  {m} {final[m]:.4g}" for m in ("test_loss", "test_acc") if m in final)


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    return message if isinstance(exc, RegbenchError) else f"{type(exc).__name__}: {message}"


# Used by `regbench sweep --dry-run` and the final lines.
def describe_states(prepared: SweepResult) -> dict[str, int]:
    return _count(decide(s).value for s in prepared.states.values())
