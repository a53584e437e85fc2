"""A network of K members as one module: the stacked launcher's forward (regbench/stacked.py).

Each parameter of the K members is one ``[K, ...]`` tensor. ``stacked_template`` copies a member's
network and swaps the modules that hold parameters or draw masks for stacked forms that read
those tensors:

- ``nn.Linear`` -> one batched matrix product for all members (``baddbmm``);
- ``nn.Conv2d`` -> one grouped convolution, a group per member (``StackedConv2d``);
- a one-layer tanh ``nn.RNN`` -> the recurrence step by step, one ``baddbmm`` per time step;
- a dropout module -> a multiplication by masks the launcher draws from each member's own
  generator (``StackedDropout``).

Modules without parameters (ReLU, containers, Identity) stay as they are: they act on the
``[K, batch, ...]`` activations like on ``[batch, ...]`` ones, as long as the network's forward
treats every leading dimension as a batch dimension (``x[..., -1, :]``, ``log_softmax(dim=-1)``).
``check_forward`` verifies that once per stack, against each member's own network.

Why not ``torch.func.vmap``: it pays its own dispatch for every operation of every step, which
for these small networks cost more than the members' arithmetic (a stacked RNN step of 8 members
took about 12 ms under vmap against 5.6 ms with these plain batched operations).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from regbench.core.errors import NotStackable

Forward = Callable[[torch.Tensor], torch.Tensor]
# A study's loss (Study.batch_loss): the forward, the batch's tensors [K, batch, ...] by
# data key -> each member's data loss [K].
Loss = Callable[[Forward, dict[str, torch.Tensor]], torch.Tensor]
CHECK_RTOL, CHECK_ATOL = 1e-4, 1e-5  # float32 batched vs single products, a few layers deep


class StackedParameters:
    """The tensors the stacked modules read, by parameter name; rebound before every forward
    (they are views of the optimizer's leaves, made afresh for autograd each step)."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}


class StackedLinear(nn.Module):
    """``nn.Linear`` for K members: x [K, ..., in] -> [K, ..., out], weight [K, out, in]."""

    def __init__(self, name: str, params: StackedParameters, bias: bool) -> None:
        super().__init__()
        self.name, self.params, self.bias = name, params, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.params.tensors[f"{self.name}.weight"]
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        if self.bias:
            bias = self.params.tensors[f"{self.name}.bias"].unsqueeze(1)
            out = torch.baddbmm(bias, flat, weight.transpose(1, 2))
        else:
            out = torch.bmm(flat, weight.transpose(1, 2))
        return out.view(*x.shape[:-1], weight.shape[1])


class StackedConv2d(nn.Module):
    """``nn.Conv2d`` for K members as one convolution with K groups: x [K, N, C, H, W] ->
    [K, N, out, H', W'] (member k's channels are group k of [N, K * C, H, W]), weight
    [K, out, C, kh, kw]."""

    def __init__(self, name: str, params: StackedParameters, conv: nn.Conv2d) -> None:
        super().__init__()
        self.name, self.params, self.bias = name, params, conv.bias is not None
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        weight = self.params.tensors[f"{self.name}.weight"]
        k, n = x.shape[:2]
        grouped = x.transpose(0, 1).reshape(n, k * x.shape[2], *x.shape[3:])
        bias = self.params.tensors[f"{self.name}.bias"].reshape(-1) if self.bias else None
        out = F.conv2d(
            grouped,
            weight.reshape(-1, *weight.shape[2:]),
            bias,
            self.stride,
            self.padding,
            self.dilation,
            groups=k,
        )
        # [N, K, out, H', W'] viewed member-first; the next layer's transpose undoes it for free.
        return out.view(n, k, -1, *out.shape[2:]).transpose(0, 1)


def _check_plain_conv(conv: nn.Conv2d) -> None:
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise NotStackable("a Conv2d with groups, string padding or non-zero padding modes")


class StackedRNN(nn.Module):
    """A one-layer tanh, batch_first ``nn.RNN`` for K members, step by step in the fused CPU
    kernel's order: all input projections first, then
    h_t = tanh((b_hh + h_{t-1} W_hh^T) + (x_t W_ih^T + b_ih)); x [K, batch, time, in]."""

    def __init__(self, name: str, params: StackedParameters) -> None:
        super().__init__()
        self.name, self.params = name, params

    def forward(  # the first argument's name is nn.RNN's
        self, input: torch.Tensor, hx: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if hx is not None:
            raise NotStackable("an nn.RNN given an initial state has no stacked form")
        tensors = self.params.tensors
        weight_ih, weight_hh, bias_ih, bias_hh = (
            tensors[f"{self.name}.{key}_l0"]
            for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        k, batch, steps, _ = input.shape
        flat = input.reshape(k, batch * steps, -1)
        projected = torch.baddbmm(bias_ih.unsqueeze(1), flat, weight_ih.transpose(1, 2))
        hidden_bias, recurrent = bias_hh.unsqueeze(1), weight_hh.transpose(1, 2)
        outputs, h = [], None
        # unbind, not slices: the backward of T slices would zero T full-size tensors.
        for x_t in projected.view(k, batch, steps, -1).unbind(2):
            # h_0 = 0: b_hh + 0 W_hh^T is b_hh exactly, so the first product is skipped.
            pre = hidden_bias if h is None else torch.baddbmm(hidden_bias, h, recurrent)
            h = torch.tanh(pre + x_t)
            outputs.append(h)
        assert h is not None, "an RNN input has at least one time step"
        return torch.stack(outputs, dim=2), h.unsqueeze(0)


class StackedDropout(nn.Module):
    """Stands in for a dropout module: multiplies by the members' masks [K, ...] (set by the
    launcher before each training forward), with the replaced module's arithmetic; identity
    while no mask is set."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.mask: torch.Tensor | None = None
        self.keep: torch.Tensor | None = None  # 1 - p per member, shaped to broadcast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            return x
        if self.kind == "inverted":  # dropout.InvertedDropout: x * mask / (1 - p)
            return x * self.mask / self.keep
        return x * self.mask  # vanilla: unscaled; torch: the mask already holds 1/(1-p)


def _dropout_kind(module: nn.Module) -> str | None:
    from regbench.regularization import dropout

    kinds = {
        dropout.InvertedDropout: "inverted",
        dropout.VanillaDropout: "vanilla",
        dropout.TorchDropout: "torch",
        nn.Dropout: "torch",
        # The launcher draws their masks of the shape their mask_like gives: [..., C, 1, 1].
        dropout.InvertedChannelDropout: "inverted",
        dropout.VanillaChannelDropout: "vanilla",
    }
    return kinds.get(type(module))


def stacked_template(
    net: nn.Module, params: StackedParameters
) -> tuple[nn.Module, dict[str, StackedDropout]]:
    """A copy of ``net`` running K members on ``params``, and its dropout stand-ins by module
    name; NotStackable, saying why, for a network with a module that has no stacked form."""
    from regbench.regularization import dropout

    template = copy.deepcopy(net)
    masked: dict[str, StackedDropout] = {}
    for name, module in list(template.named_modules()):
        kind = _dropout_kind(module)
        if kind is not None:
            masked[name] = _replace(template, name, StackedDropout(kind))
        elif isinstance(module, dropout.STOCHASTIC):
            raise NotStackable(f"{type(module).__name__} has no stacked form")
        elif type(module) is nn.Linear:
            _replace(template, name, StackedLinear(name, params, module.bias is not None))
        elif type(module) is nn.Conv2d:
            _check_plain_conv(module)
            _replace(template, name, StackedConv2d(name, params, module))
        elif isinstance(module, nn.RNNBase):
            _check_plain_rnn(module)
            _replace(template, name, StackedRNN(name, params))
    if any(True for _ in template.parameters()) or any(True for _ in template.buffers()):
        kinds = {type(m).__name__ for m in template.modules() if any(m.parameters(False))}
        raise NotStackable(f"{', '.join(sorted(kinds)) or 'a buffer'} has no stacked form")
    return template, masked


def _check_plain_rnn(rnn: nn.RNNBase) -> None:
    plain = (
        type(rnn) is nn.RNN
        and rnn.nonlinearity == "tanh"
        and rnn.num_layers == 1
        and rnn.bias
        and rnn.batch_first
        and not rnn.bidirectional
        and rnn.proj_size == 0
    )
    if not plain:
        raise NotStackable(f"{type(rnn).__name__} is supported only as one tanh batch_first layer")


def _replace(root: nn.Module, name: str, module: nn.Module) -> nn.Module:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)
    return module


@torch.no_grad()
def check_forward(
    loss: Loss, template: nn.Module, members: Sequence[nn.Module], batch: dict[str, torch.Tensor]
) -> None:
    """NotStackable unless the stacked loss on ``batch`` (tensors [K, batch, ...]) is each
    member's loss through its own network on its own rows, the network seeing exactly the solo
    shapes (dropout off on both sides: no random draws). A network whose forward mixes up the
    leading dimensions would otherwise train silently wrong."""
    from regbench.regularization.dropout import dropout_modules

    modules = dropout_modules(members)
    saved = [module.p for module in modules]
    devices = [x.device.index or 0 for x in batch.values() if x.device.type == "cuda"][:1]
    try:
        with torch.random.fork_rng(devices=devices):
            for module in modules:
                module.p = 0.0
            stacked = loss(template, batch)
            alone = torch.cat([solo_loss(loss, net, batch, k) for k, net in enumerate(members)])
    except NotStackable:
        raise
    except Exception as exc:
        message = f"its forward does not run stacked ({type(exc).__name__}: {exc})"
        raise NotStackable(message) from exc
    finally:
        for module, p in zip(modules, saved, strict=True):
            module.p = p
    if stacked.shape != alone.shape or not torch.allclose(
        stacked, alone, rtol=CHECK_RTOL, atol=CHECK_ATOL
    ):
        raise NotStackable("its forward does not treat the leading dimensions as batch dimensions")


def solo_loss(loss: Loss, net: nn.Module, batch: dict[str, torch.Tensor], k: int) -> torch.Tensor:
    """Member k's loss [1] through its own network, which sees its rows as a solo batch."""
    rows = {name: tensor[k : k + 1] for name, tensor in batch.items()}
    return loss(lambda x: net(x[0]).unsqueeze(0), rows)
