"""Optional experiment loggers beside the always-on CSV: TensorBoard and MLflow.

Each logger sees the same events: the run starts (config), a metrics row is written (with the
study's networks, for weight histograms), the run ends (status and the folder's plots). The
libraries are optional extras (``pip install 'regbench[tensorboard]'`` / ``'regbench[mlflow]'``);
asking for one that is not installed is a one-line error before any work starts.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.errors import RegbenchError, UsageError
from regbench.rundir import Status

if TYPE_CHECKING:
    from torch import nn

    from regbench.config import Settings

# logger name -> (module that must be importable, extra that installs it)
REQUIREMENTS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}
MLFLOW_STATUS = {Status.COMPLETED: "FINISHED", Status.INTERRUPTED: "KILLED"}  # else FAILED
# The stores MLflow's client knows; anything else (a bare word, a typo) fails only mid-start.
TRACKING_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")
REACH_SECONDS = 3.0  # a tracking server that does not accept a connection by then is down


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
    """The configured tracking URI, or a local file store ``<out_dir>/mlruns``.

    MLflow 3 keeps its file store in maintenance mode and refuses it unless
    MLFLOW_ALLOW_FILE_STORE is set; for the default local store regbench sets it (a plain folder
    needs no database or server, and `mlflow ui --backend-store-uri <out_dir>/mlruns` reads it).
    """
    if settings.mlflow_uri:
        return settings.mlflow_uri
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return (Path(settings.out_dir).expanduser().resolve() / "mlruns").as_uri()


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


def numeric_metrics(row: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in row.items()
        if k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool)
    }


class TensorBoardLogger(Logger):
    """Event files in ``<run>/tensorboard/``: scalars per row, weight histograms, image grids."""

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + _yaml(config) + "\n```", 0)

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
        self.writer.close()


class MLflowLogger(Logger):
    """One MLflow run per regbench run: params = flattened config, metrics per row, artifacts =
    plots and summary. Uses an explicit client (no global active run), so sweeps in one process
    never log into each other's runs."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.client: Any = None
        self.run_id: str | None = None  # set once the MLflow run exists

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._start(run_dir, config)
        except MlflowException as exc:  # its text is pages of JSON or a traceback of a server
            text = str(exc).strip()
            first = text.splitlines()[0] if text else type(exc).__name__
            raise RegbenchError(f"MLflow at {self.tracking_uri} failed: {first}") from exc

    def _start(self, run_dir: Path, config: dict[str, Any]) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from regbench.runs import flatten

        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id if found else self.client.create_experiment(self.experiment)
        )
        self.run_id = self.client.create_run(
            experiment_id, run_name=run_dir.name, tags={"regbench.run_dir": str(run_dir)}
        ).info.run_id
        params = [Param(k, str(v)) for k, v in flatten(config).items()]
        self.client.log_batch(self.run_id, params=params)

    def log_row(self, row: dict[str, Any], networks: Mapping[str, nn.Module]) -> None:
        import time

        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(row["epoch"])
        metrics = [Metric(k, v, now, step) for k, v in numeric_metrics(row).items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, run_dir: Path, status: str) -> None:
        if self.run_id is None:  # start failed: nothing to close, and its error is the one
            return
        for artifact in [*sorted(run_dir.glob("*.png")), run_dir / "summary.json"]:
            if artifact.exists():
                self.client.log_artifact(self.run_id, str(artifact))
        self.client.set_terminated(self.run_id, MLFLOW_STATUS.get(status, "FAILED"))


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def _read_png(path: Path) -> Any:
    from matplotlib import image

    return image.imread(str(path))[..., :3]
