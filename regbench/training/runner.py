"""One run end to end: settings -> device, seeds, data -> study -> run session -> loop.

Everything that can be checked (settings, device, data) is checked before the run folder is
created, so bad input never leaves a folder behind; once the folder exists, its session
(session.py) makes sure its summary's ``status`` says what really happened.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from regbench.core.config import top_level
from regbench.core.errors import UsageError
from regbench.core.rundir import CHECKPOINT, CONFIG, RunDir, Status, timestamp
from regbench.core.seeding import preserved_globals
from regbench.figures.drawing import in_workers
from regbench.training.session import RunResult, RunSession, closing, new_summary

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from regbench.core.config import Settings
    from regbench.core.progress import Reporter
    from regbench.data import DataBundle
    from regbench.studies.base import Study


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
    with preserved_globals(), in_workers(raise_errors=True):
        _, study = prepare(settings, reporter)
        return train_run(settings, study, overrides, reporter, folder=run_path, extra=extra_summary)


def rerun(original: RunDir, reporter: Reporter) -> RunResult:
    """Run ``original``'s saved config again, into a new folder beside it."""
    settings = dataclasses.replace(
        saved_settings(original), out_dir=str(original.path.parent.parent)
    )
    extra = {"rerun_of": str(original.path)}
    return execute(settings, original.read_overrides(), reporter, extra_summary=extra)


def saved_settings(run_dir: RunDir) -> Settings:
    """A run folder's config.yaml, validated like any new config."""
    from regbench.compose.validate import validate
    from regbench.core.config import ConfigError

    try:
        return validate(run_dir.read_config() or {})
    except ConfigError as exc:
        raise UsageError(f"{run_dir.path / CONFIG} is not a valid config: {exc}") from exc


def resume(run_dir: RunDir, reporter: Reporter) -> RunResult:
    """Continue ``run_dir`` from its last checkpoint (from the start when it has none)."""
    with run_dir.locked():  # before the summary is read: two resumes would both go on from it
        return _resume(run_dir, reporter)


def _resume(run_dir: RunDir, reporter: Reporter) -> RunResult:
    summary = run_dir.read_summary()
    if summary.status is Status.COMPLETED:
        if not (run_dir.path / CHECKPOINT).is_file():  # keep_checkpoint=false dropped it
            raise UsageError(
                f"{run_dir} completed and its {CHECKPOINT} was dropped (keep_checkpoint=false), "
                f"so it cannot go on (e.g. to more epochs); `regbench rerun` trains it again"
            )
        raise UsageError(f"{run_dir} already completed; use `regbench rerun` to run it again")
    if summary.status is Status.RUNNING and process_alive(summary.pid, summary.host):
        where = f"pid {summary.pid}" + (f" on {summary.host}" if summary.host else "")
        raise UsageError(f"{run_dir} is still running ({where}); stop it first")
    if summary.status is Status.PRUNED:
        raise UsageError(
            f"{run_dir} was pruned by its search at epoch {summary.pruned_epoch} (a final state); "
            f"`regbench rerun` trains it again"
        )
    if summary.status is Status.DIVERGED:
        raise UsageError(
            f"{run_dir} diverged at epoch {summary.diverged_epoch}; resuming would repeat it: "
            f"change what exploded and start a new run (`regbench run`)"
        )
    settings = saved_settings(run_dir)
    checkpoint = run_dir.load_checkpoint()
    check_resumable(settings, checkpoint, run_dir)
    if checkpoint is None:
        reporter.notice(f"{run_dir} has no checkpoint yet: resuming starts it over from epoch 1")
    else:
        reporter.notice(f"resuming {run_dir} from epoch {checkpoint['epoch'] + 1}")
    with preserved_globals(), in_workers(raise_errors=True):
        _, study = prepare(settings, reporter)
        # Rows written after the last checkpoint (if killed between the two writes) are redone.
        run_dir.rewrite_metrics(checkpoint["rows"] if checkpoint else [])
        run_dir.truncate_weights(checkpoint["epoch"] if checkpoint else 0)
        overrides = run_dir.read_overrides()
        return train_run(
            settings, study, overrides, reporter, resume=run_dir, checkpoint=checkpoint
        )


# Keys a resumed run may change: how far it goes and where its output goes, not what the
# checkpoint's weights and optimizer state were trained with (declared: Key.resumable).
RESUMABLE_CHANGES = top_level(lambda declared: declared.resumable)


def check_resumable(settings: Settings, checkpoint: dict[str, Any] | None, run_dir: RunDir) -> None:
    """A UsageError when config.yaml was edited since its checkpoint in a way the checkpoint's
    state does not reflect (e.g. lr 0.01 -> 0.5). Checkpoints written before they recorded
    their config cannot be checked."""
    saved = (checkpoint or {}).get("config")
    if saved is None:
        return
    # Both without keys at their legacy values: a checkpoint written before a key existed was
    # trained with its legacy value, which is what config.yaml's missing key reads as.
    now, before = settings.without_legacy(), _without_legacy(saved)
    keys = dict.fromkeys([*now, *before])
    changed = [k for k in keys if k not in RESUMABLE_CHANGES and now.get(k) != before.get(k)]
    if changed:
        # Shown as set, a key at its legacy value too (without_legacy dropped it: None).
        now, before = settings.to_dict(), _with_legacy(saved)
        shown = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise UsageError(
            f"{run_dir.path / CONFIG} no longer matches its checkpoint ({shown}); put it back, "
            f"or start a new run with `regbench run` (only "
            f"{', '.join(RESUMABLE_CHANGES)} may change between a run and its resume)"
        )


def _without_legacy(config: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config, validated, less keys at their legacy values (as it is, when it no
    longer validates: the comparison then names what differs)."""
    from regbench.compose.validate import validate

    try:
        return validate(config).without_legacy()
    except UsageError:
        return config


def _with_legacy(config: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config, validated: the keys it predates at their legacy values."""
    from regbench.compose.validate import validate

    try:
        return validate(config).to_dict()
    except UsageError:
        return config


def train_run(
    settings: Settings,
    study: Study,
    overrides: Sequence[str],
    reporter: Reporter,
    *,
    folder: Path | None = None,
    resume: RunDir | None = None,
    checkpoint: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> RunResult:
    """The solo life cycle: open the run's session, train it, close it."""
    from regbench.training.loop import SoloTrainer

    session = RunSession.open_run(
        settings,
        study,
        overrides,
        reporter,
        lambda: trainer.state(),
        folder=folder,
        resume=resume,
        checkpoint=checkpoint,
        extra=extra,
    )
    with closing([session], reporter):
        trainer = SoloTrainer(study, settings, checkpoint)
        trainer.train(session, reporter)
        reporter.stop()
        session.complete()
    return session.result


def record_failure(
    settings: Settings, overrides: Sequence[str], folder: Path, error: str
) -> Status:
    """The status ``folder`` holds after its job failed with ``error``. A job that failed before
    its run folder existed (bad data, no device) gets one, with its config and a failed summary,
    so that tables and the next invocation of its sweep see it."""
    run_dir = RunDir(folder)
    summary = run_dir.summary_or_none()
    ended = (Status.FAILED, Status.DIVERGED, Status.INTERRUPTED)
    if summary is not None:  # the run recorded its own end, or e.g. its resume was refused
        return summary.status if summary.status in ended else Status.FAILED
    folder.mkdir(parents=True, exist_ok=True)
    run_dir.write_config(settings.to_dict(), overrides)
    summary = new_summary(settings, overrides)
    summary.status, summary.error, summary.finished_at = Status.FAILED, error, timestamp()
    run_dir.write_summary(summary)
    return Status.FAILED


def prepare(
    settings: Settings, reporter: Reporter, load: Callable[..., DataBundle] | None = None
) -> tuple[torch.device, Study]:
    """Device, seeds, data, Study. ``load`` replaces ``data.load_data`` (the stacked launcher
    passes one that loads each data set once for all members)."""
    import torch

    from regbench.core.seeding import configure_determinism, seed_everything
    from regbench.data import load_data
    from regbench.studies import study_class
    from regbench.training.loggers import check as check_loggers

    check_loggers(settings)
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


def process_alive(pid: Any, host: str | None = None) -> bool:
    """Whether a process with this pid exists (anything but an int: no). A process on another
    ``host`` (a cluster node sharing the file system) cannot be checked from here, so it counts
    as alive: taking a live run for dead would run it twice into one folder."""
    if host is not None and host != socket.gethostname():
        return True
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
