"""The training loop, written once for every study and for stacked sweeps.

``run_epochs`` is the loop: epochs of batches, a divergence check every few batches, and at each
evaluation a metrics row. What a step, a check and a row mean is the trainer's: ``SoloTrainer``
trains one study into one run session; the stacked launcher's trainer (stacked.py) trains K
members at once into K sessions.

Batches are shuffled indices drawn from a seeded generator over tensors already on the device (no
per-sample Dataset/DataLoader). Loss terms are summed on the device and read once per metrics row,
so the hot loop does not wait on the host.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import torch

from regbench.core.errors import Diverged
from regbench.core.seeding import capture_rng, restore_rng
from regbench.regularization.dropout import apply_schedule

if TYPE_CHECKING:
    from regbench.core.config import Settings
    from regbench.core.progress import Reporter
    from regbench.studies.base import Study
    from regbench.training.session import RunSession

FINITE_CHECK_EVERY = 25  # batches between divergence checks (each one is a host sync)
Sums = dict[str, torch.Tensor]


class Trainer(Protocol):
    """What ``run_epochs`` drives."""

    batches_per_epoch: int

    def epoch_batches(self, epoch: int) -> Iterable[torch.Tensor]:
        """Set up ``epoch`` (dropout schedule, train mode) and give its batches' indices."""

    def step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimization step; the logged loss terms, on the device."""

    def check(self, sums: Sums, steps: int, epoch: int) -> None:
        """Stop (or stop the members) whose mean terms so far diverged."""

    def active(self) -> bool:
        """Whether anything is still training (not diverged, not stopped early)."""

    def record(self, epoch: int, sums: Sums, steps: int, window_start: float) -> None:
        """Evaluate and write the metrics row of ``epoch`` (terms: ``sums`` / ``steps``;
        epoch 0, before any step: no sums, ``steps`` 0, see ``train_means``)."""


def run_epochs(
    trainer: Trainer,
    settings: Settings,
    reporter: Reporter,
    first_epoch: int = 1,
    at_start: bool = False,
) -> None:
    """Epochs ``first_epoch``..``settings.epochs``, a row every ``eval_every`` and at the last;
    with ``at_start`` first the row of epoch 0, the untrained model (eval_at_start). Epoch 0 is
    no training epoch: the rows still fall on eval_every's multiples, 0, k, 2k, ..."""
    reporter.start(settings.epochs, trainer.batches_per_epoch, done=first_epoch - 1)
    if at_start:
        trainer.record(0, {}, 0, time.perf_counter())
        if not trainer.active():  # nothing stops here today; a trainer may say otherwise
            return
    sums: Sums = {}
    steps, window_start = 0, time.perf_counter()
    for epoch in range(first_epoch, settings.epochs + 1):
        for batch in trainer.epoch_batches(epoch):
            accumulate(sums, trainer.step(batch))
            steps += 1
            if steps % FINITE_CHECK_EVERY == 0:
                trainer.check(sums, steps, epoch)
            reporter.batch_done()
        reporter.epoch_done(epoch)
        if epoch % settings.eval_every and epoch != settings.epochs:
            continue
        trainer.check(sums, steps, epoch)
        if not trainer.active():
            return
        trainer.record(epoch, sums, steps, window_start)
        if not trainer.active():  # everything stopped early
            return
        sums, steps, window_start = {}, 0, time.perf_counter()


def train_means(sums: Sums, steps: int, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """The training terms' means since the last row, on the device. Before any step (the row
    of epoch 0) each of ``names`` (the study's step terms) is NaN: they are means over training
    steps in training mode, and none was taken; metrics.csv's header, written with the first
    row, must name them all the same."""
    if steps == 0:
        return {name: torch.tensor(math.nan) for name in names}
    return {key: value / steps for key, value in sums.items()}


@contextmanager
def untouched_rng(epoch: int) -> Iterator[None]:
    """Every global RNG as it was before, after the evaluation of epoch 0: MC dropout draws its
    masks from them, so without this eval_at_start would change every trained number after."""
    if epoch != 0:
        yield
        return
    spare = torch.Generator()  # capture_rng also takes a data generator's state; not ours here
    state = capture_rng(spare)
    try:
        yield
    finally:
        restore_rng(state, spare)


def accumulate(sums: Sums, terms: dict[str, torch.Tensor]) -> None:
    for key, value in terms.items():
        sums[key] = sums[key] + value if key in sums else value.clone()


class DivergenceGuard:
    """Stops a run whose logged terms turn NaN/infinite, or grow past ``factor`` x their first
    batch's size (at least 1): Adam with a huge lr often explodes to 1e13 without ever
    producing a NaN, and such a run has diverged just the same."""

    def __init__(
        self,
        factor: float | None,
        reference: dict[str, float] | None = None,
        advice: Callable[[str], str] | None = None,
    ) -> None:
        self.factor = factor
        self.reference = reference
        self.advice = advice or (lambda key: "try a smaller lr")

    def observe_first(self, terms: dict[str, torch.Tensor]) -> None:
        if self.reference is None:
            self.reference = {k: max(abs(float(v)), 1.0) for k, v in terms.items()}

    def check(self, sums: Sums, steps: int, epoch: int) -> None:
        if not sums:
            return
        means = torch.stack([v / steps for v in sums.values()])
        limits = torch.tensor(
            [self._limit(k) for k in sums], dtype=means.dtype, device=means.device
        )
        if bool((torch.isfinite(means) & (means.abs() <= limits)).all()):  # one host sync
            return
        # A penalty that explodes takes the data loss with it: when both are bad, name the
        # penalty, the cause.
        terms = sorted(zip(sums, means.tolist(), strict=True), key=_penalties_first)
        for key, mean in terms:
            if not math.isfinite(mean):
                raise Diverged(epoch, f"{key} became NaN or infinite", self.advice(key))
            if abs(mean) > self._limit(key):
                raise Diverged(
                    epoch,
                    f"{key} reached {mean:.3g}, over {self.factor:g}x its first value "
                    f"(diverge_factor)",
                    self.advice(key),
                )

    def _limit(self, key: str) -> float:
        if self.factor is None or self.reference is None or key not in self.reference:
            return math.inf
        return self.factor * self.reference[key]


def _penalties_first(term: tuple[str, float]) -> bool:
    return not term[0].endswith("_penalty")


def divergence_advice(settings: Settings) -> Callable[[str], str]:
    """What to change when the logged term ``key`` explodes: a penalty term is its strength's
    doing, not the learning rate's; a data loss may be either the lr's or the data's."""

    def advice(key: str) -> str:
        if key == "l1_penalty":
            return f"l1={settings.l1:g} is too strong; try a smaller l1"
        if key == "l2_penalty":
            return f"l2={settings.l2:g} is too strong; try a smaller l2"
        return f"try a smaller lr (lr={settings.lr:g}), or check the data settings (data.*)"

    return advice


def shuffled_batches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """Index batches for one epoch; the order comes from ``generator`` (CPU, seeded)."""
    return torch.randperm(n, generator=generator).to(device).split(batch_size)


def evaluate(study: Study) -> dict[str, float]:
    """The study's held-out metrics, in eval mode and without gradients."""
    study.train_mode(False)
    with torch.no_grad():
        return study.evaluate()


def checkpoint_state(
    study: Study,
    generator: torch.Generator,
    rows: list[dict[str, Any]],
    guard: DivergenceGuard,
) -> dict[str, Any]:
    """Everything a resume needs: weights, optimizer states, every RNG state, rows so far."""
    return {
        "config": study.settings.to_dict(),  # what resume checks config.yaml against
        "divergence_reference": guard.reference,
        "epoch": rows[-1]["epoch"],
        "networks": study.state_dicts(),
        "optimizers": {name: opt.state_dict() for name, opt in study.optimizers.items()},
        "rng": capture_rng(generator),
        "rows": rows,
    }


def restore(study: Study, generator: torch.Generator, checkpoint: dict[str, Any]) -> None:
    """Weights, optimizer states and RNG states as ``checkpoint`` saved them."""
    for name, net in study.networks.items():
        net.load_state_dict(checkpoint["networks"][name])
    for name, optimizer in study.optimizers.items():
        optimizer.load_state_dict(checkpoint["optimizers"][name])
    restore_rng(checkpoint["rng"], generator)


class SoloTrainer:
    """One study into one run session; continues from ``checkpoint`` when given."""

    def __init__(
        self, study: Study, settings: Settings, checkpoint: dict[str, Any] | None = None
    ) -> None:
        self.study, self.settings = study, settings
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.guard = DivergenceGuard(settings.diverge_factor, advice=divergence_advice(settings))
        if checkpoint is not None:
            restore(study, self.generator, checkpoint)
            self.guard.reference = checkpoint.get("divergence_reference")
        self.batches_per_epoch = math.ceil(study.n_train / settings.batch_size)
        self.session: RunSession | None = None

    def state(self) -> dict[str, Any]:
        assert self.session is not None
        return checkpoint_state(self.study, self.generator, self.session.rows, self.guard)

    def train(self, session: RunSession, reporter: Reporter) -> None:
        """Train into ``session`` from the epoch after its last row."""
        self.session = session
        if session.stopped_early:  # interrupted after its last row: nothing left to train
            return
        first_epoch = session.rows[-1]["epoch"] + 1 if session.rows else 1
        # A resumed run has its epoch-0 row (its checkpoint's first): never evaluated twice.
        at_start = self.settings.eval_at_start and not session.rows
        run_epochs(self, self.settings, reporter, first_epoch, at_start)

    def epoch_batches(self, epoch: int) -> Iterable[torch.Tensor]:
        apply_schedule(self.study.networks.values(), self.settings, epoch)
        self.study.train_mode(True)
        return shuffled_batches(
            self.study.n_train, self.settings.batch_size, self.generator, self.study.device
        )

    def step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = self.study.train_step(batch)
        self.guard.observe_first(terms)
        return terms

    def check(self, sums: Sums, steps: int, epoch: int) -> None:
        self.guard.check(sums, steps, epoch)

    def active(self) -> bool:
        # A diverged solo run stops by raising; one whose validation metric stopped improving
        # (early_stop.patience) stops here.
        return self.session is None or not self.session.stopped_early

    def record(self, epoch: int, sums: Sums, steps: int, window_start: float) -> None:
        assert self.session is not None
        means = train_means(sums, steps, self.study.step_terms)
        row = {"epoch": epoch, **{k: v.item() for k, v in means.items()}}
        with untouched_rng(epoch):
            row.update(evaluate(self.study))
        self.session.record(row, time.perf_counter() - window_start)
