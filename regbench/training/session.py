"""One run's life cycle, written once: open its folder, record its metrics rows, close it.

Solo runs, resumed runs and each member of a stacked sweep go through the same three steps:

- ``RunSession.open_run`` creates the run folder (or reopens one to resume), writes config.yaml,
  overrides.yaml and a ``running`` summary, and starts the row writers;
- ``record`` hands each metrics row to the writers (weights.csv, metrics.csv, checkpoint.pt, the
  progress reporter, the optional loggers), in that order, so that a crash between two of them
  leaves a folder that resumes correctly (resume truncates to the last checkpoint);
- ``complete`` writes model.pt, hands the figures to the drawer (drawing.py) and closes the run
  as completed once they are drawn; ``fail`` closes it with the status an exception means.
  Either way summary.json ends with the status that really happened, and the loggers hear it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.core.errors import Diverged, RegbenchError
from regbench.core.rundir import CHECKPOINT, LOSS_CURVE, RunDir, Status, Summary, timestamp
from regbench.core.signals import sigterm_as_interrupt
from regbench.figures.drawing import Drawing, drawer
from regbench.training.loggers import Logger, Loggers, build_loggers
from regbench.training.writers import CheckpointFile, MetricsFile, ReporterRows, WeightsFile

if TYPE_CHECKING:
    from pathlib import Path

    from regbench.core.config import Settings
    from regbench.core.metrics import Metric
    from regbench.core.progress import Reporter
    from regbench.studies.base import Study
    from regbench.training.early_stop import Selector


@dataclass
class RunResult:
    run_dir: RunDir
    summary: Summary
    rows: list[dict[str, Any]]


class RunSession:
    """An open run folder: its summary, its metrics rows so far and its row writers."""

    def __init__(
        self,
        settings: Settings,
        study: Study,
        run_dir: RunDir,
        summary: Summary,
        writers: Loggers,
        rows: list[dict[str, Any]],
        in_sweep: bool = False,
        reporter: Reporter | None = None,
        selector: Selector | None = None,
    ) -> None:
        self.settings, self.study, self.run_dir = settings, study, run_dir
        # Reads every row: the selected epoch, and (with early_stop.patience) when to stop.
        self.selector = selector
        self.summary, self.writers, self.rows = summary, writers, rows
        self.reporter = reporter  # where a run interrupted after training says how to go on
        self.started = time.time()
        self.shared_by = 1  # runs trained together in this process (a stack's members)
        self.in_sweep = in_sweep  # a job folder a sweep named: the sweep says how to go on
        self.is_open = True

    @classmethod
    def open_run(
        cls,
        settings: Settings,
        study: Study,
        overrides: Sequence[str],
        reporter: Reporter,
        checkpoint_state: Callable[[], dict[str, Any]],
        *,
        folder: Path | None = None,
        resume: RunDir | None = None,
        checkpoint: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        row_label: dict[str, Any] | None = None,
    ) -> RunSession:
        """A new run folder (exactly ``folder`` when given), or ``resume``'s folder continued
        from ``checkpoint``. ``checkpoint_state`` builds what checkpoint.pt holds after a row;
        ``extra`` lands in the summary; ``row_label`` prefixes the reporter's row lines."""
        selector_state = lambda: {}  # noqa: E731  (set below, once the selector exists)
        if resume is None:
            run_dir = RunDir.create(settings.out_dir, settings.run_name, path=folder)
            run_dir.write_config(settings.to_dict(), overrides)
        else:
            run_dir = resume
        summary = new_summary(settings, overrides, study=study, run_dir=run_dir)
        for key, value in (extra or {}).items():
            setattr(summary, key, value)
        if checkpoint is not None:
            summary.resumed_from_epoch = checkpoint["epoch"]
        run_dir.write_summary(summary)
        writers: list[Logger] = [
            WeightsFile(run_dir, settings.weight_threshold),
            MetricsFile(run_dir),
            CheckpointFile(run_dir, lambda: {**checkpoint_state(), **selector_state()}),
            ReporterRows(reporter, row_label or {}),
            *build_loggers(settings).loggers,
        ]
        rows = [dict(row) for row in checkpoint["rows"]] if checkpoint else []
        selector = make_selector(settings, study, checkpoint, rows)
        if selector is not None:
            selector_state = lambda: {"selector": selector.state()}  # noqa: E731
        drawer().prepare()
        session = cls(
            settings,
            study,
            run_dir,
            summary,
            Loggers(writers),
            rows,
            folder is not None,
            reporter,
            selector,
        )
        try:
            session.writers.start(run_dir.path, settings.to_dict())
        except Exception as exc:
            session.fail_keeping(exc)
            raise
        return session

    def record(self, row: dict[str, Any], seconds: float) -> None:
        """One metrics row (the train-loss means and the evaluation): add the gap and the
        time it took, and hand it to every writer."""
        from regbench.regularization.weights import add_gap

        add_gap(row)
        row["seconds"] = seconds
        self.rows.append(row)
        if self.selector is not None:
            keep = self.selector.keeps_weights
            self.selector.observe(row, self.study.state_dicts() if keep else None)
        self.writers.log_row(row, self.study.networks)

    @property
    def stopped_early(self) -> bool:
        return self.selector is not None and self.selector.stopped

    def share_time(self, started: float, runs: int) -> None:
        """This run trains together with others (a stack): its wall time is its share of the
        time since ``started``; the summary's ``stack`` keeps the whole."""
        self.started, self.shared_by = started, runs

    def complete(self) -> None:
        """Write model.pt, hand the figures to the drawer (drawing.py) and close as completed
        once they are drawn (as failed if writing the outputs fails)."""
        try:
            self.restore_selected()
            self.run_dir.save_model(self.study.state_dicts())
            drawings = self.figures()
        except Exception as exc:
            self.fail_keeping(exc)
            raise
        self.conclude(Status.COMPLETED)
        drawer().draw(drawings, self.end_after_figures)

    def restore_selected(self) -> None:
        """With early stopping and restore_best: the selected epoch's weights back into the
        networks, so that model.pt and the figures are of the model that was selected."""
        best = self.selector.best_state if self.selector is not None else None
        if best is not None:
            for name, net in self.study.networks.items():
                net.load_state_dict(best[name])

    def end_after_figures(self, error: BaseException | None) -> None:
        """The end of a completed run, once its figures are drawn: a figure that could not be
        written makes it failed; Ctrl-C or SIGTERM while they were drawn, interrupted (a resume
        draws them)."""
        interrupted = isinstance(error, KeyboardInterrupt)
        if interrupted:
            self.summary.status = Status.INTERRUPTED
        elif error is not None:
            self.summary.status, self.summary.error = Status.FAILED, failure_reason(error)
        self.write_end()
        if self.summary.status is Status.COMPLETED and not self.settings.keep_checkpoint:
            # Only now: a run interrupted while its figures were drawn resumes from it.
            (self.run_dir.path / CHECKPOINT).unlink(missing_ok=True)
        if interrupted and not self.in_sweep and self.reporter is not None:
            # Training was over: a resume trains no more and draws the figures.
            self.reporter.notice(self.how_to_go_on("while its figures were drawn"))

    def fail(self, exc: BaseException) -> None:
        """Close with the status ``exc`` means: diverged, interrupted (Ctrl-C, SIGTERM) or
        failed, with its cause in the summary."""
        if isinstance(exc, Diverged):
            self.summary.error, self.summary.diverged_epoch = str(exc), exc.epoch
            self.close(Status.DIVERGED)
        elif isinstance(exc, KeyboardInterrupt):
            self.close(Status.INTERRUPTED)
        else:
            self.summary.error = failure_reason(exc)
            self.close(Status.FAILED)

    def fail_keeping(self, exc: BaseException) -> None:
        """``fail``, for a caller about to re-raise ``exc``: when the summary cannot be written
        either (the full disk that ended the run), ``exc`` is the cause to report, not that."""
        with contextlib.suppress(RegbenchError):
            self.fail(exc)

    def close(self, status: Status) -> None:
        """The final summary (results, status, times) and the loggers' end; once only."""
        if self.is_open:
            self.conclude(status)
            self.write_end()

    def conclude(self, status: Status) -> None:
        """The summary's results, status and times, in memory (``write_end`` writes them)."""
        self.is_open = False
        set_results(self.summary, self.study.metrics, self.rows, self.selector)
        self.summary.status, self.summary.finished_at = status, timestamp()
        wall = time.time() - self.started
        self.summary.wall_seconds = wall / self.shared_by
        if self.summary.stack is not None:
            self.summary.stack["wall_seconds"] = wall

    def write_end(self) -> None:
        self.run_dir.write_summary(self.summary)
        self.writers.finish(self.run_dir.path, self.summary.status.value)

    def figures(self) -> list[Drawing]:
        """The figures ``plots`` asks for, to draw: the loss curve, then (``all``) the study's
        own figures and the weight figures."""
        from regbench.figures.output import Output
        from regbench.figures.plots import loss_curve
        from regbench.figures.titles import plot_title
        from regbench.regularization.weights import weight_plots

        study, path, plots = self.study, self.run_dir.path, self.settings.plots
        if plots == "none":
            return []
        title = plot_title(self.settings, study.data.name)
        curve = Drawing(loss_curve, (self.rows, study.loss_columns, title, path / LOSS_CURVE))
        drawings = [curve]
        if plots == "all":
            drawings += study.figures(path, self.rows)
            threshold = self.settings.weight_threshold
            drawings += weight_plots(study.networks, self.run_dir, title, threshold)
        # plot_format, plot_dpi and plot_style travel with each drawing into its worker.
        output = Output.of(self.settings)
        return [drawing.written_as(output) for drawing in drawings]

    def how_to_go_on(self, when: str = "") -> str:
        """The line an interrupted run leaves on the console (``when``: by default after which
        epoch)."""
        done = self.rows[-1]["epoch"] if self.rows else 0
        when = when or f"after epoch {done} of {self.settings.epochs}"
        return (
            f"interrupted {when}; outputs in {self.run_dir}; "
            f"to go on: regbench resume {shlex.quote(str(self.run_dir.path))}"
        )

    @property
    def result(self) -> RunResult:
        return RunResult(self.run_dir, self.summary, self.rows)


@contextmanager
def closing(sessions: Sequence[RunSession], reporter: Reporter) -> Iterator[None]:
    """Train inside this: SIGTERM counts as Ctrl-C, and an exception closes every session still
    open with the status it means before it propagates."""
    try:
        with sigterm_as_interrupt():
            yield
    except BaseException as exc:
        reporter.stop()
        interrupted = [s for s in sessions if s.is_open and isinstance(exc, KeyboardInterrupt)]
        for session in sessions:
            session.fail_keeping(exc)
        for session in interrupted:
            if not session.in_sweep:  # a sweep says how to go on with all its jobs: --dir
                reporter.notice(session.how_to_go_on())
        raise
    finally:
        reporter.stop()


def failure_reason(exc: BaseException) -> str:
    """The ``error`` of a failed run: never empty, so ``failed`` always says why."""
    if isinstance(exc, SystemExit):
        return f"the process was told to exit (SystemExit {exc.code}) while the run trained"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def new_summary(
    settings: Settings,
    overrides: Sequence[str],
    study: Study | None = None,
    run_dir: RunDir | None = None,
) -> Summary:
    """A ``running`` summary of a run of ``settings``; without a study (a job that failed before
    its run could be built) it holds what the settings say."""
    summary = Summary(
        status=Status.RUNNING,
        name=settings.run_name,
        model=settings.model.name,
        seed=settings.seed,
        overrides=list(overrides),
        pid=os.getpid(),
        host=socket.gethostname(),
        run_dir=str(run_dir.path) if run_dir else None,
        epochs=settings.epochs,
        started_at=timestamp(),
    )
    if study is not None:
        summary.device = str(study.device)
        summary.data = study.data.describe()
        summary.environment = environment(settings, study)
    return summary


def environment(settings: Settings, study: Study) -> dict[str, Any]:
    """What, besides the config, can change a run's numbers (rerun --check compares these)."""
    import torch

    from regbench.core.version import regbench_version

    on_cuda = study.device.type == "cuda"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "regbench": regbench_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "deterministic": settings.deterministic,
        "cuda": torch.version.cuda if on_cuda else None,
        "gpu": torch.cuda.get_device_name(study.device) if on_cuda else None,
        "argv": sys.argv,
    }


def set_results(
    summary: Summary,
    metrics: Sequence[Metric],
    rows: Sequence[dict[str, Any]],
    selector: Selector | None = None,
) -> None:
    """Epochs completed, the last row, and the selected epoch and how it was selected (with
    early stopping: when it stopped, and what model.pt holds). Runs without validation data (made
    before validation splits) record, as they did, the best value of each test metric."""
    summary.epochs_completed = rows[-1]["epoch"] if rows else 0
    summary.final = rows[-1] if rows else {}
    if selector is not None:
        summary.selected = selector.summary()
        summary.early_stop = selector.early_stop_summary(summary.epochs_completed)
        return
    best = {}
    for metric in metrics:
        wanted = metric.has_direction and metric.split == "test"
        if not (wanted and rows and all(metric.name in r for r in rows)):
            continue
        value = metric.best(r[metric.name] for r in rows)
        row = next(r for r in rows if r[metric.name] == value)
        best[metric.name] = {"value": row[metric.name], "epoch": row["epoch"]}
    summary.best = best


def make_selector(
    settings: Settings,
    study: Study,
    checkpoint: dict[str, Any] | None,
    rows: Sequence[dict[str, Any]],
) -> Selector | None:
    """The run's selector, on early_stop.metric or the study's primary validation metric;
    None without validation data. Resumed: its state from the checkpoint (or, from a checkpoint
    made before selectors, rebuilt from the rows so far)."""
    from regbench.core.metrics import lookup
    from regbench.training.early_stop import Selector

    if study.data.val is None:
        return None
    name = settings.early_stop.metric or study.selection_metric()
    selector = Selector(lookup(study.declared_metrics(), name), settings.early_stop)
    saved = (checkpoint or {}).get("selector")
    if saved is not None:
        selector.restore(saved)
    else:
        for row in rows:
            selector.observe(row)
    return selector
