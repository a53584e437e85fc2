"""Figure titles, shared by the run's own plots and the studies' figures (a leaf module)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regbench.core.config import Settings


def plot_title(settings: Settings, data_name: str | None = None) -> str:
    """Figure title with the key settings; ``data_name`` is the source actually used (it differs
    from the config's after a fallback)."""
    return (
        f"{settings.model.name} on {data_name or settings.data.name}: "
        f"dropout={settings.dropout:g} "
        f"l1={settings.l1:g} l2={settings.l2:g} weight_decay={settings.weight_decay:g} "
        f"seed={settings.seed}"
    )
