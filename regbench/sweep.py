"""Sweeps: a grid of runs through Hydra's multirun, in job folders keyed by config, safe to rerun.

::

    <sweep_dir>/
        sweep.json              the grid, every job (overrides, folder, status), each invocation
        multirun.yaml           Hydra's record of the latest invocation's config and overrides
        <hash>-seed=<N>/        one run folder per job (the same files as `regbench run` writes)
        comparison.{md,csv}     the table `regbench compare` prints, and its plots

A job's folder is named by a short hash of its resolved config without ``seed`` (and without
``out_dir``/``name``, which do not change results) plus its seed. Running the same sweep again
with ``--dir`` therefore finds every job where it was: completed jobs are skipped, interrupted
ones resumed from their checkpoint, failed or diverged ones retried from scratch, and cells that
are new to the grid are added. Hydra expands the grid (its sweep syntax, its launchers); the job
function here decides, per job, what to do with its folder.

Everything a job needs from the driver travels on disk (``sweep.json``) or in Hydra's own config,
because launchers such as joblib run jobs in fresh processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.config import ConfigError
from regbench.errors import RegbenchError, UsageError
from regbench.jobs import Job as RunJob
from regbench.rundir import CONFIG, SUMMARY, RunDir, Status, Summary
from regbench.runner import process_alive

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from regbench.config import Settings

SWEEP_FILE, LOCK_FILE = "sweep.json", ".sweep.lock"
PLAN_PREFIX = "plan-"
# Keys that do not change what a run computes: not part of a job's key.
UNKEYED = ("seed", "out_dir", "name")
HASH_CHARS = 10
# What the job function does with a folder in each state.
ACTIONS = {
    "new": "run",
    "completed": "skip",
    "interrupted": "resume",
    "running": "resume",  # a sweep killed hard leaves "running"; the lock rules out a live one
    "failed": "retry",
    "diverged": "retry",
    "partial": "run",  # killed between creating the folder and writing its summary
}


# ----------------------------------------------------------------------------- job keys
def config_hash(config: Mapping[str, Any]) -> str:
    """Short, stable hash of a resolved config (a ``Settings.to_dict()``) without UNKEYED keys."""
    keyed = {k: v for k, v in config.items() if k not in UNKEYED}
    text = json.dumps(keyed, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def job_key(config: Mapping[str, Any]) -> str:
    """The job's folder name: ``<config hash>-seed=<seed>``."""
    return f"{config_hash(config)}-seed={config['seed']}"


@dataclass(frozen=True)
class Job:
    """One cell of the grid: the overrides Hydra made for it and its validated config."""

    key: str
    overrides: tuple[str, ...]
    config: dict[str, Any]
    label: str = ""


def job_state(folder: Path) -> str:
    """new | partial | running | completed | interrupted | failed | diverged.

    Raises UsageError when the folder's config.yaml does not hash to the folder's name: it was
    edited, or written for a different config, and reusing it would mix two experiments.
    """
    if not folder.exists():
        return "new"
    config_file = folder / CONFIG
    if config_file.is_file():
        _check_key(folder)
    if not (folder / SUMMARY).is_file():
        return "partial"
    summary = RunDir(folder).summary_or_none()
    return summary.status.value if summary else "partial"


def _check_key(folder: Path) -> None:
    import yaml

    try:
        found = f"it hashes to {job_key(yaml.safe_load((folder / CONFIG).read_text()))}"
    except (OSError, yaml.YAMLError, TypeError, KeyError, AttributeError):
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
    for item in overrides:
        if item.startswith("-"):
            raise UsageError(f"unknown option {item}; sweep takes key=value overrides and --dir")
        key = item.split("=", 1)[0].lstrip("+~")
        if key.startswith(("hydra.sweep.", "hydra.run.", "hydra.output_subdir", "hydra.job.chdir")):
            raise UsageError(
                f"{key} is managed by regbench sweep; choose the sweep folder with --dir"
            )


def is_launcher_override(item: str) -> bool:
    key = item.split("=", 1)[0].lstrip("+~")
    return key in ("hydra/launcher", "hydra.launcher") or key.startswith("hydra.launcher.")


def plan(overrides: Sequence[str]) -> list[Job]:
    """Expand ``overrides`` into jobs with Hydra's own sweeper, validating every job's config.

    This is a first pass through the same @hydra.main entry as the real sweep, with the basic
    launcher in this process: its job function only records each job, so the grid, a dry run and
    every config error are known before anything trains.
    """
    from regbench import hydra_app

    hydra_app.check_launcher([o for o in overrides if is_launcher_override(o)])
    local = [o for o in overrides if not is_launcher_override(o)]
    with tempfile.TemporaryDirectory(prefix="regbench-plan-") as scratch:
        hydra_app.multirun(record_plan, local, Path(scratch))
        files = sorted(Path(scratch).glob(f"{PLAN_PREFIX}*.json"), key=_plan_number)
        entries = [json.loads(p.read_text()) for p in files]
    errors = [e["error"] for e in entries if "error" in e]
    if errors:
        raise ConfigError(errors[0])
    jobs = [Job(e["key"], tuple(e["overrides"]), e["config"]) for e in entries]
    _refuse_duplicates(jobs)
    return _label(jobs)


def record_plan(cfg: DictConfig) -> None:
    """Hydra job function of the planning pass: validate the job and write it down.

    A bad config is written down too rather than raised: Hydra would print its own report."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    try:
        config = _settings(cfg, overrides).to_dict()
        entry = {"key": job_key(config), "overrides": overrides, "config": config}
    except ConfigError as exc:
        entry = {"error": str(exc)}
    target = Path(hydra_cfg.sweep.dir) / f"{PLAN_PREFIX}{hydra_cfg.job.num}.json"
    target.write_text(json.dumps(entry))


def _settings(cfg: DictConfig, overrides: Sequence[str]) -> Settings:
    from omegaconf import OmegaConf

    from regbench.validation import validate

    try:
        return validate(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ConfigError(f"job {' '.join(overrides)}: {exc}") from exc


def _plan_number(path: Path) -> int:
    return int(path.stem.removeprefix(PLAN_PREFIX))


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
        Job(
            job.key,
            job.overrides,
            job.config,
            " ".join(f"{k}={v}" for k, v in _pairs(job.overrides) if k in varying) or job.key,
        )
        for job in jobs
    ]


def _pairs(overrides: Sequence[str]) -> list[tuple[str, str]]:
    return [tuple(o.split("=", 1)) if "=" in o else (o, "") for o in overrides]  # type: ignore[misc]


def grid(jobs: Sequence[Job]) -> dict[str, list[str]]:
    """The swept keys and their values, in the order Hydra produced them."""
    values: dict[str, list[str]] = {}
    for job in jobs:
        for key, value in _pairs(job.overrides):
            if value not in values.setdefault(key, []):
                values[key].append(value)
    return {k: v for k, v in values.items() if len(v) > 1}


# ----------------------------------------------------------------------------- the driver
@dataclass
class SweepResult:
    sweep_dir: Path
    jobs: list[Job]
    states: dict[str, str]  # job key -> state before this invocation
    statuses: dict[str, str]  # job key -> status after it (empty for a dry run)


def default_dir(jobs: Sequence[Job]) -> Path:
    out_dirs = {job.config["out_dir"] for job in jobs}
    out_dir = out_dirs.pop() if len(out_dirs) == 1 else "outputs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(out_dir).expanduser() / "sweeps" / f"{stamp}-{secrets.token_hex(3)}"


def prepare(overrides: Sequence[str], sweep_dir: Path | None) -> SweepResult:
    """Plan the sweep and find each job's state in ``sweep_dir``; nothing is written."""
    check_overrides(overrides)
    jobs = plan(overrides)
    sweep_dir = sweep_dir or default_dir(jobs)
    _check_sweep_dir(sweep_dir)
    states = {job.key: job_state(sweep_dir / job.key) for job in jobs}
    return SweepResult(sweep_dir, jobs, states, {})


def run(prepared: SweepResult, overrides: Sequence[str], quiet: bool) -> SweepResult:
    """Run the planned sweep through Hydra's multirun (the user's launcher) into its folder."""
    from regbench import hydra_app

    sweep_dir = prepared.sweep_dir
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with _lock(sweep_dir):
        record = _begin(sweep_dir, prepared, overrides, quiet)
        try:
            hydra_app.multirun(run_job, overrides, sweep_dir)
        finally:
            prepared.statuses = _finish(sweep_dir, record, prepared.jobs)
    return prepared


def run_stacked(
    prepared: SweepResult, overrides: Sequence[str], quiet: bool, memory_budget: int | None
) -> SweepResult:
    """``run`` with the stacked launcher (regbench/stacked.py) instead of Hydra's: the jobs to
    run or retry train together wherever model, data and schedule agree, each into its own job
    folder; interrupted jobs resume one by one; completed ones are skipped."""
    from rich.console import Console

    from regbench import stacked
    from regbench.validation import validate

    sweep_dir = prepared.sweep_dir
    sweep_dir.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    reporter = _reporter(not quiet, console)
    with _lock(sweep_dir):
        record = _begin(sweep_dir, prepared, overrides, quiet)
        try:
            todo: list[RunJob] = []
            announce: list[Any] = []
            for job in prepared.jobs:
                state, folder = prepared.states[job.key], sweep_dir / job.key
                settings, say = validate(job.config), _announcer(console, record, job.key)
                if ACTIONS[state] == "skip":
                    say("skipped (already completed)")
                elif ACTIONS[state] == "resume":
                    say(f"resuming -> {folder}")
                    say(" ".join(_attempt(settings, job.overrides, folder, state, reporter)))
                else:
                    say(f"{_verb(state)} stacked -> {folder}")
                    if folder.exists():
                        shutil.rmtree(folder)  # a failed/partial attempt: retried from scratch
                    todo.append(RunJob(settings, job.overrides, folder=folder))
                    announce.append(say)

            def failed(job: RunJob, exc: Exception) -> None:
                assert job.folder is not None
                _record_failure(job.settings, job.overrides, job.folder, exc)

            results = stacked.run_stacked(todo, reporter, memory_budget, on_failure=failed)
            for say, job, result in zip(announce, todo, results, strict=True):
                summary = result.summary if result else RunDir(job.folder).summary_or_none()
                final = (summary.final if summary else None) or {}
                shown = [f"  {m} {final[m]:.4g}" for m in ("test_loss", "test_acc") if m in final]
                say(str(summary.status if summary else Status.FAILED) + "".join(shown))
        finally:
            prepared.statuses = _finish(sweep_dir, record, prepared.jobs)
    return prepared


def _check_sweep_dir(sweep_dir: Path) -> None:
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise UsageError(f"{sweep_dir} is a file; --dir needs a folder")
    if sweep_dir.is_dir() and any(sweep_dir.iterdir()) and not (sweep_dir / SWEEP_FILE).exists():
        raise UsageError(
            f"{sweep_dir} is not a regbench sweep folder (no {SWEEP_FILE}); give a new or empty "
            f"folder, or one an earlier sweep wrote"
        )
    unsafe = [c for c in ("'", "\\", "${") if c in str(sweep_dir.resolve())]
    if unsafe:
        raise UsageError(f"the sweep folder's path must not contain {unsafe[0]}: {sweep_dir}")


@contextlib.contextmanager
def _lock(sweep_dir: Path) -> Iterator[None]:
    """One sweep at a time per folder: two would run the same jobs into the same folders."""
    lock = sweep_dir / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pid = _read_pid(lock)
            if process_alive(pid):
                raise UsageError(
                    f"another regbench sweep (pid {pid}) is running in {sweep_dir}; wait for it"
                ) from None
            lock.unlink(missing_ok=True)  # left by a sweep that was killed
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise RegbenchError(f"cannot lock {sweep_dir}; remove {lock} if no sweep is running")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _read_pid(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- sweep.json
def read_record(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / SWEEP_FILE
    if not path.exists():
        return {"format": 1, "created_at": _now(), "invocations": [], "jobs": {}}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc


def write_record(sweep_dir: Path, record: Mapping[str, Any]) -> None:
    """Atomically (temp file + rename): jobs in other processes read it while the sweep runs."""
    fd, tmp = tempfile.mkstemp(prefix=f".{SWEEP_FILE}.", dir=sweep_dir)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record, indent=2, default=str) + "\n")
        os.replace(tmp, sweep_dir / SWEEP_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _begin(
    sweep_dir: Path, prepared: SweepResult, overrides: Sequence[str], quiet: bool
) -> dict[str, Any]:
    record = read_record(sweep_dir)
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
            "started_at": _now(),
            "argv": sys.argv,
            "overrides": list(overrides),
            "jobs": len(prepared.jobs),
            "actions": _count(ACTIONS[s] for s in prepared.states.values()),
        }
    )
    write_record(sweep_dir, record)
    return record


def _finish(sweep_dir: Path, record: dict[str, Any], jobs: Sequence[Job]) -> dict[str, str]:
    statuses = {}
    for job in jobs:
        folder = sweep_dir / job.key
        summary = RunDir(folder).summary_or_none()
        statuses[job.key] = summary.status.value if summary else "not run"
        record["jobs"][job.key].update(status=statuses[job.key], error=summary and summary.error)
    record.pop("current", None)
    record["invocations"][-1].update(finished_at=_now(), outcome=_count(statuses.values()))
    write_record(sweep_dir, record)
    return statuses


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ----------------------------------------------------------------------------- one job
def run_job(cfg: DictConfig) -> str:
    """Hydra job function of the real pass: run, resume, retry or skip this job's folder.

    Never raises for a failing job (Hydra would stop the sweep): the failure is recorded in the
    job's summary.json and the sweep goes on. Ctrl-C still stops everything.
    """
    from hydra.core.hydra_config import HydraConfig
    from rich.console import Console

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    sweep_dir = Path(hydra_cfg.sweep.dir)
    settings = _settings(cfg, overrides)
    key = job_key(settings.to_dict())
    folder = sweep_dir / key
    record = read_record(sweep_dir)
    console = Console(stderr=True)
    in_process = hydra_cfg.launcher._target_.endswith("BasicLauncher")
    bars = in_process and record.get("current", {}).get("progress") == "bars"
    say = _announcer(console, record, key)
    state = job_state(folder)
    if state == "completed":
        say("skipped (already completed)")
        return "completed"
    say(f"{_verb(state)} -> {folder}")
    started = time.time()
    status, detail = _attempt(settings, overrides, folder, state, _reporter(bars, console))
    say(f"{status} in {time.time() - started:.1f}s{detail}")
    return status


def _verb(state: str) -> str:
    return {"resume": "resuming", "retry": "retrying", "run": "running"}[ACTIONS[state]]


def _announcer(console: Any, record: Mapping[str, Any], key: str) -> Any:
    order = record.get("current", {}).get("order", [])
    position = f"[{order.index(key) + 1}/{len(order)}]" if key in order else "[?]"
    label = record.get("jobs", {}).get(key, {}).get("label", key)

    def say(text: str) -> None:
        console.print(f"{position} {label}: {text}", markup=False, highlight=False, soft_wrap=True)

    return say


def _reporter(bars: bool, console: Any) -> Any:
    from regbench.progress import Reporter, RichReporter

    return RichReporter(console) if bars else Reporter(console)


def _attempt(
    settings: Settings, overrides: Sequence[str], folder: Path, state: str, reporter: Any
) -> tuple[str, str]:
    """Run the job; returns (status, detail for the progress line)."""
    from regbench import runner

    try:
        if ACTIONS[state] == "resume":
            result = runner.resume(RunDir.open(folder), reporter)
        else:
            if folder.exists():
                shutil.rmtree(folder)  # a failed/partial attempt: retried from scratch
            result = runner.execute(settings, overrides, reporter, run_path=folder)
    except Exception as exc:  # any failure of one job is recorded; the sweep goes on
        return _record_failure(settings, overrides, folder, exc), f": {_one_line(exc)}"
    final = result.summary.final or {}
    shown = [f"  {m} {final[m]:.4g}" for m in ("test_loss", "test_acc") if m in final]
    return result.summary.status.value, "".join(shown)


def _record_failure(
    settings: Settings, overrides: Sequence[str], folder: Path, exc: Exception
) -> str:
    """The status the job's folder now holds; a job that failed before its run folder existed
    (bad data, no device) gets a folder with its config and a failed summary, so the table and
    the next invocation see it."""
    summary = RunDir(folder).summary_or_none()
    if summary and summary.status in (Status.FAILED, Status.DIVERGED, Status.INTERRUPTED):
        return summary.status.value
    if summary:  # e.g. resume refused: leave the folder as it is
        return Status.FAILED.value
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = RunDir(folder)
    run_dir.write_config(settings.to_dict(), overrides)
    run_dir.write_summary(
        Summary(
            status=Status.FAILED,
            error=_one_line(exc),
            name=settings.run_name,
            model=settings.model.name,
            seed=settings.seed,
            overrides=list(overrides),
            finished_at=_now(),
        )
    )
    return Status.FAILED.value


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    return message if isinstance(exc, RegbenchError) else f"{type(exc).__name__}: {message}"


# Used by `regbench sweep --dry-run` and the final lines.
def describe_states(prepared: SweepResult) -> dict[str, int]:
    return _count(ACTIONS[s] for s in prepared.states.values())
