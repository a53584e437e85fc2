"""TensorBoard and MLflow logging, read back with those libraries' own readers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import run_dirs

SMALL = ("epochs=3", "model.hidden=[16]", "l1=1e-4")


def metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_tensorboard_and_mlflow_record_the_run(cli, mnist_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = cli("run", *SMALL, f"data.root={mnist_root}", "logger=[csv,tensorboard,mlflow]", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    rows = metrics(run)

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"histograms": 0})
    events.Reload()
    test_loss = events.Scalars("test_loss")
    assert [e.step for e in test_loss] == [1, 2, 3]
    assert [e.value for e in test_loss] == pytest.approx([float(r["test_loss"]) for r in rows])
    histograms = events.Tags()["histograms"]
    assert "weights/model/layers.0.weight" in histograms
    assert len(events.Histograms("weights/model/layers.0.weight")) == 3

    client = MlflowClient(tracking_uri=(tmp_path / "outputs" / "mlruns").as_uri())
    (found,) = client.search_runs([client.get_experiment_by_name("mlp").experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.params["dropout"] == "0.0" and found.data.params["model.hidden"] == "(16,)"
    history = client.get_metric_history(found.info.run_id, "test_acc")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx([float(r["test_acc"]) for r in rows])
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"loss_curve.png", "summary.json"} <= artifacts


def test_missing_logger_library_is_one_line(cli, mnist_root, tmp_path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    result = cli("run", *SMALL, f"data.root={mnist_root}", "logger=[csv,mlflow]")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: logger=mlflow needs the mlflow package: pip install 'regbench[mlflow]'"
    ]
    assert not (tmp_path / "outputs").exists()


def test_unknown_logger_name(cli) -> None:
    result = cli("run", "logger=[csv,wandb]")
    assert result.exit_code == 2 and "logger[1]='wandb'" in result.stderr


@pytest.mark.parametrize(
    ("uri", "code", "says"),
    [
        ("garbage", 2, "mlflow_uri='garbage' is not a tracking URI MLflow can use"),
        ("http://127.0.0.1:9", 1, "cannot reach the MLflow server at http://127.0.0.1:9"),
        ("http://", 2, "names no host"),
    ],
)
def test_a_tracker_that_cannot_work_fails_fast_before_training(cli, tmp_path, uri, code, says):
    import time

    pytest.importorskip("mlflow")
    started = time.monotonic()
    result = cli("run", "model=regression", "logger=[csv,mlflow]", f"mlflow_uri={uri}")
    assert time.monotonic() - started < 10
    assert result.exit_code == code
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:") and says in line
    assert not (tmp_path / "outputs").exists()


def test_an_mlflow_run_that_never_started_finishes_quietly(tmp_path: Path) -> None:
    from regbench.loggers import MLflowLogger

    MLflowLogger("http://127.0.0.1:9", "x").finish(tmp_path, "failed")  # no AttributeError
