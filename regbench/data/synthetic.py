"""Generated data for the regression and RNN studies, drawn from the run's seed.

Both sources use their own ``torch.Generator`` seeded with the run's seed, so the same seed gives
the same data whatever else consumed the global RNG, and a different seed gives different noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from regbench.core.config import ConfigError, SourceConfig, key
from regbench.data import DataBundle, register_source

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ToyRegressionConfig(SourceConfig):
    """y = x + noise * N(0, 1) at evenly spaced x in [-1, 1]; train and test drawn alike."""

    name: Literal["toy_regression"]
    n_train: int = key("training points, evenly spaced in [-1, 1]", lo=1)
    n_test: int = key("test points, drawn like the training points", lo=1)
    n_val: int = key(
        "validation points, drawn like the training points (after the test points, so train "
        "and test stay as they were)",
        lo=0,
        legacy=0,
    )
    noise: float = key("standard deviation of the Gaussian noise on y", lo=0)

    validation_key: ClassVar[str] = "data.n_val"

    def holds_out(self) -> bool | None:
        return self.n_val > 0


@dataclass(frozen=True)
class SineConfig(SourceConfig):
    """A noisy sine series cut into ``seq_len``-step windows that predict the next value; the
    last ``test_points`` values are the held-out targets."""

    name: Literal["sine"]
    n_points: int = key("length of the series (must exceed seq_len + test_points)", lo=2)
    seq_len: int = key("steps in each input window", lo=1)
    test_points: int = key("the held-out tail: the last values, predicted as targets", lo=1)
    val_points: int = key(
        "the validation stretch: the values just before the test tail, predicted as targets",
        lo=0,
        legacy=0,
    )
    period: float = key("steps per sine cycle (> 0)", lo=0)
    noise: float = key("standard deviation of the Gaussian noise on the series", lo=0)

    validation_key: ClassVar[str] = "data.val_points"

    def holds_out(self) -> bool | None:
        return self.val_points > 0

    def __post_init__(self) -> None:
        if self.period <= 0:
            raise ConfigError(f"data.period={self.period} must be > 0 (steps per sine cycle)")
        held = self.test_points + self.val_points
        if self.n_points - held <= self.seq_len:
            raise ConfigError(
                f"data.n_points={self.n_points} leaves no training window: it must exceed "
                f"data.seq_len + data.test_points + data.val_points = {self.seq_len + held}"
            )


@register_source("toy_regression", config=ToyRegressionConfig)
def load_toy_regression(config: ToyRegressionConfig, seed: int) -> DataBundle:
    """The classic overfitting demo: x evenly spaced on [-1, 1], y = x + noise * N(0, 1).

    The test set is drawn the same way (its own evenly spaced x, fresh noise), after the
    training noise, from the same seeded generator.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    train = _noisy_line(config.n_train, config.noise, generator)
    test = _noisy_line(config.n_test, config.noise, generator)
    source = f"y = x + {config.noise:g}*N(0,1), x evenly spaced on [-1, 1], seed {seed}"
    if not config.n_val:
        return DataBundle("toy_regression", source, train, test)
    # Drawn last, so that the training and test points are those of a run without them.
    val = _noisy_line(config.n_val, config.noise, generator)
    how = f"{config.n_val} points of their own, drawn like the training points"
    return DataBundle("toy_regression", source, train, test, val=val, split=how)


def _noisy_line(n: int, noise: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    import torch

    x = torch.linspace(-1.0, 1.0, n).unsqueeze(1)
    y = x + noise * torch.randn(n, 1, generator=generator)
    return {"x": x, "y": y}


@register_source("sine", config=SineConfig)
def load_sine(config: SineConfig, seed: int) -> DataBundle:
    """sin(2 pi t / period) + noise * N(0, 1) for t = 0..n_points-1, cut into windows.

    Window i holds values i .. i+seq_len-1 (shape [seq_len, 1]) and predicts value i+seq_len.
    Windows whose target lies in the last ``test_points`` values form the test set (their inputs
    may reach back into the training part: one-step-ahead forecasting of the held-out tail).
    ``extra`` keeps the whole series and each window's target index for plotting.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(config.n_points, dtype=torch.float32)
    clean = torch.sin(2 * math.pi * t / config.period)
    series = clean + config.noise * torch.randn(config.n_points, generator=generator)
    targets = torch.arange(config.seq_len, config.n_points)
    windows = torch.stack([series[i - config.seq_len : i] for i in targets.tolist()])
    x, y = windows.unsqueeze(2), series[targets].unsqueeze(1)
    is_test = targets >= config.n_points - config.test_points
    is_val = ~is_test & (targets >= config.n_points - config.test_points - config.val_points)
    is_train = ~is_test & ~is_val
    source = (
        f"sin(2*pi*t/{config.period:g}) + {config.noise:g}*N(0,1), {config.n_points} points, "
        f"windows of {config.seq_len}, last {config.test_points} held out, seed {seed}"
    )
    val = {"x": x[is_val], "y": y[is_val]} if config.val_points else None
    return DataBundle(
        "sine",
        source,
        {"x": x[is_train], "y": y[is_train]},
        {"x": x[is_test], "y": y[is_test]},
        extra={
            "series": series,
            "clean": clean,
            "train_targets": targets[is_train],
            "val_targets": targets[is_val],
            "test_targets": targets[is_test],
        },
        val=val,
        split=f"the {config.val_points} values before the test tail" if val else "",
    )
