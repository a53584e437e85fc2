"""Figures, drawn from saved metrics with matplotlib's file-only (Agg) backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(ncols: int = 1, width: float = 6.4) -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt.subplots(1, ncols, figsize=(width * ncols, 4.2), squeeze=False)


def save(fig: Figure, path: Path) -> None:
    from matplotlib import pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_loss_curves(ax: Any, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    epochs = [row["epoch"] for row in rows]
    for column in columns:
        if column in rows[0]:
            ax.plot(epochs, [row[column] for row in rows], marker="o", markersize=3, label=column)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()


def loss_curve(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str, path: Path
) -> None:
    """Train and test loss per epoch (``loss_curve.png``)."""
    fig, axes = new_figure()
    draw_loss_curves(axes[0, 0], rows, columns)
    axes[0, 0].set_title(title, fontsize=10)
    save(fig, path)
