"""Reruns reproduce, killed runs resume bitwise, and a run's status never lies (issue 6)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_dirs, run_regbench, write_mnist

# A small MLP so that a run has many quick epochs, each with a checkpoint.
SMALL = ("model.hidden=[32]", "batch_size=32", "dropout=0.3", "l1=1e-5")


def strip_time(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name != "seconds"]
    return [[line.split(",")[i] for i in keep] for line in lines]


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_rerun_check_reproduces_bitwise(cli, mnist_root: Path, tmp_path: Path) -> None:
    assert cli("run", "epochs=2", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (original,) = run_dirs(tmp_path / "outputs")
    result = cli("rerun", str(original), "--check", "-q")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "bitwise identical (CPU)" in result.stdout and "reproduced" in result.stdout
    rerun = next(r for r in run_dirs(tmp_path / "outputs") if r != original)
    assert rerun.parent == original.parent
    assert summary(rerun)["rerun_of"] == str(original)
    assert strip_time(rerun / "metrics.csv") == strip_time(original / "metrics.csv")


def test_rerun_check_fails_when_numbers_differ(cli, mnist_root: Path, tmp_path: Path) -> None:
    assert cli("run", "epochs=2", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (original,) = run_dirs(tmp_path / "outputs")
    metrics = original / "metrics.csv"
    lines = metrics.read_text().splitlines()
    cells = lines[1].split(",")
    cells[5] = repr(float(cells[5]) + 1e-12)  # test_loss, nudged in its last digits
    metrics.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    result = cli("rerun", str(original), "--check", "-q")
    assert result.exit_code == 1
    assert "DIFFERS" in result.stdout and "NOT reproduced" in result.stdout
    assert "error" not in result.stderr  # a verdict, not a failure of the command


# The CLI in a child process that stops after the checkpoint of epoch PAUSE_EPOCH, touches the
# marker file given first, and waits there: the test's signal always lands at that known point
# (a signal sent "after N rows" raced the run's end on a busy machine).
PAUSE_EPOCH = 3
PAUSED_CLI = f"""
import sys, time
from pathlib import Path
from regbench.training import writers
from regbench.cli.main import main

marker = Path(sys.argv.pop(1))
write_checkpoint = writers.CheckpointFile.log_row

def log_row(self, row, networks):
    write_checkpoint(self, row, networks)
    if row["epoch"] == {PAUSE_EPOCH}:
        marker.touch()
        time.sleep(300)

writers.CheckpointFile.log_row = log_row
sys.argv[0] = "regbench"
main()
"""


def start_paused_run(tmp_path: Path, root: Path, name: str, epochs: int) -> subprocess.Popen:
    args = ["run", f"epochs={epochs}", *SMALL, f"data.root={root}", f"name={name}", "-q"]
    marker = tmp_path / "paused"
    command = [sys.executable, "-c", PAUSED_CLI, str(marker), *args]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the run never reached epoch {PAUSE_EPOCH}: {proc.communicate()}")
        time.sleep(0.02)
    return proc


KILL_EPOCHS = 8


@pytest.fixture(scope="module")
def kill_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Data, and the uninterrupted reference run."""
    root = tmp_path_factory.mktemp("kill-data")
    write_mnist(root)
    work = tmp_path_factory.mktemp("kill-reference")
    full = run_regbench(
        "run", f"epochs={KILL_EPOCHS}", *SMALL, f"data.root={root}", "name=full", "-q", cwd=work
    )
    assert full.returncode == 0, full.stderr
    (reference,) = run_dirs(work / "outputs" / "full")
    return root, reference


@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGKILL, "running"), (signal.SIGINT, "interrupted"), (signal.SIGTERM, "interrupted")],
    ids=["SIGKILL", "SIGINT", "SIGTERM"],
)
def test_killed_run_resumes_bitwise(
    kill_data: tuple[Path, Path], tmp_path: Path, sig: signal.Signals, status: str
) -> None:
    root, reference = kill_data
    proc = start_paused_run(tmp_path, root, "killed", KILL_EPOCHS)
    (run,) = run_dirs(tmp_path / "outputs" / "killed")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    # SIGKILL cannot be caught: the summary still says running, and resume must accept that.
    assert summary(run)["status"] == status, summary(run).get("error")
    assert len(strip_time(run / "metrics.csv")) - 1 == PAUSE_EPOCH + 1  # and epoch 0's row
    if sig == signal.SIGINT:
        assert proc.returncode == 130
    if sig != signal.SIGKILL:  # the run says how to go on
        assert f"to go on: regbench resume {run.relative_to(tmp_path)}" in err.decode()

    resumed = run_regbench("resume", str(run), "-q", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} from epoch " in resumed.stderr
    assert summary(run)["status"] == "completed"
    assert summary(run)["resumed_from_epoch"] == PAUSE_EPOCH
    assert strip_time(run / "metrics.csv") == strip_time(reference / "metrics.csv")
    assert (run / "weights.csv").read_text().count("\n") == (
        reference / "weights.csv"
    ).read_text().count("\n")


def test_resume_refuses_a_completed_run(cli, mnist_root: Path, tmp_path: Path) -> None:
    assert cli("run", "epochs=1", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    result = cli("resume", str(run))
    assert result.exit_code == 2 and "already completed" in result.stderr


def test_resume_of_an_edited_invalid_config_names_the_file_and_key(cli, mnist_root, tmp_path):
    assert cli("run", "epochs=1", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    summary_file = run / "summary.json"
    summary_file.write_text(summary_file.read_text().replace('"completed"', '"interrupted"'))
    config = run / "config.yaml"
    edited = re.sub(r"(?m)^dropout: .*$", "dropout: 2.0", config.read_text())
    assert edited != config.read_text()
    config.write_text(edited)
    result = cli("resume", str(run))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {config} is not a valid config: dropout=2.0 is out of range")


def test_diverging_run_stops_with_status_diverged(cli, mnist_root: Path, tmp_path: Path) -> None:
    result = cli("run", "epochs=5", "lr=1e3", f"data.root={mnist_root}", "-q")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: diverged at epoch 1")
    (run,) = run_dirs(tmp_path / "outputs")
    assert summary(run)["status"] == "diverged"
    assert summary(run)["diverged_epoch"] == 1
    assert not (run / "model.pt").exists()
    refused = cli("resume", str(run))
    assert (
        refused.exit_code == 2 and "diverged at epoch 1; resuming would repeat it" in refused.stderr
    )


def test_divergence_names_the_term_that_exploded_and_its_settings(cli, tmp_path) -> None:
    """Not always the lr's fault: an exploding penalty names its strength."""
    result = cli("run", "model=regression", "epochs=2", "l1=1e308", "-q")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "l1_penalty became NaN or infinite (l1=1e+308 is too strong; try a smaller l1)" in line
    result = cli("run", "model=regression", "epochs=2", "lr=1e6", "optimizer=sgd", "-q")
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: diverged at epoch 2: train_loss")
    assert "try a smaller lr (lr=1e+06), or check the data settings" in line


def test_resume_refuses_a_config_edited_since_its_checkpoint(cli, mnist_root, tmp_path) -> None:
    """The checkpoint's optimizer state was trained with lr=0.001: continuing it under another
    lr would make config.yaml misstate what was trained. More epochs are fine."""
    assert cli("run", "epochs=1", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    summary_file = run / "summary.json"
    summary_file.write_text(summary_file.read_text().replace('"completed"', '"interrupted"'))
    config = run / "config.yaml"
    original = config.read_text()
    config.write_text(re.sub(r"(?m)^lr: .*$", "lr: 0.5", original))
    refused = cli("resume", str(run))
    assert refused.exit_code == 2
    assert "no longer matches its checkpoint (lr: 0.001 -> 0.5)" in refused.stderr
    config.write_text(original.replace("epochs: 1", "epochs: 2"))
    resumed = cli("resume", str(run), "-q")
    assert resumed.exit_code == 0 and f"resuming {run} from epoch 2" in resumed.stderr


def test_resume_without_a_checkpoint_says_it_starts_over(cli, mnist_root, tmp_path) -> None:
    assert cli("run", "epochs=1", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    summary_file = run / "summary.json"
    summary_file.write_text(summary_file.read_text().replace('"completed"', '"interrupted"'))
    (run / "checkpoint.pt").unlink()
    resumed = cli("resume", str(run), "-q")
    assert resumed.exit_code == 0
    assert "has no checkpoint yet: resuming starts it over from epoch 1" in resumed.stderr


def test_nan_loss_is_divergence_too(cli, mnist_root: Path, tmp_path: Path) -> None:
    result = cli(
        "run",
        "epochs=3",
        "optimizer=sgd",
        "lr=1e3",
        "diverge_factor=null",
        f"data.root={mnist_root}",
        "-q",
    )
    assert result.exit_code == 1 and "NaN or infinite" in result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert summary(run)["status"] == "diverged"


def test_a_crash_leaves_status_failed(cli, mnist_root, tmp_path, monkeypatch) -> None:
    from regbench.studies.mlp import MLPStudy

    real_step = MLPStudy.train_step
    calls = {"n": 0}

    def failing_step(self, batch):
        calls["n"] += 1
        if calls["n"] > 8:
            raise RuntimeError("disk on fire")
        return real_step(self, batch)

    monkeypatch.setattr(MLPStudy, "train_step", failing_step)
    result = cli("run", "epochs=3", *SMALL, f"data.root={mnist_root}", "-q")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: RuntimeError: disk on fire (run with --debug for the traceback)"
    ]
    (run,) = run_dirs(tmp_path / "outputs")
    assert summary(run)["status"] == "failed"
    assert "disk on fire" in summary(run)["error"]


def test_unsafe_yaml_is_never_executed(cli, mnist_root: Path, tmp_path: Path) -> None:
    assert cli("run", "epochs=1", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    marker = tmp_path / "pwned"
    (run / "config.yaml").write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    result = cli("rerun", str(run))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_checkpoints_load_with_weights_only(cli, mnist_root: Path, tmp_path: Path) -> None:
    import torch

    assert cli("run", "epochs=2", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and [row["epoch"] for row in state["rows"]] == [0, 1, 2]
    assert {"model"} == set(state["networks"]) == set(state["optimizers"])


def test_an_interrupt_during_a_checkpoint_write_is_an_interrupt(tmp_path, monkeypatch) -> None:
    """Ctrl-C landing inside torch.save's file writes reaches torch's zip writer, which turns it
    into a RuntimeError; the run must still end as interrupted, with no half-written file."""
    import io
    import os

    import torch

    from regbench.core import rundir

    class InterruptedFile(io.RawIOBase):
        writes = 0

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            InterruptedFile.writes += 1
            if InterruptedFile.writes == 3:
                raise KeyboardInterrupt("SIGINT")
            return len(data)

    def interrupted_fdopen(fd: int, mode: str) -> InterruptedFile:
        os.close(fd)
        return InterruptedFile()

    run_dir = rundir.RunDir(tmp_path)
    monkeypatch.setattr(rundir.os, "fdopen", interrupted_fdopen)
    with pytest.raises(KeyboardInterrupt):
        run_dir.save_checkpoint({"weights": torch.zeros(1000)})
    assert list(tmp_path.iterdir()) == []


def test_a_run_running_on_another_host_is_never_taken_for_dead(cli, mnist_root, tmp_path) -> None:
    """On a shared file system the pid of a run on another node means nothing here."""
    assert cli("run", "epochs=1", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    on_disk = summary(run)
    assert on_disk["host"] == socket.gethostname()
    dead_pid = 2**22 + 12345  # beyond the default pid_max: no such process here
    elsewhere = {**on_disk, "status": "running", "pid": dead_pid, "host": "node-17"}
    (run / "summary.json").write_text(json.dumps(elsewhere))
    result = cli("resume", str(run))
    assert result.exit_code == 2
    assert f"still running (pid {dead_pid} on node-17)" in result.stderr
    (run / "summary.json").write_text(json.dumps({**elsewhere, "host": socket.gethostname()}))
    assert cli("resume", str(run), "-q").exit_code == 0  # here, that pid is dead: resumed
