"""Planning a sweep's grid: every job composed by Hydra from scratch (before) vs each choice of
configs composed once and each job's value overrides applied to a copy (after, JobComposer),
measured side by side in one process run.

    .venv/bin/python benchmarks/plan_grid.py            # a 300-job grid (30 seeds x 10 dropouts)
    .venv/bin/python benchmarks/plan_grid.py --tiny     # a 20-job grid: a smoke run in seconds

Both sides compose the same cells (Hydra's basic sweeper's, as ``regbench sweep`` plans them)
and must give equal configs. Rounds alternate (before, after, before, ...) and each side keeps
its best round, so a machine shared with other work slows both alike. ``regbench sweep
--dry-run`` of the same grid also validates each job (a few ms a job) and imports the studies.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

ROUNDS = 3


def grid(seeds: int, dropouts: int) -> list[str]:
    values = ",".join(f"{i / dropouts:g}" for i in range(dropouts))
    return ["model=regression", "epochs=1", f"seed=range(1,{seeds + 1})", f"dropout={values}"]


def compose_all(overrides: Sequence[str], reuse_trees: bool) -> tuple[float, list[dict]]:
    """Seconds to compose every job of the grid ``overrides``, and the configs."""
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from regbench.compose import hydra as app

    with app.regbench_configs():
        loader = GlobalHydra.instance().config_loader()
        master = app.multirun_config(overrides, loader)
        cells, _ = app._cross(master, loader)
        hydra_overrides = OmegaConf.to_container(master.hydra.overrides.hydra)
        started = time.perf_counter()
        composer = app.JobComposer(loader, hydra_overrides, reuse_trees=reuse_trees)
        configs = [composer.compose(cell) for cell in cells]
        return time.perf_counter() - started, configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a 20-job grid instead of 300")
    args = parser.parse_args()
    overrides = grid(2, 10) if args.tiny else grid(30, 10)
    best = {False: float("inf"), True: float("inf")}
    for _ in range(ROUNDS):
        results = {}
        for reuse in (False, True):
            seconds, results[reuse] = compose_all(overrides, reuse)
            best[reuse] = min(best[reuse], seconds)
        assert results[False] == results[True], "the two ways composed different configs"
    jobs = len(results[True])
    print(f"grid: {' '.join(overrides)} ({jobs} jobs), best of {ROUNDS} rounds each")
    for reuse, how in ((False, "before, every job from scratch"), (True, "after, a tree a choice")):
        print(f"  {how:30} {best[reuse]:.2f} s ({best[reuse] / jobs * 1e3:.1f} ms a job)")
    print(f"  speed-up: {best[False] / best[True]:.1f}x")


if __name__ == "__main__":
    main()
