"""The stacked optimizer without torch's private fused Adam kernels (torch._fused_adam_,
torch._fused_adamw_): the public fallback, forced here on the torch the suite runs with.

Stated tolerance: after 200 steps the fallback and the fused kernels agree within
FALLBACK_ATOL + FALLBACK_RTOL * |value| in every parameter and Adam state (on torch 2.14.1, CPU:
largest difference 2.4e-7 on parameters of size about 1). They are not bitwise the same: the
fused kernel rounds its arithmetic in another order. The fallback is bitwise torch.optim.Adam's
(AdamW's) single-tensor step, which solo runs on the CPU take.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from regbench.compose.hydra import load_settings
from regbench.core.jobs import Job
from regbench.core.progress import Reporter
from regbench.stacked.launcher import run_stacked
from regbench.stacked.optimizer import StackedOptimizer, fused_kernel
from regbench.training.runner import execute

FALLBACK_RTOL = 1e-5
FALLBACK_ATOL = 1e-6
STEPS = 200
KERNELS = {"adam": "_fused_adam_", "adamw": "_fused_adamw_"}
LRS, DECAYS = [1e-2, 3e-3, 1e-2], [0.0, 1e-2, 0.5]  # members 0 and 2 share an lr
GROUP = {"betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False, "maximize": False}


def start_and_grads() -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(0)
    start = {
        "weight": torch.randn(3, 64, 32, generator=generator),
        "bias": torch.randn(3, 64, generator=generator),
    }
    grads = [
        {name: torch.randn(t.shape, generator=generator) for name, t in start.items()}
        for _ in range(STEPS)
    ]
    return start, grads


def train(kind: str) -> tuple[dict[str, torch.Tensor], StackedOptimizer]:
    start, grads = start_and_grads()
    params = {name: t.clone() for name, t in start.items()}
    optimizer = StackedOptimizer(kind, GROUP, LRS, DECAYS, params, {"weight"})
    for grad in grads:
        optimizer.update({name: g.clone() for name, g in grad.items()})
    return params, optimizer


def without_fused_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """This torch as one without the private ops."""
    for name in KERNELS.values():
        monkeypatch.delattr(torch, name, raising=False)


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_the_fallback_agrees_with_the_fused_kernels(kind, monkeypatch) -> None:
    if fused_kernel(kind) is None:
        pytest.skip(f"this torch has no torch.{KERNELS[kind]} to compare the fallback with")
    fused_params, fused = train(kind)
    assert fused.fused is not None  # the private op ran
    without_fused_kernels(monkeypatch)
    params, fallback = train(kind)
    assert fallback.fused is None
    for name, value in params.items():
        torch.testing.assert_close(
            value, fused_params[name], rtol=FALLBACK_RTOL, atol=FALLBACK_ATOL
        )
        for k in range(len(LRS)):
            for key, state in fallback.state_of(k, name).items():
                torch.testing.assert_close(
                    state, fused.state_of(k, name)[key], rtol=FALLBACK_RTOL, atol=FALLBACK_ATOL
                )


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_the_fallback_is_torch_optims_single_tensor_step(kind, monkeypatch) -> None:
    without_fused_kernels(monkeypatch)
    params, _ = train(kind)
    start, grads = start_and_grads()
    torch_class = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    for k in range(len(LRS)):
        weight = start["weight"][k].clone().requires_grad_()
        bias = start["bias"][k].clone().requires_grad_()
        groups = [
            {"params": [weight], "weight_decay": DECAYS[k]},
            {"params": [bias], "weight_decay": 0.0},
        ]
        reference = torch_class(groups, lr=LRS[k], foreach=False)
        for grad in grads:
            weight.grad, bias.grad = grad["weight"][k].clone(), grad["bias"][k].clone()
            reference.step()
        assert torch.equal(params["weight"][k], weight.detach())
        assert torch.equal(params["bias"][k], bias.detach())


def test_a_fused_op_that_refuses_its_arguments_falls_back(monkeypatch) -> None:
    """A torch whose private op takes other arguments: the TypeError comes before the op
    changes anything, and the step (and every later one) goes the public way."""
    without_fused_kernels(monkeypatch)
    expected, _ = train("adam")
    calls = []

    def refusing(*args, **kwargs):
        calls.append(1)
        raise TypeError("_fused_adam_() got an unexpected keyword argument 'amsgrad'")

    monkeypatch.setattr(torch, "_fused_adam_", refusing, raising=False)
    params, optimizer = train("adam")
    assert calls == [1] and optimizer.fused is None
    for name, value in params.items():
        assert torch.equal(value, expected[name])


@pytest.mark.slow
def test_a_stacked_sweep_trains_with_the_fallback(tmp_path: Path, monkeypatch) -> None:
    """Stacked members on the fallback match their solo runs as closely as on the fused path
    (tests/test_stacked.py: 1e-5 relative)."""
    members = (("seed=1", "weight_decay=1e-3"), ("seed=2", "lr=0.003"))
    common = ["model=regression", "model.hidden=[16,16]", "epochs=20", "eval_every=10"]

    def settings(out: Path, member: tuple[str, ...]):
        return load_settings([*common, "device=cpu", f"out_dir={out}", *member])

    solo = [execute(settings(tmp_path / "solo", m), list(m), Reporter()) for m in members]
    without_fused_kernels(monkeypatch)
    jobs = [Job(settings(tmp_path / "stacked", m), m) for m in members]
    stacked = run_stacked(jobs, Reporter())
    for alone, member in zip(solo, stacked, strict=True):
        assert member is not None and member.summary.stacked is True
        for row_a, row_b in zip(alone.rows, member.rows, strict=True):
            for key in ("train_loss", "train_eval_loss", "test_loss", "total_loss"):
                x, y = float(row_a[key]), float(row_b[key])
                if row_a["epoch"] == 0 and key in ("train_loss", "total_loss"):  # no step yet
                    assert math.isnan(x) and math.isnan(y), (key, x, y)
                    continue
                assert abs(x - y) <= 1e-5 * max(abs(x), abs(y), 1e-8), (key, x, y)
