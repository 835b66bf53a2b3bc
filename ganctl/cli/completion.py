"""Shell completion for names; pure data lookups, no torch."""

from __future__ import annotations


def models(incomplete: str) -> list[str]:
    from ganctl.families import registry

    return [n for n in registry.names() if n.startswith(incomplete)]


def datasets(incomplete: str) -> list[str]:
    from ganctl.data.catalog import CATALOG

    return [n for n in CATALOG if n.startswith(incomplete)]


def downloadables(incomplete: str) -> list[str]:
    """Datasets, pretrained models (their `_pretrained` names where a dataset has the same name) and
    evaluate's Inception weights."""
    from ganctl.evaluation import weights
    from ganctl.store import pretrained

    names = [*pretrained.download_names(), *weights.CATALOG]
    return datasets(incomplete) + [n for n in names if n.startswith(incomplete)]


def trackers(incomplete: str) -> list[str]:
    from ganctl.train.tracking import TRACKERS

    return [n for n in TRACKERS if n.startswith(incomplete)]
