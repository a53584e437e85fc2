"""Unit tests of the studies' parts: the FID maths and classifier cache, the generated data, the
RNN's dropout placements, the GAN's regularize switch, and the config checks between them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from regbench.compose.hydra import load_settings
from regbench.data import load_data
from regbench.studies import gan_fid
from regbench.studies.rnn import SineRNN
from tests.conftest import make_digits


# ----------------------------------------------------------------------------- FID
def random_moments(dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    return torch.tensor(rng.normal(size=dim)), torch.tensor(a @ a.T / dim + 0.1 * np.eye(dim))


def test_frechet_distance_matches_the_sqrtm_formula() -> None:
    from scipy.linalg import sqrtm

    (mu1, s1), (mu2, s2) = random_moments(12, 1), random_moments(12, 2)
    root = sqrtm(s1.numpy() @ s2.numpy()).real
    expected = ((mu1 - mu2) ** 2).sum().item() + np.trace(s1.numpy() + s2.numpy() - 2 * root)
    assert gan_fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_equal_and_shifted_moments() -> None:
    mu, cov = random_moments(8, 3)
    assert gan_fid.frechet_distance(mu, cov, mu, cov) == pytest.approx(0, abs=1e-9)
    shift = torch.full_like(mu, 0.5)
    assert gan_fid.frechet_distance(mu, cov, mu + shift, cov) == pytest.approx(8 * 0.25)
    singular = torch.zeros_like(cov)  # e.g. a collapsed generator: every sample the same
    assert gan_fid.frechet_distance(mu, cov, mu, singular) == pytest.approx(cov.trace().item())


def fake_split(n: int, seed: int) -> dict[str, torch.Tensor]:
    images, labels = make_digits(n, seed)
    return {"x": torch.from_numpy(images), "y": torch.from_numpy(labels).long()}


def test_classifier_is_deterministic_cached_and_leaves_the_rng_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(gan_fid.CACHE_ENV, str(tmp_path / "cache"))
    train, test = fake_split(300, 1), fake_split(100, 2)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = gan_fid.build_scorer(train, test, "fake", torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), state)  # the run's random stream is untouched
    printed = capsys.readouterr().err
    assert "FID classifier trained on 300 fake images: test accuracy" in printed
    assert first.accuracy > 0.9  # the fake digits are easy
    (cached,) = (tmp_path / "cache").glob("fid_classifier-fake-*.pt")

    second = gan_fid.build_scorer(train, test, "fake", torch.device("cpu"))
    assert capsys.readouterr().err == ""  # loaded, not retrained: nothing printed
    assert second.accuracy == first.accuracy
    for a, b in zip(
        first.classifier.state_dict().values(), second.classifier.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    retrained = gan_fid.train_classifier(train)  # same recipe, no cache: same weights
    for a, b in zip(
        first.classifier.state_dict().values(), retrained.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    # Other training data get their own file.
    gan_fid.build_scorer(fake_split(300, 5), test, "fake", torch.device("cpu"))
    assert len(list(cached.parent.glob("*.pt"))) == 2


def test_real_images_score_far_better_than_noise(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(gan_fid.CACHE_ENV, str(tmp_path))
    train, test = fake_split(300, 1), fake_split(200, 2)
    scorer = gan_fid.build_scorer(train, test, "fake", torch.device("cpu"))
    real = gan_fid.to_unit_range(fake_split(200, 3)["x"])
    noise = torch.rand(200, 784, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert scorer.fid(real) < 0.2 * scorer.fid(noise)


# ----------------------------------------------------------------------------- data
def regression_data(seed: int, *overrides: str):
    settings = load_settings(["model=regression", *overrides])
    return load_data(settings.data, seed)


def test_toy_regression_data_follows_the_seed_and_the_config() -> None:
    a, b, c = regression_data(0), regression_data(0), regression_data(1)
    assert torch.equal(a.train["y"], b.train["y"]) and torch.equal(a.test["y"], b.test["y"])
    assert not torch.equal(a.train["y"], c.train["y"])
    assert not torch.equal(a.train["y"], a.test["y"])  # test noise is drawn separately
    assert torch.equal(a.train["x"][:, 0], torch.linspace(-1, 1, 20))
    assert torch.equal(a.test["x"], a.train["x"])  # the same x grid: "drawn the same way"
    noise = a.train["y"] - a.train["x"]
    assert 0.1 < noise.std().item() < 0.6  # 0.3 * N(0, 1) over 20 points
    sized = regression_data(0, "data.n_train=7", "data.n_test=3", "data.noise=0")
    assert sized.n_train == 7 and sized.n_test == 3
    assert torch.equal(sized.train["y"], sized.train["x"])


def test_sine_windows_predict_the_next_value_and_hold_out_the_tail() -> None:
    settings = load_settings(
        ["model=rnn", "data.n_points=100", "data.test_points=30", "data.val_points=20"]
    )
    data = load_data(settings.data, seed=4)
    series, seq_len = data.extra["series"], settings.data.seq_len
    assert data.n_train == 100 - 30 - 20 - seq_len and data.n_val == 20 and data.n_test == 30
    assert data.train["x"].shape == (data.n_train, seq_len, 1)
    splits = ((data.train, "train_targets"), (data.val, "val_targets"), (data.test, "test_targets"))
    for split, targets in splits:
        for i, t in enumerate(data.extra[targets].tolist()):
            assert split["y"][i, 0] == series[t]
            assert torch.equal(split["x"][i, :, 0], series[t - seq_len : t])
    # Train, then the validation stretch, then the test tail: disjoint, in time order.
    assert data.extra["train_targets"].max() == 49
    assert data.extra["val_targets"].min() == 50 and data.extra["val_targets"].max() == 69
    assert data.extra["test_targets"].min() == 70
    again = load_data(settings.data, seed=4)
    assert torch.equal(again.extra["series"], series)
    assert not torch.equal(load_data(settings.data, seed=5).extra["series"], series)


def test_tiny_sine_preset_is_five_points_one_step() -> None:
    settings = load_settings(["model=rnn", "data=sine_tiny"])
    data = load_data(settings.data, seed=0)
    assert data.train["x"].shape == (1, 5, 1) and data.test["x"].shape == (1, 5, 1)


# ----------------------------------------------------------------------------- RNN placements
class Recorder(nn.Module):
    """A dropout stand-in that records the shapes it is applied to (and passes them on)."""

    def __init__(self, log: list[tuple[int, ...]]) -> None:
        super().__init__()
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(tuple(x.shape))
        return x


def windows(batch: int = 4, steps: int = 9) -> torch.Tensor:
    return torch.randn(batch, steps, 1, generator=torch.Generator().manual_seed(0))


def test_variational_masks_are_drawn_once_per_sequence() -> None:
    log: list[tuple[int, ...]] = []
    net = SineRNN(6, 2, "variational", lambda: Recorder(log))
    net(windows(batch=4, steps=9))
    # Per layer one input mask and one hidden mask, shaped per sequence (not per time step).
    assert log == [(4, 1, 1), (4, 6), (4, 1, 6), (4, 6)]


def test_variational_recurrence_equals_nn_rnn_without_dropout() -> None:
    torch.manual_seed(0)
    net = SineRNN(6, 2, "variational", lambda: nn.Dropout(0.5)).eval()
    reference = nn.RNN(1, 6, num_layers=2, batch_first=True)
    copy_layers(net, reference)
    x = windows()
    out, _ = reference(x)
    assert torch.allclose(net(x), net.head(out[:, -1]), atol=1e-6)


def test_variational_mask_is_the_same_at_every_step() -> None:
    """With p=0.5 some sequences lose their whole (1-D) input: their output is then exactly
    that of an all-zero input sequence."""
    torch.manual_seed(1)
    net = SineRNN(6, 1, "variational", lambda: nn.Dropout(0.5))
    net.hidden_masks[0] = nn.Identity()  # isolate the input mask
    x = windows(batch=64)
    out = net.train()(x)
    zero_input = net.eval()(torch.zeros_like(x))
    dropped = torch.isclose(out, zero_input, atol=1e-6)[:, 0]
    assert 10 < int(dropped.sum()) < 54  # about half of the sequences, whole


def test_between_layers_equals_nn_rnn_dropout_in_eval_and_differs_in_training() -> None:
    torch.manual_seed(0)
    net = SineRNN(6, 3, "between_layers", lambda: nn.Dropout(0.5))
    reference = nn.RNN(1, 6, num_layers=3, batch_first=True, dropout=0.5)
    copy_layers(net, reference)
    x = windows()
    out, _ = reference.eval()(x)
    assert torch.allclose(net.eval()(x), net.head(out[:, -1]), atol=1e-6)
    assert not torch.allclose(net.train()(x), net.eval()(x))
    assert isinstance(net.output_dropout, nn.Identity)


def test_output_placement_drops_only_the_last_output() -> None:
    net = SineRNN(6, 2, "output", lambda: nn.Dropout(0.5))
    dropouts = [name for name, m in net.named_modules() if isinstance(m, nn.Dropout)]
    assert dropouts == ["output_dropout"]


def copy_layers(net: SineRNN, reference: nn.RNN) -> None:
    with torch.no_grad():
        for i, layer in enumerate(net.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reference, f"{name}_l{i}").copy_(getattr(layer, f"{name}_l0"))


# ----------------------------------------------------------------------------- GAN switch
@pytest.mark.parametrize(
    ("regularize", "on_d", "on_g"), [("d", True, False), ("g", False, True), ("both", True, True)]
)
def test_gan_regularize_picks_the_networks(
    regularize: str, on_d: bool, on_g: bool, tmp_path: Path, monkeypatch
) -> None:
    from regbench.regularization.penalties import NO_PENALTY
    from regbench.studies.gan import GANStudy

    monkeypatch.setenv(gan_fid.CACHE_ENV, str(tmp_path))
    settings = load_settings(
        [
            "model=gan",
            f"model.regularize={regularize}",
            "model.d_hidden=[16,8]",
            "model.g_hidden=[8,16]",
            "model.fid_samples=32",
            "dropout=0.3",
            "l2=0.01",
            "weight_decay=0.001",
        ]
    )
    data = load_data_small()
    study = GANStudy(settings, data, torch.device("cpu"))
    for name, on in (("discriminator", on_d), ("generator", on_g)):
        net = study.networks[name]
        n_dropout = sum(1 for m in net.modules() if "Dropout" in type(m).__name__)
        assert n_dropout == (2 if on else 0), name
        penalty = study.objectives[name].penalty
        assert (penalty != NO_PENALTY) == on and (penalty.l2 == 0.01) == on
        decays = {g["weight_decay"] for g in study.optimizers[name].param_groups}
        assert decays == ({0.001, 0.0} if on else {0.0})
    terms = study.train_step(torch.arange(16))
    assert terms["l2_penalty"].item() > 0 and not terms["d_loss"].requires_grad
    assert set(terms) == {"d_loss", "g_loss", "d_real", "d_fake", "l1_penalty", "l2_penalty"}


def load_data_small():
    from regbench.data import DataBundle

    train, test = fake_split(64, 1), fake_split(40, 2)
    return DataBundle("fake", "fake digits", train, test)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=regression", "data=mnist"], "model=regression cannot train on data=mnist"),
        (["model=mlp", "data=sine"], "model=mlp cannot train on data=sine"),
        (["model=gan", "data=toy_regression"], "use data=mnist or data=fashion_mnist"),
        (["model=rnn", "model.rnn_dropout=between_layers"], "needs model.num_layers >= 2"),
        (["model=rnn", "model.rnn_dropout=sideways"], "output, variational, between_layers"),
        (["model=gan", "model.regularize=x"], "model.regularize must be one of d, g, both"),
        (["model=rnn", "data.n_points=30"], "leaves no training window"),
        (["model=rnn", "data.period=0"], "data.period=0.0 must be > 0"),
        (["model=regression", "data.n_train=0"], "data.n_train"),
        (["model=regression", "data.noise=-1"], "data.noise"),
        (["model=regression", "model.regularize=d"], "model.regularize"),
    ],
)
def test_bad_study_config_is_one_line(cli, tmp_path: Path, overrides, message: str) -> None:
    result = cli("run", *overrides)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "outputs").exists()
