"""What a metric means, declared once: its direction, the values it can take, its split.

Each study declares the metrics it logs (``Study.metrics``, regbench/studies/) and names its
primary one; the training loop's and weights.csv's metrics are declared here, for every study.
``compare`` (better/worse, ``best``, the selected epoch), intervals (kept inside ``lo``..``hi``),
the search's direction, the figures and the report all read these declarations; nothing guesses
from a name, except for a metric no study declares (:func:`undeclared`, which says so).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Direction = Literal["min", "max", "none"]
# train: the running training-mode value over an epoch's batches (dropout on); train_eval: the
# training data in eval mode; val / test: held-out data; none: not a data split (weights, time).
Split = Literal["train", "train_eval", "val", "test", "none"]


@dataclass(frozen=True)
class Metric:
    name: str
    meaning: str  # one line: what the number is
    direction: Direction = "none"  # min: lower is better; max: higher; none: neither
    lo: float | None = None  # the smallest value it can take (None: unbounded)
    hi: float | None = None  # the largest
    split: Split = "none"
    display: str = ""  # how figures and tables name it (default: the name)
    declared: bool = True  # False: guessed from its name (a study that does not declare it)

    @property
    def has_direction(self) -> bool:
        return self.direction != "none"

    @property
    def label(self) -> str:
        return self.display or self.name

    def improves(self, change: float) -> bool | None:
        """Whether a change of ``change`` (new minus old) is better; None without a direction
        or for a change that is zero or not a number."""
        if not self.has_direction or not change or math.isnan(change):
            return None
        return change > 0 if self.direction == "max" else change < 0

    def best(self, values: Iterable[float]) -> float:
        """The best of ``values`` (the direction must exist)."""
        pick = max if self.direction == "max" else min
        return pick(values)

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        return (self.lo, self.hi)


def loss(name: str, meaning: str, split: Split, display: str = "") -> Metric:
    """A loss: lower is better, never below 0."""
    return Metric(name, meaning, "min", 0.0, None, split, display)


def accuracy(name: str, meaning: str, split: Split, display: str = "") -> Metric:
    """A share of correct answers: higher is better, in [0, 1]."""
    return Metric(name, meaning, "max", 0.0, 1.0, split, display)


# Logged for every study that trains one network through the loop (the GAN logs its own).
LOOP_METRICS = (
    loss(
        "train_loss",
        "the data loss averaged over the epoch's batches, in training mode (dropout on)",
        "train",
        "train loss",
    ),
    Metric("l1_penalty", "l1 * sum|w| at the epoch's last step", "none", 0.0, None, "train"),
    Metric("l2_penalty", "l2 * sum w^2 at the epoch's last step", "none", 0.0, None, "train"),
    loss("total_loss", "train_loss plus the penalties: what the optimizer minimized", "train"),
    Metric(
        "gap",
        "test_loss minus the training loss (train_eval_loss where logged, else train_loss): "
        "how much worse held-out data is fitted; neither sign is 'better'",
        split="test",
        display="generalization gap",
    ),
    Metric("seconds", "wall-clock seconds of the epochs since the last evaluation", lo=0.0),
)
# weights.csv's summaries, merged into compare's rows (regbench/regularization/weights.py).
WEIGHT_METRICS = (
    Metric(
        "weights_near_zero",
        "share of all weights with |w| below weight_threshold",
        lo=0.0,
        hi=1.0,
        display="share of weights near zero",
    ),
    Metric("weights_l1", "sum of |w| over every weight tensor", lo=0.0, display="sum |w|"),
    Metric("weights_l2", "the L2 norm of all weights together", lo=0.0, display="||w||"),
    Metric("weights_max_abs", "the largest |w| of any weight", lo=0.0, display="max |w|"),
    Metric(
        "weights_max_row_norm",
        "the largest norm of any unit's incoming weights (a row of a weight tensor): what "
        "max_norm bounds",
        lo=0.0,
        display="largest row norm",
    ),
)
# MC dropout's metrics, logged with mc_samples > 0 by the studies that support it.
MC_LOSS = loss("mc_test_loss", "test loss of the mean over mc_samples dropout passes", "test")
MC_STD = Metric(
    "mc_std",
    "mean standard deviation of the prediction over the dropout passes",
    "none",
    0.0,
    None,
    "test",
)
COMMON_METRICS = LOOP_METRICS + WEIGHT_METRICS

# The old name rule, for metrics no study declares: higher is better for these, lower otherwise.
_HIGHER_IS_BETTER = re.compile(r"acc|auc|r2|score|precision|recall|f1")


def validation_name(name: str) -> str:
    """The validation counterpart of a test metric: test_loss -> val_loss, fid -> val_fid."""
    return "val_" + name.removeprefix("test_")


def on_validation(metric: Metric) -> Metric:
    """``metric`` (measured on the test set) as measured on the validation split."""
    meaning = metric.meaning.replace("test set", "validation split").replace("test", "validation")
    return dataclasses.replace(
        metric, name=validation_name(metric.name), meaning=meaning, split="val", display=""
    )


def on_training_data(metric: Metric) -> Metric:
    """``metric`` measured on the training set in eval mode (dropout off): train_eval_*."""
    meaning = metric.meaning.replace("test set", "training set").replace("test", "training")
    return dataclasses.replace(
        metric,
        name="train_eval_" + metric.name.removeprefix("test_"),
        meaning=meaning,
        split="train_eval",
        display="",
    )


def selection_problem(metric: Metric, said: str, validation: Sequence[str]) -> str | None:
    """Why ``metric`` cannot select (an epoch, a trial), in words that start with how the user
    ``said`` it (``--select test_loss``); None when it can: a validation metric with a
    direction. A test metric would choose on the data it is then reported on."""
    if metric.split == "test" and metric.has_direction:
        use = said.removesuffix(metric.name) + validation_name(metric.name)
        return (
            f"{said} is a test metric: what it selects would be reported on the data it was "
            f"selected on; use {use}"
        )
    if metric.has_direction and metric.split == "val":
        return None
    why = "has no direction" if not metric.has_direction else f"is a {metric.split} metric"
    return f"{said} {why}; select on a validation metric: {', '.join(validation) or 'none'}"


def undeclared(name: str) -> Metric:
    """A metric its study does not declare: the direction guessed from its name, as before
    declarations existed, and marked as guessed (compare notes it)."""
    direction: Direction = "max" if _HIGHER_IS_BETTER.search(name) else "min"
    split: Split = (
        "val" if name.startswith("val_") else "test" if name.startswith("test_") else "none"
    )
    return Metric(name, "not declared by its study", direction, split=split, declared=False)


def lookup(declared: Mapping[str, Metric], name: str) -> Metric:
    """``name``'s declaration, or the guessed one."""
    return declared.get(name) or undeclared(name)
