"""What the two MSE studies (toy regression, sine RNN) share: one network trained on (x, y)
tensors with MSE, evaluated on the train and test points in eval mode, with MC dropout. Not a
registered study itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

from regbench.core.metrics import MC_LOSS, MC_STD, Metric, loss, on_validation
from regbench.regularization.mc_dropout import mc_dropout, mc_moments, regression_metrics
from regbench.studies.base import Study

if TYPE_CHECKING:
    from regbench.studies.base import Forward


TEST_MSE = loss("test_loss", "MSE on the test points, eval mode", "test", "test MSE")


class MSEStudy(Study):
    """Metrics: ``train_loss`` (training-mode MSE, dropout on, mean over the steps since the last
    row), ``train_eval_loss`` (MSE on the training points in eval mode) and ``test_loss`` (test
    MSE, eval mode); with ``mc_samples`` also the MC-dropout metrics. Subclasses build their
    network and call ``train_one_network``."""

    metrics: ClassVar[tuple[Metric, ...]] = (
        loss("train_eval_loss", "MSE on the training points, eval mode", "train_eval"),
        on_validation(TEST_MSE),
        TEST_MSE,
        MC_LOSS,
        MC_STD,
    )

    def batch_loss(self, forward: Forward, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """MSE over each member's batch: x [..., B, ...], y [..., B, 1] -> [...]."""
        prediction, target = forward(batch["x"]), batch["y"]
        members = self.member_dims(batch)
        if not members:
            # A solo step: torch's own mean reduction, the op solo runs have always used, so
            # their metrics stay bitwise the same.
            return F.mse_loss(prediction, target)
        per_value = F.mse_loss(prediction, target, reduction="none")
        return per_value.flatten(members).mean(dim=-1)

    def evaluate(self) -> dict[str, float]:
        train, val, test = self.data.train, self.data.val, self.data.test
        metrics = {"train_eval_loss": F.mse_loss(self.net(train["x"]), train["y"]).item()}
        if val is not None:
            metrics["val_loss"] = F.mse_loss(self.net(val["x"]), val["y"]).item()
        metrics["test_loss"] = F.mse_loss(self.net(test["x"]), test["y"]).item()
        if self.settings.mc_samples:
            mean, std = self.mc_predict(test["x"])
            metrics.update(regression_metrics(mean, std, test["y"]))
        return metrics

    def mc_predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MC dropout: mean and std of ``mc_samples`` predictions at ``x`` with dropout on."""
        self.train_mode(False)
        with torch.no_grad(), mc_dropout([self.net], self.device):
            return mc_moments(lambda: self.net(x), self.settings.mc_samples)
