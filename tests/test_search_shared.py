"""A search spread over processes (issue 24, item 5): the same command started twice on one
journal storage and one --dir shares the trials (each job trained once, sweep.json whole, one
comparison of them all); a dead process's running trial is failed and asked again; the
folder's workers, claims and short lock (regbench/sweeps/sharing.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from regbench.sweeps import sharing
from regbench.sweeps.plan import merge_records
from tests.conftest import run_dirs

TINY = (
    "model=regression", "epochs=40", "eval_every=10", "threads=1", "device=cpu",
    "model.hidden=[16]", "data.n_train=16", "hydra/sweeper=optuna", "-q",
)  # fmt: skip


def journal(path: Path) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def regbench(*args: str, cwd: Path) -> subprocess.Popen:
    """`regbench ARGS` started as a user starts it, in its own process."""
    exe = Path(sys.executable).with_name("regbench")
    env = {**os.environ, "REGBENCH_FIGURE_WORKERS": "0"}  # two processes on the test's cores
    return subprocess.Popen(
        [str(exe), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


@pytest.mark.slow
def test_two_processes_share_one_journal_study(cli, tmp_path: Path) -> None:
    log = tmp_path / "study.log"
    search = (
        *TINY, "dropout=interval(0,0.6)", "seed=1,2", "hydra.sweeper.n_trials=4",
        f"hydra.sweeper.storage=journal://{log}", "hydra.sweeper.study_name=s", "--dir", "D",
    )  # fmt: skip
    workers = [regbench("sweep", *search, cwd=tmp_path) for _ in range(2)]
    ended = [worker.communicate(timeout=600) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in ended]
    errors = "".join(err for _, err in ended)

    study = optuna.load_study(study_name="s", storage=journal(log))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4  # n_trials between them
    keys = [key for t in study.trials for key in t.user_attrs["jobs"]]
    assert len(keys) == len(set(keys)) == 8  # 4 trials x 2 seeds, each job its own folder
    assert sorted(p.name for p in run_dirs(tmp_path / "D")) == sorted(keys)
    assert errors.count("running ->") == 8  # each job trained once, by one of the two

    record = json.loads((tmp_path / "D" / "sweep.json").read_text())  # whole: both parts
    trials = record["search"]["trials"]
    assert [t["number"] for t in trials] == [1, 2, 3, 4]
    assert [t["value"] for t in trials] == [t.value for t in study.trials]
    assert sorted(record["jobs"]) == sorted(keys)
    assert {job["status"] for job in record["jobs"].values()} == {"completed"}
    assert len(record["invocations"]) == 2
    assert all(i["outcome"] for i in record["invocations"])
    assert not any(p.name.startswith(".sweep") for p in (tmp_path / "D").iterdir())

    compared = cli("compare", "D")
    assert compared.exit_code == 0, compared.stderr
    assert "8 runs in 4 groups" in (tmp_path / "D" / "comparison.md").read_text()


def test_a_dead_process_trial_is_failed_and_asked_again(cli, tmp_path: Path) -> None:
    """Killed hard, a process leaves its trial running in the study: the next process that
    works in the folder fails it (its worker file is gone) and asks its params again."""
    log, folder = tmp_path / "study.log", tmp_path / "D"
    folder.mkdir()
    study = optuna.create_study(study_name="s", storage=journal(log))
    study.enqueue_trial({"dropout": 0.25})
    orphan = study.ask({"dropout": optuna.distributions.FloatDistribution(0, 0.6)})
    orphan.set_user_attr("worker", f"{socket.gethostname()} {2**22 + 12345}")  # a dead pid
    orphan.set_user_attr("folder", str(folder.resolve()))

    result = cli(
        "sweep", *TINY, "dropout=interval(0,0.6)", "seed=1", "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage=journal://{log}", "hydra.sweeper.study_name=s", "--dir", "D",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "trial 1: pid 4206649 is gone; it is asked again" in result.stderr
    trials = optuna.load_study(study_name="s", storage=journal(log)).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].params == {"dropout": 0.25}  # the orphan's, asked again first
    record = json.loads((folder / "sweep.json").read_text())["search"]["trials"]
    assert [(t["number"], t["note"]) for t in record][:2] == [(1, "interrupted"), (2, "")]


def test_only_searches_on_one_study_share_a_folder(cli, tmp_path: Path) -> None:
    """A live worker that shares the folder by one study lets the same search in, and keeps
    out a grid, a search without a storage and a search on another study."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = tmp_path / "D"
        folder.mkdir()
        (folder / "sweep.json").write_text('{"format": 1, "invocations": [], "jobs": {}}')
        shares = f"hydra.sweeper.storage=journal://{tmp_path / 'j.log'} hydra.sweeper.study_name=s"
        (folder / sharing.WORKERS).mkdir()
        (folder / sharing.WORKERS / "other").write_text(
            f"{socket.gethostname()} {sleeper.pid}\n{json.dumps({'shares': shares})}\n"
        )
        with sharing.working(folder, shares) as joined:
            assert joined == [f"{socket.gethostname()} {sleeper.pid}"]
        grid = cli("sweep", *TINY[:5], "seed=1", "--dir", "D")
        assert grid.exit_code == 2
        assert f"another regbench sweep (pid {sleeper.pid}) is running in D" in grid.stderr
        space = (*TINY, "dropout=interval(0,0.6)", "--dir", "D")
        alone = cli("sweep", *space)
        assert alone.exit_code == 2 and "another regbench sweep" in alone.stderr
        other = cli("sweep", *space, f"hydra.sweeper.storage=journal://{tmp_path / 'k.log'}")
        assert other.exit_code == 2, other.stderr
        assert f"running in D with {shares}: give the same to share its trials" in other.stderr
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_claimed_job_is_waited_for_and_a_dead_claim_taken(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(sharing, "CLAIM_POLL_SECONDS", 0.05)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    claims = tmp_path / sharing.CLAIMS
    claims.mkdir()
    (claims / "k-seed=1").write_text(f"{socket.gethostname()} {sleeper.pid}")
    (claims / "k-seed=2").write_text(f"{socket.gethostname()} {2**22 + 12345}")  # dead
    heard: list[str] = []
    got = threading.Event()

    def claim() -> None:
        with sharing.claimed(tmp_path, ["k-seed=2", "k-seed=1"], heard.append):
            assert (claims / "k-seed=1").read_text() == sharing.me()
            got.set()

    thread = threading.Thread(target=claim)
    thread.start()
    while not heard:  # told once that the live process trains it
        time.sleep(0.01)
    assert not got.is_set()
    assert heard == [f"job k-seed=1 is being trained by pid {sleeper.pid}: waiting for it"]
    sleeper.kill()
    sleeper.wait()
    thread.join(timeout=30)
    assert got.is_set() and not claims.exists()  # released, and the empty folder removed


def test_the_record_merges_what_each_process_wrote() -> None:
    def trial(number: int, value: float | None) -> dict:
        return {"number": number, "value": value, "jobs": [f"k{number}"]}

    search = {"storage": "journal:///j.log", "study_name": "s"}
    disk = {
        "jobs": {"k1": {"status": "completed", "overrides": ["dropout=0.1", "seed=1"]}},
        "invocations": [{"id": "a", "outcome": {"completed": 1}}, {"id": "b"}],
        "search": {**search, "trials": [trial(1, 0.5)]},
    }
    ours = {  # read before the other process finished k1, and with its own trial 2 running
        "jobs": {
            "k1": {"status": "running", "overrides": ["dropout=0.1", "seed=1"]},
            "k2": {"status": "running", "overrides": ["dropout=0.3", "seed=1"]},
        },
        "invocations": [{"id": "a"}, {"id": "b", "outcome": {"completed": 1}}],
        "search": {**search, "trials": [trial(2, None)]},
        "current": {"order": ["k2"]},
    }
    merged = merge_records(disk, ours, own={"k2"})
    assert merged["jobs"]["k1"]["status"] == "completed"  # the other process's, kept
    assert merged["jobs"]["k2"]["status"] == "running"
    assert merged["invocations"] == [disk["invocations"][0], ours["invocations"][1]]
    assert [t["number"] for t in merged["search"]["trials"]] == [1, 2]
    assert merged["grid"] == {"dropout": ["0.1", "0.3"]}
    # Another study's trials in the folder's record are not this search's: replaced.
    other = merge_records(disk, {**ours, "search": {**ours["search"], "study_name": "t"}}, {"k2"})
    assert [t["number"] for t in other["search"]["trials"]] == [2]
