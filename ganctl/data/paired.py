"""Paired images for pix2pix: one split of a paired dataset, decoded once at the load size.

A dataset is a catalog name (``facades``, ``maps``, ``edges2shoes``, ``edges2handbags``,
``night2day``: downloaded; ``synthetic-facades``: generated, :mod:`ganctl.data.synthetic_facades`)
or a folder in one of the layouts of :mod:`ganctl.data.pair_layouts`; pairs are decoded by
:mod:`ganctl.data.pair_decoding` and jittered in training by :mod:`ganctl.data.pair_jitter`.

Sets that fit the memory budget are decoded once, in threads (PIL releases the GIL), and kept in
memory as uint8; larger ones (edges2shoes, edges2handbags, night2day at 286) are decoded per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganctl.core.errors import DatasetError, did_you_mean
from ganctl.data import catalog
from ganctl.data.catalog import is_path_like
from ganctl.data.datasets import IMAGE_SUFFIXES
from ganctl.data.pair_decoding import check_sizes, decode_pairs, workers
from ganctl.data.pair_layouts import Pair, choose_split, list_pairs, rel_name

WarnFn = Callable[[str], None]

# decoded pairs above this many bytes are decoded per batch instead of kept in memory
MEMORY_BUDGET = 3 * 10**9


@dataclass
class PairedData:
    """Image pairs as uint8 (N, C, L, L) tensors at the load size: ``a`` and ``b`` as stored
    (A = left half / ``A/`` folder), whatever the direction of training.

    ``files`` are the pairs' names relative to their split folder, in order.
    """

    name: str
    a: torch.Tensor
    b: torch.Tensor
    files: list[str]
    source: str
    default_direction: str  # "AtoB" or "BtoA"
    split: str

    lazy = False

    def __len__(self) -> int:
        return len(self.files)

    @property
    def load_size(self) -> int:
        return self.a.shape[-1]

    @property
    def channels(self) -> int:
        return self.a.shape[1]

    def batch(self, indices: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The pairs at ``indices``: two uint8 (n, C, L, L) tensors."""
        return self.a[indices], self.b[indices]


@dataclass
class LazyPairedData(PairedData):
    """Pairs decoded on demand by :meth:`batch` (in a thread pool); ``a`` and ``b`` are None.

    Used when the decoded set would exceed the memory budget. A file that cannot be read is an
    error when its batch is decoded, naming the file.
    """

    pairs: list[Pair] = field(default_factory=list, repr=False)
    size: int = 286
    root: Path = Path(".")
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False, compare=False)

    lazy = True

    @property
    def load_size(self) -> int:
        return self.size

    @property
    def channels(self) -> int:
        return 3

    def batch(self, indices: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="ganctl-pairs")
        return decode_pairs([self.pairs[i] for i in idx], self.size, self.root, self._pool)

    def __del__(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False)


def load_paired(
    spec: str,
    split: str = "train",
    load_size: int = 286,
    warn: WarnFn | None = None,
    *,
    memory_budget: int | None = None,
    limit: int | None = None,
) -> PairedData:
    """One split of a paired dataset: a catalog name (already in the store) or a folder.

    A split that is missing falls back to its stand-in (val <-> test) with a warning; otherwise
    the error lists the splits there are. Sets whose decoded size exceeds ``memory_budget``
    (default :data:`MEMORY_BUDGET`) come back as :class:`LazyPairedData`. ``limit``: only the
    first pairs (in file order) are decoded, e.g. the few that validation scores.
    """
    if load_size < 1:
        raise DatasetError(f"load size must be positive, not {load_size}")
    direction = "AtoB"
    if is_path_like(spec):
        root = Path(spec).expanduser()
        if not root.is_dir():
            raise DatasetError(f"dataset folder {spec} does not exist")
        name = root.resolve().name
    else:
        entry = _paired_entry(spec)
        root, name, direction = _catalog_folder(entry), entry.name, entry.default_direction
    chosen, split_dir = choose_split(root, split, warn)
    pairs = list_pairs(root, split_dir)
    if not pairs:
        where = rel_name(split_dir[0], root) if isinstance(split_dir, tuple) else rel_name(split_dir, root)
        raise DatasetError(
            f"no images in {root / where if where != '.' else root} (looked for "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}, in sub-folders too)"
        )
    pairs = pairs[:limit]
    files = [p.name for p in pairs]
    source = str(root.resolve())
    budget = MEMORY_BUDGET if memory_budget is None else memory_budget
    decoded = len(pairs) * 2 * 3 * load_size * load_size
    with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="ganctl-pairs") as pool:
        if decoded > budget:
            if warn:
                from ganctl.core.storedirs import human_size

                warn(f"{name} {chosen}: {len(pairs):,} pairs would take {human_size(decoded)} decoded at "
                     f"{load_size}x{load_size}; decoding them per batch instead")
            if pairs[0].b is not None:
                check_sizes(pairs, root, pool)
            return LazyPairedData(name, None, None, files, source, direction, chosen,  # type: ignore[arg-type]
                                  pairs=pairs, size=load_size, root=root)
        a, b = decode_pairs(pairs, load_size, root, pool)
    return PairedData(name, a, b, files, source, direction, chosen)


def _paired_entry(spec: str) -> catalog.CatalogEntry:
    if spec not in catalog.CATALOG:
        err = did_you_mean("dataset", spec, catalog.paired_names())
        raise DatasetError(f"{err} Or give the path of a folder of A|B pairs.")
    entry = catalog.CATALOG[spec]
    if not entry.paired:
        raise DatasetError(
            f"{spec} is not a paired dataset: pix2pix needs A|B pairs, such as "
            f"{', '.join(catalog.paired_names())}, or a folder of pairs"
        )
    return entry


def _catalog_folder(entry: catalog.CatalogEntry) -> Path:
    if entry.layout in ("manual", "generated"):  # fetch explains the one and generates the other
        from ganctl.data import fetch

        return fetch.fetch(entry)
    if not entry.is_present():
        raise DatasetError(f"dataset {entry.name!r} is not in the store: run 'ganctl download {entry.name}'")
    return entry.data_dir()
