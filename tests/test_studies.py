"""The GAN, regression and RNN studies through the CLI as users type it, plus their maths."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from regbench.studies import gan_fid
from tests.conftest import run_dirs, run_regbench

SEEDS = range(5)


def read_rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def only_run(out: Path) -> Path:
    (run,) = run_dirs(out)
    return run


def without_seconds(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


OFFLINE_MNIST = ("data.root=empty", "data.download=false")  # the embedded digits, no network


# ----------------------------------------------------------------------------- must show
def test_gan_command_writes_outputs_and_beats_an_untrained_generator(cli, tmp_path: Path) -> None:
    """`regbench run model=gan epochs=2`, offline on CPU; FID falls well below the untrained
    generator's (the same generator before training: same seed, same data)."""
    result = cli("run", "model=gan", "epochs=2", "device=cpu", *OFFLINE_MNIST)
    assert result.exit_code == 0, result.stderr
    assert "using the 5,000 real MNIST digits" in result.stderr
    run = only_run(tmp_path / "outputs" / "gan")
    rows = read_rows(run)
    assert list(rows[0]) == [
        "epoch", "d_loss", "g_loss", "d_real", "d_fake", "l1_penalty", "l2_penalty", "val_fid",
        "fid", *list(rows[0])[9:],
    ]  # fmt: skip
    # Epoch 0 (eval_at_start): the untrained generator's FID and samples; the players' losses
    # and outputs are means over training steps, none taken yet.
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] and "seconds" in rows[0]
    assert all(rows[0][c] == "nan" for c in ("d_loss", "g_loss", "d_real", "d_fake"))
    for name in ("loss_curve.png", "gan_scores.png", "samples_epoch_002.png", "model.pt"):
        assert (run / name).is_file(), name
    assert (run / "samples_epoch_000.png").is_file()  # every 5 epochs from 0, and the last
    assert not (run / "samples_epoch_001.png").exists()
    info = summary(run)
    assert info["status"] == "completed" and info["data"]["name"] == "mnist_small"
    assert info["final"]["fid"] == float(rows[-1]["fid"])
    # Selected on the validation images' FID, not the test images'.
    assert info["selected"]["metric"] == "val_fid"
    assert info["selected"]["value"] == min(float(r["val_fid"]) for r in rows)
    weights = torch.load(run / "model.pt", weights_only=True)
    assert set(weights) == {"discriminator", "generator"}

    untrained = untrained_gan_fid(["model=gan", "device=cpu", "data=mnist_small"])
    assert float(rows[0]["fid"]) == pytest.approx(untrained, rel=1e-6)  # epoch 0 is that model
    trained = info["final"]["fid"]
    assert trained < 0.6 * untrained, (trained, untrained)


def untrained_gan_fid(overrides: list[str]) -> float:
    """FID of the generator a run with ``overrides`` starts from (built as the runner does)."""
    from regbench.compose.hydra import load_settings
    from regbench.core.seeding import seed_everything
    from regbench.data import load_data
    from regbench.studies.gan import GANStudy

    settings = load_settings(overrides)
    seed_everything(settings.seed)
    data = load_data(settings.data, settings.seed)
    seed_everything(settings.seed)
    study = GANStudy(settings, data, torch.device("cpu"))
    study.train_mode(False)
    with torch.no_grad():
        return study.evaluate()["fid"]


def test_regression_command_writes_outputs(cli, tmp_path: Path) -> None:
    result = cli("run", "model=regression", "dropout=0.5", "device=cpu", "-q")
    assert result.exit_code == 0, result.stderr
    run = only_run(tmp_path / "outputs" / "regression")
    rows = read_rows(run)
    assert [int(r["epoch"]) for r in rows] == list(range(0, 501, 50))  # eval_every=50, from 0
    assert {"train_loss", "train_eval_loss", "test_loss"} <= set(rows[0])
    assert (run / "fit.png").is_file() and (run / "loss_curve.png").is_file()
    info = summary(run)
    assert info["data"] == {
        "name": "toy_regression",
        "source": info["data"]["source"],
        "n_train": 20,
        "n_val": 20,
        "n_test": 20,
        "split": "20 points of their own, drawn like the training points",
        "fallback": None,
    }
    assert info["final"]["test_loss"] < 0.5  # a line through noise of variance 0.09


def test_rnn_command_in_a_subprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's command as a user types it (5 epochs instead of 100, to stay quick)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as one_thread does in-process
    proc = run_regbench("run", "model=rnn", "dropout=0.2", "epochs=5", "device=cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    run = only_run(tmp_path / "outputs" / "rnn")
    assert (run / "predictions.png").is_file() and (run / "loss_curve.png").is_file()
    info = summary(run)
    assert info["status"] == "completed" and info["data"]["name"] == "sine"
    assert info["data"]["n_train"] == 680 and info["data"]["n_test"] == 200
    assert info["data"]["n_val"] == 100  # the stretch between the training and test windows
    assert info["final"]["test_loss"] < 0.1  # the sine's variance is 0.5: it learned a lot


# ----------------------------------------------------------------------------- the finding
def test_regression_dropout_beats_overfitting_over_five_seeds(cli, tmp_path: Path) -> None:
    """The classic demo's finding with its own settings (500 epochs, full batch, Adam 0.01)."""
    finals: dict[str, list[dict]] = {"0": [], "0.5": []}
    for p, runs in finals.items():
        for seed in SEEDS:
            name = f"p{p}-s{seed}"
            result = cli("run", "model=regression", f"dropout={p}", f"seed={seed}", f"name={name}")
            assert result.exit_code == 0, result.stderr
            info = summary(only_run(tmp_path / "outputs" / name))
            assert info["epochs_completed"] == 500
            runs.append(info["final"])
    # Same seed, same metrics (the regression's case of test_same_seed_gives_identical_metrics).
    assert cli("run", "model=regression", "dropout=0.5", "seed=0", "name=again").exit_code == 0
    again = read_rows(only_run(tmp_path / "outputs" / "again"))
    assert without_seconds(again) == without_seconds(
        read_rows(only_run(tmp_path / "outputs" / "p0.5-s0"))
    )
    assert without_seconds(again) != without_seconds(
        read_rows(only_run(tmp_path / "outputs" / "p0.5-s1"))
    )
    mean = lambda runs, key: sum(r[key] for r in runs) / len(runs)  # noqa: E731
    plain, dropout = finals["0"], finals["0.5"]
    assert mean(dropout, "test_loss") < mean(plain, "test_loss")
    # Without regularization the net threads the training points: overfitting.
    assert mean(plain, "train_eval_loss") < 0.25 * mean(plain, "test_loss")


# ----------------------------------------------------------------------------- seeds
SMALL_RUNS = {
    "rnn": [
        "model=rnn",
        "epochs=2",
        "dropout=0.3",
        "data.n_points=160",
        "data.test_points=40",
        "data.val_points=40",
    ],
    "rnn_variational": [
        "model=rnn",
        "model.rnn_dropout=variational",
        "epochs=2",
        "dropout=0.3",
        "data.n_points=160",
        "data.test_points=40",
        "data.val_points=40",
    ],
    "gan": [
        "model=gan",
        "model.d_hidden=[64,32]",
        "model.g_hidden=[32,64]",
        "model.fid_samples=64",
        "model.sample_every=2",
        "epochs=3",
        "l2=1e-4",
        "batch_size=32",
    ],
}


@pytest.mark.parametrize("model", list(SMALL_RUNS))
def test_same_seed_gives_identical_metrics(
    cli, mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    # A fresh cache: the first run trains the GAN's classifier, the second loads it.
    monkeypatch.setenv(gan_fid.CACHE_ENV, str(tmp_path / "cache"))
    data = [f"data.root={mnist_root}"] if model == "gan" else []  # the tiny generated digits
    args = [*SMALL_RUNS[model], *data, "device=cpu", "-q"]

    def metrics(seed: int, name: str) -> tuple[list[dict[str, str]], str]:
        result = cli("run", *args, f"seed={seed}", f"name={name}")
        assert result.exit_code == 0, result.stderr
        return without_seconds(read_rows(only_run(tmp_path / "outputs" / name))), result.stderr

    (first, log1), (second, log2), (other, _) = metrics(3, "a"), metrics(3, "b"), metrics(4, "c")
    assert first == second
    assert first != other
    if model == "gan":
        assert "FID classifier trained" in log1 and "FID classifier" not in log2
        assert len(list((tmp_path / "cache").glob("fid_classifier-mnist-*.pt"))) == 1
        run = only_run(tmp_path / "outputs" / "a")
        samples = sorted(p.name for p in run.glob("samples_epoch_*.png"))
        assert samples == [f"samples_epoch_00{e}.png" for e in (0, 2, 3)]  # 0: untrained
        assert float(first[1]["l2_penalty"]) > 0  # regularize=d: D's penalty is logged


# ----------------------------------------------------------------------------- resume
def test_gan_resume_equals_the_uninterrupted_run(cli, mnist_root: Path, tmp_path: Path) -> None:
    """Two networks, two optimizers, fixed noise and the FID classifier all survive a resume."""
    args = [*SMALL_RUNS["gan"], f"data.root={mnist_root}", "device=cpu", "-q"]
    assert cli("run", *args, "name=full").exit_code == 0
    full = only_run(tmp_path / "outputs" / "full")
    assert cli("run", *args, "epochs=2", "name=cut").exit_code == 0
    cut = only_run(tmp_path / "outputs" / "cut")
    # Turn the 2-epoch run into an interrupted 3-epoch run, as test_run does for the MLP.
    config = (cut / "config.yaml").read_text().replace("epochs: 2", "epochs: 3")
    (cut / "config.yaml").write_text(config)
    info = summary(cut)
    (cut / "summary.json").write_text(json.dumps({**info, "status": "interrupted"}))

    assert cli("resume", str(cut), "-q").exit_code == 0
    assert without_seconds(read_rows(cut)) == without_seconds(read_rows(full))
    assert (cut / "samples_epoch_003.png").is_file()
