"""The stacked sweep launcher: train K configurations of one study together, as one model.

A regularization sweep is many small runs of one architecture (grid x seeds). Run one after
another, every run pays Python's and the dispatcher's per-step cost on its own. Stacked, each
parameter of the K members is one ``[K, ...]`` tensor (``torch.func.stack_module_state``), and a
training step is one forward through a copy of the network whose layers run all members at once
(regbench/stacked_net.py: batched matrix products), one backward and one optimizer update for
all members, so that cost is paid once for K.

Members may differ in ``seed``, ``dropout``, ``l1``, ``l2``, ``weight_decay``, ``max_norm`` and
``lr`` (and in ``name``/``out_dir``); these become per-member tensors.
Jobs that agree on everything else (model, data, batch size, epochs, optimizer, ...) form a
group; a group is split into chunks that fit a memory budget. A job that cannot be stacked (a
study without a stacked form, e.g. the GAN, or a group of one) runs the normal way, with a note.

Each member behaves like its solo run:

- its weights start as the solo run's: its own Study is built after seeding with its seed;
- its batches come from its own data-order generator seeded with its seed;
- its dropout masks come from its own generator, which starts where the solo run's global torch
  RNG stands after building the model and draws the same masks in the same order (on the CPU
  they are the solo run's masks);
- its update is torch's Adam/AdamW/SGD maths with its own lr and weight_decay
  (regbench/stacked_optimizer.py);
- it is trained by the one loop (train.run_epochs) into its own run session (session.py), the
  same life cycle as a solo run: evaluation through its own Study, metrics rows, weights.csv,
  checkpoints, model.pt, plots and summary, so ``compare``, ``rerun``, ``resume`` and ``plot``
  cannot tell a stacked run from a solo one; ``summary.json`` says ``"stacked": true``. A
  member's checkpoint resumes through the normal (solo) path.

What this module adds is only the stack: grouping and chunking jobs, the members' generators,
the stacked step (``_Stack.step``) and the trainer that hands each member's row to its session.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from regbench.core.config import top_level
from regbench.core.errors import Diverged, NotStackable
from regbench.core.jobs import Job
from regbench.core.progress import Reporter
from regbench.core.rundir import Status
from regbench.core.seeding import capture_rng, preserved_globals, restore_rng
from regbench.stacked.net import (
    StackedParameters,
    check_forward,
    solo_loss,
    stacked_template,
)
from regbench.stacked.optimizer import StackedOptimizer, inverse_order
from regbench.training import runner
from regbench.training.loop import (
    DivergenceGuard,
    Sums,
    checkpoint_state,
    divergence_advice,
    evaluate,
    run_epochs,
    train_means,
    untouched_rng,
)
from regbench.training.session import RunResult, RunSession, closing

if TYPE_CHECKING:
    from regbench.core.config import Settings, SourceConfig
    from regbench.data import DataBundle
    from regbench.studies.base import Study

# Settings that may differ between the members of one stack; every other key must agree
# (declared: Key.member).
MEMBER_KEYS = top_level(lambda declared: declared.member)
NETWORK = "model"  # the one network (and optimizer) a stackable study trains
CPU_BUDGET_FRACTION = 0.5  # of MemAvailable, when no budget is given
CUDA_BUDGET_FRACTION = 0.8  # of free device memory
FALLBACK_BUDGET = 4 * 2**30  # when the available memory cannot be read
ACTIVATION_FACTOR = 2  # saved activations, plus as much again for their gradients
# Parameter-sized tensors a member holds besides its optimizer state (counted twice: the stack's
# and the copy exported to the member's own optimizer): the stacked leaf, its gradient, the
# member's own network, and a penalty temporary.
PARAMETER_COPIES = 4
SAFETY = 1.5  # allocator slack and what the estimate leaves out (measured: benchmarks/bench.py)


def group_key(settings: Settings) -> str:
    """Jobs with equal keys can be stacked: everything but the per-member settings agrees
    (top-level ones and a study's own, e.g. model.conv_dropout, whose modules say their p)."""
    config = settings.to_dict()
    for dotted, declared in settings.declared().items():
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if declared.member and isinstance(node, dict):
            node.pop(leaf, None)
    return json.dumps(config, sort_keys=True, default=str)


def group_jobs(jobs: Sequence[Job]) -> list[list[int]]:
    """Indices of ``jobs`` by group, groups in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(group_key(job.settings), []).append(i)
    return list(groups.values())


# (epoch, the chunk's run sessions in job order) -> whether to stop the chunk's runs there,
# as pruned; called after every evaluation of a stack (a search's pruner).
EvaluationHook = Callable[[int, Sequence[RunSession]], bool]


def run_stacked(
    jobs: Sequence[Job | Settings],
    reporter: Reporter | None = None,
    memory_budget: int | None = None,
    on_failure: Callable[[Job, Exception], None] | None = None,
    on_evaluation: EvaluationHook | None = None,
) -> list[RunResult | None]:
    """Run ``jobs`` stacked where they can be, one by one where not; results in job order.

    ``memory_budget`` (bytes) bounds what one stacked chunk may allocate; by default half the
    available memory on the CPU, 80% of the free memory on CUDA. Without ``on_failure`` an error
    stops everything, as it stops ``regbench run``; with it, each job an error hit is handed to
    it with the error, its result is None, and the other jobs go on (a sweep's way).
    ``on_evaluation`` sees each chunk's runs after every evaluation and may stop them as
    pruned; with it a lone job trains as a stack of one, so that it is seen too.
    """
    jobs = [job if isinstance(job, Job) else Job(job) for job in jobs]
    reporter = reporter or Reporter()
    results: dict[int, RunResult | None] = {}
    with preserved_globals():
        for indices in group_jobs(jobs):
            # Members with an l1 (an l2) penalty side by side: penalties cost a slice of the stack.
            indices.sort(key=lambda i: (jobs[i].settings.l1 > 0, jobs[i].settings.l2 > 0))
            group = [jobs[i] for i in indices]
            outcome = _Group(group, reporter, memory_budget, on_failure, on_evaluation).run()
            results.update(zip(indices, outcome, strict=True))
    return [results[i] for i in range(len(jobs))]


# ----------------------------------------------------------------------------- groups
class _Group:
    """Jobs that can stack: trained in chunks that fit the memory budget, or one by one with a
    note where they cannot be stacked. With ``on_failure``, the jobs of a failing chunk (or
    solo run) are handed to it and get None, and the others go on."""

    def __init__(
        self,
        jobs: list[Job],
        reporter: Reporter,
        memory_budget: int | None,
        on_failure: Callable[[Job, Exception], None] | None,
        on_evaluation: EvaluationHook | None = None,
    ) -> None:
        self.jobs, self.reporter, self.on_evaluation = jobs, reporter, on_evaluation
        self.memory_budget, self.on_failure = memory_budget, on_failure
        self.data, self.notices = _SharedData(), _NoticeOnce(reporter)
        self.model = jobs[0].settings.model.name

    def run(self) -> list[RunResult | None]:
        if len(self.jobs) == 1 and self.on_evaluation is None:
            note = "no other job shares its model, data and schedule"
            self.reporter.notice(f"stacked: a {self.model} run runs alone ({note})")
            return self.one_by_one(note)
        first = self.jobs[0]
        try:
            (per_member,) = self.guarded(
                self.jobs, lambda: [member_bytes(first, self.notices, self.data)]
            )
        except NotStackable as exc:
            self.reporter.notice(
                f"stacked: {len(self.jobs)} {self.model} runs cannot be stacked ({exc}); "
                f"running them one by one"
            )
            return self.one_by_one(str(exc))
        if per_member is None:  # the probe failed, and on_failure heard of it
            return [None] * len(self.jobs)
        return self.in_chunks(per_member)

    def in_chunks(self, per_member: int) -> list[RunResult | None]:
        budget = self.memory_budget or default_budget(_device_of(self.jobs[0].settings))
        chunks = split_chunks(len(self.jobs), max(1, budget // per_member))
        if len(chunks) > 1:
            self.reporter.notice(
                f"stacked: {len(self.jobs)} runs in {len(chunks)} chunks (about "
                f"{per_member / 2**20:.1f} MiB a member, memory budget {budget / 2**20:.0f} MiB)"
            )
        results: list[RunResult | None] = []
        for chunk in chunks:
            jobs = [self.jobs[i] for i in chunk]
            results += self.guarded(jobs, lambda jobs=jobs: self.train(jobs))
        return results

    def train(self, jobs: list[Job]) -> list[RunResult]:
        members = [_Member.build(job, self.notices, self.data) for job in jobs]
        return _train_chunk(members, self.reporter, self.on_evaluation)

    def one_by_one(self, note: str) -> list[RunResult | None]:
        return [
            result
            for job in self.jobs
            for result in self.guarded([job], lambda job=job: [_solo(job, self.reporter, note)])
        ]

    def guarded(self, jobs: list[Job], work: Callable[[], list[Any]]) -> list[Any]:
        """``work()``; an error (other than NotStackable) goes to on_failure for each of
        ``jobs`` when there is one, else it propagates."""
        if self.on_failure is None:
            return work()
        try:
            return work()
        except NotStackable:
            raise
        except Exception as exc:  # the sweep records it per job and goes on
            for job in jobs:
                self.on_failure(job, exc)
            return [None] * len(jobs)


def member_bytes(
    job: Job, reporter: Reporter | None = None, data: _SharedData | None = None
) -> int:
    """Estimated memory one member of ``job``'s stack needs (what the budget is divided by);
    raises NotStackable, saying why, for a job that cannot be stacked."""
    member = _Member.build(job, reporter or Reporter(), data or _SharedData())
    return _Stack([member]).bytes_per_member()


def _solo(job: Job, reporter: Reporter, note: str) -> RunResult:
    """The normal path, with the reason it was not stacked in the summary."""
    extra = {"stacked": False, "stack_note": note}
    return runner.execute(
        job.settings, list(job.overrides), reporter, extra_summary=extra, run_path=job.folder
    )


def split_chunks(n: int, most: int) -> list[list[int]]:
    """0..n-1 in the fewest chunks of at most ``most``, as even as possible."""
    count = math.ceil(n / most)
    size, extra = divmod(n, count)
    chunks, start = [], 0
    for c in range(count):
        end = start + size + (c < extra)
        chunks.append(list(range(start, end)))
        start = end
    return chunks


def default_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CUDA_BUDGET_FRACTION)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(int(line.split()[1]) * 1024 * CPU_BUDGET_FRACTION)
    except OSError:
        pass
    return FALLBACK_BUDGET


def _device_of(settings: Settings) -> torch.device:
    return runner.resolve_device(settings.device)


class _SharedData:
    """Loads each (data config, seed) once, and hands out one bundle for equal data, so members
    of a stack share tensors (MNIST does not depend on the seed; generated data does)."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[Any, int], DataBundle] = {}
        self.distinct: list[DataBundle] = []

    def load(self, config: SourceConfig, seed: int) -> DataBundle:
        from regbench.data import load_data

        key = (config, seed)
        if key not in self.by_key:
            bundle = load_data(config, seed)
            same = next((b for b in self.distinct if _same_data(b, bundle)), None)
            if same is None:
                self.distinct.append(bundle)
            self.by_key[key] = same or bundle
        return self.by_key[key]


def _same_data(a: DataBundle, b: DataBundle) -> bool:
    if a.describe() != b.describe():
        return False
    return all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        for x, y in ((a.train, b.train), (a.test, b.test))
    )


class _NoticeOnce(Reporter):
    """Passes each distinct notice on once (K members would repeat a data fallback K times)."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__(reporter.console)
        self.reporter, self.seen = reporter, set()

    def notice(self, text: str) -> None:
        if text not in self.seen:
            self.seen.add(text)
            self.reporter.notice(text)


# ----------------------------------------------------------------------------- members
@dataclass
class _Member:
    """One job of a stack: its solo Study (for evaluation, checkpoints and outputs), its own
    data-order and dropout-mask generators, and the global RNG states it owns."""

    job: Job
    study: Study
    data_gen: torch.Generator
    mask_gen: torch.Generator
    rng: dict[str, Any]
    guard: DivergenceGuard
    session: RunSession | None = None  # its run, once the stack trains

    @property
    def settings(self) -> Settings:
        return self.job.settings

    @classmethod
    def build(cls, job: Job, notices: Reporter, data: _SharedData) -> _Member:
        """Exactly the solo run's start: seed, data, seed, Study (runner.prepare)."""
        _, study = runner.prepare(job.settings, notices, load=data.load)
        mask_gen = torch.Generator(study.device)
        mask_gen.set_state(_default_generator(study.device).get_state())
        data_gen = torch.Generator().manual_seed(job.settings.seed)
        return cls(
            job, study, data_gen, mask_gen, capture_rng(data_gen),
            DivergenceGuard(job.settings.diverge_factor, advice=divergence_advice(job.settings)),
        )  # fmt: skip

    @contextmanager
    def own_rng(self) -> Iterator[None]:
        """The global RNGs as the solo run would have them (its evaluation, e.g. MC dropout, and
        its checkpoint's RNG capture use them); the device's stream is the mask generator's."""
        restore_rng(self.rng, torch.Generator())  # globals only: the data generator is live
        device_gen = _default_generator(self.study.device)
        device_gen.set_state(self.mask_gen.get_state())
        try:
            yield
        finally:
            self.mask_gen.set_state(device_gen.get_state())
            self.rng = capture_rng(self.data_gen)

    def open_session(self, k: int, members: Sequence[_Member], reporter: Reporter) -> RunSession:
        """Member k's run folder, written like a solo run's; its summary says it was stacked,
        and with which job folders, in order (what `regbench rerun` rebuilds the stack from)."""
        chunk = [m.job.folder.name if m.job.folder else None for m in members]
        stack = {"size": len(members), "member": k, "members": chunk}
        self.session = RunSession.open_run(
            self.settings,
            self.study,
            self.job.overrides,
            reporter,
            self.checkpoint_state,
            folder=self.job.folder,
            extra={"stacked": True, "stack": stack},
            row_label={"member": f"{k + 1}/{len(members)}"},
        )
        return self.session

    def checkpoint_state(self) -> dict[str, Any]:
        assert self.session is not None
        return checkpoint_state(self.study, self.data_gen, self.session.rows, self.guard)

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.is_open


def _default_generator(device: torch.device) -> torch.Generator:
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index or torch.cuda.current_device()]
    return torch.default_generator


# ----------------------------------------------------------------------------- the stack
@dataclass(frozen=True)
class _Call:
    """One dropout call of a training forward: which module, and its mask's shape and strides
    (those of ``empty_like(x)``: how the solo run's mask maps random draws to units)."""

    index: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


class _Stack:
    """K members' network as stacked parameters (``stack_module_state``: one [K, ...] leaf per
    parameter), the stacked forward and loss (regbench/stacked_net.py), per-member dropout
    masks, penalties and optimizer."""

    def __init__(self, members: list[_Member]) -> None:
        from torch.func import stack_module_state

        from regbench.regularization.penalties import split_parameters

        study = members[0].study
        settings = members[0].settings
        self.members, self.device, self.k = members, study.device, len(members)
        study.check_stackable()
        if set(study.networks) != {NETWORK} or set(study.optimizers) != {NETWORK}:
            raise NotStackable("it trains more than one network")
        net = study.networks[NETWORK]
        self.loss = study.batch_loss
        self.params = StackedParameters()
        self.template, masked = stacked_template(net, self.params)
        self.dropouts = list(masked.values())
        self.dropout_names = list(masked)
        penalized, _ = split_parameters([net], settings.penalize)
        names = {id(p): n for n, p in net.named_parameters()}
        self.penalized = [names[id(p)] for p in penalized]  # in the solo penalty's order
        # The optimizer's tensors; the network sees them through ``views`` (see _adopt_layouts).
        self.leaves, _ = stack_module_state([m.study.networks[NETWORK] for m in members])
        self.orders: dict[str, tuple[int, ...]] | None = None
        self.data = _StackedData(members)
        self._check_forward()
        self.l1 = self._per_member(lambda s: s.l1)
        self.l2 = self._per_member(lambda s: s.l2)
        self.l1_runs = _runs([m.settings.l1 > 0 for m in members])
        self.l2_runs = _runs([m.settings.l2 > 0 for m in members])
        # Max-norm: one bound per member (inf: none) over every unit-weight tensor (dim > 1).
        self.max_norm = self._per_member(lambda s: math.inf if s.max_norm is None else s.max_norm)
        constrained = any(m.settings.max_norm is not None for m in members)
        self.unit_weights = [n for n, p in net.named_parameters() if p.dim() > 1 and constrained]
        self.optimizer = StackedOptimizer(
            settings.optimizer,
            study.optimizers[NETWORK].param_groups[0],
            [m.settings.lr for m in members],
            [m.settings.weight_decay for m in members],
            self.leaves,
            set(self.penalized),
        )
        self.calls: dict[int, list[_Call]] = {}
        self.active: list[int] = []
        self.p: list[list[float]] = []
        self.keep: list[torch.Tensor] = []

    def _per_member(self, value: Callable[[Settings], float]) -> torch.Tensor:
        return torch.tensor([value(m.settings) for m in self.members], device=self.device)

    def _check_forward(self) -> None:
        """The stacked loss equals each member's solo loss on a first batch (stacked_net)."""
        size = min(self.members[0].settings.batch_size, self.data.n)
        rows = torch.arange(size, device=self.device).expand(self.k, size)
        self.params.tensors = self.leaves
        try:
            networks = [m.study.networks[NETWORK] for m in self.members]
            check_forward(self.loss, self.template, networks, self.data.batch(rows))
        finally:
            self.params.tensors = {}

    # ------------------------------------------------------------------ the step
    def step(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimization step of every member on its batch ``indices[k]``; [K] loss terms."""
        batch = self.data.batch(indices)
        self._set_masks(indices.shape[1])
        self.params.tensors = self.views()
        try:
            data_loss = self.loss(self.template, batch)
        finally:
            self.params.tensors = {}
            for module in self.dropouts:
                module.mask = module.keep = None
        # Members are independent: each parameter slice gets its own member's gradient. grad
        # rather than backward: accumulating into .grad would copy each gradient once more.
        leaves = list(self.leaves.values())
        grads = dict(zip(self.leaves, torch.autograd.grad(data_loss.sum(), leaves), strict=True))
        if self.orders is None:
            grads = self._adopt_layouts(grads)
        data_loss = data_loss.detach()
        l1_term, l2_term = self._penalties(grads)
        total = data_loss + l1_term + l2_term
        self.optimizer.update(grads)
        if self.unit_weights:  # after the step, as the solo PenalizedObjective does
            from regbench.regularization.max_norm import constrain_stacked

            views = self.views()
            constrain_stacked([views[name] for name in self.unit_weights], self.max_norm)
        return {
            "train_loss": data_loss,
            "l1_penalty": l1_term.detach(),
            "l2_penalty": l2_term.detach(),
            "total_loss": total.detach(),
        }

    def views(self) -> dict[str, torch.Tensor]:
        """The stacked parameters in their modules' shapes (views of the leaves)."""
        if not self.orders:
            return self.leaves
        return {
            name: leaf.permute(inverse_order(self.orders[name])) if name in self.orders else leaf
            for name, leaf in self.leaves.items()
        }

    def _adopt_layouts(self, grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Store each parameter in the memory order its gradient arrives in (a stacked linear
        layer multiplies by its weight transposed, so the weight's gradient arrives transposed),
        so that every later gradient is contiguous like its leaf: the fused optimizer would
        otherwise copy it, every step."""
        self.orders = {}
        for name, grad in grads.items():
            order = tuple(sorted(range(grad.dim()), key=lambda d: -grad.stride()[d]))
            if order == tuple(range(grad.dim())) or not grad.permute(order).is_contiguous():
                continue
            self.orders[name] = order
            leaf = self.leaves[name].detach().permute(order).contiguous()
            self.leaves[name] = leaf.requires_grad_(True)
            grads[name] = grad.permute(order)
        self.optimizer.relayout(self.leaves)
        return grads

    @torch.no_grad()
    def _penalties(self, grads: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """l1 * sum|w| and l2 * sum w^2 over each member's penalized parameters, and their
        gradients l1 * sign(w) and 2 * l2 * w added to ``grads`` (what autograd adds in the
        solo path), for the members that have them only: a stack mixing penalized and
        unpenalized members would otherwise pay for all. Exact zeros for strength 0."""
        l1_term, l2_term = self.l1.new_zeros(self.k), self.l2.new_zeros(self.k)
        for run in self.l1_runs:
            strength, total = self.l1[run], 0
            for name in self.penalized:
                weight = self.leaves[name][run]
                total = total + weight.flatten(1).abs().sum(1)  # torch's sum: solo's rounding
                grads[name][run].addcmul_(weight.sign(), _broadcast(strength, weight))
            l1_term[run] = strength * total
        for run in self.l2_runs:
            strength, total = self.l2[run], 0
            for name in self.penalized:
                weight = self.leaves[name][run]
                total = total + weight.flatten(1).pow(2).sum(1)
                grads[name][run].addcmul_(weight, _broadcast(2 * strength, weight))
            l2_term[run] = strength * total
        return l1_term, l2_term

    # ------------------------------------------------------------------ dropout
    def set_epoch(self, epoch: int) -> None:
        """Read each member's dropout p for ``epoch`` (after the loop's schedule hook)."""
        from regbench.regularization.dropout import apply_schedule

        for m in self.members:
            apply_schedule(m.study.networks.values(), m.settings, epoch)
        modules = [dict(m.study.networks[NETWORK].named_modules()) for m in self.members]
        self.p = [[float(mods[name].p) for mods in modules] for name in self.dropout_names]
        self.active = [i for i, ps in enumerate(self.p) if any(p > 0 for p in ps)]
        self.keep = [
            torch.tensor([1.0 - p for p in ps], dtype=torch.float32, device=self.device)
            for ps in self.p
        ]

    def _set_masks(self, batch_size: int) -> None:
        """Each member's masks from its own generator, in the order the forward uses them and
        laid out as the solo run's (``empty_like(x).bernoulli_(1 - p)`` fills memory in x's
        memory order); no draw when p is 0, as in the solo run."""
        for call in self._calls(batch_size):
            if call.index not in self.active:
                continue
            module = self.dropouts[call.index]
            mask = torch.empty_strided(
                (self.k, *call.shape), (math.prod(call.shape), *call.stride), device=self.device
            )
            for k, member in enumerate(self.members):
                p = self.p[call.index][k]
                if p == 0:
                    mask[k].fill_(1.0)
                    continue
                mask[k].bernoulli_(1.0 - p, generator=member.mask_gen)
                if module.kind == "torch":
                    mask[k].div_(1.0 - p)
            module.mask = mask
            module.keep = self.keep[call.index].view(-1, *[1] * len(call.shape))

    def _calls(self, batch_size: int) -> list[_Call]:
        if batch_size not in self.calls:
            self.calls[batch_size], _ = self._probe(batch_size)
        return self.calls[batch_size]

    def _probe(self, batch_size: int) -> tuple[list[_Call], int]:
        """The dropout calls of one solo training forward on a batch of ``batch_size`` (member
        0's real network, its RNG restored afterwards), and the bytes it saves for backward."""
        study = self.members[0].study
        net = study.networks[NETWORK]
        index = {name: i for i, name in enumerate(self.dropout_names)}
        names = {module: name for name, module in net.named_modules() if name in index}
        calls: list[_Call] = []
        saved = 0

        def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            # The mask the solo module fills: x's shape, or one per feature map (channel dropout).
            mask = getattr(module, "mask_like", torch.empty_like)(args[0])
            calls.append(_Call(index[names[module]], tuple(mask.shape), mask.stride()))

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal saved
            saved += t.numel() * t.element_size()
            return t

        hooks = [module.register_forward_pre_hook(record) for module in names]
        devices = [study.device.index or 0] if study.device.type == "cuda" else []
        was_training = net.training
        try:
            with (
                torch.random.fork_rng(devices=devices),
                torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
            ):
                net.train(True)
                solo_loss(self.loss, net, self.data.first(batch_size), 0)
        finally:
            net.train(was_training)
            for hook in hooks:
                hook.remove()
        if len({call.index for call in calls}) != len(calls):
            raise NotStackable("a dropout module is used more than once per forward")
        return calls, saved

    # ------------------------------------------------------------------ memory
    def bytes_per_member(self) -> int:
        """An estimate of what one more member adds to a stacked step: parameters, gradients,
        optimizer state and temporaries, saved activations and their gradients, masks, batch."""
        settings = self.members[0].settings
        batch_size = min(settings.batch_size, self.members[0].study.n_train)
        calls, saved = self._probe(batch_size)
        self.calls[batch_size] = calls
        params = sum(p[0].numel() * p.element_size() for p in self.leaves.values())
        copies = PARAMETER_COPIES + 2 * self.optimizer.states
        masks = sum(math.prod(call.shape) * 4 for call in calls)
        batch = sum(t[:batch_size].numel() * t.element_size() for t in self.data.tensors.values())
        return int(SAFETY * (params * copies + ACTIVATION_FACTOR * saved + masks + batch))

    # ------------------------------------------------------------------ members
    @torch.no_grad()
    def load_member(self, k: int) -> None:
        """Member k's current weights and optimizer state into its own Study (for evaluation,
        weights.csv, checkpoints and outputs)."""
        study = self.members[k].study
        optimizer = study.optimizers[NETWORK]
        views = self.views()
        for name, param in study.networks[NETWORK].named_parameters():
            param.copy_(views[name][k])
            state = self.optimizer.state_of(k, name, (self.orders or {}).get(name))
            if state:
                optimizer.state[param] = state


def _runs(flags: Sequence[bool]) -> list[slice]:
    """Slices of the consecutive True entries of ``flags``."""
    runs, start = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append(slice(start, i))
            start = None
    return runs


def _broadcast(column: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-member values [k] shaped to broadcast over ``like`` [k, ...]."""
    return column.view(-1, *[1] * (like.dim() - 1))


class _StackedData:
    """The training tensors of all members: shared when every member has the same data, else
    stacked [K, N, ...]; ``batch`` gathers member k's examples ``indices[k]``."""

    def __init__(self, members: list[_Member]) -> None:
        first = members[0].study.data.train
        self.shared = all(m.study.data.train[key] is first[key] for m in members for key in first)
        n = members[0].study.n_train
        if any(m.study.n_train != n for m in members):
            raise NotStackable("members have different numbers of training examples")
        if self.shared:
            self.tensors = dict(first)
        else:  # [K * N, ...]: member k's example i is row k * N + i
            self.tensors = {
                key: torch.cat([m.study.data.train[key] for m in members]) for key in first
            }
        device = members[0].study.device
        self.offsets = (torch.arange(len(members), device=device) * n)[:, None]
        self.n = n

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        rows = indices if self.shared else indices + self.offsets
        return {key: t[rows] for key, t in self.tensors.items()}

    def first(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Member 0's first ``batch_size`` examples, as a stack of one [1, batch_size, ...]."""
        return {key: t[None, :batch_size] for key, t in self.tensors.items()}


# ----------------------------------------------------------------------------- training
def _train_chunk(
    members: list[_Member], reporter: Reporter, on_evaluation: EvaluationHook | None = None
) -> list[RunResult]:
    """Train one chunk stacked, each member in its own run session (session.py)."""
    stack = _Stack(members)
    sessions: list[RunSession] = []
    with closing(sessions, reporter):
        for k, member in enumerate(members):
            sessions.append(member.open_session(k, members, reporter))
            # The stack's time is shared: each member's wall_seconds is its share.
            sessions[-1].share_time(sessions[0].started, len(members))
        trainer = _StackTrainer(stack, on_evaluation)
        at_start = members[0].settings.eval_at_start  # no member key: the whole stack's
        run_epochs(trainer, members[0].settings, reporter, 1, at_start)
        reporter.stop()
        for k, member in enumerate(members):
            if member.running:
                stack.load_member(k)
                with member.own_rng():
                    sessions[k].complete()
    return [session.result for session in sessions]


class _StackTrainer:
    """The stack as train.run_epochs drives it: one step for all members, each member's
    divergence check, evaluation and metrics row through its own study and session."""

    def __init__(self, stack: _Stack, on_evaluation: EvaluationHook | None = None) -> None:
        self.stack, self.members, self.on_evaluation = stack, stack.members, on_evaluation
        self.batch_size = self.members[0].settings.batch_size
        self.batches_per_epoch = math.ceil(stack.data.n / self.batch_size)
        self.observed = False

    def epoch_batches(self, epoch: int) -> Iterator[torch.Tensor]:
        self.stack.set_epoch(epoch)
        n = self.stack.data.n
        order = torch.stack([torch.randperm(n, generator=m.data_gen) for m in self.members])
        return iter(order.to(self.stack.device).split(self.batch_size, dim=1))

    def step(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = self.stack.step(indices)
        if not self.observed:
            for k, member in enumerate(self.members):
                member.guard.observe_first({key: v[k] for key, v in terms.items()})
            self.observed = True
        return terms

    def check(self, sums: Sums, steps: int, epoch: int) -> None:
        """The solo divergence check, member by member; a diverged member stops there alone."""
        for k, member in enumerate(self.members):
            if not member.running:
                continue
            try:
                member.guard.check({key: v[k] for key, v in sums.items()}, steps, epoch)
            except Diverged as exc:
                assert member.session is not None
                member.session.fail(exc)

    def active(self) -> bool:
        return any(member.running for member in self.members)

    def record(self, epoch: int, sums: Sums, steps: int, window_start: float) -> None:
        share = (time.perf_counter() - window_start) / len(self.members)
        terms = train_means(sums, steps, self.members[0].study.step_terms)
        means = {key: v.expand(len(self.members)).tolist() for key, v in terms.items()}
        for k, member in enumerate(self.members):
            if not member.running:
                continue
            assert member.session is not None
            start = time.perf_counter()
            self.stack.load_member(k)
            row: dict[str, Any] = {"epoch": epoch, **{key: v[k] for key, v in means.items()}}
            with member.own_rng():
                with untouched_rng(epoch):
                    row.update(evaluate(member.study))
                member.session.record(row, share + time.perf_counter() - start)
                if member.session.stopped_early:
                    # Its run ends here, as the solo run would: completed, with its selected
                    # epoch's weights restored. In the stack it is masked from now on: it still
                    # takes its share of each step (leaving would mean rebuilding the stack),
                    # but nothing of it is evaluated or written.
                    member.session.complete()
        if epoch != 0:  # a pruner judges training: the untrained model tells it nothing
            self.consult(epoch)

    def consult(self, epoch: int) -> None:
        """Show the hook this evaluation; when it says so, every running member ends pruned
        (its checkpoint stays, but a pruned run is final: nothing resumes it)."""
        sessions = [m.session for m in self.members if m.session is not None]
        if self.on_evaluation is None or not self.on_evaluation(epoch, sessions):
            return
        for member in self.members:
            if member.running:
                assert member.session is not None
                member.session.summary.pruned_epoch = epoch
                member.session.close(Status.PRUNED)
