"""Early stopping, and the selected epoch every run with validation data records.

A :class:`Selector` watches one validation metric with a direction, row by row: the best value so
far, its epoch, and how many evaluations have passed without an improvement of more than
``min_delta``. The row of epoch 0 (eval_at_start: the untrained model) can be selected, as
``--at best`` selects it (analysis.runs.selected_row): a model that training never made better
on validation data is best untrained, and saying so is the honest answer; but it is no
training evaluation, so it never counts toward the patience. With a patience, it says when to
stop, and keeps a copy of the weights of the best epoch so that model.pt can hold them
(``restore_best``). Its state goes into checkpoint.pt, so a resume goes on counting where the
run stopped counting, and a rerun stops at the same epoch.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regbench.core.config import EarlyStopConfig
    from regbench.core.metrics import Metric


class Selector:
    def __init__(self, metric: Metric, config: EarlyStopConfig) -> None:
        self.metric, self.config = metric, config
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.waited = 0  # evaluations since the last improvement
        self.stopped_epoch: int | None = None
        self.best_state: dict[str, Any] | None = None  # the best epoch's weights (restore_best)

    @property
    def stopped(self) -> bool:
        return self.stopped_epoch is not None

    @property
    def keeps_weights(self) -> bool:
        return self.config.on and self.config.restore_best

    def observe(self, row: dict[str, Any], weights: dict[str, Any] | None = None) -> None:
        """Read one metrics row; ``weights`` (the networks' state dicts) are copied when this
        row is the best so far and they are to be restored."""
        value = row.get(self.metric.name)
        usable = isinstance(value, int | float) and not math.isnan(value)
        if usable and self.improves(float(value)):
            self.best, self.best_epoch, self.waited = float(value), int(row["epoch"]), 0
            if self.keeps_weights and weights is not None:
                self.best_state = copy.deepcopy(weights)
        elif row["epoch"] != 0:
            # The evaluation before training (eval_at_start) may be the best, but it is no
            # training evaluation: patience counts those only.
            self.waited += 1
        patience = self.config.patience
        if patience is not None and self.waited >= patience:
            self.stopped_epoch = int(row["epoch"])

    def improves(self, value: float) -> bool:
        if self.best is None:
            return True
        margin = self.config.min_delta
        if self.metric.direction == "max":
            return value > self.best + margin
        return value < self.best - margin

    def summary(self) -> dict[str, Any] | None:
        """The summary's ``selected``: the epoch and how it was selected (None: no value)."""
        if self.best_epoch is None:
            return None
        return {"epoch": self.best_epoch, "metric": self.metric.name, "value": self.best}

    def early_stop_summary(self, last_epoch: int) -> dict[str, Any] | None:
        """The summary's ``early_stop`` (None without early stopping)."""
        if not self.config.on:
            return None
        restored = self.keeps_weights and self.best_state is not None
        return {
            "stopped": self.stopped,
            "stopped_epoch": self.stopped_epoch if self.stopped else None,
            "last_epoch": last_epoch,
            "patience": self.config.patience,
            "restored": restored,
            "restored_epoch": self.best_epoch if restored else None,
        }

    # ----------------------------------------------------------------------------- checkpoint
    def state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "waited": self.waited,
            "stopped_epoch": self.stopped_epoch,
            "best_state": self.best_state,
        }

    def restore(self, state: dict[str, Any] | None) -> None:
        for name, value in (state or {}).items():
            setattr(self, name, value)
