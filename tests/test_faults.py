"""Faults and hostile run folders (issue 17): each ends in one line naming the file and the
cause, and a bad file in one run of a sweep does not cost the rest."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
import torch

from regbench.core.errors import DataError
from regbench.core.rundir import RunDir, Status, Summary
from tests.conftest import run_dirs
from tests.test_compare import make_run

SMALL = ("model.hidden=[32]", "batch_size=32")


class Hostile:
    """A pickle that would run a command if it were ever unpickled with weights_only=False."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def damage(path: Path, how: str) -> None:
    """Make ``path`` (a torch file) empty, garbage, truncated, hostile or the wrong shape."""
    if how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"not a torch file at all " * 20)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "hostile":
        torch.save({"model": Hostile(path.parent / "pwned")}, path)
    elif how == "not_a_dict":
        torch.save([1, 2, 3], path)


TORCH_DAMAGE = ["empty", "garbage", "truncated", "hostile", "not_a_dict"]


@pytest.mark.parametrize("how", TORCH_DAMAGE)
@pytest.mark.parametrize("name", ["checkpoint.pt", "model.pt"])
def test_a_damaged_torch_file_is_one_line(tmp_path: Path, name: str, how: str) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.save_checkpoint({"epoch": 1, "weights": torch.zeros(100)})
    run_dir.save_model({"model": {"weight": torch.zeros(10, 10)}})
    damage(tmp_path / name, how)
    load = run_dir.load_checkpoint if name == "checkpoint.pt" else run_dir.load_model
    with pytest.raises(DataError) as caught:
        load()
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and str(tmp_path / name) in message
    assert "weights_only" not in message  # never torch's advice to load it unsafely
    assert not (tmp_path / "pwned").exists()


def test_resume_with_a_hostile_checkpoint_is_one_line(cli, mnist_root: Path, tmp_path) -> None:
    assert cli("run", "epochs=1", *SMALL, f"data.root={mnist_root}", "-q").exit_code == 0
    (run,) = run_dirs(tmp_path / "outputs")
    summary = run / "summary.json"
    summary.write_text(summary.read_text().replace('"completed"', '"interrupted"'))
    damage(run / "checkpoint.pt", "hostile")
    result = cli("resume", str(run), "-q")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot load {run / 'checkpoint.pt'}: it asks for posix.system")
    assert "weights_only" not in line and not (run / "pwned").exists()


@pytest.fixture
def sweep_with_a_bad_model(tmp_path: Path) -> tuple[Path, Path]:
    """Two completed runs of one group, each with a model.pt; the second one's is damaged."""
    from regbench.compose.hydra import load_settings

    base = load_settings(["model.hidden=[16]"]).to_dict()
    root = tmp_path / "sweep"
    runs = [make_run(root, base, seed=seed) for seed in (1, 2)]
    for run in runs:
        RunDir(run).save_model({"model": {"0.weight": torch.randn(16, 784)}})
    damage(runs[1] / "model.pt", "garbage")
    return root, runs[1] / "model.pt"


@pytest.mark.parametrize("command", ["compare", "plot", "report"])
def test_one_unreadable_model_does_not_abort_a_sweep(cli, sweep_with_a_bad_model, command) -> None:
    root, bad = sweep_with_a_bad_model
    result = cli(command, str(root))
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    skipped = [line for line in notes if str(bad) in line]
    # Once per thing drawn from it (plot redraws each run's own figures and the sweep's).
    assert len(skipped) == (2 if command == "plot" else 1)
    assert all("skipped" in line for line in skipped)
    assert "Traceback" not in result.stderr and "weights_only" not in result.stderr
    assert (root / "comparison_weight_hist.png").is_file()  # drawn from the readable run


def test_a_sweep_whose_every_model_is_unreadable_still_compares(cli, sweep_with_a_bad_model):
    root, _ = sweep_with_a_bad_model
    for model in root.rglob("model.pt"):
        damage(model, "empty")
    result = cli("compare", str(root))
    assert result.exit_code == 0, result.stderr
    assert len(re.findall(r"(?m)^note: skipped", result.stderr)) == 2
    assert not (root / "comparison_weight_hist.png").exists()


# ---------------------------------------------------------------------------------------------
# A full disk: every run-folder write that fails says so, and names the file.
def no_space(*args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


WRITES = {
    "config.yaml": lambda r: r.write_config({"a": 1}, []),
    "summary.json": lambda r: r.write_summary(Summary(Status.RUNNING, "n", "mlp", 0)),
    "metrics.csv": lambda r: r.append_metrics({"epoch": 1, "test_loss": 0.5}),
    "weights.csv": lambda r: r.append_weights([{"epoch": 1, "l1": 0.5}]),
    "checkpoint.pt": lambda r: r.save_checkpoint({"epoch": 1, "w": torch.zeros(10)}),
    "model.pt": lambda r: r.save_model({"model": {"w": torch.zeros(10)}}),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_a_full_disk_names_the_file(tmp_path: Path, monkeypatch, name: str) -> None:
    from regbench.core import rundir

    monkeypatch.setattr(rundir.os, "fsync", no_space)
    with pytest.raises(DataError) as caught:
        WRITES[name](RunDir(tmp_path))
    assert str(caught.value).startswith(f"no space left on device: cannot write {tmp_path / name}")
    assert [p.name for p in tmp_path.iterdir()] in ([], [name])  # no temp file left behind


def test_a_full_disk_inside_torch_save_names_the_file(tmp_path: Path, monkeypatch) -> None:
    """torch's zip writer turns the failed write into 'unexpected pos': still no space left."""
    import io

    from regbench.core import rundir

    class FullDisk(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            no_space()
            return 0

    def full_fdopen(fd: int, mode: str) -> FullDisk:
        os.close(fd)
        return FullDisk()

    monkeypatch.setattr(rundir.os, "fdopen", full_fdopen)
    with pytest.raises(DataError, match=r"^no space left on device: cannot write .*model\.pt"):
        RunDir(tmp_path).save_model({"model": {"w": torch.zeros(1000)}})
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_fills_the_disk_fails_in_one_line(cli, mnist_root, tmp_path, monkeypatch):
    from regbench.core import rundir

    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up while the second checkpoint is written
        if ".checkpoint.pt." in os.readlink(f"/proc/self/fd/{fd}"):
            fsync.checkpoints += 1
            if fsync.checkpoints == 2:
                no_space()
        real_fsync(fd)

    fsync.checkpoints = 0
    monkeypatch.setattr(rundir.os, "fsync", fsync)
    result = cli("run", "epochs=3", *SMALL, f"data.root={mnist_root}", "-q")
    assert result.exit_code == 1
    (run,) = run_dirs(tmp_path / "outputs")
    (line,) = result.stderr.strip().splitlines()
    checkpoint = run.relative_to(tmp_path) / "checkpoint.pt"
    assert line == (
        f"error: no space left on device: cannot write {checkpoint}; free some space and run again"
    )
    summary = RunDir(run).read_summary()
    assert summary.status is Status.FAILED and "no space left on device" in summary.error


# ---------------------------------------------------------------------------------------------
# `regbench run ... | head -2`: the reader goes away; the run must not.
def run_into_a_closed_pipe(tmp_path: Path, both: bool) -> tuple[int, str]:
    """Run regbench with stdout (and with ``both``, stderr too) a pipe nobody reads: its read
    end is closed before the process starts, so every write to it fails (EPIPE)."""
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    exe = Path(sys.executable).with_name("regbench")
    args = [str(exe), "run", "model=regression", "epochs=30", "eval_every=5"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.run(
            args, cwd=tmp_path, stdout=write_end, stderr=write_end if both else err, timeout=300
        )
    os.close(write_end)
    return proc.returncode, log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("both", [False, True], ids=["stdout", "stdout_and_stderr"])
def test_a_closed_console_does_not_stop_the_run(tmp_path: Path, both: bool) -> None:
    returncode, stderr = run_into_a_closed_pipe(tmp_path, both)
    (run,) = run_dirs(tmp_path / "outputs")
    summary = RunDir(run).read_summary()
    assert summary.status is Status.COMPLETED, summary.error
    assert summary.epochs_completed == 30 and summary.error is None
    assert returncode == 0
    assert "Broken pipe" not in stderr and "Exception" not in stderr


def test_a_failed_run_always_says_why() -> None:
    from regbench.training.session import failure_reason

    assert failure_reason(RuntimeError()) == "RuntimeError"
    assert failure_reason(ValueError("bad")) == "ValueError: bad"
    assert "SystemExit 1" in failure_reason(SystemExit(1))


# ---------------------------------------------------------------------------------------------
# Untrusted YAML: a config that would expand to billions of values, or is simply huge.
def alias_bomb(levels: int = 9) -> str:
    """The billion laughs: each level lists the previous one nine times (9**9 leaves)."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    import tracemalloc

    from regbench.core.errors import UsageError

    (tmp_path / "config.yaml").write_text(alias_bomb())
    tracemalloc.start()
    with pytest.raises(UsageError) as caught:
        RunDir(tmp_path).read_config()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 * 2**20
    message = str(caught.value)
    assert message.startswith(f"cannot read {tmp_path / 'config.yaml'}: a YAML alias at line 2")
    assert len(message.splitlines()) == 1


def test_a_huge_yaml_file_is_refused_unparsed(tmp_path: Path) -> None:
    from regbench.core.errors import UsageError
    from regbench.core.rundir import MAX_YAML_BYTES

    (tmp_path / "overrides.yaml").write_text("- seed=1\n" * (MAX_YAML_BYTES // 9 + 1))
    with pytest.raises(UsageError, match=r"overrides\.yaml: it is larger than 1 MiB"):
        RunDir(tmp_path).read_overrides()


def test_configs_are_written_without_aliases(tmp_path: Path) -> None:
    shared = [1, 2]  # one object twice: safe_dump would write &id001 and *id001
    RunDir(tmp_path).write_config({"a": shared, "b": shared}, ["x=1"])
    assert "&" not in (tmp_path / "config.yaml").read_text()
    assert RunDir(tmp_path).read_config() == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize("command", ["compare", "plot", "report", "rerun", "resume"])
def test_every_command_refuses_an_alias_bomb_in_one_line(cli, tmp_path, command) -> None:
    from regbench.compose.hydra import load_settings

    base = load_settings(["model.hidden=[16]"]).to_dict()
    root = tmp_path / "sweep"
    bombed = make_run(root, base, seed=1, status="interrupted")
    make_run(root, base, seed=2)
    (bombed / "config.yaml").write_text(alias_bomb())
    result = cli(command, str(root if command in ("compare", "plot", "report") else bombed))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert str(bombed / "config.yaml") in line and "YAML alias" in line


def test_a_sweep_refuses_a_job_folder_with_an_alias_bomb(tmp_path: Path) -> None:
    from regbench.core.errors import UsageError
    from regbench.sweeps.plan import job_state

    folder = tmp_path / "0123456789ab-seed=1"
    folder.mkdir()
    (folder / "config.yaml").write_text(alias_bomb())
    with pytest.raises(UsageError, match=r"config\.yaml cannot be read"):
        job_state(folder)


# ---------------------------------------------------------------------------------------------
# Shared results folders: every file follows the umask, the atomically written ones too.
@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_every_file_of_a_sweep_follows_the_umask(cli, tmp_path: Path, umask_022) -> None:
    import stat

    from regbench.core.rundir import current_umask

    assert current_umask() == 0o022  # read without changing it
    sweep_dir = tmp_path / "sweep"
    args = ["model=regression", "epochs=2", "seed=1,2", "--dir", str(sweep_dir), "-q"]
    assert cli("sweep", *args).exit_code == 0
    (run, _) = run_dirs(sweep_dir)
    files = [run / name for name in ("config.yaml", "overrides.yaml", "summary.json")]
    files += [
        run / "model.pt",
        run / "checkpoint.pt",
        run / "metrics.csv",
        sweep_dir / "sweep.json",
    ]
    modes = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files}
    assert modes == {path.name: "0o644" for path in files}
    assert current_umask() == 0o022


def test_atomic_files_follow_a_strict_umask_too(tmp_path: Path) -> None:
    import stat

    previous = os.umask(0o027)
    try:
        RunDir(tmp_path).write_summary(Summary(Status.RUNNING, "n", "mlp", 0))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "summary.json").stat().st_mode) == 0o640


# ----------------------------------------------------------------------------- sweep integrity
TINY_SWEEP = ("sweep", "model=regression", "epochs=2", "eval_every=1", "data.n_train=20")


@pytest.fixture
def tiny_sweep(cli) -> tuple[tuple[str, ...], Path]:
    """A real two-seed sweep, and the command that made it."""
    args = (*TINY_SWEEP, "seed=1,2", "--dir", "sw", "-q")
    made = cli(*args)
    assert made.exit_code == 0, made.stderr
    return args, Path("sw")


@pytest.mark.slow
def test_a_completed_job_missing_a_result_file_is_run_again(cli, tiny_sweep) -> None:
    args, sweep = tiny_sweep
    gone = {"metrics.csv": next(sweep.glob("*-seed=1")), "model.pt": next(sweep.glob("*-seed=2"))}
    for name, job in gone.items():
        (job / name).unlink()
    compared = cli("compare", str(sweep), "--out", "elsewhere")
    assert compared.exit_code == 0, compared.stderr
    no_metrics = gone["metrics.csv"].resolve()
    assert f"skipped {no_metrics}: it says completed but metrics.csv missing" in compared.stderr
    assert "(n=1)" in compared.stderr  # the run without model.pt still counts
    again = cli(*args)
    assert again.exit_code == 0, again.stderr
    assert "2 jobs (2 to retry)" in again.stderr
    for name, job in gone.items():
        assert f"{job.name} says completed but {name} missing: running it again" in again.stderr
        rows = RunDir(job).read_metrics()
        assert RunDir(job).damage() is None and [r["epoch"] for r in rows] == [0, 1, 2]


@pytest.mark.slow
def test_a_compare_with_other_options_keeps_the_sweeps_own_tables(cli, tiny_sweep) -> None:
    _, sweep = tiny_sweep
    own = (sweep / "comparison.md").read_text()
    other = cli("compare", str(sweep), "--at", "best", "--metric", "train_loss", "--no-plots")
    assert other.exit_code == 0, other.stderr
    assert (sweep / "comparison.md").read_text() == own
    elsewhere = sweep / "comparisons" / "metric=train_loss,at=best" / "comparison.md"
    assert "train_loss" in elsewhere.read_text() and "best" in elsewhere.read_text()
    asked = cli("compare", str(sweep), "--at", "best", "--out", str(sweep), "--no-plots")
    assert asked.exit_code == 0 and (sweep / "comparison.md").read_text() != own
