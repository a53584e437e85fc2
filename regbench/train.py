"""The training loop, written once for every study.

Batches are shuffled indices drawn from a seeded generator over tensors already on the device (no
per-sample Dataset/DataLoader). Loss terms are summed on the device and read once per metrics row,
so the hot loop does not wait on the host; a finiteness check every few batches catches divergence.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import torch

from regbench.errors import RegbenchError
from regbench.seeding import capture_rng, restore_rng

if TYPE_CHECKING:
    from regbench.config import Settings
    from regbench.models.base import Study
    from regbench.progress import Reporter
    from regbench.rundir import RunDir

FINITE_CHECK_EVERY = 25  # batches between divergence checks (each one is a host sync)


class Diverged(RegbenchError):
    """The loss became NaN or infinite."""

    def __init__(self, epoch: int, terms: list[str]) -> None:
        super().__init__(
            f"diverged at epoch {epoch}: {', '.join(terms)} became NaN or infinite "
            f"(try a smaller lr)"
        )
        self.epoch = epoch


def shuffled_batches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Index batches for one epoch; the order comes from ``generator`` (CPU, seeded)."""
    return torch.randperm(n, generator=generator).to(device).split(batch_size)


def train(
    study: Study,
    settings: Settings,
    run_dir: RunDir,
    reporter: Reporter,
    checkpoint: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train ``study`` for ``settings.epochs``, writing a metrics row and a checkpoint at each
    evaluation; continue from ``checkpoint`` when given. Returns all metrics rows."""
    generator = torch.Generator().manual_seed(settings.seed)
    rows: list[dict[str, Any]] = []
    if checkpoint is not None:
        rows = _restore(study, generator, checkpoint)
    first_epoch = rows[-1]["epoch"] + 1 if rows else 1
    batches_per_epoch = math.ceil(study.n_train / settings.batch_size)
    reporter.start(settings.epochs, batches_per_epoch, done=first_epoch - 1)
    sums: dict[str, torch.Tensor] = {}
    steps, window_start = 0, time.perf_counter()
    for epoch in range(first_epoch, settings.epochs + 1):
        study.train_mode(True)
        for batch in shuffled_batches(study.n_train, settings.batch_size, generator, study.device):
            _accumulate(sums, study.train_step(batch))
            steps += 1
            if steps % FINITE_CHECK_EVERY == 0:
                _check_finite(sums, epoch)
            reporter.batch_done()
        reporter.epoch_done(epoch)
        if epoch % settings.eval_every and epoch != settings.epochs:
            continue
        _check_finite(sums, epoch)
        row = {"epoch": epoch, **{k: (v / steps).item() for k, v in sums.items()}}
        study.train_mode(False)
        with torch.no_grad():
            row.update(study.evaluate())
        row["seconds"] = time.perf_counter() - window_start
        rows.append(row)
        run_dir.append_metrics(row)
        run_dir.save_checkpoint(_checkpoint(study, generator, rows))
        reporter.row(row)
        sums, steps, window_start = {}, 0, time.perf_counter()
    return rows


def _accumulate(sums: dict[str, torch.Tensor], terms: dict[str, torch.Tensor]) -> None:
    for key, value in terms.items():
        sums[key] = sums[key] + value if key in sums else value.clone()


def _check_finite(sums: dict[str, torch.Tensor], epoch: int) -> None:
    if not sums or bool(torch.isfinite(torch.stack(list(sums.values()))).all()):
        return
    raise Diverged(epoch, [k for k, v in sums.items() if not torch.isfinite(v)])


def _checkpoint(
    study: Study, generator: torch.Generator, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "epoch": rows[-1]["epoch"],
        "networks": study.state_dicts(),
        "optimizers": {name: opt.state_dict() for name, opt in study.optimizers.items()},
        "rng": capture_rng(generator),
        "rows": rows,
    }


def _restore(
    study: Study, generator: torch.Generator, checkpoint: dict[str, Any]
) -> list[dict[str, Any]]:
    for name, net in study.networks.items():
        net.load_state_dict(checkpoint["networks"][name])
    for name, optimizer in study.optimizers.items():
        optimizer.load_state_dict(checkpoint["optimizers"][name])
    restore_rng(checkpoint["rng"], generator)
    return [dict(row) for row in checkpoint["rows"]]
