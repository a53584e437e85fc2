"""One run end to end: settings -> device, seeds, data -> study -> run folder -> loop -> outputs.

Everything that can be checked (settings, device, data) is checked before the run folder is
created, so bad input never leaves a folder behind; once the folder exists, its summary's
``status`` always says what really happened.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.errors import UsageError
from regbench.progress import Reporter
from regbench.rundir import RunDir, Status, Summary

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from regbench.config import Settings
    from regbench.data import DataBundle
    from regbench.models.base import Study


@dataclass
class RunResult:
    run_dir: RunDir
    summary: Summary
    rows: list[dict[str, Any]]


def resolve_device(choice: str) -> torch.device:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            "device=cuda but CUDA is not available here; use device=cpu or device=auto"
        )
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def execute(
    settings: Settings,
    overrides: Sequence[str],
    reporter: Reporter,
    extra_summary: dict[str, Any] | None = None,
    run_path: Path | None = None,
) -> RunResult:
    """A new run of ``settings`` in a new run folder (``extra_summary`` lands in its summary);
    ``run_path`` names the folder exactly (a sweep's job folder) instead of out_dir/name/stamp."""
    _, study = _prepare(settings, reporter)
    run_dir = RunDir.create(settings.out_dir, settings.run_name, path=run_path)
    run_dir.write_config(settings.to_dict(), overrides)
    return _train_and_finish(
        settings, study, run_dir, overrides, reporter, extra_summary=extra_summary
    )


def rerun(original: RunDir, reporter: Reporter) -> RunResult:
    """Run ``original``'s saved config again, into a new folder beside it."""
    settings = dataclasses.replace(
        saved_settings(original), out_dir=str(original.path.parent.parent)
    )
    extra = {"rerun_of": str(original.path)}
    return execute(settings, original.read_overrides(), reporter, extra_summary=extra)


def saved_settings(run_dir: RunDir) -> Settings:
    """A run folder's config.yaml, validated like any new config."""
    from regbench.config import ConfigError, validate

    try:
        return validate(run_dir.read_config() or {})
    except ConfigError as exc:
        raise UsageError(f"{run_dir / 'config.yaml'} is not a valid config: {exc}") from exc


def resume(run_dir: RunDir, reporter: Reporter) -> RunResult:
    """Continue ``run_dir`` from its last checkpoint (from the start when it has none)."""
    summary = run_dir.read_summary()
    if summary.status is Status.COMPLETED:
        raise UsageError(f"{run_dir} already completed; use `regbench rerun` to run it again")
    if summary.status is Status.RUNNING and process_alive(summary.pid):
        raise UsageError(f"{run_dir} is still running (pid {summary.pid}); stop it first")
    settings = saved_settings(run_dir)
    _, study = _prepare(settings, reporter)
    checkpoint = run_dir.load_checkpoint()
    # Rows written after the last checkpoint (if killed between the two writes) are redone.
    run_dir.rewrite_metrics(checkpoint["rows"] if checkpoint else [])
    run_dir.truncate_weights(checkpoint["epoch"] if checkpoint else 0)
    return _train_and_finish(
        settings, study, run_dir, run_dir.read_overrides(), reporter, checkpoint
    )


def _prepare(
    settings: Settings, reporter: Reporter, load: Callable[..., DataBundle] | None = None
) -> tuple[torch.device, Study]:
    """Device, seeds, data, Study. ``load`` replaces ``data.load_data`` (the stacked launcher
    passes one that loads each data set once for all members)."""
    import torch

    from regbench.data import load_data
    from regbench.loggers import check_available as check_loggers
    from regbench.models import study_class
    from regbench.seeding import configure_determinism, seed_everything

    check_loggers(settings.logger)
    device = resolve_device(settings.device)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    configure_determinism(settings.deterministic, device)
    seed_everything(settings.seed)
    data = (load or load_data)(settings.data, settings.seed)
    if data.notice:
        reporter.notice(data.notice)
    seed_everything(settings.seed)  # the same weights whatever the data source consumed
    return device, study_class(settings.model.name)(settings, data.to(device), device)


def _train_and_finish(
    settings: Settings,
    study: Study,
    run_dir: RunDir,
    overrides: Sequence[str],
    reporter: Reporter,
    checkpoint: dict[str, Any] | None = None,
    extra_summary: dict[str, Any] | None = None,
) -> RunResult:
    from regbench.loggers import build_loggers
    from regbench.train import Diverged, train

    started = time.time()
    summary = _summary(settings, study, run_dir, overrides, started)
    for key, value in (extra_summary or {}).items():
        setattr(summary, key, value)
    if checkpoint is not None:
        summary.resumed_from_epoch = checkpoint["epoch"]
    run_dir.write_summary(summary)
    status, rows = Status.FAILED, []
    loggers = build_loggers(settings)
    try:
        loggers.start(run_dir.path, settings.to_dict())
        with _sigterm_as_interrupt():
            rows = train(study, settings, run_dir, reporter, checkpoint, loggers)
        reporter.stop()
        _write_outputs(settings, study, run_dir, rows)
        status = Status.COMPLETED
    except Diverged as exc:
        status = Status.DIVERGED
        summary.error, summary.diverged_epoch = str(exc), exc.epoch
        raise
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
        raise
    except Exception as exc:
        summary.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        reporter.stop()
        rows = rows or run_dir.read_metrics()
        set_results(summary, study, rows)
        summary.status, summary.finished_at = status, _now()
        summary.wall_seconds = time.time() - started
        run_dir.write_summary(summary)
        loggers.finish(run_dir.path, status)
    return RunResult(run_dir, summary, rows)


def _write_outputs(
    settings: Settings, study: Study, run_dir: RunDir, rows: list[dict[str, Any]]
) -> None:
    from regbench.diagnostics import draw_weight_plots
    from regbench.plots import loss_curve

    run_dir.save_model(study.state_dicts())
    title = plot_title(settings, study.data.name)
    loss_curve(rows, study.loss_columns, title, run_dir.path / "loss_curve.png")
    study.extra_plots(run_dir.path, rows)
    draw_weight_plots(study.networks, run_dir, title)


def plot_title(settings: Settings, data_name: str | None = None) -> str:
    """Figure title with the key settings; ``data_name`` is the source actually used (it differs
    from the config's after a fallback)."""
    return (
        f"{settings.model.name} on {data_name or settings.data.name}: "
        f"dropout={settings.dropout:g} "
        f"l1={settings.l1:g} l2={settings.l2:g} weight_decay={settings.weight_decay:g} "
        f"seed={settings.seed}"
    )


def _summary(
    settings: Settings, study: Study, run_dir: RunDir, overrides: Sequence[str], started: float
) -> Summary:
    import torch

    on_cuda = study.device.type == "cuda"
    return Summary(
        status=Status.RUNNING,
        pid=os.getpid(),
        run_dir=str(run_dir.path),
        name=settings.run_name,
        model=settings.model.name,
        seed=settings.seed,
        epochs=settings.epochs,
        device=str(study.device),
        data=study.data.describe(),
        overrides=list(overrides),
        started_at=_now(started),
        environment={
            "python": platform.python_version(),
            "torch": torch.__version__,
            "regbench": _version(),
            "platform": platform.platform(),
            "threads": torch.get_num_threads(),
            "deterministic": settings.deterministic,
            "cuda": torch.version.cuda if on_cuda else None,
            "gpu": torch.cuda.get_device_name(study.device) if on_cuda else None,
            "argv": sys.argv,
        },
    )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, a scheduler's preemption) ends the run like Ctrl-C: status interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def record_failure(
    settings: Settings, overrides: Sequence[str], folder: Path, error: str
) -> Status:
    """The status ``folder`` holds after a run of ``settings`` into it failed with ``error``.

    A run that failed before its folder existed (bad data, no device) gets a folder with its
    config and a failed summary, so tables and a sweep's next invocation see it. A folder the run
    already wrote keeps its summary: its status (failed, diverged, interrupted) says what happened.
    """
    summary = RunDir(folder).summary_or_none()
    if summary is not None:
        ended = (Status.FAILED, Status.DIVERGED, Status.INTERRUPTED)
        return summary.status if summary.status in ended else Status.FAILED
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = RunDir(folder)
    run_dir.write_config(settings.to_dict(), overrides)
    run_dir.write_summary(
        Summary(
            status=Status.FAILED,
            error=error,
            name=settings.run_name,
            model=settings.model.name,
            seed=settings.seed,
            overrides=list(overrides),
            finished_at=_now(),
        )
    )
    return Status.FAILED


def process_alive(pid: Any) -> bool:
    """Whether a process with this pid exists (anything but an int: no)."""
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def set_results(summary: Summary, study: Study, rows: list[dict[str, Any]]) -> None:
    """Epochs completed, the last row and the best value of each of the study's goals."""
    best = {}
    for metric, goal in study.goals.items() if rows else ():
        pick = min if goal == "min" else max
        row = pick(rows, key=lambda r, m=metric: r[m])
        best[metric] = {"value": row[metric], "epoch": row["epoch"]}
    summary.epochs_completed = rows[-1]["epoch"] if rows else 0
    summary.final, summary.best = (rows[-1] if rows else {}), best


def _now(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(at))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regbench")
    except PackageNotFoundError:
        return "unknown"
