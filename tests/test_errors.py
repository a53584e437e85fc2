"""Bad input: one line naming the key and what is allowed, non-zero exit, no run folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import run_dirs, run_regbench

BAD_OVERRIDES = [
    (["dropout=1"], "dropout"),
    (["dropout=1.5"], "dropout"),
    (["dropout=-0.1"], "dropout"),
    (["l1=-1"], "l1"),
    (["l2=-1e-3"], "l2"),
    (["weight_decay=-1"], "weight_decay"),
    (["lr=-0.1"], "lr"),
    (["epochs=0"], "epochs"),
    (["epochs=2.5"], "epochs"),
    (["batch_size=0"], "batch_size"),
    (["seed=-1"], "seed"),
    (["seed=4294967296"], "seed"),  # 2**32: torch would seed it exactly like seed=0
    (["threads=1000"], "threads"),
    (["logger=[]"], "logger"),
    (["dropout=0,0.5"], "regbench sweep dropout=0,0.5"),
    (["seed=range(1,3)"], "regbench sweep 'seed=range(1,3)'"),
    (["dropout=choice(0,0.5)"], "regbench sweep"),
    (["dropout=abc"], "dropout"),
    (["lr=fast"], "lr"),
    (["epochs=ten"], "epochs"),
    (["deterministic=maybe"], "deterministic"),
    (["model=resnet"], "model"),
    (["data=imagenet"], "data"),
    (["optimizer=rmsprop"], "optimizer"),
    (["device=tpu"], "device"),
    (["penalize=some"], "penalize"),
    (["foo=1"], "foo"),
    (["+foo=1"], "foo"),
    (["model.depth=3"], "model.depth"),
    (["model.hidden=[0,10]"], "model.hidden"),
    (["dropout"], "dropout"),
    (["name=../../etc"], "name"),
    (["name=/tmp/elsewhere"], "name"),
    (["name=.."], "name"),
    (["name=."], "name"),
    (["hydra.run.dir=/tmp/x"], "hydra.run.dir"),
    (["hydra.job.chdir=true"], "hydra.job.chdir"),
    (["hydra/launcher=joblib"], "hydra/launcher"),
    # Control characters would make the printed command differ from what ran (issue 27, 18).
    (["name='a\rb'"], "the value of name holds the control character '\\r'"),
    (["name=a\nb"], "the value of name holds the control character '\\n'"),
    (["name='a\x1b[31mb'"], "the value of name holds the control character '\\x1b'"),
    (["+tag\x07=1"], "the key tag\\x07 holds the control character"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD_OVERRIDES, ids=lambda v: str(v))
def test_bad_override_is_one_line(cli, tmp_path: Path, overrides: list[str], key: str) -> None:
    result = cli("run", *overrides, "epochs=1" if "epochs" not in key else "seed=0")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and key in lines[0]
    assert not (tmp_path / "outputs").exists()


def test_messages_say_what_is_allowed(cli) -> None:
    assert "must be in [0, 1)" in cli("run", "dropout=1.5").stderr
    message = cli("run", "model=resnet").stderr
    assert "unknown model 'resnet'; available:" in message and "mlp" in message
    assert "adam, adamw, sgd" in cli("run", "optimizer=rmsprop").stderr
    empty = cli("run", "logger=[]").stderr
    assert "logger=[csv] (of csv, tensorboard, mlflow)" in empty and "512" not in empty
    assert "model.hidden=[512,256]" in cli("run", "model.hidden=[]").stderr
    no_metrics = cli("run", "+experiment=l1_vs_l2", "experiment.metrics=[]").stderr
    assert "experiment.metrics=[test_loss]" in no_metrics and "512" not in no_metrics
    assert "seed must be in [0, 4294967295] (torch and numpy keep 32 bits" in (
        cli("run", "seed=4294967296").stderr
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(cli, tmp_path: Path) -> None:
    result = cli("run", "device=cuda", "epochs=1")
    assert result.exit_code == 2
    assert "CUDA is not available" in result.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("damage", ["truncate", "bad_header", "missing_label_bytes"])
def test_corrupt_data_file_is_named(cli, mnist_root: Path, tmp_path: Path, damage: str) -> None:
    raw = mnist_root / "MNIST" / "raw"
    target = raw / (
        "train-labels-idx1-ubyte" if damage == "missing_label_bytes" else "train-images-idx3-ubyte"
    )
    blob = target.read_bytes()
    target.write_bytes(b"\x12\x34" + blob[2:] if damage == "bad_header" else blob[:-7])
    result = cli("run", "epochs=1", f"data.root={mnist_root}")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0]
    assert run_dirs(tmp_path / "outputs") == []


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_labels_out_of_range_name_the_file(cli, mnist_root: Path, tmp_path: Path, split) -> None:
    """A valid IDX file whose labels go up to 249: one line naming it, before any training."""
    import numpy as np

    from tests.conftest import write_idx

    target = mnist_root / "MNIST" / "raw" / f"{split}-labels-idx1-ubyte"
    labels = np.frombuffer(target.read_bytes()[8:], dtype=np.uint8).copy()
    labels[5] = 57
    labels[-1] = 249
    write_idx(target, labels)
    result = cli("run", "epochs=1", f"data.root={mnist_root}")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert str(target) in line and "labels outside 0..9" in line and "57, at index 5" in line
    assert run_dirs(tmp_path / "outputs") == []


def test_data_root_that_is_a_file(cli, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    result = cli("run", "epochs=1", f"data.root={tmp_path / 'afile'}")
    assert result.exit_code == 1 and "is not a folder" in result.stderr


def test_missing_fashion_mnist_without_fallback(cli, tmp_path: Path) -> None:
    result = cli("run", "data=fashion_mnist", "data.download=false", f"data.root={tmp_path}")
    assert result.exit_code == 1
    assert "FashionMNIST files not found" in result.stderr


def test_unwritable_out_dir(cli, mnist_root: Path, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    result = cli("run", "epochs=1", f"data.root={mnist_root}", f"out_dir={tmp_path / 'blocker'}")
    assert result.exit_code == 1
    assert "cannot create the run folder" in result.stderr


def test_resume_of_a_folder_that_is_not_a_run(cli, tmp_path: Path) -> None:
    result = cli("resume", str(tmp_path))
    assert result.exit_code == 2 and "is not a regbench run" in result.stderr
    assert cli("resume", str(tmp_path / "nope")).exit_code == 2


def test_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    proc = run_regbench("run", "dropout=2", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: dropout=2.0 is out of range; dropout must be in [0, 1)"
    ]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = run_regbench("--debug", "run", "dropout=2", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


# ---------------------------------------------------------------------------------------------
# The full matrix, generated from the schema so that every numeric key (present and future) is
# covered: a non-number, and a value just outside each bound.
def _numeric_keys() -> list[tuple[str, list[str], type, dict]]:
    import dataclasses
    import types
    import typing

    from regbench.core import config
    from regbench.studies import study_config, study_names

    def numeric(schema: type) -> list[tuple[str, type, dict]]:
        hints = typing.get_type_hints(schema)
        found = []
        for f in dataclasses.fields(schema):
            base = hints[f.name]
            if typing.get_origin(base) in (typing.Union, types.UnionType):  # Optional[x]
                base = next(a for a in typing.get_args(base) if a is not type(None))
            if base in (int, float):
                found.append((f.name, base, dict(f.metadata)))
        return found

    keys = [(name, [], base, limits) for name, base, limits in numeric(config.Settings)]
    for model in study_names():
        schema = study_config(model)
        keys += [(f"model.{n}", [f"model={model}"], b, m) for n, b, m in numeric(schema)]
    return keys


def _bad_values() -> list[tuple[list[str], str]]:
    cases = []
    for key, context, base, limits in _numeric_keys():
        cases.append(([*context, f"{key}=abc"], key))
        cases.append(([*context, f"{key}=[1,2]"], key))
        lo, hi = limits.get("lo"), limits.get("hi")
        step = 1 if base is int else 0.5
        if lo is not None:
            cases.append(([*context, f"{key}={lo - step}"], key))
        if hi is not None:
            cases.append(([*context, f"{key}={hi if limits.get('hi_open') else hi + step}"], key))
        if base is int:
            cases.append(([*context, f"{key}=1.5"], key))
    return cases


@pytest.mark.parametrize(("overrides", "key"), _bad_values(), ids=lambda v: str(v))
def test_every_numeric_key_rejects_bad_values(
    cli, tmp_path: Path, overrides: list[str], key: str
) -> None:
    result = cli("run", *overrides)
    assert result.exit_code == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error:") and key in line
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("command", ["rerun", "resume", "compare", "plot", "report"])
@pytest.mark.parametrize("target", ["missing", "not_a_run"])
def test_commands_on_a_folder_that_is_not_a_run(cli, tmp_path: Path, command, target) -> None:
    folder = tmp_path / target
    if target == "not_a_run":
        folder.mkdir()
        (folder / "notes.txt").write_text("hello")
    result = cli(command, str(folder))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    problems = ("does not exist", "is not a regbench run", "no regbench runs")
    assert str(folder) in line and any(problem in line for problem in problems)
