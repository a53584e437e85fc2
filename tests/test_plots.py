"""A run's figures are drawn again on the figure their kind used last (plots.reused_panels): what
that figure showed before must leave no trace in the next one."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from regbench.figures.plots import loss_curve, weight_histograms, weight_norms


def rows(scale: float) -> list[dict[str, float]]:
    return [
        {"epoch": e, "train_loss": scale / e, "test_loss": scale / e + 0.1} for e in range(1, 6)
    ]


def weight_rows(scale: float, layers: tuple[str, ...]) -> list[dict[str, float | str]]:
    return [
        {"epoch": e, "network": "model", "layer": layer, "size": 10, "l1": scale * e * (i + 1),
         "l2": scale * e, "near_zero": 0.1 * i, "max_abs": scale}
        for e in (1, 2, 3)
        for i, layer in enumerate(layers)
    ]  # fmt: skip


def draw(folder: Path, scale: float, layers: tuple[str, ...], title: str) -> None:
    folder.mkdir()
    loss_curve(rows(scale), ("train_loss", "test_loss"), title, folder / "loss_curve.png")
    weights = {layer: np.linspace(-scale, scale, 50 + i) for i, layer in enumerate(layers)}
    weight_histograms(weights, title, folder / "weight_hist.png")
    weight_norms(weight_rows(scale, layers), title, folder / "weight_norms.png")


def in_new_thread(job) -> None:
    """Each thread keeps its own figures: a new one draws on fresh ones."""
    thread = threading.Thread(target=job)
    thread.start()
    thread.join()


def test_a_reused_figure_draws_the_same_pixels_as_a_fresh_one(tmp_path: Path) -> None:
    layers = ("fc1.weight", "fc2.weight", "fc3.weight")
    target = (1.0, layers, "the run")

    def reused() -> None:
        draw(tmp_path / "before", 1e3, ("a.weight", "b.weight", "c.weight"), "another run")
        draw(tmp_path / "reused", *target)

    in_new_thread(reused)
    in_new_thread(lambda: draw(tmp_path / "fresh", *target))
    for name in ("loss_curve.png", "weight_hist.png", "weight_norms.png"):
        fresh = np.asarray(Image.open(tmp_path / "fresh" / name))
        again = np.asarray(Image.open(tmp_path / "reused" / name))
        assert fresh.shape == again.shape and (fresh == again).all(), name
