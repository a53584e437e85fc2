"""A search's figures, drawn with Optuna's matplotlib visualizations into the search folder:
the optimization history, the parameter importances (PED-ANOVA, which needs no scikit-learn)
and a slice plot per searched parameter."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regbench.core.rundir import atomic_write

HISTORY = "search_history.png"
IMPORTANCES = "search_importances.png"
SLICE = "search_slice_{}.png"


def draw_search(study: Any, folder: Path) -> list[str]:
    """Draw what the study holds; returns a note for each figure it cannot draw (too few
    trials for importances), so the caller says why one is missing."""
    import optuna.visualization.matplotlib as vis
    from optuna.importance import PedAnovaImportanceEvaluator

    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not done:
        return []
    notes = []
    _save(lambda: vis.plot_optimization_history(study), folder / HISTORY)
    if len(done) >= 2 and len(study.best_trial.params) >= 1:
        try:
            draw = lambda: vis.plot_param_importances(  # noqa: E731
                study, evaluator=PedAnovaImportanceEvaluator()
            )
            _save(draw, folder / IMPORTANCES)
        except (ValueError, RuntimeError) as exc:  # e.g. every trial has the same value
            notes.append(f"no {IMPORTANCES}: {str(exc).strip().splitlines()[0]}")
    for name in study.best_trial.params:
        _save(lambda n=name: vis.plot_slice(study, params=[n]), folder / SLICE.format(name))
    return notes


def _save(draw: Callable[[], Any], target: Path) -> None:
    """Draw with the Agg backend and replace ``target`` (never writing through a link)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # Optuna's importance plot asks for a legend it lacks
        warnings.simplefilter("ignore", UserWarning)
        axes = draw()
    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
    try:
        figure.tight_layout()
        atomic_write(target, lambda f: figure.savefig(f, format="png", dpi=100))
    finally:
        plt.close(figure)
