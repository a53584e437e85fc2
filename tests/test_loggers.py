"""TensorBoard and MLflow logging, read back with those libraries' own readers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from regbench.compose.validate import validate
from regbench.core.jobs import config_hash
from regbench.core.rundir import read_yaml
from regbench.training.loggers import MAX_FOLDER_NAME
from tests.conftest import run_dirs

SMALL = ("epochs=3", "model.hidden=[16]", "l1=1e-4")


def metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def event_runs(folder: Path) -> dict[str, Any]:
    """TensorBoard's runs under ``folder`` (name -> loaded EventAccumulator), as its own reader
    finds and names them."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    runs = EventMultiplexer(size_guidance={"histograms": 0}).AddRunsFromDirectory(str(folder))
    runs.Reload()
    return {name: runs.GetAccumulator(name) for name in runs.Runs()}


def hparams(events: Any) -> tuple[dict[str, Any], str]:
    """A run's hparams as the HPARAMS tab reads them, and its session's end status."""
    from google.protobuf.json_format import MessageToDict
    from tensorboard.plugins.hparams import api_pb2, metadata

    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    values = {k: MessageToDict(v) for k, v in start.hparams.items()}
    return values, api_pb2.Status.Name(end.status)


def store_reader(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client of the MLflow file store in ``folder``. MLflow opens one only with
    MLFLOW_ALLOW_FILE_STORE set, which regbench sets only while it logs (a caller's environment
    stays as it was): the test sets it to read the store."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=folder.as_uri())


def test_tensorboard_and_mlflow_record_the_run(cli, mnist_root, tmp_path, monkeypatch) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")

    typed = (*SMALL, f"data.root={mnist_root}", "logger=[csv,tensorboard,mlflow]")
    result = cli("run", *typed, "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    rows = metrics(run)

    # A solo run is named by the overrides the user typed (TensorBoard: its event folder, without
    # slashes and shortened, as this one's data.root is long).
    name = " ".join(typed)
    (folder, events), *others = event_runs(run / "tensorboard").items()
    assert len(name) > MAX_FOLDER_NAME and not others
    assert folder == name.replace("/", "_")[: MAX_FOLDER_NAME - 1] + "…"
    test_loss = events.Scalars("test_loss")
    assert [e.step for e in test_loss] == [0, 1, 2, 3]  # 0: the untrained model (eval_at_start)
    # Epoch 0's training-mode terms are NaN in metrics.csv (no step taken): not logged at all.
    assert [e.step for e in events.Scalars("train_loss")] == [1, 2, 3]
    assert [e.value for e in test_loss] == pytest.approx([float(r["test_loss"]) for r in rows])
    histograms = events.Tags()["histograms"]
    assert "weights/model/layers.0.weight" in histograms
    assert len(events.Histograms("weights/model/layers.0.weight")) == 4
    values, status = hparams(events)
    assert status == "STATUS_SUCCESS"
    assert values == {
        "epochs": 3.0,
        "model.hidden": "[16]",
        "l1": 1e-4,
        "data.root": str(mnist_root),
        "logger": '["csv", "tensorboard", "mlflow"]',
    }

    client = store_reader(tmp_path / "outputs" / "mlruns", monkeypatch)
    (found,) = client.search_runs([client.get_experiment_by_name("mlp").experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == name
    assert found.data.params["dropout"] == "0.0" and found.data.params["model.hidden"] == "[16]"
    assert found.data.tags["regbench.run_dir"] == str(run.resolve())
    assert not {"mlflow.parentRunId", "regbench.sweep"} & set(found.data.tags)  # no sweep
    # Grouped as a sweep's seeds of this configuration would be: by the config hash.
    settings = validate(read_yaml(run / "config.yaml"))
    assert found.data.tags["regbench.group"] == config_hash(settings)
    history = client.get_metric_history(found.info.run_id, "test_acc")
    assert [m.step for m in history] == [0, 1, 2, 3]
    assert [m.value for m in history] == pytest.approx([float(r["test_acc"]) for r in rows])
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"loss_curve.png", "summary.json"} <= artifacts


def test_a_resumed_run_goes_on_in_its_mlflow_run(cli, mnist_root, tmp_path, monkeypatch) -> None:
    pytest.importorskip("mlflow")

    result = cli("run", *SMALL, f"data.root={mnist_root}", "logger=[csv,mlflow]", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    # As if stopped after its last checkpoint with two epochs still to go (epochs may change).
    config, summary = run / "config.yaml", run / "summary.json"
    config.write_text(config.read_text().replace("epochs: 3", "epochs: 5"))
    summary.write_text(summary.read_text().replace('"completed"', '"interrupted"'))
    resumed = cli("resume", str(run), "-q")
    assert resumed.exit_code == 0, resumed.stderr
    client = store_reader(tmp_path / "outputs" / "mlruns", monkeypatch)
    (found,) = client.search_runs([client.get_experiment_by_name("mlp").experiment_id])
    assert found.info.status == "FINISHED"
    history = client.get_metric_history(found.info.run_id, "test_acc")
    assert [m.step for m in history] == [0, 1, 2, 3, 4, 5]  # epoch 0 once, not again
    assert [m.value for m in history] == pytest.approx([float(r["test_acc"]) for r in metrics(run)])


def test_a_sweep_is_one_parent_run_with_readable_children(cli, tmp_path, monkeypatch) -> None:
    """Each job named by the keys that vary (TensorBoard's run, MLflow's run name), those keys as
    hparams, and in MLflow one parent run for the sweep with the jobs as its children, tagged
    with the sweep and their config group (the hash of the job folder, which its seeds share)."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")

    grid = ("model=regression", "epochs=1", "data.n_train=32", "model.hidden=[8,8]", "seed=1")
    args = (*grid, "dropout=0,0.5", "logger=[csv,tensorboard,mlflow]")
    result = cli("sweep", *args, "--dir", "s", "-q")
    assert result.exit_code == 0, result.stderr
    sweep_dir = (tmp_path / "s").resolve()
    jobs = run_dirs(sweep_dir)
    labels = {"dropout=0", "dropout=0.5"}

    # TensorBoard walks into by-settings/'s links to the job folders: the jobs' events sit in
    # the sweep's own tensorboard/ folder, so that each job shows once.
    assert (sweep_dir / "by-settings").is_dir()
    runs = event_runs(sweep_dir)
    assert sorted(name.split("/")[-1] for name in runs) == sorted(labels)
    for name, events in runs.items():
        root, job, label = name.split("/")
        assert root == "tensorboard" and not (sweep_dir / job / "tensorboard").exists()
        values, status = hparams(events)
        assert values == {"dropout": float(label.split("=")[1])}
        assert status == "STATUS_SUCCESS"
        final = float(metrics(sweep_dir / job)[-1]["test_loss"])
        assert events.Scalars("test_loss")[-1].value == pytest.approx(final)

    client = store_reader(tmp_path / "outputs" / "mlruns", monkeypatch)
    found = client.search_runs([client.get_experiment_by_name("regression").experiment_id])
    (parent,) = [r for r in found if r.data.tags.get("regbench.role") == "sweep"]
    children = [r for r in found if r is not parent]
    assert parent.info.run_name == "sweep s" and parent.info.status == "FINISHED"
    assert parent.data.tags["regbench.sweep"] == str(sweep_dir)
    assert {r.info.run_name for r in children} == labels
    for child in children:
        tags, folder = child.data.tags, Path(child.data.tags["regbench.run_dir"])
        assert folder in jobs and child.info.status == "FINISHED"
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["regbench.sweep"] == str(sweep_dir)
        assert tags["regbench.group"] == folder.name.removesuffix("-seed=1")
        assert child.data.params["model.hidden"] == "[8, 8]"


def test_the_sweep_parent_run_ends_with_its_last_job(tmp_path: Path, monkeypatch) -> None:
    """Found again (not made twice) by every job; running while a job of the invocation is still
    to come or running, finished after the last, killed when a job is interrupted."""
    pytest.importorskip("mlflow")

    from regbench.core.jobs import SweepMember
    from regbench.core.rundir import RunDir, Status, Summary
    from regbench.training.loggers import SweepRun

    client = store_reader(tmp_path / "mlruns", monkeypatch)
    experiment = client.create_experiment("x")
    order = ("a-seed=1", "a-seed=2")
    member = SweepMember(tmp_path, order[0], "seed=1", ("seed=1",), ("seed",), order)

    def status_of(key: str, status: Status) -> None:
        (tmp_path / key).mkdir(exist_ok=True)
        RunDir(tmp_path / key).write_summary(Summary(status, "x", "mlp", seed=1))

    first = SweepRun.open(client, experiment, member)
    assert SweepRun.open(client, experiment, member).run_id == first.run_id
    status_of(order[0], Status.COMPLETED)
    first.job_ended(Status.COMPLETED)  # the second job has not started
    assert client.get_run(first.run_id).info.status == "RUNNING"
    status_of(order[1], Status.RUNNING)
    first.job_ended(Status.COMPLETED)
    assert client.get_run(first.run_id).info.status == "RUNNING"
    status_of(order[1], Status.COMPLETED)
    first.job_ended(Status.COMPLETED)
    assert client.get_run(first.run_id).info.status == "FINISHED"
    again = SweepRun.open(client, experiment, member)  # the sweep grown or resumed later
    assert again.run_id == first.run_id
    assert client.get_run(first.run_id).info.status == "RUNNING"
    again.job_ended(Status.INTERRUPTED)
    assert client.get_run(first.run_id).info.status == "KILLED"
    assert len(client.search_runs([experiment])) == 1


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
    from regbench.training.loggers import MLflowLogger

    MLflowLogger("http://127.0.0.1:9", "x").finish(tmp_path, "failed")  # no AttributeError
