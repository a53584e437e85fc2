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

from regbench.diagnostics import add_gap, weight_rows
from regbench.dropout import apply_schedule
from regbench.errors import RegbenchError
from regbench.seeding import capture_rng, restore_rng

if TYPE_CHECKING:
    from regbench.config import Settings
    from regbench.loggers import Logger
    from regbench.progress import Reporter
    from regbench.rundir import RunDir
    from regbench.studies.base import Study

FINITE_CHECK_EVERY = 25  # batches between divergence checks (each one is a host sync)


class Diverged(RegbenchError):
    """The loss became NaN, infinite, or exploded."""

    def __init__(self, epoch: int, what: str) -> None:
        super().__init__(f"diverged at epoch {epoch}: {what} (try a smaller lr)")
        self.epoch = epoch


class DivergenceGuard:
    """Stops a run whose logged terms turn NaN/infinite, or grow past ``factor`` x their first
    batch's size (at least 1): Adam with a huge lr often explodes to 1e13 without ever
    producing a NaN, and such a run has diverged just the same."""

    def __init__(self, factor: float | None, reference: dict[str, float] | None = None) -> None:
        self.factor = factor
        self.reference = reference

    def observe_first(self, terms: dict[str, torch.Tensor]) -> None:
        if self.reference is None:
            self.reference = {k: max(abs(float(v)), 1.0) for k, v in terms.items()}

    def check(self, sums: dict[str, torch.Tensor], steps: int, epoch: int) -> None:
        if not sums:
            return
        means = torch.stack([v / steps for v in sums.values()])
        limits = torch.tensor(
            [self._limit(k) for k in sums], dtype=means.dtype, device=means.device
        )
        if bool((torch.isfinite(means) & (means.abs() <= limits)).all()):  # one host sync
            return
        for key, mean in zip(sums, means.tolist(), strict=True):
            if not math.isfinite(mean):
                raise Diverged(epoch, f"{key} became NaN or infinite")
            if abs(mean) > self._limit(key):
                raise Diverged(
                    epoch,
                    f"{key} reached {mean:.3g}, over {self.factor:g}x its first value "
                    f"(diverge_factor)",
                )

    def _limit(self, key: str) -> float:
        if self.factor is None or self.reference is None or key not in self.reference:
            return math.inf
        return self.factor * self.reference[key]


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
    logger: Logger | None = None,
) -> list[dict[str, Any]]:
    """Train ``study`` for ``settings.epochs``, writing a metrics row and a checkpoint at each
    evaluation (and telling ``logger``); continue from ``checkpoint`` when given. Returns all
    metrics rows."""
    generator = torch.Generator().manual_seed(settings.seed)
    rows: list[dict[str, Any]] = []
    guard = DivergenceGuard(settings.diverge_factor)
    if checkpoint is not None:
        rows = _restore(study, generator, checkpoint)
        guard.reference = checkpoint.get("divergence_reference")
    first_epoch = rows[-1]["epoch"] + 1 if rows else 1
    batches_per_epoch = math.ceil(study.n_train / settings.batch_size)
    reporter.start(settings.epochs, batches_per_epoch, done=first_epoch - 1)
    sums: dict[str, torch.Tensor] = {}
    steps, window_start = 0, time.perf_counter()
    for epoch in range(first_epoch, settings.epochs + 1):
        apply_schedule(study.networks.values(), settings, epoch)
        study.train_mode(True)
        for batch in shuffled_batches(study.n_train, settings.batch_size, generator, study.device):
            terms = study.train_step(batch)
            guard.observe_first(terms)
            _accumulate(sums, terms)
            steps += 1
            if steps % FINITE_CHECK_EVERY == 0:
                guard.check(sums, steps, epoch)
            reporter.batch_done()
        reporter.epoch_done(epoch)
        if epoch % settings.eval_every and epoch != settings.epochs:
            continue
        guard.check(sums, steps, epoch)
        row = {"epoch": epoch, **{k: (v / steps).item() for k, v in sums.items()}}
        study.train_mode(False)
        with torch.no_grad():
            row.update(study.evaluate())
        add_gap(row)
        row["seconds"] = time.perf_counter() - window_start
        rows.append(row)
        run_dir.append_weights(weight_rows(epoch, study.networks, settings.weight_threshold))
        run_dir.append_metrics(row)
        run_dir.save_checkpoint(_checkpoint(study, generator, rows, guard))
        reporter.row(row)
        if logger is not None:
            logger.log_row(row, study.networks)
        sums, steps, window_start = {}, 0, time.perf_counter()
    return rows


def _accumulate(sums: dict[str, torch.Tensor], terms: dict[str, torch.Tensor]) -> None:
    for key, value in terms.items():
        sums[key] = sums[key] + value if key in sums else value.clone()


def _checkpoint(
    study: Study, generator: torch.Generator, rows: list[dict[str, Any]], guard: DivergenceGuard
) -> dict[str, Any]:
    return {
        "divergence_reference": guard.reference,
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
