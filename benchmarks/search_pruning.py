"""Pruning on the mean over seeds (issue 24): the toy regression search with and without a
pruner, the same sampler seed (the two propose different trials after the first prune).

    .venv/bin/python benchmarks/search_pruning.py           # shrunk: 12 trials x 150 epochs
    .venv/bin/python benchmarks/search_pruning.py --full    # the issue's: 40 trials x 500 epochs
    .venv/bin/python benchmarks/search_pruning.py --full --pruners successive_halving,median

For each pruner: the ratio of epochs trained and of wall time to the unpruned search, and the
best trial's mean validation value, set against the unpruned best's seed-to-seed standard error
(the target: at most a third of the epochs, and a best within that standard error). Every
setting is 3 seeds, eval_every=10, --stacked, and the same sampler seed with and without pruning.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from regbench.analysis.runs import load_run, value_at  # noqa: E402
from regbench.core.rundir import RunDir  # noqa: E402

SPACE = ("dropout=interval(0,0.6)", "weight_decay=tag(log,interval(1e-5,1e-2))")


@dataclass
class Outcome:
    pruner: str
    seconds: float
    epochs: int  # epochs trained, summed over every run
    best: float  # the best trial's mean val_loss
    best_se: float  # its seeds' standard error
    pruned: int  # trials pruned


def search(pruner: str, args: argparse.Namespace, where: Path) -> Outcome:
    """One search through the CLI, as a user runs it; timed as a whole."""
    seeds = ",".join(str(s) for s in range(1, args.seeds + 1))
    folder = where / pruner
    command = [
        str(Path(sys.executable).with_name("regbench")), "sweep", "model=regression",
        f"epochs={args.epochs}", "eval_every=10", "threads=1", "device=cpu",
        "hydra/sweeper=optuna", f"hydra.sweeper.n_trials={args.trials}",
        f"hydra.sweeper.sampler.seed={args.sampler_seed}", f"hydra/sweeper/pruner={pruner}",
        *SPACE, f"seed={seeds}", "--stacked", "-q", "--dir", str(folder),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=where)
    seconds = time.perf_counter() - start
    trials = json.loads((folder / "sweep.json").read_text())["search"]["trials"]
    return Outcome(pruner, seconds, _epochs(folder, trials), *_best(folder, trials),
                   sum(t.get("pruned_epoch") is not None for t in trials))  # fmt: skip


def _epochs(folder: Path, trials: list[dict]) -> int:
    total = 0
    for trial in trials:
        for key in trial["jobs"]:
            rows = load_run(folder / key).rows
            total += max((int(r["epoch"]) for r in rows), default=0)
    return total


def _best(folder: Path, trials: list[dict]) -> tuple[float, float]:
    """The best finished trial's mean val_loss and its seeds' standard error."""
    done = [t for t in trials if isinstance(t.get("value"), float) and math.isfinite(t["value"])]
    best = min(done, key=lambda t: t["value"])
    values = [value_at(load_run(folder / k).rows, "val_loss", "final") for k in best["jobs"]]
    finite = [v for v in values if v is not None]
    se = statistics.stdev(finite) / math.sqrt(len(finite)) if len(finite) > 1 else math.nan
    assert all(RunDir(folder / k).read_summary().completed for k in best["jobs"])
    return best["value"], se


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's size: 40 x 500")
    parser.add_argument("--trials", type=int, help="default 12 (--full: 40)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, help="default 150 (--full: 500)")
    parser.add_argument("--sampler-seed", type=int, default=0)
    parser.add_argument("--pruners", default="median,successive_halving,hyperband")
    args = parser.parse_args()
    trials, epochs = (40, 500) if args.full else (12, 150)
    args.trials = args.trials or trials
    args.epochs = args.epochs or epochs
    with tempfile.TemporaryDirectory() as tmp:
        base = search("none", args, Path(tmp))
        print(
            f"{args.trials} trials x {args.seeds} seeds x {args.epochs} epochs, --stacked: "
            f"unpruned {base.seconds:.1f} s, {base.epochs} epochs, best val_loss "
            f"{base.best:.5g} (seed-to-seed SE {base.best_se:.2g})"
        )
        for pruner in args.pruners.split(","):
            got = search(pruner, args, Path(tmp))
            within = abs(got.best - base.best) <= base.best_se
            print(
                f"{pruner}: epochs {got.epochs / base.epochs:.2f}x (target <= 0.33), wall "
                f"{got.seconds / base.seconds:.2f}x, {got.pruned}/{args.trials} trials pruned, "
                f"best {got.best:.5g} vs {base.best:.5g} "
                f"({'within' if within else 'outside'} the unpruned best's SE {base.best_se:.2g})"
            )


if __name__ == "__main__":
    main()
