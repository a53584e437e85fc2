"""Optional experiment loggers beside the always-on CSV: TensorBoard and MLflow.

Each logger sees the same events: the run starts (config), a metrics row is written (with the
study's networks, for weight histograms), the run ends (status and the folder's plots). The
libraries are optional extras (``pip install 'regbench[tensorboard]'`` / ``'regbench[mlflow]'``);
asking for one that is not installed is a one-line error before any work starts.

Both name a run so that people can read it (``identify``): a sweep's job by the overrides that
vary across its grid (``dropout=0.5 seed=3``, its label in sweep.json), a solo run by the
overrides it was given. Those settings are also TensorBoard's hparams, and in MLflow a sweep is
one parent run with its jobs as child runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.core.errors import RegbenchError, UsageError
from regbench.core.jobs import SweepMember, config_hash, sweep_member
from regbench.core.overrides import override_pairs
from regbench.core.rundir import RunDir, Status, open_append

if TYPE_CHECKING:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from torch import nn

    from regbench.core.config import Settings

# logger name -> (module that must be importable, extra that installs it)
REQUIREMENTS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}
MLFLOW_STATUS = {Status.COMPLETED: "FINISHED", Status.INTERRUPTED: "KILLED"}  # else FAILED
# The stores MLflow's client knows; anything else (a bare word, a typo) fails only mid-start.
TRACKING_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")
REACH_SECONDS = 3.0  # a tracking server that does not accept a connection by then is down
EVENTS_DIR = "tensorboard"  # <run>/tensorboard/<run name>/: TensorBoard names runs by folder
MAX_FOLDER_NAME = 120  # characters of a run name kept in its event folder's name
# Taken by the jobs of one sweep while they find or create its MLflow parent run, so that jobs
# starting at once in parallel processes make one parent, not several.
SWEEP_RUN_LOCK = ".mlflow.lock"
TB_STATUS = {Status.COMPLETED: "STATUS_SUCCESS", Status.RUNNING: "STATUS_RUNNING"}  # else FAILURE


def check(settings: Settings) -> None:
    """Everything the loggers need, checked before any work starts: their libraries, and for
    MLflow a tracking URI it can use and, for a server, that the server answers."""
    check_available(settings.logger)
    if "mlflow" in settings.logger:
        check_tracking_uri(mlflow_uri(settings))


def check_available(names: Sequence[str]) -> None:
    """Fail fast, in one line, when a requested logger's library is missing."""
    for name in names:
        if name in REQUIREMENTS:
            module, extra = REQUIREMENTS[name]
            if importlib.util.find_spec(module) is None:
                raise UsageError(
                    f"logger={name} needs the {module} package: pip install 'regbench[{extra}]'"
                )


class Logger:
    """No-op base; subclasses override what they record."""

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        pass

    def log_row(self, row: dict[str, Any], networks: Mapping[str, nn.Module]) -> None:
        pass

    def finish(self, run_dir: Path, status: str) -> None:
        pass


class Loggers(Logger):
    """Fans every event out to the configured loggers."""

    def __init__(self, loggers: Sequence[Logger]) -> None:
        self.loggers = list(loggers)

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.start(run_dir, config)

    def log_row(self, row: dict[str, Any], networks: Mapping[str, nn.Module]) -> None:
        for logger in self.loggers:
            logger.log_row(row, networks)

    def finish(self, run_dir: Path, status: str) -> None:
        for logger in self.loggers:
            logger.finish(run_dir, status)


def build_loggers(settings: Settings) -> Loggers:
    """The loggers ``settings.logger`` names ("csv" is metrics.csv, always written)."""
    check_available(settings.logger)
    built: list[Logger] = []
    if "tensorboard" in settings.logger:
        built.append(TensorBoardLogger())
    if "mlflow" in settings.logger:
        built.append(MLflowLogger(mlflow_uri(settings), experiment=settings.run_name))
    return Loggers(built)


def mlflow_uri(settings: Settings) -> str:
    """The configured tracking URI, or a local file store ``<out_dir>/mlruns``."""
    if settings.mlflow_uri:
        return settings.mlflow_uri
    return (Path(settings.out_dir).expanduser().resolve() / "mlruns").as_uri()


# MLflow 3 keeps its file store in maintenance mode and refuses it unless this is set.
ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"


@contextlib.contextmanager
def file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow's file store usable while the block runs, for a ``file:`` URI (the default
    <out_dir>/mlruns or one given): a plain folder needs no database or server, and `mlflow ui
    --backend-store-uri` reads it. MLflow reads the variable each time it opens the store, so
    every call goes inside; the caller's environment is as it was after (a value the caller
    set, even false, is left alone)."""
    if not uri.startswith("file:") or ALLOW_FILE_STORE in os.environ:
        yield
        return
    os.environ[ALLOW_FILE_STORE] = "true"
    try:
        yield
    finally:
        os.environ.pop(ALLOW_FILE_STORE, None)


def check_tracking_uri(uri: str) -> None:
    """A scheme MLflow stores runs under, and a server that accepts a connection within
    REACH_SECONDS: MLflow's own client retries a dead server for minutes, mid-run."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0]  # postgresql+psycopg2://...
    if scheme not in TRACKING_SCHEMES:
        raise UsageError(
            f"mlflow_uri={uri!r} is not a tracking URI MLflow can use; give one of "
            f"{', '.join(s + '://' for s in TRACKING_SCHEMES)} (e.g. http://host:5000, "
            f"sqlite:///mlflow.db), or mlflow_uri=null for <out_dir>/mlruns"
        )
    if scheme in ("http", "https"):
        _check_reachable(uri, parts.hostname, parts.port or (443 if scheme == "https" else 80))
    if scheme in LOCAL_SCHEMES:
        _check_opens(uri)


# Stores on this machine's disk: the pre-flight opens them as a run would (a server or a
# database server is only checked to answer: MLflow's client would retry it for minutes).
LOCAL_SCHEMES = ("file", "sqlite")


def _check_opens(uri: str) -> None:
    """Open the store as MLflowLogger will (the same environment, the same client), so that a
    store MLflow refuses stops the command before training instead of failing every run."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        with file_store_allowed(uri):
            MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except (MlflowException, OSError) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise RegbenchError(f"MLflow cannot open the store mlflow_uri={uri}: {first}") from exc


def _check_reachable(uri: str, host: str | None, port: int) -> None:
    import socket

    if not host:
        raise UsageError(f"mlflow_uri={uri!r} names no host; e.g. http://host:5000")
    try:
        socket.create_connection((host, port), timeout=REACH_SECONDS).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RegbenchError(
            f"cannot reach the MLflow server at {uri} ({why} within {REACH_SECONDS:g} s); "
            f"start it, fix mlflow_uri, or drop mlflow from logger"
        ) from exc


@dataclass(frozen=True)
class RunIdentity:
    """What the trackers show for a run: a name people can read, the settings that name stands
    for (TensorBoard's hparams) and, for a sweep's job, its sweep."""

    name: str
    hparams: dict[str, Any]
    member: SweepMember | None = None
    resumed_from: int | None = None  # the epoch a resumed run continues after


def identify(run_dir: Path, config: Mapping[str, Any]) -> RunIdentity:
    """A sweep's job by its label (the overrides that vary across the grid), a solo run by the
    overrides it was given (its folder's name when it was given none); each named override's
    value as the config resolved it."""
    from regbench.core.config import flatten

    folder = RunDir(run_dir)
    member = sweep_member(run_dir)
    if member is not None:
        pairs, name = member.varying(), member.label
    else:
        overrides = folder.read_overrides()
        pairs = override_pairs(overrides)
        name = " ".join(overrides) or run_dir.name
    flat = flatten(config)
    hparams = {}
    for key, text in pairs:
        key = key.lstrip("+~")
        hparams[key] = flat.get(key, text)  # a config group (model=mlp) keeps its option's name
    summary = folder.summary_or_none()
    resumed = summary.resumed_from_epoch if summary else None
    return RunIdentity(name, hparams, member, resumed)


def param_text(value: Any) -> str:
    """A config value as a tracker's text: lists as lists (``[300, 300]``), as config.yaml has
    them, and not as the tuples the flattened config holds."""
    return json.dumps(value, default=str) if isinstance(value, tuple | list) else str(value)


def numeric_metrics(row: dict[str, Any]) -> dict[str, float]:
    """A row's numbers, less NaN: a value that does not exist at this step (the training terms
    of epoch 0, before any step) is not logged, rather than logged as NaN."""
    return {
        k: float(v)
        for k, v in row.items()
        if k != "epoch"
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and not math.isnan(v)
    }


class TensorBoardLogger(Logger):
    """Event files in ``<run>/tensorboard/<run name>/`` (a sweep's job: in
    ``<sweep>/tensorboard/<job folder>/<run name>/``, see :func:`events_root`): scalars per row,
    weight histograms, image grids, and the run's hparams (the settings its name stands for) for
    the HPARAMS tab, whose metric columns are the runs' last scalars: the final metrics."""

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        identity = identify(run_dir, config)
        folder = event_folder(events_root(run_dir, identity.member), identity.name)
        # A resumed run redoes the rows after its checkpoint: TensorBoard hides their old events.
        purge = None if identity.resumed_from is None else identity.resumed_from + 1
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge)
        self.writer.add_text("config", "```\n" + _yaml(config) + "\n```", 0)
        self.writer.file_writer.add_summary(session_start(identity.hparams))

    def log_row(self, row: dict[str, Any], networks: Mapping[str, nn.Module]) -> None:
        step = int(row["epoch"])
        for key, value in numeric_metrics(row).items():
            self.writer.add_scalar(key, value, step)
        for net_name, net in networks.items():
            for name, param in net.named_parameters():
                if param.dim() > 1:  # weight matrices, as the penalties see them
                    self.writer.add_histogram(f"weights/{net_name}/{name}", param.detach(), step)
        self.writer.flush()

    def finish(self, run_dir: Path, status: str) -> None:
        for image in sorted(run_dir.glob("samples_epoch_*.png")):
            step = int(image.stem.rsplit("_", 1)[-1])
            self.writer.add_image("samples", _read_png(image), step, dataformats="HWC")
        self.writer.add_text("status", status, 0)
        self.writer.file_writer.add_summary(session_end(status))
        self.writer.close()


def events_root(run_dir: Path, member: SweepMember | None) -> Path:
    """Where a run's event folders go: its own folder's ``tensorboard/``; a sweep's job, the
    sweep's ``tensorboard/<job folder>/``. TensorBoard walks into linked folders, and the sweep's
    ``by-settings/`` links each job folder: events inside a job folder would show twice to
    ``tensorboard --logdir outputs``. A job whose events already sit in its own folder (a sweep
    made before) goes on there."""
    own = run_dir / EVENTS_DIR
    if member is None or own.is_dir():
        return own
    return member.sweep_dir / EVENTS_DIR / run_dir.name


def event_folder(root: Path, name: str) -> Path:
    """``root/<name>`` (slashes replaced, shortened): TensorBoard calls a run by its folder's
    path. A resumed run goes on in the folder it has."""
    existing = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    if len(existing) == 1:
        return existing[0]
    safe = name.replace("/", "_").replace("\\", "_")
    return root / (safe if len(safe) <= MAX_FOLDER_NAME else safe[: MAX_FOLDER_NAME - 1] + "…")


def session_start(hparams: Mapping[str, Any]) -> Summary:
    """The hparams plugin's session start: each setting as a number, a bool or text. Only the
    sessions are written, no experiment summary: TensorBoard then lists the hparams of every
    run in its logdir (one experiment summary would hide the others' keys) and takes the
    metrics from their scalars."""
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for key, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, int | float):
            info.hparams[key].number_value = float(value)
        else:
            info.hparams[key].string_value = param_text(value)
    data = plugin_data_pb2.HParamsPluginData(session_start_info=info)
    return _hparams_summary(metadata.SESSION_START_INFO_TAG, data)


def session_end(status: str) -> Summary:
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    code = api_pb2.Status.Value(TB_STATUS.get(Status(status), "STATUS_FAILURE"))
    info = plugin_data_pb2.SessionEndInfo(status=code, end_time_secs=time.time())
    data = plugin_data_pb2.HParamsPluginData(session_end_info=info)
    return _hparams_summary(metadata.SESSION_END_INFO_TAG, data)


def _hparams_summary(tag: str, data: Any) -> Summary:
    """A summary of the hparams plugin, as the plugin's own writer makes it (without tensorflow)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    summary_metadata = metadata.create_summary_metadata(data)
    value = Summary.Value(tag=tag, metadata=summary_metadata, tensor=metadata.NULL_TENSOR)
    return Summary(value=[value])


class MLflowLogger(Logger):
    """One MLflow run per regbench run, named as ``identify`` says: params = flattened config,
    metrics per row, artifacts = plots and summary; tagged with its config group
    (``regbench.group``, the hash its seeds share). A sweep's job is a child run (tag
    ``mlflow.parentRunId``) of one parent run per sweep, tagged with its sweep
    (``regbench.sweep``, the sweep folder). Uses an explicit client (no global active run),
    so sweeps in one process never log into each other's runs."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.client: Any = None
        self.run_id: str | None = None  # set once the MLflow run exists
        self.sweep: SweepRun | None = None

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        from mlflow.exceptions import MlflowException

        try:
            with file_store_allowed(self.tracking_uri):
                self._start(run_dir, config)
        except MlflowException as exc:  # its text is pages of JSON or a traceback of a server
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            raise RegbenchError(f"MLflow at {self.tracking_uri} failed: {first}") from exc

    def _start(self, run_dir: Path, config: dict[str, Any]) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from regbench.compose.validate import validate
        from regbench.core.config import flatten

        identity = identify(run_dir, config)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id if found else self.client.create_experiment(self.experiment)
        )
        # The group tag is the config hash a sweep's job folders are named by: the same for every
        # seed of one configuration, swept or run alone (keys at their legacy values left out).
        group = config_hash(validate(config))
        tags = {"regbench.run_dir": str(run_dir.resolve()), "regbench.group": group}
        if identity.member is not None:
            self.sweep = SweepRun.open(self.client, experiment_id, identity.member)
            tags.update(self.sweep.child_tags())
        if identity.resumed_from is not None:  # a resumed run goes on in the MLflow run it has
            self.run_id = self._earlier_run(experiment_id, tags["regbench.run_dir"])
            if self.run_id is not None:
                self.client.update_run(self.run_id, status="RUNNING")
                return
        self.run_id = self.client.create_run(
            experiment_id, run_name=identity.name, tags=tags
        ).info.run_id
        params = [Param(k, param_text(v)) for k, v in flatten(config).items()]
        self.client.log_batch(self.run_id, params=params)

    def _earlier_run(self, experiment_id: str, run_dir: str) -> str | None:
        """The MLflow run an earlier start of this run folder logged to, if there is one."""
        query = f"tags.`regbench.run_dir` = '{run_dir}'"
        found = self.client.search_runs([experiment_id], filter_string=query, max_results=1)
        return found[0].info.run_id if found else None

    def log_row(self, row: dict[str, Any], networks: Mapping[str, nn.Module]) -> None:
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(row["epoch"])
        metrics = [Metric(k, v, now, step) for k, v in numeric_metrics(row).items()]
        with file_store_allowed(self.tracking_uri):
            self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, run_dir: Path, status: str) -> None:
        if self.run_id is None:  # start failed: nothing to close, and its error is the one
            return
        with file_store_allowed(self.tracking_uri):
            self._finish(run_dir, status)

    def _finish(self, run_dir: Path, status: str) -> None:
        for artifact in [*sorted(run_dir.glob("*.png")), run_dir / "summary.json"]:
            if artifact.exists():
                self.client.log_artifact(self.run_id, str(artifact))
        self.client.set_terminated(self.run_id, MLFLOW_STATUS.get(status, "FAILED"))
        if self.sweep is not None:
            self.sweep.job_ended(Status(status))


@dataclass
class SweepRun:
    """A sweep's MLflow parent run: RUNNING while any job of the sweep's latest invocation is
    still to run or running, then FINISHED (KILLED once a job was interrupted)."""

    client: Any
    run_id: str
    member: SweepMember

    @classmethod
    def open(cls, client: Any, experiment_id: str, member: SweepMember) -> SweepRun:
        """The sweep's parent run in this experiment, found by its tags, else created; running
        again if an earlier invocation had ended it."""
        tags = {"regbench.sweep": str(member.sweep_dir), "regbench.role": "sweep"}
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        with _locked(member.sweep_dir / SWEEP_RUN_LOCK):
            found = client.search_runs([experiment_id], filter_string=query, max_results=1)
            if found:
                run_id = found[0].info.run_id
                if found[0].info.status != "RUNNING":
                    client.update_run(run_id, status="RUNNING")
            else:
                name = f"sweep {member.sweep_dir.name}"
                run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        return cls(client, run_id, member)

    def child_tags(self) -> dict[str, str]:
        return {"mlflow.parentRunId": self.run_id, "regbench.sweep": str(self.member.sweep_dir)}

    def job_ended(self, status: Status) -> None:
        """End the parent with the last of its jobs (each job's summary.json is final before
        its loggers hear the end, so of two jobs ending at once the later one sees both)."""
        if status is Status.INTERRUPTED:  # Ctrl-C or a preemption: the sweep stops here
            self.client.set_terminated(self.run_id, "KILLED")
        elif not any(self._pending(key) for key in self.member.order):
            self.client.set_terminated(self.run_id, "FINISHED")

    def _pending(self, key: str) -> bool:
        summary = RunDir(self.member.sweep_dir / key).summary_or_none()
        return summary is None or summary.status is Status.RUNNING


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if need be) among processes on its file system."""
    import fcntl

    with open_append(path) as handle:  # not through a link planted in a received sweep folder
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def _read_png(path: Path) -> Any:
    from matplotlib import image

    return image.imread(str(path))[..., :3]
