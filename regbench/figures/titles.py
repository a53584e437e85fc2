"""Figure titles, shared by the run's own plots, the studies' figures and the comparisons (a leaf
module): one title per figure, naming the model, the data, the epochs and what was regularized,
wrapped to the figure's width."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regbench.core.config import Settings

TITLE_SIZE = 10  # points
CHAR_WIDTH = 0.55  # an average character's width in DejaVu Sans, in ems
ARCHITECTURE_KEYS = ("hidden", "hidden_size", "num_layers", "rnn_dropout", "regularize")


def plot_title(settings: Settings, data_name: str | None = None) -> str:
    """A run's title: model and architecture, data and epochs, then the regularization and the
    seed; ``data_name`` is the source actually used (it differs from the config's after a
    fallback)."""
    from regbench.core.config import declarations

    model = _architecture(dataclasses.asdict(settings.model))
    data = data_name or settings.data.name
    regularizers = [
        f"{name}={_show(getattr(settings, name))}"
        for name, declared in declarations(type(settings)).items()
        if declared.regularizer and getattr(settings, name) != declared.off
    ]
    regularized = " ".join(regularizers) or "no regularization"
    return f"{model} on {data}, {settings.epochs} epochs · {regularized} · seed {settings.seed}"


def _architecture(model: Mapping[str, Any]) -> str:
    """``mlp 784-512-256-10``-like: the study's name and the keys that shape its network."""
    shown = [f"{k}={_show(model[k])}" for k in ARCHITECTURE_KEYS if k in model]
    for side in ("d_hidden", "g_hidden"):
        if side in model:
            shown.append(f"{side[0].upper()} {_show(model[side])}")
    return " ".join([str(model.get("name", "?")), *shown])


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(map(_show, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def wrapped(text: str, width_inches: float, fontsize: float = TITLE_SIZE) -> str:
    """``text`` broken into lines that fit ``width_inches`` at ``fontsize`` (each line
    wrapped on its own: an explicit line break stays)."""
    chars = max(20, int(width_inches * 72 / (fontsize * CHAR_WIDTH)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def title_figure(fig: Any, text: str, fontsize: float = TITLE_SIZE) -> None:
    """The figure's one title (suptitle), wrapped to its width."""
    width = fig.get_size_inches()[0]
    fig.suptitle(wrapped(text, width * 0.95, fontsize), fontsize=fontsize)


def title_lines(fig: Any) -> int:
    """How many lines the figure's title takes (0 without one)."""
    text = fig.get_suptitle()
    return text.count("\n") + 1 if text else 0


# ----------------------------------------------------------------------------- layers
def layer_labels(shapes: Mapping[str, Sequence[int]]) -> dict[str, str]:
    """Parameter name (``layers.3.weight``, ``discriminator/layers.0.weight``) -> the layer by
    position and shape (``hidden 2 (512→256)``, ``discriminator output (256→1)``), for weight
    tensors in the network's order. A linear weight is [out, in]; a convolution's
    [out, in, h, w]; an RNN's ``weight_ih_lK``/``weight_hh_lK`` are its input and recurrent
    weights."""
    by_network: dict[str, list[str]] = {}
    for name in shapes:
        network = name.split("/", 1)[0] if "/" in name else ""
        by_network.setdefault(network, []).append(name)
    labels = {}
    for network, names in by_network.items():
        prefix = f"{network} " if network else ""
        labels.update({n: prefix + text for n, text in _network_labels(names, shapes).items()})
    return labels


def _network_labels(names: Sequence[str], shapes: Mapping[str, Sequence[int]]) -> dict[str, str]:
    recurrent = [n for n in names if "weight_ih" in n or "weight_hh" in n]
    plain = [n for n in names if n not in recurrent]
    labels = {}
    layer = 0
    for name in recurrent:
        shape = shapes[name]
        if "weight_ih" in name:
            layer += 1
            labels[name] = f"RNN {layer} input ({shape[1]}→{shape[0]})"
        else:
            labels[name] = f"RNN {layer} recurrent ({shape[1]}→{shape[0]})"
    for i, name in enumerate(plain, start=1):
        shape = shapes[name]
        kind = "output" if i == len(plain) else f"hidden {i}"
        if len(shape) == 4:
            labels[name] = (
                f"conv {i} ({shape[1]}→{shape[0]}, {shape[2]}\u00d7{shape[3]})"  # 3x3 as 3 by 3
            )
        elif len(shape) >= 2:
            labels[name] = f"{kind} ({shape[1]}→{shape[0]})"
        else:
            labels[name] = name
    return labels
