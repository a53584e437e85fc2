"""Monte-Carlo averaging over k dropout masks against the weight-scaling rule (Srivastava et al.
2014, Figure 11), from runs already trained.

An experiment with ``experiment.mc_masks`` (e.g. ``[1,2,5,10,20,50,100]``) trains one dropout
net per seed as any sweep does; then each completed run's model.pt is evaluated once more, on
the test split: with dropout off and the weights as trained (inverted dropout: the
weight-scaling rule), and averaging the class probabilities of 1, 2, ... max(k) masks (one
growing set of masks, so the points of one run share their masks, as in the paper). The rows go
to the run's ``mc_curve.csv``: an evaluation-only step, not a training per k.

The comparison then reads each run as one replicate per k: the key ``mc_masks`` (0 = the
weight-scaling rule, the baseline), ``test_acc`` and ``test_loss`` the test metrics of that
prediction rule. Paired over seeds, as the same net is behind every k of a seed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regbench.analysis.runs import Run, saved_settings, trained_study
from regbench.core.errors import UsageError
from regbench.core.rundir import CONFIG, RunDir, Status, atomic_text, read_regular

MASKS_KEY = "mc_masks"  # the comparison's key: masks averaged (0: the weight-scaling rule)
CURVE_FILE = "mc_curve.csv"
CURVE_METRICS = ("test_loss", "test_acc")
MAX_CURVE_BYTES = 1 << 20  # a curve of a few hundred rows is some kB


def write_curves(runs: Sequence[Run], masks: Sequence[int]) -> int:
    """``mc_curve.csv`` for each completed run that lacks one for these ``masks``; returns how
    many were written. A run whose study has no mask curve is one UsageError."""
    written = 0
    for run in runs:
        if run.status is not Status.COMPLETED or _curve(run.path, masks) is not None:
            continue
        rows = _evaluate(run.path, masks)
        atomic_text(run.path / CURVE_FILE, _csv(rows))
        written += 1
    return written


def curve_runs(runs: Sequence[Run], masks: Sequence[int]) -> tuple[list[Run], list[str]]:
    """Each completed run as one run per k (config + ``mc_masks``, one row of its curve), and a
    note for the runs left out (no curve for these masks: the sweep's --dir writes it)."""
    out, missing = [], []
    for run in runs:
        if run.status is not Status.COMPLETED:
            continue
        rows = _curve(run.path, masks)
        if rows is None:
            missing.append(run.path.name)
            continue
        for row in rows:
            config = {**run.config, MASKS_KEY: int(row[MASKS_KEY])}
            metrics = {"epoch": run.rows[-1].get("epoch") if run.rows else None}
            metrics |= {name: row[name] for name in CURVE_METRICS}
            out.append(dataclasses.replace(run, config=config, rows=[metrics]))
    trained = len({run.path for run in runs if run.status is Status.COMPLETED}) - len(missing)
    notes = [
        f"each of the {trained} trained run(s) is compared once per number of masks "
        f"(mc_masks 0 = the weight-scaling rule, then {', '.join(map(str, masks))}; "
        f"{CURVE_FILE}): the groups share their nets, so their tests are paired over seeds"
    ]
    if missing:
        notes.append(
            f"{len(missing)} run(s) have no {CURVE_FILE} for mc_masks {list(masks)} and are left "
            f"out ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); run the "
            f"sweep again with --dir to evaluate them"
        )
    if not out:
        raise UsageError(
            f"no run has {CURVE_FILE} for mc_masks {list(masks)}: nothing to compare (run the "
            f"experiment's sweep, which evaluates each trained run at each number of masks)"
        )
    return out, notes


def _evaluate(path: Path, masks: Sequence[int]) -> list[dict[str, Any]]:
    """The run's model.pt, rebuilt on the CPU with its data, at k = 0 and each k in masks; the
    masks drawn from the run's own seed (prepare seeds), so the same run gives the same curve."""
    from regbench.studies import study_class

    settings = saved_settings(path)
    if not hasattr(study_class(settings.model.name), "mask_curve"):
        raise UsageError(
            f"experiment.mc_masks: model={settings.model.name} has no MC mask curve (the "
            f"classifiers mlp and cnn have); {path / CONFIG}"
        )
    with trained_study(RunDir.open(path), settings) as study:
        return study.mask_curve(sorted(set(masks)))


def _curve(path: Path, masks: Sequence[int]) -> list[dict[str, float]] | None:
    """The run's curve when it holds k = 0 and every k of ``masks``; else None."""
    data = read_regular(path / CURVE_FILE, MAX_CURVE_BYTES)  # no link, bounded
    if data is None:
        return None
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
        rows = [{k: float(v) for k, v in row.items()} for row in reader]
    except (UnicodeDecodeError, ValueError, TypeError):
        return None  # not a curve this module wrote: evaluated again
    have = {int(row[MASKS_KEY]) for row in rows if MASKS_KEY in row}
    if not {0, *masks} <= have:
        return None
    return [row for row in rows if int(row[MASKS_KEY]) in {0, *masks}]


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[MASKS_KEY, *CURVE_METRICS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in (MASKS_KEY, *CURVE_METRICS)})
    return out.getvalue()
