"""The config schema: typed settings, and the one place where every key's type and range is checked.

Hydra composes ``configs/`` plus the user's overrides into a plain mapping;
``regbench.compose.validate.validate`` turns that mapping into frozen dataclasses with
:func:`build_config` or raises :class:`ConfigError` with a one-line message naming the key and
what is allowed. Nothing downstream re-checks or reads raw config strings.

A leaf module: each study's and data source's config lives in its own module and derives from
:class:`StudyConfig` or :class:`SourceConfig` here, using :func:`bounds` and :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from regbench.core.errors import UsageError


class ConfigError(UsageError):
    """A config value of the wrong type, out of range, or an unknown key or name."""


def bounds(
    lo: float | None = None, hi: float | None = None, *, hi_open: bool = False, why: str = ""
) -> Any:
    """A dataclass field with no default that carries its allowed range (and, where the range
    is not obvious, ``why``: shown after it in the error message)."""
    return field(metadata={"lo": lo, "hi": hi, "hi_open": hi_open, "why": why})


# torch keeps only the low 32 bits of a seed (2**32 seeds the same stream as 0) and numpy takes
# at most 2**32 - 1: a larger seed would silently repeat a smaller one's run.
MAX_SEED = 2**32 - 1
# A fixed bound, not this machine's cpu_count, so that a config.yaml stays valid on every
# machine; no machine regbench runs on has more cores, and past the cores, threads only wait.
MAX_THREADS = 256


# ----------------------------------------------------------------------------- bases
@dataclass(frozen=True)
class StudyConfig:
    """The ``model.*`` keys: every study's config derives from this (in its own module,
    regbench/studies/<name>.py), narrows ``name`` and adds its own fields."""

    name: str

    # The data sources (their registered names) the study trains on; None: any.
    data_sources: ClassVar[tuple[str, ...] | None] = None


@dataclass(frozen=True)
class SourceConfig:
    """The ``data.*`` keys: every data source's config derives from this (in its own module,
    regbench/data/<module>.py)."""

    name: str


# ----------------------------------------------------------------------------- experiments
@dataclass(frozen=True)
class ExperimentConfig:
    """The ``experiment.*`` keys: the question a sweep answers (configs/experiment/<name>.yaml).

    Read only by the comparison at the end of a sweep and by ``regbench compare``; a run never
    reads it, and job folder hashes leave it out (jobs.UNKEYED), so it changes nothing a run
    computes nor where it is stored."""

    name: str
    claim: str  # the classic claim, in words, shown above the verdicts
    metrics: tuple[str, ...]  # compared and given verdicts; the first ranks the groups
    baseline: str | None  # the baseline group, e.g. "dropout=0" (null: the unregularized one)
    at: Literal["final", "best"]  # each run's value: at its final evaluation, or its best
    # An equivalence claim's margin, in units of the first metric: TOST against the baseline
    # instead of "no difference shown" (null: a difference claim).
    margin: float | None = bounds(0, why="the equivalence margin is a width, in metric units")
    # Each group against the baseline of its own value of this key (e.g. optimizer: SGD's l2
    # arm against SGD's, Adam's against Adam's); null: one baseline for all.
    within: str | None

    def __post_init__(self) -> None:
        if self.margin == 0:
            raise ConfigError(
                "experiment.margin=0 can never be met; give the equivalence margin in units of "
                f"{self.metrics[0]} (e.g. 0.01), or null for a difference claim"
            )
        for item in (self.baseline or "").split():
            if "=" not in item or item.startswith("="):
                raise ConfigError(
                    f"experiment.baseline={self.baseline!r}: write key=value pairs, e.g. "
                    "'dropout=0 l2=0'"
                )


# ----------------------------------------------------------------------------- top level
@dataclass(frozen=True)
class Settings:
    """Everything one run needs, validated. Field order is the order shown to users."""

    model: StudyConfig
    data: SourceConfig
    seed: int = bounds(
        0, MAX_SEED, why="torch and numpy keep 32 bits of a seed; larger ones repeat smaller ones"
    )
    device: Literal["auto", "cpu", "cuda"]
    deterministic: bool
    threads: int | None = bounds(1, MAX_THREADS, why="more threads than cores only slow torch down")
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
    plots: Literal["all", "summary", "none"]  # a run folder's figures (RunSession.figures)
    experiment: ExperimentConfig | None  # the question a sweep answers; never read by a run

    def __post_init__(self) -> None:
        # The run folder is <out_dir>/<name>/<stamp>: a name with a separator, "." or ".."
        # would put runs outside out_dir, or straight into it.
        if self.name is not None and (
            self.name in (".", "..") or any(c in self.name for c in "/\\\0")
        ):
            raise ConfigError(
                f"name={self.name!r} is not allowed; name must be one folder name (no / or \\, "
                f"not . or ..): runs go to out_dir/name/; choose where with out_dir=..."
            )

    @property
    def run_name(self) -> str:
        return self.name or self.model.name

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), the form written to ``config.yaml``."""
        return _plain(dataclasses.asdict(self))


# ----------------------------------------------------------------------------- checking
def build_config(
    schema: type, raw: Any, prefix: str, prebuilt: dict[str, Any] | None = None
) -> Any:
    """``schema`` (a dataclass) from the mapping ``raw``, every field checked against its type
    hint and ``bounds``; ``prefix`` (e.g. ``model.``) names the keys in messages; ``prebuilt``
    values are taken as they are (the already built ``model`` and ``data`` of Settings)."""
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
            raise ConfigError(
                f"{key}={value!r} must be a non-empty list, e.g. {key}={_example_list(args[0])}"
            )
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


def _example_list(element: Any) -> str:
    """A list of the right kind for a message: [csv] for logger, [512,256] for layer sizes."""
    if typing.get_origin(element) is Literal:
        choices = typing.get_args(element)
        return f"[{choices[0]}] (of {', '.join(map(str, choices))})"
    return "[512,256]"


def _check_range(key: str, value: float, limits: Mapping[str, Any]) -> Any:
    lo, hi, hi_open = limits.get("lo"), limits.get("hi"), limits.get("hi_open", False)
    too_low = lo is not None and value < lo
    too_high = hi is not None and (value >= hi if hi_open else value > hi)
    if too_low or too_high:
        why = f" ({limits['why']})" if limits.get("why") else ""
        raise ConfigError(f"{key}={value} is out of range; {key} must be {_describe(limits)}{why}")
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


# ----------------------------------------------------------------------------- flat keys
def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> one level with dotted keys; lists become tuples so values hash."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = hashable(value)
    return flat


def hashable(value: Any) -> Any:
    """``value`` with every list (at any depth) turned into a tuple."""
    return tuple(hashable(v) for v in value) if isinstance(value, list | tuple) else value
