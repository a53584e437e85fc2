"""Reading override strings as users type them (``+experiment=foo``, ``~dropout``,
``dropout=0,0.5``), where regbench needs their key before Hydra parses them."""

from __future__ import annotations

from collections.abc import Sequence


def override_key(item: str) -> str:
    """The key an override sets, without Hydra's ``+``/``++``/``~`` prefixes."""
    return item.split("=", 1)[0].lstrip("+~")


def override_pairs(overrides: Sequence[str]) -> list[tuple[str, str]]:
    """The ``key=value`` overrides as (key, value), in order (a bare ``~key`` has none)."""
    return [(item.split("=", 1)[0], item.split("=", 1)[1]) for item in overrides if "=" in item]
