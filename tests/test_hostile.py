"""Hostile and damaged folders (issue 27): run and sweep folders received from someone else,
with links planted in them, damaged records or bytes that are not text, and two commands at once
on one folder. Each ends in one line or a notice, and never writes outside the folder."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from regbench.core.errors import DataError
from regbench.core.rundir import RunDir, Status, Summary
from tests.conftest import run_dirs
from tests.test_compare import make_run

QUICK = ("model=regression", "epochs=3", "threads=1", "device=cpu")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def base_config() -> dict[str, Any]:
    from regbench.compose.hydra import load_settings

    return load_settings(["model.hidden=[16]"]).to_dict()


@pytest.fixture
def sweep(tmp_path: Path, base_config: dict[str, Any]) -> Path:
    """A folder of two completed runs of one group, written by hand (no training)."""
    root = tmp_path / "received"
    for seed in (1, 2):
        make_run(root, base_config, seed=seed)
    return root


def plant_link(at: Path, tmp_path: Path) -> Path:
    """``at`` made a link to a file outside its folder; returns that file."""
    outside = tmp_path / f"outside-{at.name}"
    outside.write_text("precious\n")
    at.unlink(missing_ok=True)
    at.symlink_to(outside)
    return outside


# ---------------------------------------------------------------------------------------------
# Case 1: every file regbench writes into a folder replaces what is there, never writing
# through a link planted under its name.
LINKED = [
    ("report", "report.html"),
    ("compare", "comparison.md"),
    ("compare", "comparison.csv"),
    ("compare", "comparison.tex"),
    ("compare", "comparison_metrics.png"),
    ("plot", "comparison_loss_curves.png"),
    ("plot", "seed=1/loss_curve.png"),
    ("report", "comparison_metrics.png"),
]


@pytest.mark.parametrize(("command", "name"), LINKED)
def test_a_planted_link_is_replaced_not_written_through(cli, sweep, tmp_path, command, name):
    target = sweep / name if "/" not in name else sweep / f"base-{name}"
    outside = plant_link(target, tmp_path)
    extra = ["--tex"] if command == "compare" else []
    result = cli(command, str(sweep), *extra)
    assert result.exit_code == 0, result.stderr
    assert outside.read_text() == "precious\n"
    assert target.is_file() and not target.is_symlink()


def test_plot_of_one_run_replaces_a_linked_loss_curve(cli, sweep, tmp_path) -> None:
    run = sweep / "base-seed=1"
    outside = plant_link(run / "loss_curve.png", tmp_path)
    assert cli("plot", str(run)).exit_code == 0
    assert outside.read_text() == "precious\n" and not (run / "loss_curve.png").is_symlink()


REPLACED = {
    "config.yaml": lambda r: r.write_config({"a": 1}, []),
    "summary.json": lambda r: r.write_summary(Summary(Status.RUNNING, "n", "mlp", 0)),
    "model.pt": lambda r: r.save_model({"w": 1}),
    "checkpoint.pt": lambda r: r.save_checkpoint({"epoch": 1}),
    "metrics.csv": lambda r: r.rewrite_metrics([{"epoch": 1, "test_loss": 0.5}]),
    "weights.csv": lambda r: r.truncate_weights(0),
}


@pytest.mark.parametrize("name", list(REPLACED))
def test_run_folder_writers_replace_a_link(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    outside = plant_link(folder / name, tmp_path)
    REPLACED[name](RunDir(folder))
    assert outside.read_text() == "precious\n" and not (folder / name).is_symlink()


@pytest.mark.parametrize("name", ["metrics.csv", "weights.csv"])
def test_an_append_refuses_a_link(tmp_path: Path, name: str) -> None:
    """Rows are appended in place (a crash loses at most one row), but never through a link."""
    outside = plant_link(tmp_path / name, tmp_path)
    run_dir = RunDir(tmp_path)
    with pytest.raises(DataError, match=f"cannot write {tmp_path / name}: it is a link"):
        if name == "metrics.csv":
            run_dir.append_metrics({"epoch": 1})
        else:
            run_dir.append_weights([{"epoch": 1}])
    assert outside.read_text() == "precious\n"


def test_multirun_yaml_is_replaced(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from regbench.compose.hydra import save_multirun_config

    outside = plant_link(tmp_path / "multirun.yaml", tmp_path)
    save_multirun_config(OmegaConf.create({"hydra": {"sweep": {"dir": "x"}}}), tmp_path)
    assert outside.read_text() == "precious\n"
    assert not (tmp_path / "multirun.yaml").is_symlink()
    assert "sweep" in (tmp_path / "multirun.yaml").read_text()


def test_the_mlflow_lock_refuses_a_link(tmp_path: Path) -> None:
    from regbench.training.loggers import SWEEP_RUN_LOCK, _locked

    outside = plant_link(tmp_path / SWEEP_RUN_LOCK, tmp_path)
    with pytest.raises(DataError, match="it is a link"), _locked(tmp_path / SWEEP_RUN_LOCK):
        pass
    assert outside.read_text() == "precious\n"


# ---------------------------------------------------------------------------------------------
# Case 2: the report embeds only regular PNG files inside the folder.
def test_the_report_embeds_no_link_and_no_file_that_is_not_a_png(cli, sweep, tmp_path) -> None:
    run = sweep / "base-seed=1"
    secret = tmp_path / "id_rsa"
    secret.write_bytes(PNG + b"-----BEGIN OPENSSH PRIVATE KEY-----")
    (run / "zz.png").symlink_to(secret)
    (run / "notes.png").write_text("not an image")
    (run / "real.png").write_bytes(PNG + b"pixels")
    config = plant_link(run / "config.yaml", tmp_path)  # the config shown: not through a link
    config.write_text((sweep / "base-seed=2" / "config.yaml").read_text() + "# SECRET\n")
    result = cli("report", str(sweep))
    assert result.exit_code == 0, result.stderr
    page = (sweep / "report.html").read_text()
    assert base64.b64encode(secret.read_bytes()).decode() not in page
    assert base64.b64encode(b"not an image").decode() not in page
    assert base64.b64encode(PNG + b"pixels").decode() in page
    assert "# SECRET" not in page


# ---------------------------------------------------------------------------------------------
# Case 5: one resume of a folder at a time.
@pytest.fixture
def interrupted_run(cli, tmp_path: Path) -> Path:
    assert cli("run", *QUICK, "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    summary = run / "summary.json"
    summary.write_text(summary.read_text().replace('"completed"', '"interrupted"'))
    return run


def test_a_resume_of_a_locked_run_is_one_line(cli, interrupted_run: Path) -> None:
    before = (interrupted_run / "metrics.csv").read_text()
    with RunDir(interrupted_run).locked():
        result = cli("resume", str(interrupted_run), "-q")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {interrupted_run} is being resumed by another")
    assert (interrupted_run / "metrics.csv").read_text() == before
    assert cli("resume", str(interrupted_run), "-q").exit_code == 0  # once the lock is gone
    assert not list(interrupted_run.glob(".*lock*"))  # the lock leaves nothing behind


@pytest.mark.slow
def test_two_resumes_at_once_run_it_once(cli, interrupted_run: Path, tmp_path: Path) -> None:
    config = interrupted_run / "config.yaml"  # epochs may change on a resume: go on to 400
    config.write_text(config.read_text().replace("epochs: 3", "epochs: 400"))
    exe = Path(sys.executable).with_name("regbench")
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    command = [str(exe), "resume", str(interrupted_run), "-q"]
    started = [subprocess.Popen(command, cwd=tmp_path, **pipes) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=300), p.stderr.read()) for p in started)
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert "is being resumed by another" in outcomes[1][1]
    epochs = [row["epoch"] for row in RunDir(interrupted_run).read_metrics()]
    assert epochs == sorted(set(epochs)) and epochs[-1] == 400  # each row once
    assert RunDir(interrupted_run).read_summary().completed


# ---------------------------------------------------------------------------------------------
# Case 13: a damaged sweep.json is one line naming it.
DAMAGED_RECORDS = [
    "[]",
    "null",
    "5",
    '"text"',
    '{"jobs": []}',
    '{"jobs": {"x": 5}}',
    '{"jobs": null}',
    '{"invocations": 5, "jobs": {}}',
    '{"invocations": [], "jobs": {}, "current": 5}',
    '{"invocations": [], "jobs": {}, "current": {"order": 5}}',
    '{"invocations": [], "jobs": {}, "grid": []}',
    "{",
    "\xff",
]


@pytest.mark.parametrize("content", DAMAGED_RECORDS)
def test_a_damaged_sweep_record_is_one_line(cli, tmp_path: Path, content: str) -> None:
    folder = tmp_path / "sw"
    folder.mkdir()
    record = folder / "sweep.json"
    record.write_bytes(content.encode("latin-1"))
    result = cli("sweep", *QUICK, "seed=1,2", "--dir", str(folder), "-q")
    assert result.exit_code == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot read {record}: "), line
    assert record.read_bytes() == content.encode("latin-1")  # left as it was, for the user
    assert not (folder / ".sweep.lock").exists()


@pytest.mark.parametrize("content", DAMAGED_RECORDS[:7])
@pytest.mark.parametrize("command", ["compare", "report", "plot"])
def test_readers_of_runs_ignore_a_damaged_sweep_record(cli, sweep, command, content) -> None:
    """compare, report and plot read the runs, not the record: it costs them nothing."""
    (sweep / "sweep.json").write_text(content)
    result = cli(command, str(sweep))
    assert result.exit_code == 0, result.stderr
    assert "Error" not in result.stderr


def test_a_member_of_a_damaged_sweep_is_no_member(tmp_path: Path) -> None:
    from regbench.core.jobs import sweep_member

    (tmp_path / "k-seed=1").mkdir()
    for content in DAMAGED_RECORDS:
        (tmp_path / "sweep.json").write_bytes(content.encode("latin-1"))
        assert sweep_member(tmp_path / "k-seed=1") is None


# ---------------------------------------------------------------------------------------------
# Case 14: bytes that are not UTF-8 in one run's CSV files skip that run, with a notice.
@pytest.mark.parametrize("name", ["metrics.csv", "weights.csv"])
@pytest.mark.parametrize("command", ["compare", "plot", "report"])
def test_a_csv_that_is_not_text_skips_its_run(cli, sweep, base_config, command, name) -> None:
    bad = make_run(sweep, base_config, seed=3) / name
    with bad.open("ab") as f:
        f.write(b"epoch,x\n\xff\xfe,1\n")
    result = cli(command, str(sweep))
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    skipped = [line for line in notes if str(bad) in line]
    assert len(skipped) == 1 and "skipped" in skipped[0] and "UTF-8" in skipped[0], notes
    assert "Traceback" not in result.stderr


def test_a_single_run_with_a_bad_csv_is_one_line(cli, sweep) -> None:
    run = sweep / "base-seed=1"
    (run / "metrics.csv").write_bytes(b"epoch,test_loss\n1,\xff\n")
    result = cli("plot", str(run))
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot read {run / 'metrics.csv'}: ")


def test_a_job_with_a_bad_csv_is_damaged(tmp_path: Path, base_config) -> None:
    run = make_run(tmp_path, base_config, seed=1)
    (run / "metrics.csv").write_bytes(b"\xff\xfe")
    assert "metrics.csv" in (RunDir(run).damage(["metrics.csv"]) or "")


# ---------------------------------------------------------------------------------------------
# Case 19: the sweep's lock file is not executable.
def test_the_sweep_lock_is_0644_under_umask_022(tmp_path: Path) -> None:
    from regbench.sweeps.sharing import LOCK_FILE, short_lock

    mask = os.umask(0o022)
    try:
        with short_lock(tmp_path):
            mode = stat.S_IMODE((tmp_path / LOCK_FILE).stat().st_mode)
    finally:
        os.umask(mask)
    assert mode == 0o644


# ---------------------------------------------------------------------------------------------
# Case 10: a signal while the figures are drawn still ends with a status that says so.
SLOW_FIGURE = """
import os, signal, sys, time
from regbench.figures import plots
COMMAND, SIGNAL, drawn = os.getpid(), getattr(signal, sys.argv[1]), plots.loss_curve
def loss_curve(*args, **kwargs):  # drawn here or in a worker: the signal goes to the command
    os.kill(COMMAND, SIGNAL)
    time.sleep(3)
    return drawn(*args, **kwargs)
plots.loss_curve = loss_curve
sys.argv = ["regbench", *sys.argv[2:]]
from regbench.cli.main import main
sys.exit(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("how", ["run", "sweep"])
def test_a_signal_while_figures_are_drawn(tmp_path: Path, how, signame, workers) -> None:
    args = ["run", *QUICK] if how == "run" else ["sweep", *QUICK, "seed=1,2", "--dir", "sw"]
    env = {**os.environ, "REGBENCH_FIGURE_WORKERS": workers}
    done = subprocess.run(
        [sys.executable, "-c", SLOW_FIGURE, signame, *args, "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 130, (done.returncode, done.stderr)
    (run, *_) = run_dirs(tmp_path / ("outputs" if how == "run" else "sw"))
    assert RunDir(run).read_summary().status is Status.INTERRUPTED, done.stderr
    if how == "run":
        assert f"to go on: regbench resume {run.relative_to(tmp_path)}" in done.stderr
    else:
        assert "--dir sw" in done.stderr, done.stderr
        assert not (tmp_path / "sw" / ".sweep.lock").exists()
        record = json.loads((tmp_path / "sw" / "sweep.json").read_text())
        assert {job["status"] for job in record["jobs"].values()} <= {"interrupted", "not run"}
