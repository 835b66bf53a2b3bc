"""Shell completion for names; pure data lookups, no torch."""

from __future__ import annotations


def models(incomplete: str) -> list[str]:
    from ganctl import registry

    return [n for n in registry.names() if n.startswith(incomplete)]


def datasets(incomplete: str) -> list[str]:
    from ganctl.data.catalog import CATALOG

    return [n for n in CATALOG if n.startswith(incomplete)]
