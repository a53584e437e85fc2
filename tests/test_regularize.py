"""The maths of the penalties, the optimizers' weight decay, and dropout's scaling."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from regbench.compose.hydra import load_settings
from regbench.regularization.penalties import (
    NO_PENALTY,
    PenalizedObjective,
    Penalty,
    make_optimizer,
    penalty_terms,
    split_parameters,
)


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_penalty_values_on_known_weights() -> None:
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    v = torch.tensor([-3.0])
    l1, l2 = penalty_terms([w, v], l1=0.1, l2=0.01)
    assert l1.item() == pytest.approx(0.1 * (1 + 2 + 0.5 + 0 + 3))
    assert l2.item() == pytest.approx(0.01 * (1 + 4 + 0.25 + 0 + 9))


def test_zero_strength_gives_exact_zero() -> None:
    l1, l2 = penalty_terms([torch.ones(3, 3)], l1=0.0, l2=0.0)
    assert l1.item() == 0.0 and l2.item() == 0.0


def test_biases_are_excluded_by_default() -> None:
    net = small_net()
    penalized, free = split_parameters([net], "weights")
    assert [p.dim() for p in penalized] == [2, 2]
    assert [p.dim() for p in free] == [1, 1]
    everything, none = split_parameters([net], "all")
    assert len(everything) == 4 and none == []


def test_l1_gradient_is_sign_of_weights() -> None:
    w = nn.Parameter(torch.tensor([[0.5, -0.25]]))
    l1, _ = penalty_terms([w], l1=0.2, l2=0.0)
    l1.backward()
    assert torch.equal(w.grad, torch.tensor([[0.2, -0.2]]))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_weight_decay_equals_twice_l2_in_the_update(optimizer: str) -> None:
    """Coupled weight decay adds wd*w to the gradient; l2*sum(w^2) adds 2*l2*w: same step."""
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    base = load_settings([f"optimizer={optimizer}", "lr=0.1"])
    nets = []
    for penalty in (Penalty(l2=0.05), Penalty(weight_decay=0.1)):
        net = small_net()
        optimizer_ = make_optimizer([net], base, penalty)
        objective = PenalizedObjective([net], optimizer_, penalty)
        for _ in range(3):
            objective.step(nn.functional.mse_loss(net(x), y))
        nets.append(net)
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_adamw_decay_differs_from_adam_l2() -> None:
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    finals = []
    for name in ("adam", "adamw"):
        net = small_net()
        penalty = Penalty(weight_decay=0.5)
        objective = PenalizedObjective(
            [net],
            make_optimizer([net], load_settings([f"optimizer={name}", "lr=0.1"]), penalty),
            penalty,
        )
        for _ in range(3):
            objective.step(nn.functional.mse_loss(net(x), y))
        finals.append(copy.deepcopy(net[0].weight.detach()))
    assert not torch.allclose(finals[0], finals[1])


def test_weight_decay_skips_biases() -> None:
    net = small_net()
    optimizer = make_optimizer(
        [net], load_settings(["weight_decay=0.3"]), Penalty(weight_decay=0.3)
    )
    decays = {
        tuple(p.shape): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]
    }
    assert decays[(4, 3)] == 0.3 and decays[(4,)] == 0.0


def test_logged_terms_add_up() -> None:
    net = small_net()
    penalty = Penalty(l1=1e-2, l2=1e-2)
    objective = PenalizedObjective(
        [net], make_optimizer([net], load_settings([]), penalty), penalty
    )
    terms = objective.step(net(torch.randn(4, 3)).pow(2).mean())
    total = terms["train_loss"] + terms["l1_penalty"] + terms["l2_penalty"]
    assert torch.allclose(terms["total_loss"], total)


def test_dropout_is_inverted_and_off_in_eval() -> None:
    """torch's dropout scales kept units by 1/(1-p): the expected activation is unchanged."""
    torch.manual_seed(0)
    dropout = nn.Dropout(0.5)
    x = torch.ones(200_000)
    out = dropout(x)
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)
    dropout.eval()
    assert torch.equal(dropout(x), x)


@pytest.mark.parametrize(
    ("overrides", "beta1"),
    [
        (["optimizer=adam"], 0.9),  # torch's default for every model but the GAN
        (["optimizer=adamw", "adam_beta1=0.7"], 0.7),
        (["model=gan"], 0.5),  # the GAN's own default (configs/model/gan.yaml)
    ],
)
def test_adam_beta1_reaches_the_optimizer(overrides: list[str], beta1: float) -> None:
    settings = load_settings(overrides)
    optimizer = make_optimizer([small_net()], settings, Penalty())
    assert all(g["betas"] == (beta1, 0.999) for g in optimizer.param_groups)


def test_adam_beta1_changes_the_updates() -> None:
    """Same data, same start: a different beta1 gives different weights after a few steps."""
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    finals = []
    for beta1 in (0.9, 0.5):
        net = small_net()
        settings = load_settings([f"adam_beta1={beta1}", "lr=0.1"])
        objective = PenalizedObjective(
            [net], make_optimizer([net], settings, NO_PENALTY), NO_PENALTY
        )
        for _ in range(3):
            objective.step(nn.functional.mse_loss(net(x), y))
        finals.append(net[0].weight.detach().clone())
    assert not torch.allclose(finals[0], finals[1])


def test_adam_beta1_must_be_below_one() -> None:
    from regbench.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"adam_beta1=1.0 is out of range; .* in \[0, 1\)"):
        load_settings(["adam_beta1=1.0"])
