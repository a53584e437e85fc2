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
import fnmatch
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from regbench.core.errors import UsageError


class ConfigError(UsageError):
    """A config value of the wrong type, out of range, or an unknown key or name."""


# ----------------------------------------------------------------------------- declarations
# What a key is to the rest of regbench. Every list that used to be kept by hand (the job key's
# exclusions, what a resume may change, what may differ inside a stack, what a comparison groups
# by, what "no regularization" means) is derived from these.
Role = Literal["identity", "rounding", "evaluation", "replicate", "bookkeeping"]
ROLES: dict[str, str] = {
    "identity": "changes what a run computes: in the job key and in a comparison group's identity",
    "rounding": "changes only rounding (same maths): in the job key, not in a group's identity",
    "evaluation": "changes only what is evaluated: in the job key; in a group's identity only "
    "when a compared metric is one it touches",
    "replicate": "the replicate (seed): names the job folder apart; the runs of a group differ "
    "by it",
    "bookkeeping": "where and how results are written or shown: in neither",
}


class _NoValue:
    """No legacy value / no "off" value: distinct from None, which is a value."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Any = _NoValue()


@dataclass(frozen=True)
class Key:
    """One config key's declaration, next to its type in the schema dataclass.

    ``legacy`` is the value a run folder made before the key existed is read with; a key at its
    legacy value stays out of the job key, so existing sweeps keep their folder names when a key
    is added. ``off`` marks a regularizer: the value at which it does nothing (what "no
    regularization" means when compare looks for a baseline)."""

    help: str
    role: Role = "identity"
    lo: float | None = None
    hi: float | None = None
    hi_open: bool = False
    lo_open: bool = False  # lo itself is not allowed (a strength that must be positive)
    why: str = ""  # shown after the range in the error message, where the range is not obvious
    member: bool = False  # may differ between the members of one stack
    resumable: bool = False  # may change between a run and its resume
    off: Any = NO_VALUE
    legacy: Any = NO_VALUE
    shows: tuple[str, ...] = ()  # metrics compare shows by default when this key varies
    touches: tuple[str, ...] = ()  # an evaluation key's metrics (fnmatch patterns)

    @property
    def regularizer(self) -> bool:
        return self.off is not NO_VALUE

    @property
    def has_legacy(self) -> bool:
        return self.legacy is not NO_VALUE

    @property
    def keyed(self) -> bool:
        """Part of the job key (everything that can change a number in the run folder)."""
        return self.role not in ("replicate", "bookkeeping")

    def groups(self, metrics: Sequence[str]) -> bool:
        """Part of a comparison group's identity when ``metrics`` are compared."""
        if self.role == "evaluation":
            return any(fnmatch.fnmatch(m, pattern) for m in metrics for pattern in self.touches)
        return self.role == "identity"


def key(help: str, **declared: Any) -> Any:
    """A dataclass field (no default: every value comes from the configs) declaring a key."""
    return field(metadata={"key": Key(help, **declared)})


def bounds(
    lo: float | None = None, hi: float | None = None, *, hi_open: bool = False, why: str = ""
) -> Any:
    """A key with an allowed range and no other declaration (kept for plug-in studies; the
    built-in keys use :func:`key`, which also says what the key means)."""
    return key("", lo=lo, hi=hi, hi_open=hi_open, why=why)


def declaration(spec: dataclasses.Field) -> Key:
    """The declaration of a schema field (an undeclared field of a plug-in: identity)."""
    return spec.metadata.get("key") or Key("")


def declarations(schema: type, prefix: str = "") -> dict[str, Key]:
    """``prefix + field name`` -> its declaration, for one schema dataclass, in field order."""
    return {prefix + f.name: declaration(f) for f in dataclasses.fields(schema)}


# Shown by default when a penalty varies (weights.csv's summaries, as compare's metrics).
WEIGHT_METRICS = ("weights_near_zero", "weights_l2")
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

    name: str = key("the data source's registered name")

    # The key that sizes the validation split, for messages ("" : the source has none to set).
    validation_key: ClassVar[str] = ""

    def holds_out(self) -> bool | None:
        """Whether this config gives a validation split (None: the source does not say; its
        data tells once loaded)."""
        return None


# ----------------------------------------------------------------------------- experiments
# What each expectation test asks of the groups (analysis/expectations.py computes them).
EXPECTATION_TESTS: dict[str, str] = {
    "higher": "arm's mean is higher than than's (the baseline's by default), the difference shown",
    "lower": "arm's mean is lower than than's, the difference shown",
    "equal": "arm and than are equivalent within margin (TOST shown)",
    "middle_beats_ends": "ordered by along, some group strictly between the two ends beats each "
    "end (by the metric's direction), every one of those differences shown",
    "increasing": "ordered by along, each group's mean is higher than the one before, every "
    "adjacent difference shown",
    "decreasing": "ordered by along, each group's mean is lower than the one before, every "
    "adjacent difference shown",
}
PAIR_TESTS = ("higher", "lower", "equal")


def optional(help: str, **limits: Any) -> Any:
    """An experiment key that may be left out (null when it is): bookkeeping, as the whole
    experiment block is."""
    return key(help, role="bookkeeping", legacy=None, **limits)


@dataclass(frozen=True)
class Expectation:
    """One item of ``experiment.expect``: a part of the claim that a test can show or not."""

    metric: str = key("the metric it is about; one of experiment.metrics", role="bookkeeping")
    test: Literal["higher", "lower", "equal", "middle_beats_ends", "increasing", "decreasing"] = (
        key(
            "what is expected: "
            + "; ".join(f"{name}: {meaning}" for name, meaning in EXPECTATION_TESTS.items()),
            role="bookkeeping",
        )
    )
    arm: str | None = optional(
        "higher/lower/equal: the group, as key=value pairs, e.g. 'dropout=0.5'"
    )
    than: str | None = optional(
        "higher/lower/equal: the group it is held against (null: the comparison's baseline)"
    )
    along: str | None = optional(
        "shape tests: the numeric key that orders the groups (null: the one numeric key that "
        "varies among them)"
    )
    where: str | None = optional(
        "shape tests: only the groups with these key=value pairs, e.g. 'data.train_size=500'"
    )
    margin: float | None = optional(
        "equal: the equivalence margin in metric units (null: experiment.margin)",
        lo=0,
        lo_open=True,
    )

    def __post_init__(self) -> None:
        pair = self.test in PAIR_TESTS
        if pair and self.arm is None:
            raise ConfigError(
                f"experiment.expect: test={self.test} needs arm=, the group it is about, e.g. "
                f"arm: 'dropout=0.5'"
            )
        if not pair and (self.arm is not None or self.than is not None):
            raise ConfigError(
                f"experiment.expect: test={self.test} compares groups ordered by along=; "
                f"arm/than are for higher, lower and equal"
            )
        for name in ("arm", "than", "where"):
            check_assignments(f"experiment.expect {name}", getattr(self, name))

    @property
    def pair(self) -> bool:
        return self.test in PAIR_TESTS


def check_assignments(name: str, spec: str | None) -> None:
    """``spec`` is space-separated key=value pairs ('dropout=0 l2=0'), or None."""
    for item in (spec or "").split():
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"{name}={spec!r}: write key=value pairs, e.g. 'dropout=0 l2=0'")


@dataclass(frozen=True)
class ExperimentConfig:
    """The ``experiment.*`` keys: the question a sweep answers (configs/experiment/<name>.yaml).

    Read only by the comparison at the end of a sweep and by ``regbench compare``; a run never
    reads it, and job folder hashes leave it out (jobs.UNKEYED), so it changes nothing a run
    computes nor where it is stored."""

    name: str = key("the experiment's name (configs/experiment/<name>.yaml)", role="bookkeeping")
    claim: str = key("the classic claim, in words, shown above the verdicts", role="bookkeeping")
    metrics: tuple[str, ...] = key(
        "the metrics compared and given verdicts; the first ranks the groups", role="bookkeeping"
    )
    baseline: str | None = key(
        "the baseline group, e.g. 'dropout=0' (null: the unregularized one)", role="bookkeeping"
    )
    at: Literal["final", "best"] = key(
        "each run's value: at its final evaluation, or at its selected epoch",
        role="bookkeeping",
    )
    margin: float | None = key(
        "an equivalence claim's margin in units of the first metric: TOST against the baseline "
        "(null: a difference claim)",
        role="bookkeeping",
        lo=0,
        why="the equivalence margin is a width, in metric units",
    )
    within: str | None = key(
        "each group against the baseline of its own value of this key (null: one baseline)",
        role="bookkeeping",
    )
    mc_masks: tuple[int, ...] | None = key(
        "after training, evaluate each run's model.pt averaging over each of these numbers of "
        "dropout masks, and compare them as the key mc_masks (0: the weight-scaling rule); "
        "null: no such step (analysis/mask_curve.py)",
        role="bookkeeping",
        legacy=None,
    )
    expect: tuple[Expectation, ...] | None = key(
        "the claim as tests the comparison answers (a list of experiment.expect items, see "
        "below); the report's first line says supported, partly or not shown (null: none)",
        role="bookkeeping",
        legacy=None,
    )

    def __post_init__(self) -> None:
        if self.margin == 0:
            raise ConfigError(
                "experiment.margin=0 can never be met; give the equivalence margin in units of "
                f"{self.metrics[0]} (e.g. 0.01), or null for a difference claim"
            )
        check_assignments("experiment.baseline", self.baseline)
        for expectation in self.expect or ():
            if expectation.metric not in self.metrics:
                raise ConfigError(
                    f"experiment.expect: metric {expectation.metric} is not compared; add it to "
                    f"experiment.metrics ({', '.join(self.metrics)})"
                )
            if expectation.test == "equal" and (expectation.margin or self.margin) is None:
                raise ConfigError(
                    f"experiment.expect: test=equal on {expectation.metric} needs a margin "
                    f"(margin: in metric units, or experiment.margin)"
                )


# ----------------------------------------------------------------------------- early stopping
@dataclass(frozen=True)
class EarlyStopConfig:
    """The ``early_stop.*`` keys: stop a run whose validation metric stopped improving."""

    patience: int | None = key(
        "stop after this many evaluations without an improvement of early_stop.metric "
        "(null: never stop early); counts evaluations, every eval_every epochs (not epoch 0's)",
        off=None,
        lo=1,
    )
    metric: str | None = key(
        "the validation metric watched (null: the study's primary validation metric)"
    )
    min_delta: float = key("an improvement must beat the best value so far by more than this", lo=0)
    restore_best: bool = key(
        "with early stopping, model.pt (and the final row compare reads) holds the selected "
        "epoch's weights, not the last epoch's"
    )

    @property
    def on(self) -> bool:
        return self.patience is not None


NO_EARLY_STOP = {"patience": None, "metric": None, "min_delta": 0.0, "restore_best": True}


# ----------------------------------------------------------------------------- top level
@dataclass(frozen=True)
class Settings:
    """Everything one run needs, validated. Field order is the order shown to users."""

    model: StudyConfig = key("the study (model=mlp|gan|regression|rnn) and its model.* keys")
    data: SourceConfig = key("the data source (data=mnist|...) and its data.* keys")
    seed: int = key(
        "the run's seed: weights, batch order, dropout masks and generated data",
        role="replicate",
        member=True,
        lo=0,
        hi=MAX_SEED,
        why="torch and numpy keep 32 bits of a seed; larger ones repeat smaller ones",
    )
    device: Literal["auto", "cpu", "cuda"] = key(
        "where to train: auto (CUDA when available), cpu or cuda", role="rounding"
    )
    deterministic: bool = key(
        "torch.use_deterministic_algorithms (and cuBLAS's workspace setting on CUDA)",
        role="rounding",
    )
    threads: int | None = key(
        "torch's intra-op threads; null: torch's default (1 is fastest for tiny models)",
        role="rounding",
        resumable=True,
        lo=1,
        hi=MAX_THREADS,
        why="more threads than cores only slow torch down",
    )
    epochs: int = key("passes over the training data", resumable=True, lo=1)
    batch_size: int = key("examples per optimizer step", lo=1)
    lr: float = key("the optimizer's learning rate", member=True, lo=0)
    optimizer: Literal["adam", "adamw", "sgd"] = key("adam | adamw | sgd")
    momentum: float = key("SGD's momentum (sgd only)", lo=0, hi=1, hi_open=True)
    adam_beta1: float = key(
        "Adam/AdamW beta1, the first-moment decay (the GAN uses 0.5)", lo=0, hi=1, hi_open=True
    )
    dropout: float = key(
        "dropout probability p of the study's dropout layers",
        member=True,
        off=0.0,
        lo=0,
        hi=1,
        hi_open=True,
    )
    dropout_impl: Literal["inverted", "vanilla", "torch"] = key(
        "inverted (scale by 1/(1-p) in training) | vanilla (scale by 1-p at test) | torch"
    )
    dropout_schedule: Literal["constant", "ramp"] = key(
        "constant | ramp: p grows linearly from 0 over dropout_ramp_epochs"
    )
    dropout_ramp_epochs: int = key(
        "the ramp's length k: epoch e trains with p * min(1, (e-1)/k)", lo=1
    )
    mc_samples: int = key(
        "MC dropout: stochastic passes at each evaluation (0: off); adds mc_* (and test_ece)",
        role="evaluation",
        touches=("mc_*", "test_ece"),
        lo=0,
    )
    weight_threshold: float = key(
        "weights.csv's near_zero counts weights with |w| below this",
        role="evaluation",
        touches=("weights_near_zero",),
        lo=0,
    )
    l1: float = key(
        "adds l1 * sum|w| to the loss", member=True, off=0.0, shows=WEIGHT_METRICS, lo=0
    )
    l2: float = key(
        "adds l2 * sum w^2 to the loss (it shows in the logged total loss)",
        member=True,
        off=0.0,
        shows=WEIGHT_METRICS,
        lo=0,
    )
    weight_decay: float = key(
        "the optimizer's own decay term (not in the logged loss)",
        member=True,
        off=0.0,
        shows=WEIGHT_METRICS,
        lo=0,
    )
    max_norm: float | None = key(
        "after each step, rescale every unit's incoming weights (a row of a linear layer, a "
        "conv filter, a row of an RNN's weights; never biases or BatchNorm) to norm <= this "
        "(null: off)",
        member=True,
        off=None,
        legacy=None,
        shows=("weights_max_row_norm",),
        lo=0,
        lo_open=True,
        why="a norm bound c > 0; null turns the constraint off",
    )
    penalize: Literal["weights", "all"] = key(
        "weights (biases excluded) | all: the parameters l1, l2 and weight_decay touch"
    )
    eval_every: int = key(
        "evaluate (a metrics row and a checkpoint) every N epochs, and at the last",
        resumable=True,
        lo=1,
    )
    eval_at_start: bool = key(
        "also evaluate the untrained model, before the first step: a metrics row (and "
        "weights.csv rows) at epoch 0, so every curve starts at the start. It holds every "
        "held-out and eval-mode metric (test, validation, train_eval_*, the GAN's FID); the "
        "training-mode terms (train_loss, the penalties, total_loss; the GAN's d_loss, g_loss, "
        "d_real, d_fake) are NaN there: they are means over an epoch's steps, and none was "
        "taken, while an eval-mode value in their column would fake a jump at epoch 1 "
        "(train_eval_loss is the untrained model's training loss, under its own name). Epoch 0 "
        "is no training epoch: eval_every still evaluates at k, 2k, ...; early_stop.patience "
        "does not count it, though it can be selected (best on validation); it leaves the RNGs "
        "as they were, so the trained numbers do not change",
        legacy=False,
    )
    early_stop: EarlyStopConfig = key(
        "early stopping on a validation metric (early_stop.patience, .metric, .min_delta, "
        ".restore_best)",
        legacy=NO_EARLY_STOP,
    )
    diverge_factor: float | None = key(
        "stop as diverged when a loss term exceeds this times its first value (null: off)", lo=1
    )
    out_dir: str = key(
        "where run folders go: <out_dir>/<name>/<stamp>",
        role="bookkeeping",
        member=True,
        resumable=True,
    )
    name: str | None = key(
        "the run folder's name under out_dir (null: the model's name)",
        role="bookkeeping",
        member=True,
        resumable=True,
    )
    logger: tuple[Literal["csv", "tensorboard", "mlflow"], ...] = key(
        "csv (metrics.csv, always written) plus tensorboard and/or mlflow",
        role="bookkeeping",
        resumable=True,
    )
    mlflow_uri: str | None = key(
        "MLflow's tracking URI (null: a local store in <out_dir>/mlruns)",
        role="bookkeeping",
        resumable=True,
    )
    keep_checkpoint: bool = key(
        "keep checkpoint.pt once the run completes (false: drop it; the run can then no "
        "longer be resumed, only rerun)",
        role="bookkeeping",
        resumable=True,
        legacy=True,
    )
    plots: Literal["all", "summary", "none"] = key(
        "a run folder's figures: all | summary (loss_curve.png) | none (tables only)",
        role="bookkeeping",
        resumable=True,
        legacy="all",
    )
    plot_format: tuple[Literal["png", "pdf", "svg"], ...] = key(
        "the figures' file formats: png | pdf | svg, or several, e.g. '[pdf,svg]' (vector)",
        role="bookkeeping",
        resumable=True,
        legacy=("png",),
    )
    plot_dpi: int = key(
        "the figures' resolution in dots per inch (png; text in pdf and svg stays vector)",
        role="bookkeeping",
        resumable=True,
        legacy=110,
        lo=1,
        hi=2400,
    )
    plot_style: str | None = key(
        "a matplotlib style name (e.g. seaborn-v0_8-paper) or a .mplstyle file for every "
        "figure (null: regbench's own look)",
        role="bookkeeping",
        resumable=True,
        legacy=None,
    )
    experiment: ExperimentConfig | None = key(
        "the question a sweep answers, set by +experiment=NAME; never read by a run",
        role="bookkeeping",
        legacy=None,
    )

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

        if self.plot_style is not None:
            problem = style_problem(self.plot_style)
            if problem:
                raise ConfigError(f"plot_style={self.plot_style!r}: {problem}")

    @property
    def run_name(self) -> str:
        return self.name or self.model.name

    def declared(self) -> dict[str, Key]:
        """Every key of these settings (dotted: ``model.hidden``) and its declaration."""
        return settings_declarations(type(self.model), type(self.data))

    def without_legacy(self) -> dict[str, Any]:
        """``to_dict()`` less every key at its legacy value: what the job key hashes, so a key
        added later leaves the folder names of runs that do not use it as they were."""
        config = self.to_dict()
        for dotted, declared in self.declared().items():
            *parents, leaf = dotted.split(".")
            node = config
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            at_legacy = declared.has_legacy and isinstance(node, dict) and leaf in node
            if at_legacy and node[leaf] == _plain(declared.legacy):
                del node[leaf]
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), the form written to ``config.yaml``."""
        return _plain(dataclasses.asdict(self))


def style_problem(style: str) -> str | None:
    """Why ``style`` is no matplotlib style (None: it is one): a name matplotlib knows, or a
    style file."""
    from pathlib import Path

    from matplotlib import style as mpl_style

    if style in mpl_style.available or style == "default" or Path(style).is_file():
        return None
    known = ", ".join(sorted(mpl_style.available)[:4])
    return f"no such matplotlib style nor file; give a name ({known}, ...) or a .mplstyle file"


def settings_declarations(model: type, data: type) -> dict[str, Key]:
    """Every key of a run with the study config ``model`` and the source config ``data``,
    dotted (``model.hidden``, ``data.n_train``, ``experiment.metrics``), in the order shown to
    users."""
    nested = {
        "model": model,
        "data": data,
        "experiment": ExperimentConfig,
        "early_stop": EarlyStopConfig,
    }
    out: dict[str, Key] = {}
    for name, declared in declarations(Settings).items():
        if name in nested:
            if name in ("experiment", "early_stop"):
                out[name] = declared
            out.update(declarations(nested[name], f"{name}."))
        else:
            out[name] = declared
    return out


def top_level(test: Callable[[Key], bool]) -> tuple[str, ...]:
    """The top-level keys of Settings whose declaration passes ``test``, in field order."""
    return tuple(name for name, declared in declarations(Settings).items() if test(declared))


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
        if name in raw:
            value = raw[name]
        elif declaration(spec).has_legacy:  # a run folder made before the key existed
            value = declaration(spec).legacy
        else:
            raise ConfigError(f"missing key '{prefix}{name}'")
        values[name] = _check_value(prefix + name, value, hints[name], _limits(spec))
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
    if dataclasses.is_dataclass(hint):  # a list of structured items (experiment.expect)
        return build_config(hint, value, key + ".")
    if origin is tuple:
        if isinstance(value, str) and typing.get_origin(args[0]) is Literal:
            value = [value]  # one choice of a list of choices: plot_format=pdf
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


def _limits(spec: dataclasses.Field) -> dict[str, Any]:
    declared = declaration(spec)
    return {
        "lo": declared.lo,
        "hi": declared.hi,
        "hi_open": declared.hi_open,
        "lo_open": declared.lo_open,
        "why": declared.why,
    }


def _example_list(element: Any) -> str:
    """A list of the right kind for a message: [csv] for logger, [512,256] for layer sizes."""
    if typing.get_origin(element) is Literal:
        choices = typing.get_args(element)
        return f"[{choices[0]}] (of {', '.join(map(str, choices))})"
    return "[512,256]"


def _check_range(key: str, value: float, limits: Mapping[str, Any]) -> Any:
    lo, hi, hi_open = limits.get("lo"), limits.get("hi"), limits.get("hi_open", False)
    too_low = lo is not None and (value <= lo if limits.get("lo_open") else value < lo)
    too_high = hi is not None and (value >= hi if hi_open else value > hi)
    if too_low or too_high:
        why = f" ({limits['why']})" if limits.get("why") else ""
        raise ConfigError(f"{key}={value} is out of range; {key} must be {_describe(limits)}{why}")
    return value


def _describe(limits: Mapping[str, Any]) -> str:
    lo, hi, hi_open = limits.get("lo"), limits.get("hi"), limits.get("hi_open", False)
    lo_open = limits.get("lo_open", False)
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
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
    """``value`` with every list (at any depth) turned into a tuple and every mapping inside
    one (experiment.expect's items) into a :class:`FrozenMapping`."""
    if isinstance(value, list | tuple):
        return tuple(hashable(v) for v in value)
    if isinstance(value, Mapping):
        return FrozenMapping({k: hashable(v) for k, v in value.items()})
    return value


class FrozenMapping(dict):
    """A dict that hashes (by its items), for the mappings inside a config's lists; never
    changed after it is made."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=repr)))


def with_legacy(flat: Mapping[str, Any], declared: Mapping[str, Key]) -> dict[str, Any]:
    """A flattened config (``flatten``) with every declared key it lacks at its legacy value:
    a run folder made before a key existed reads as it was trained."""
    out = dict(flat)
    for name, declaration in declared.items():
        if not declaration.has_legacy or name in out:
            continue
        if any(k.startswith(name + ".") for k in out):
            continue
        if in_given_block(name, out):  # experiment: null holds no experiment.expect
            continue
        legacy = declaration.legacy
        if isinstance(legacy, Mapping):
            out.update(flatten(legacy, name + "."))
        else:
            out[name] = hashable(legacy)
    return out


def in_given_block(name: str, flat: Mapping[str, Any]) -> bool:
    """Whether a block above the dotted ``name`` is set as a whole in the flattened ``flat``
    (``experiment: null``): then ``name`` is no key that config lacks, it has no such block."""
    parts = name.split(".")
    return any(".".join(parts[:i]) in flat for i in range(1, len(parts)))
