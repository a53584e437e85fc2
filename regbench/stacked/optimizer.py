"""torch's Adam, AdamW and SGD for a stack of K members (regbench/stacked/launcher.py): each
parameter is one ``[K, ...]`` tensor, member k at index k, and each member has its own lr and
weight_decay."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from regbench.core.errors import NotStackable

# Optimizer options whose maths the stacked optimizer does not implement, at their plain values.
PLAIN_OPTIMIZER = {"amsgrad": False, "maximize": False, "nesterov": False, "dampening": 0}


class StackedOptimizer:
    """torch's Adam, AdamW and SGD on stacked parameters ([K, ...] tensors, member k at index
    k), with per-member lr and weight_decay; weight decay only on the ``decayed`` parameters
    (the solo run's penalized group). Adam and AdamW run torch's fused kernels, one pass over
    the parameters instead of the unfused update's ten or so, one call per distinct
    (lr, weight_decay); SGD is its formula, vectorised over members.

    The fused kernels are private torch ops (``torch._fused_adam_``, ``torch._fused_adamw_``).
    Where this torch has none, or refuses the arguments it was written for, the update is
    Adam written out with public tensor ops (``_adam_written_out``: torch.optim.Adam's
    single-tensor formula). The two agree to float32 rounding, not bitwise
    (tests/test_fused_fallback.py states the tolerance)."""

    def __init__(
        self,
        kind: str,
        group: dict[str, Any],
        lr: Sequence[float],
        weight_decay: Sequence[float],
        params: dict[str, torch.Tensor],
        decayed: set[str],
    ) -> None:
        odd = [key for key, plain in PLAIN_OPTIMIZER.items() if group.get(key, plain) != plain]
        if odd or kind not in ("adam", "adamw", "sgd"):
            raise NotStackable(f"optimizer {kind} with {', '.join(odd)} has no stacked form")
        self.kind, self.params, self.decayed = kind, params, decayed
        self.lr, self.weight_decay, self.step_count = list(lr), list(weight_decay), 0
        self.state: dict[str, dict[str, torch.Tensor]] = {name: {} for name in params}
        self.columns: dict[tuple[Any, ...], torch.Tensor] = {}
        if kind == "sgd":
            self.momentum = group["momentum"]
            self.states = 1 if self.momentum else 0
            return
        self.beta1, self.beta2 = group["betas"]
        self.eps = group["eps"]
        self.states = 2
        for name, param in params.items():
            zeros = torch.zeros_like(param, memory_format=torch.contiguous_format)
            self.state[name] = {"exp_avg": zeros, "exp_avg_sq": torch.zeros_like(zeros)}
        self.step = torch.zeros((), dtype=torch.float32, device=next(iter(params.values())).device)
        self.calls = self._plan_calls()
        self.fused = fused_kernel(kind)

    def _plan_calls(self) -> dict[tuple[float, float], list[tuple[str, int | None]]]:
        """(lr, weight_decay) -> the (parameter, member) pieces one fused call updates; member
        None: every member's at once (the whole stacked tensor)."""
        calls: dict[tuple[float, float], list[tuple[str, int | None]]] = {}
        members = list(range(len(self.lr)))
        for name in self.params:
            by_setting: dict[tuple[float, float], list[int]] = {}
            for k in members:
                wd = self.weight_decay[k] if name in self.decayed else 0.0
                by_setting.setdefault((self.lr[k], wd), []).append(k)
            for key, ks in by_setting.items():
                pieces = [(name, None)] if ks == members else [(name, k) for k in ks]
                calls.setdefault(key, []).extend(pieces)
        return calls

    @torch.no_grad()
    def update(self, grads: dict[str, torch.Tensor]) -> None:
        """One step, given each stacked parameter's gradient."""
        self.step_count += 1
        if self.kind == "sgd":
            self._sgd(grads)
        else:
            # The fused kernels read memory as contiguous.
            self._adam({name: grad.contiguous() for name, grad in grads.items()})

    def relayout(self, params: dict[str, torch.Tensor]) -> None:
        """Take ``params`` (the same parameters, stored in another memory order) before the
        first step."""
        assert self.step_count == 0, "parameters are relaid out before the first step only"
        self.params.update(params)
        for name, state in self.state.items():
            for key, value in state.items():
                state[key] = torch.zeros_like(self.params[name]) if key != "step" else value

    def _sgd(self, grads: dict[str, torch.Tensor]) -> None:
        for name, param in self.params.items():
            grad = grads[name]
            if name in self.decayed and any(self.weight_decay):
                grad = grad + self._column("weight_decay", self.weight_decay, param) * param
            if self.momentum:
                buffer = self.state[name].get("momentum_buffer")
                if buffer is None:
                    buffer = self.state[name]["momentum_buffer"] = grad.clone()
                else:
                    buffer.mul_(self.momentum).add_(grad)
                grad = buffer
            param.add_(self._column("-lr", [-lr for lr in self.lr], param) * grad)

    def _column(self, key: str, values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
        """Per-member scalars shaped to broadcast over ``like`` (Python floats cast to float32,
        as torch casts its scalar hyperparameters); made once per shape, not every step."""
        cache_key = (key, like.dim(), like.dtype)
        if cache_key not in self.columns:
            column = torch.tensor(list(values), dtype=like.dtype, device=like.device)
            self.columns[cache_key] = column.view(-1, *[1] * (like.dim() - 1))
        return self.columns[cache_key]

    def _adam(self, grads: dict[str, torch.Tensor]) -> None:
        """torch's fused kernels (they read memory as contiguous: the gradients must be), or
        Adam written out where this torch has no fused kernel."""
        self.step += 1
        for (lr, wd), pieces in self.calls.items():
            tensors = [self._piece(name, k, grads[name]) for name, k in pieces]
            if self.fused is not None:
                try:
                    self.fused(
                        *zip(*tensors, strict=True),
                        [],
                        [self.step] * len(pieces),
                        amsgrad=False,
                        lr=lr,
                        beta1=self.beta1,
                        beta2=self.beta2,
                        weight_decay=wd,
                        eps=self.eps,
                        maximize=False,
                        grad_scale=None,
                        found_inf=None,
                    )
                    continue
                except TypeError:
                    # A torch whose private op takes other arguments: refused before it
                    # changed anything, so this call and every later one go the public way.
                    self.fused = None
            self._adam_written_out(tensors, lr, wd)

    def _adam_written_out(
        self, tensors: list[tuple[torch.Tensor, ...]], lr: float, weight_decay: float
    ) -> None:
        """One Adam (or AdamW) step on (param, grad, exp_avg, exp_avg_sq) pieces with public
        ops only: torch.optim.Adam's single-tensor formula (torch 2.x, not capturable), so it
        does what a solo run's optimizer does on the CPU."""
        step = self.step_count
        bias_correction1 = 1 - self.beta1**step
        bias_correction2_sqrt = (1 - self.beta2**step) ** 0.5
        step_size = lr / bias_correction1
        for param, grad, exp_avg, exp_avg_sq in tensors:
            if weight_decay:
                if self.kind == "adamw":
                    param.mul_(1 - lr * weight_decay)
                else:
                    grad = grad.add(param, alpha=weight_decay)
            exp_avg.lerp_(grad, 1 - self.beta1)
            exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def _piece(self, name: str, k: int | None, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(param, grad, exp_avg, exp_avg_sq) of one member, or of all (k None)."""
        param, state = self.params[name], self.state[name]
        tensors = (param, grad, state["exp_avg"], state["exp_avg_sq"])
        return tensors if k is None else tuple(t[k] for t in tensors)  # type: ignore[index]

    def state_of(
        self, k: int, name: str, order: tuple[int, ...] | None = None
    ) -> dict[str, torch.Tensor]:
        """Member k's state for parameter ``name``, as torch's optimizer keeps it (``order``:
        the memory order the parameter is stored in, see _Stack._adopt_layouts)."""
        back = inverse_order(order) if order else None
        state = {
            key: (value.permute(back) if back else value)[k].contiguous().clone()
            for key, value in self.state[name].items()
        }
        if self.kind != "sgd":
            state["step"] = torch.tensor(float(self.step_count))
        return state


def fused_kernel(kind: str) -> Callable[..., Any] | None:
    """torch's private fused Adam (or AdamW, ``kind`` adamw) kernel, or None where this torch
    has none: then StackedOptimizer writes Adam out with public ops."""
    return getattr(torch, "_fused_adamw_" if kind == "adamw" else "_fused_adam_", None)


def inverse_order(order: Sequence[int]) -> tuple[int, ...]:
    """The permutation that undoes ``order`` (a dims order of ``Tensor.permute``)."""
    inverse = [0] * len(order)
    for position, dim in enumerate(order):
        inverse[dim] = position
    return tuple(inverse)
