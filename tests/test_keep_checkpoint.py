"""keep_checkpoint=false drops a run's checkpoint.pt (three times model.pt for an MLP: weights
and Adam's two moments) once the run completes; the run stays whole, and a resume says in one
line why it cannot go on."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_dirs

TINY = ("model=regression", "epochs=2", "data.n_train=32", "-q")


def test_a_completed_run_drops_its_checkpoint_and_resume_says_why(cli, tmp_path: Path) -> None:
    result = cli("run", *TINY, "keep_checkpoint=false")
    assert result.exit_code == 0, result.stderr
    [run] = run_dirs(tmp_path / "outputs")
    assert (run / "model.pt").is_file() and not (run / "checkpoint.pt").exists()

    resumed = cli("resume", str(run))
    assert resumed.exit_code == 2
    assert resumed.stderr.count("\n") == 1
    assert "checkpoint.pt was dropped (keep_checkpoint=false)" in resumed.stderr
    assert "`regbench rerun`" in resumed.stderr


def test_by_default_the_checkpoint_stays(cli, tmp_path: Path) -> None:
    result = cli("run", *TINY)
    assert result.exit_code == 0, result.stderr
    [run] = run_dirs(tmp_path / "outputs")
    assert (run / "checkpoint.pt").is_file()
    assert "already completed" in cli("resume", str(run)).stderr


def test_a_sweep_without_checkpoints_is_whole_when_run_again(cli, tmp_path: Path) -> None:
    args = ("sweep", *TINY, "seed=1,2", "keep_checkpoint=false", "--dir", "s")
    assert cli(*args).exit_code == 0
    again = cli(*args)
    assert again.exit_code == 0 and again.stderr.count("skipped (already completed)") == 2
    assert not list((tmp_path / "s").rglob("checkpoint.pt"))
