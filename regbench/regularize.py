"""Public import path for plug-in studies: the dropout layer and the penalties
(regbench.regularization)."""

from regbench.regularization.penalties import PenalizedObjective, Penalty, dropout_layer

__all__ = ["PenalizedObjective", "Penalty", "dropout_layer"]
