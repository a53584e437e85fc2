"""Axes a reader can read: integer epochs, labelled log scales, legends beside the data, and one
colour per group that stays the group's in every figure of a sweep (a leaf of figures/)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Colours of the splits, the same in every curve figure: a reader learns them once.
SPLIT_COLORS = {
    "train": "#8fb3d9",  # the running loss with dropout on: a paler blue than the eval one
    "train_eval": "tab:blue",
    "val": "tab:orange",
    "test": "tab:red",
}
SPLIT_NAMES = {
    "train": "train (running, dropout on)",
    "train_eval": "train (eval mode)",
    "val": "validation",
    "test": "test",
}
# A log axis spanning fewer decades than this is labelled at 1, 2 and 5 of each decade (or
# more): with one or two labels a value cannot be read off it.
DENSE_DECADES = 3.0
NARROW_DECADES = 0.6  # below this even 1-2-5 leaves one label: plain, evenly spaced ticks
SEQUENTIAL = "viridis"
SEQUENTIAL_RANGE = (0.0, 0.85)  # viridis' last yellows are unreadable on white
CATEGORICAL = "tab10"
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")


def epoch_axis(ax: Any, axis: str = "x") -> None:
    """Epochs are whole numbers: ticks only at integers, however few epochs a run had."""
    from matplotlib.ticker import MaxNLocator

    target = ax.xaxis if axis == "x" else ax.yaxis
    # Round steps (1, 2, 5, 10, ...): epochs 10, 20, 30 rather than 12, 18, 24.
    target.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)("epoch")


def log_axis(ax: Any, axis: str = "y") -> None:
    """A log scale labelled densely enough to read a value off it; call it once the data is
    drawn (how many decades the data span decides the ticks)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    decades = math.log10(high / low) if low > 0 and high > low else DENSE_DECADES + 1
    if decades < NARROW_DECADES:
        target.set_major_locator(MaxNLocator(nbins=5))
    elif decades < DENSE_DECADES:
        target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    else:
        target.set_major_locator(LogLocator())
    target.set_major_formatter(FuncFormatter(lambda value, _: tick_text(value)))
    target.set_minor_locator(LogLocator(subs=(2.0, 5.0) if decades >= DENSE_DECADES else "auto"))
    target.set_minor_formatter(NullFormatter())


def tick_text(value: float) -> str:
    """A tick value as people write it: 0.02, 5, 300, 1e-05."""
    return f"{value:.3g}"


def legend_beside(ax: Any, **options: Any) -> Any:
    """The legend to the right of the panel, where it covers no data."""
    options.setdefault("fontsize", 8)
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **options)


# ----------------------------------------------------------------------------- group styles
def is_numeric(values: Sequence[Any]) -> bool:
    """Every value a number (a bool is not one): the key has an order and a numeric axis."""
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )


def value_order(values: Sequence[Any]) -> list[Any]:
    """Distinct values in their natural order (numbers by size, anything else as text)."""
    distinct = list(dict.fromkeys(values))
    if is_numeric(distinct):
        return sorted(distinct)
    return sorted(distinct, key=lambda v: (v is None, str(v)))


def group_styles(configs: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """One (color, linestyle, marker) per config, set by its values of ``keys`` alone: the first
    key picks the colour (a sequential colormap in value order for a number, a fixed
    categorical order otherwise), the second the line style, the third the marker. The same
    values get the same style in every figure of a sweep, whatever their rank."""
    from matplotlib import colormaps

    orders = [value_order([c.get(k) for c in configs]) for k in keys]
    styles = []
    for config in configs:
        style: dict[str, Any] = {"color": "tab:blue", "linestyle": "-", "marker": "o"}
        if keys:
            values = orders[0]
            position = values.index(config.get(keys[0]))
            if is_numeric(values):
                low, high = SEQUENTIAL_RANGE
                share = position / (len(values) - 1) if len(values) > 1 else 0.0
                style["color"] = colormaps[SEQUENTIAL](low + (high - low) * share)
            else:
                cmap = colormaps[CATEGORICAL if len(values) <= 10 else "tab20"]
                style["color"] = cmap(position % cmap.N)
        if len(keys) > 1:
            style["linestyle"] = LINESTYLES[orders[1].index(config.get(keys[1])) % len(LINESTYLES)]
        if len(keys) > 2:
            style["marker"] = MARKERS[orders[2].index(config.get(keys[2])) % len(MARKERS)]
        styles.append(style)
    return styles
