"""Where a run's figures are drawn: right here, or in worker processes while training goes on.

A run's figures are ``Drawing``s: a module-level drawing function and plain data (numpy arrays,
metrics rows, paths), computed by the run (predictions, final weights) before it hands them
over. By default they are drawn at once, in this process. Inside ``in_workers()`` (a command's
runs: ``regbench run``, ``regbench sweep``) they go to worker processes forked from this one,
so a sweep's next job trains while the last one's figures are drawn, and a run's or a stack's
figures are drawn on every core. The run whose figures they are is closed as ``completed`` only
once they are on disk (``then``): a folder never says completed with figures still missing.

Figures took about 0.5 s of CPU a run (four of them for the regression study), as long as a
300-epoch regression run's training loop: benchmarks/bench.py [5] and [6].
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regbench.core.signals import sigterm_as_interrupt
from regbench.figures.output import Output, applied

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor


@dataclass(frozen=True)
class Drawing:
    """One figure to draw: ``function(*args, **kwargs)``. ``function`` is importable by name,
    and tensors among the arguments become numpy copies here, so a worker process can draw it
    and the run may go on changing its tensors meanwhile."""

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    # The formats, dpi and style it is drawn with (None: the defaults, or the caller's).
    output: Output | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", plain(self.args))
        object.__setattr__(self, "kwargs", plain(self.kwargs))

    def __call__(self) -> None:
        with applied(self.output):
            self.function(*self.args, **self.kwargs)

    def written_as(self, output: Output) -> Drawing:
        """This drawing, written in ``output``'s formats, dpi and style."""
        return dataclasses.replace(self, output=output)


def plain(value: Any) -> Any:
    """``value`` with every torch tensor in it (in dicts, lists, tuples) a numpy copy."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and any(_holds_tensors(item) for item in value):
        return type(value)(plain(item) for item in value)
    return value


def _holds_tensors(value: Any) -> bool:
    if hasattr(value, "detach"):
        return True
    if isinstance(value, dict):
        return any(_holds_tensors(item) for item in value.values())
    return isinstance(value, (list, tuple)) and any(_holds_tensors(item) for item in value)


# What a run does once its figures are drawn: ``then(None)``, or ``then(error)`` when one failed.
Then = Callable[[BaseException | None], None]


class Drawer:
    """Draws at once, in this process (the default: a notebook call, a test, a library user)."""

    def prepare(self) -> None:
        """Get ready to draw: a run calls this as it opens, before it trains."""

    def draw(self, drawings: Sequence[Drawing], then: Then) -> None:
        try:
            for drawing in drawings:
                drawing()
        except (Exception, KeyboardInterrupt) as exc:  # Ctrl-C too: the run says it ended so
            then(exc)
            raise
        then(None)

    def settle(self, wait: bool = False) -> None:
        """Hear the end of drawings handed over so far (``wait``: of all of them)."""


# Workers: by default one a core, at most MAX_WORKERS, none on one core. Two draw a stack's
# figures twice as fast as one; more than two had nothing to do in a sweep (benchmarks/bench.py).
MAX_WORKERS = 2
WORKERS_ENV = "REGBENCH_FIGURE_WORKERS"  # how many; 0 draws in the run's own process


def worker_count() -> int:
    """How many figure workers a command starts (``REGBENCH_FIGURE_WORKERS``, else by cores)."""
    from regbench.core.errors import UsageError

    chosen = os.environ.get(WORKERS_ENV, "").strip()
    if not chosen:
        cores = os.cpu_count() or 1
        return min(MAX_WORKERS, cores) if cores > 1 else 0
    if not chosen.isdigit():
        raise UsageError(f"{WORKERS_ENV}={chosen!r}: give a number of processes (0: none)")
    return int(chosen)


def can_fork() -> bool:
    """Workers are forked (they inherit the imported modules, so they start in milliseconds):
    only where fork is the safe default, Linux."""
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


class WorkerDrawer(Drawer):
    """Hands each drawing to a pool of forked worker processes, started on first use; runs hear
    of their figures (``then``) in this thread, at the next ``settle``."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None
        self.pending: list[tuple[list[Future[None]], list[Drawing], Then]] = []
        self.errors: list[BaseException] = []  # the figures' errors, in the order heard

    def prepare(self) -> None:
        """Fork the workers now, while the run's modules are imported and before it starts
        threads (loggers, progress bars); they import matplotlib while it trains."""
        self.started()

    def draw(self, drawings: Sequence[Drawing], then: Then) -> None:
        from concurrent.futures.process import BrokenProcessPool

        try:
            futures = [self.started().submit(d) for d in drawings]
        except BrokenProcessPool:  # a worker died earlier (killed, out of memory): draw here
            super().draw(drawings, then)
            return
        self.pending.append((futures, list(drawings), then))
        self.settle()

    def started(self) -> ProcessPoolExecutor:
        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("fork")
            self.pool = ProcessPoolExecutor(
                self.workers, context, initializer=_worker_signals, initargs=(os.getpid(),)
            )
            for _ in range(self.workers):
                self.pool.submit(_import_matplotlib)  # while this process trains
        return self.pool

    def settle(self, wait: bool = False) -> None:
        from concurrent.futures import wait as wait_for

        try:
            for entry in list(self.pending):
                futures, drawings, then = entry
                if wait:
                    wait_for(futures)
                if all(f.done() for f in futures):
                    self.pending.remove(entry)  # before ``then``: each run hears its end once
                    error = _first_error(futures, drawings)
                    self.errors += [error] if error else []
                    then(error)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (in_workers), while we wait
            self.abandon(exc)
            raise

    def abandon(self, interrupt: KeyboardInterrupt) -> None:
        """Every run still waiting for its figures ends now: completed where they were all
        drawn, else interrupted (a resume draws them); figures not started are not drawn."""
        pending, self.pending = self.pending, []
        for futures, _, then in pending:
            for future in futures:
                future.cancel()
            drawn = all(f.done() and not f.cancelled() and not f.exception() for f in futures)
            then(None if drawn else interrupt)

    def close(self) -> None:
        interrupted = True
        try:
            self.settle(wait=True)
            interrupted = False
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=interrupted)
                self.pool = None


def _first_error(futures: Sequence[Future[None]], drawings: Sequence[Drawing]) -> Exception | None:
    """The first drawing's error; a worker that died is not the figure's fault: its drawings
    are drawn again here."""
    from concurrent.futures.process import BrokenProcessPool

    for future, drawing in zip(futures, drawings, strict=True):
        error = future.exception()
        if isinstance(error, BrokenProcessPool):
            try:
                drawing()
            except Exception as exc:
                return exc
        elif error is not None:
            return error  # type: ignore[return-value]
    return None


PR_SET_PDEATHSIG = 1  # <sys/prctl.h>: the signal a process gets when its parent ends


def _worker_signals(parent: int) -> None:
    """A worker leaves Ctrl-C to the command (the terminal sends it to every process of the
    group, and a worker's traceback would only hide the command's one line), and ends with the
    command: a killed command (SIGKILL) would otherwise leave its workers waiting forever,
    holding its output pipes open."""
    import ctypes

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the command ended before prctl took effect
        os._exit(0)
    _forget_inherited_fonts()


def _forget_inherited_fonts() -> None:
    """Drop every matplotlib font this worker inherited from a process that had drawn before it
    forked (a notebook, the test suite). A FreeType font reads its file through a descriptor
    the fork shares, offset included: two processes reading glyphs at once read each other's
    bytes ("FT_Load_Glyph failed: invalid outline", or a wrong glyph). matplotlib empties its
    font cache at a fork; its mathtext cache (log axes' tick labels) still holds fonts, and so
    may the figures regbench keeps for reuse."""
    if "matplotlib" not in sys.modules:
        return
    from matplotlib import font_manager
    from matplotlib.mathtext import MathTextParser

    from regbench.figures.plots import forget_reused_figures

    font_manager._get_font.cache_clear()
    MathTextParser._parse_cached.cache_clear()
    forget_reused_figures()


def _import_matplotlib() -> None:
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


_drawer: ContextVar[Drawer] = ContextVar("regbench_drawer", default=Drawer())  # noqa: B039


def drawer() -> Drawer:
    """The drawer runs hand their figures to now."""
    return _drawer.get()


@contextlib.contextmanager
def in_workers(raise_errors: bool = False) -> Iterator[None]:
    """Runs started inside draw their figures in worker processes. The outermost block owns the
    workers (a sweep's jobs and its comparison share them): on its way out every figure is
    drawn and every run that waited for its figures closed, and with ``raise_errors`` the
    first figure's error is raised (as drawing here would have). An inner block is part of the
    outer one and waits for nothing: ``settle_all`` is there for that."""
    count = worker_count()
    if isinstance(drawer(), WorkerDrawer) or not count or not can_fork():
        yield
        return
    workers = WorkerDrawer(count)
    token = _drawer.set(workers)
    # SIGTERM while runs wait for their figures here ends them as interrupted, as in training.
    with sigterm_as_interrupt():
        try:
            yield
        finally:
            _drawer.reset(token)
            workers.close()
    if raise_errors and workers.errors:
        raise workers.errors[0]


def settle_all() -> None:
    """Wait for every figure handed over so far, and close the runs that waited for them."""
    drawer().settle(wait=True)


def draw_now(drawings: Sequence[Drawing]) -> None:
    """Draw ``drawings`` (in the workers, side by side, when there are some) and return once
    they are on disk; the first figure's error is raised."""
    errors: list[BaseException] = []
    drawer().draw(drawings, lambda error: errors.append(error) if error else None)
    settle_all()
    if errors:
        raise errors[0]
