"""What regularization does to the weights: per-layer statistics, the generalization gap, and
the summaries and figures ``compare`` shows.

At every metrics row the loop writes one ``weights.csv`` row per weight tensor (parameters with
more than one dimension: biases are not what L1/L2 act on by default) of every network:

    epoch, network, layer, size, l1, l2, near_zero, max_abs, max_row_norm

``l1`` = sum |w|, ``l2`` = sqrt(sum w^2) (the norm, not the penalty), ``near_zero`` = fraction
of weights with |w| < ``weight_threshold``, ``max_abs`` = max |w|, ``max_row_norm`` = the
largest norm of one unit's incoming weights (a row along the first dimension: what ``max_norm``
bounds). Files written before that column existed lack it; their summaries leave it out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from regbench.core.rundir import RunDir
    from regbench.figures.drawing import Drawing

STAT_COLUMNS = ("l1", "l2", "near_zero", "max_abs", "max_row_norm")
WEIGHT_COLUMNS = ("epoch", "network", "layer", "size", *STAT_COLUMNS)
HIST_FILE, NORMS_FILE = "weight_hist.png", "weight_norms.png"


def weight_tensors(networks: Mapping[str, nn.Module]) -> dict[tuple[str, str], torch.Tensor]:
    """(network, parameter name) -> detached weight tensor, for every parameter with dim > 1."""
    return {
        (net_name, name): param.detach()
        for net_name, net in networks.items()
        for name, param in net.named_parameters()
        if param.dim() > 1
    }


def weight_rows(
    epoch: int, networks: Mapping[str, nn.Module], threshold: float
) -> list[dict[str, Any]]:
    """One weights.csv row per weight tensor of ``networks``."""
    import torch

    tensors = weight_tensors(networks)
    if not tensors:
        return []
    # All statistics in one tensor, read to the host once (one sync per metrics row).
    stats = torch.stack([_layer_stats(w.double(), threshold) for w in tensors.values()]).tolist()
    return [
        {
            "epoch": epoch,
            "network": net_name,
            "layer": name,
            "size": tensor.numel(),
            **dict(zip(STAT_COLUMNS, values, strict=True)),
        }
        for ((net_name, name), tensor), values in zip(tensors.items(), stats, strict=True)
    ]


def _layer_stats(w: torch.Tensor, threshold: float) -> torch.Tensor:
    import torch

    from regbench.regularization.max_norm import largest_row_norm

    magnitude = w.abs()
    return torch.stack(
        [
            magnitude.sum(),
            w.pow(2).sum().sqrt(),
            (magnitude < threshold).double().mean(),
            magnitude.max(),
            largest_row_norm(w),
        ]
    )


def add_gap(row: dict[str, Any]) -> None:
    """gap = test_loss - training loss, for any study whose row has both.

    The training loss is ``train_eval_loss`` (training data in eval mode) where a study logs it,
    else ``train_loss`` (the running training-mode loss, with dropout active: heavy dropout
    can then make the gap negative).
    """
    train = row.get("train_eval_loss", row.get("train_loss"))
    if "test_loss" in row and train is not None:
        row["gap"] = row["test_loss"] - train


# ----------------------------------------------------------------------------- for compare
def summarize_weights(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Scalar columns from weights.csv rows, at the last epoch, over every weight tensor:
    ``weights_near_zero`` (fraction of all weights), ``weights_l1`` (sum |w|), ``weights_l2``
    (the norm of all weights together), ``weights_max_abs`` and, where the rows have it,
    ``weights_max_row_norm``. Empty when there are no rows."""
    if not rows:
        return {}
    last = max(row["epoch"] for row in rows)
    final = [row for row in rows if row["epoch"] == last]
    size = sum(row["size"] for row in final)
    summary = {
        "weights_near_zero": sum(row["near_zero"] * row["size"] for row in final) / size,
        "weights_l1": sum(row["l1"] for row in final),
        "weights_l2": math.sqrt(sum(row["l2"] ** 2 for row in final)),
        "weights_max_abs": max(row["max_abs"] for row in final),
    }
    # A weights.csv written before the column existed (or a resumed one's older rows) has none.
    norms = [row.get("max_row_norm") for row in final]
    if all(isinstance(norm, int | float) for norm in norms):
        summary["weights_max_row_norm"] = max(norms)
    return summary


def weight_columns_by_epoch(rows: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, float]]:
    """``summarize_weights`` at every epoch of weights.csv: epoch -> scalar columns, so that
    compare can treat sparsity and norms like any metric (at final, best or epoch=N)."""
    by_epoch: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_epoch.setdefault(int(row["epoch"]), []).append(row)
    return {epoch: summarize_weights(epoch_rows) for epoch, epoch_rows in by_epoch.items()}


def _as_run_dir(run: RunDir | Path) -> RunDir:
    from regbench.core.rundir import RunDir

    return run if isinstance(run, RunDir) else RunDir(Path(run))


def run_weight_summary(run: RunDir | Path) -> dict[str, float]:
    """``summarize_weights`` of a run folder's weights.csv ({} when it has none)."""
    return summarize_weights(_as_run_dir(run).read_weights())


def final_weights(run: RunDir | Path) -> dict[str, np.ndarray]:
    """Layer label -> flattened final weights from a run's model.pt (dim > 1 tensors only)."""
    from regbench.core.errors import DataError

    run_dir = _as_run_dir(run)
    state = run_dir.load_model()
    if not all(_is_state_dict(tensors) for tensors in state.values()):
        raise DataError(f"cannot use {run_dir.path / 'model.pt'}: it does not hold state dicts")
    single = len(state) == 1
    return {
        (name if single else f"{net_name}/{name}"): tensor.detach().flatten().numpy()
        for net_name, tensors in state.items()
        for name, tensor in tensors.items()
        if tensor.dim() > 1 and tensor.is_floating_point()
    }


def labelled_final_weights(run: RunDir | Path) -> dict[str, np.ndarray]:
    """``final_weights`` keyed by each layer's position and shape (``hidden 1 (784→512)``)."""
    from regbench.figures.titles import layer_labels

    run_dir = _as_run_dir(run)
    state = run_dir.load_model()
    shapes = _shapes(state)
    labels = layer_labels(shapes)
    return {labels.get(name, name): values for name, values in final_weights(run_dir).items()}


def _shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Weight name (``network/name`` for several networks) -> shape, of a model.pt's state."""
    single = len(state) == 1
    return {
        (name if single else f"{net_name}/{name}"): tuple(tensor.shape)
        for net_name, tensors in state.items()
        if isinstance(tensors, Mapping)
        for name, tensor in tensors.items()
        if getattr(tensor, "dim", lambda: 0)() > 1
    }


def _is_state_dict(value: Any) -> bool:
    import torch

    return isinstance(value, dict) and all(isinstance(t, torch.Tensor) for t in value.values())


def compare_histograms(
    groups: Mapping[str, Sequence[RunDir | Path]],
    path: Path,
    title: str = "final weights",
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path | None:
    """Overlaid per-layer histograms of several groups of runs (e.g. l1=1e-4 vs weight_decay);
    ``groups`` maps a legend label to run folders, whose model.pt files are read. A model.pt
    that cannot be read is left out with a Notice (one bad file must not cost the whole
    figure); None when none can be read."""
    from regbench.figures.plots import overlaid_weight_histograms

    weights = {}
    for label, runs in groups.items():
        readable = [w for w in map(_final_weights_or_notice, runs) if w is not None]
        if readable:
            weights[label] = readable
    if not weights:
        return None
    overlaid_weight_histograms(weights, title, path, dict(styles or {}))
    return path


def _final_weights_or_notice(run: RunDir | Path) -> dict[str, np.ndarray] | None:
    import warnings

    from regbench.core.errors import DataError, Notice

    try:
        return labelled_final_weights(run)
    except DataError as exc:
        warnings.warn(Notice(f"skipped in the weight histograms: {exc}"), stacklevel=2)
        return None


# ----------------------------------------------------------------------------- per run
def weight_plots(
    networks: Mapping[str, nn.Module], run_dir: RunDir, title: str, threshold: float | None = None
) -> list[Drawing]:
    """weight_hist.png (final weights per layer) and weight_norms.png (norms over epochs), to
    draw: copies of the weights, as the networks may be trained further before they are.
    Layers are named by position and shape; ``threshold``: the near-zero panel's."""
    from regbench.figures.titles import layer_labels

    single = len(networks) == 1
    tensors = {
        (name if single else f"{net_name}/{name}"): w
        for (net_name, name), w in weight_tensors(networks).items()
    }
    names = layer_labels({name: tuple(w.shape) for name, w in tensors.items()})
    final = {names[name]: w.detach().cpu().numpy().ravel().copy() for name, w in tensors.items()}
    return _drawings(final, run_dir.read_weights(), run_dir.path, title, names, threshold)


def redraw_weight_plots(
    run: RunDir | Path, title: str, threshold: float | None = None
) -> list[Drawing]:
    """The same figures from a finished run's model.pt and weights.csv, to draw (for
    ``regbench plot``)."""
    from regbench.core.rundir import MODEL
    from regbench.figures.titles import layer_labels

    run_dir = _as_run_dir(run)
    has_model = (run_dir.path / MODEL).is_file()
    final = labelled_final_weights(run_dir) if has_model else {}
    names = layer_labels(_shapes(run_dir.load_model())) if has_model else {}
    rows = run_dir.read_weights()
    return _drawings(final, rows, run_dir.path, title, names, threshold)


def _drawings(
    final: dict[str, np.ndarray],
    rows: list[dict[str, Any]],
    folder: Path,
    title: str,
    names: dict[str, str],
    threshold: float | None,
) -> list[Drawing]:
    from regbench.figures.drawing import Drawing
    from regbench.figures.plots import weight_histograms, weight_norms

    drawings = []
    if final:
        drawings.append(Drawing(weight_histograms, (final, title, folder / HIST_FILE)))
    if rows:
        norms = (rows, title, folder / NORMS_FILE)
        drawings.append(Drawing(weight_norms, norms, {"names": names, "threshold": threshold}))
    return drawings
