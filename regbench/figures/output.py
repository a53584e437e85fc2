"""How figures are written: their formats (png, pdf, svg), resolution and matplotlib style.

The settings ``plot_format``, ``plot_dpi`` and ``plot_style`` become an :class:`Output` that
travels with each drawing (drawing.py) into the worker that draws it; while it draws, the
output is this thread's current one and ``plots.save``/``save_fixed`` write every format it
names beside the figure's ``.png`` path.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("png", "pdf", "svg")
DEFAULT_DPI = 110


@dataclass(frozen=True)
class Output:
    formats: tuple[str, ...] = ("png",)
    dpi: int = DEFAULT_DPI
    style: str | None = None

    @classmethod
    def of(cls, settings: Any) -> Output:
        """A run's output, from its settings (those made before the keys: the defaults)."""
        return cls(
            tuple(getattr(settings, "plot_format", ("png",))),
            getattr(settings, "plot_dpi", DEFAULT_DPI),
            getattr(settings, "plot_style", None),
        )

    @classmethod
    def from_config(cls, flat: Mapping[str, Any]) -> Output:
        """From a run's flattened config (``plot_format`` a tuple, keys perhaps missing)."""
        formats = flat.get("plot_format") or ("png",)
        formats = (formats,) if isinstance(formats, str) else tuple(formats)
        return cls(formats, int(flat.get("plot_dpi") or DEFAULT_DPI), flat.get("plot_style"))

    def paths(self, path: Path) -> list[Path]:
        """The files a figure named ``path`` (any suffix) is written to."""
        return [path.with_suffix(f".{fmt}") for fmt in self.formats]


_current = threading.local()


def current() -> Output:
    """The output of the drawing this thread is drawing (the defaults outside one)."""
    return getattr(_current, "output", None) or Output()


@contextlib.contextmanager
def applied(output: Output | None) -> Iterator[None]:
    """Draw with ``output``: its style for every figure made inside, its formats and dpi for
    every figure saved inside (None: the defaults, or the output already applied)."""
    if output is None:
        yield
        return
    previous = getattr(_current, "output", None)
    _current.output = output
    try:
        with style_context(output.style):
            yield
    finally:
        _current.output = previous


@contextlib.contextmanager
def style_context(style: str | None) -> Iterator[None]:
    if style is None:
        yield
        return
    from matplotlib import style as mpl_style

    with mpl_style.context(style):
        yield
