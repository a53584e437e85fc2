"""Notices are records of the ``regbench`` logger: a notebook silences or routes them with
``logging``, the CLI shows each as the line it always printed, and neither changes the caller's
logging. Logs (output that is no terminal) have no blank lines, and a sweep whose jobs run
elsewhere (a Hydra launcher's workers) still says each job's start and end."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

import regbench

TINY = ["model=regression", "epochs=2", "data.n_train=32"]


def logging_state() -> list[object]:
    """What a library must leave as it found it: the root's and regbench's handlers and levels."""
    root, ours = logging.getLogger(), logging.getLogger("regbench")
    return [list(root.handlers), root.level, list(ours.handlers), ours.level, ours.disabled]


@pytest.fixture
def unreadable_run(tmp_path: Path) -> Path:
    """A completed run whose metrics.csv holds bytes that are not UTF-8: reading it is a note."""
    result = regbench.run([*TINY, f"out_dir={tmp_path / 'runs'}"])
    (result.run_dir.path / "metrics.csv").write_bytes(b"\xff\xfe not a csv")
    return tmp_path / "runs"


def test_a_notebook_gets_notes_as_records_and_silences_them(
    unreadable_run: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = logging_state()
    with caplog.at_level(logging.WARNING):
        regbench.load_runs(unreadable_run)
    [record] = [r for r in caplog.records if r.name == "regbench"]
    assert record.levelno == logging.WARNING and record.getMessage().startswith("skipped ")
    assert logging_state() == before

    caplog.clear()
    logging.getLogger("regbench").setLevel(logging.ERROR)  # as a notebook silences notices
    try:
        regbench.load_runs(unreadable_run)
    finally:
        logging.getLogger("regbench").setLevel(logging.NOTSET)
    assert not [r for r in caplog.records if r.name == "regbench"]


def test_the_cli_shows_a_note_as_one_line_and_leaves_logging_as_it_was(
    cli, unreadable_run: Path
) -> None:
    before = logging_state()
    result = cli("compare", str(unreadable_run), "--no-plots")
    assert "note: skipped " in result.stderr
    assert logging_state() == before


def test_a_sweep_logged_to_a_file_has_no_blank_lines(cli) -> None:
    """rich printed an empty line where its progress bars had been, twice per job."""
    result = cli("sweep", *TINY, "seed=1,2", "--dir", "s")  # progress on: bars where a terminal
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "[2/2] seed=2: completed" in result.stderr and "epoch    2" in result.stderr
    assert "" not in lines


def test_jobs_run_elsewhere_are_followed_through_their_folders(tmp_path: Path) -> None:
    """What a launcher's workers write (summary.json) is what the sweep's process says."""
    from regbench.core.progress import Reporter
    from regbench.sweeps import plan

    prepared = plan.prepare([*TINY, "seed=1,2"], tmp_path / "s")
    keys = [job.key for job in prepared.jobs]
    labels = {job.key: {"label": job.label} for job in prepared.jobs}
    record = {"current": {"order": keys}, "jobs": labels}
    shown = io.StringIO()
    console = Console(file=shown, width=200)
    context = plan.LaunchContext(tmp_path / "s", record, (), True, console)
    watch = plan.FolderWatch(prepared, context)

    watch.poll()
    assert shown.getvalue() == ""  # nothing has started
    first, second = prepared.jobs
    plan.carry_out(first, "new", lambda text: None, Reporter())  # "elsewhere": lines unseen
    watch.poll()
    watch.poll()  # a status said once
    lines = shown.getvalue().splitlines()
    assert lines[0] == f"[1/2] seed=1: running -> {first.folder}"
    assert lines[1].startswith("[1/2] seed=1: completed in ") and "test_loss" in lines[1]
    assert len(lines) == 2

    plan.carry_out(second, "new", lambda text: None, Reporter())
    watch.poll()
    lines = shown.getvalue().splitlines()
    assert lines[2] == f"[2/2] seed=2: running -> {second.folder}"
    assert lines[3].startswith("[2/2] seed=2: completed in ") and len(lines) == 4
