"""Decoding pairs: both halves to RGB, resized to the load size with PIL's bicubic filter, in threads.

A is the left half of an aligned A|B image, split at ``width // 2`` as the official
``AlignedDataset`` does. Both halves are resized to ``load_size`` x ``load_size``, as the official
``transforms.Resize([286, 286], BICUBIC)`` (not aspect-preserving). PIL releases the GIL, so a
thread pool decodes in parallel. A pair that cannot be read, or whose halves differ in size, is an
error naming its files.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ganctl.core.errors import DatasetError
from ganctl.data.pair_layouts import Pair, rel_name, some_names


def workers() -> int:
    """Decoding threads: one per core, up to 16."""
    return max(1, min(16, os.cpu_count() or 1))


def open_rgb(path: Path):
    """The image at ``path`` as a PIL RGB image (ImageReadError when it cannot be read)."""
    from ganctl.core import images

    # as the official loader: grayscale and palette images become RGB
    return images.open_image(path).convert("RGB")


_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, SyntaxError)


def _decode_one(pair: Pair, size: int, root: Path):
    """-> (A, B) as (size, size, 3) uint8 tensors, or a string saying what is wrong with the pair."""
    from PIL import Image

    from ganctl.core.images import ImageReadError

    bicubic = Image.Resampling.BICUBIC
    try:
        ab = open_rgb(pair.a)
    except ImageReadError as e:
        return f"{rel_name(pair.a, root)} cannot be read ({e.reason})"
    except _READ_ERRORS as e:
        return f"{rel_name(pair.a, root)} cannot be read (unsupported pixel format: {e})"
    if pair.b is None:
        w, h = ab.size
        if w < 2:
            return f"{rel_name(pair.a, root)} is {w}x{h}: too narrow to hold A and B side by side"
        a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
    else:
        a = ab
        try:
            b = open_rgb(pair.b)
        except ImageReadError as e:
            return f"{rel_name(pair.b, root)} cannot be read ({e.reason})"
        except _READ_ERRORS as e:
            return f"{rel_name(pair.b, root)} cannot be read (unsupported pixel format: {e})"
        if a.size != b.size:
            return (f"{rel_name(pair.a, root)} is {a.size[0]}x{a.size[1]} but {rel_name(pair.b, root)} is "
                    f"{b.size[0]}x{b.size[1]}")
    out = []
    for half in (a, b):
        half = half.resize((size, size), bicubic)
        out.append(torch.frombuffer(bytearray(half.tobytes()), dtype=torch.uint8).view(size, size, 3))
    return out[0], out[1]


def decode_pairs(pairs: list[Pair], size: int, root: Path, pool: ThreadPoolExecutor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pairs`` as two uint8 (N, 3, size, size) tensors; every bad pair named in one error."""
    a = torch.empty((len(pairs), 3, size, size), dtype=torch.uint8)
    b = torch.empty_like(a)

    def work(i: int):
        got = _decode_one(pairs[i], size, root)
        if isinstance(got, str):
            return got
        a[i].copy_(got[0].permute(2, 0, 1))
        b[i].copy_(got[1].permute(2, 0, 1))
        return None

    problems = [p for p in pool.map(work, range(len(pairs))) if p]
    if problems:
        raise DatasetError(f"{len(problems)} bad pair(s) in {root}: {some_names(problems)}. Fix or remove them")
    return a, b


def check_sizes(pairs: list[Pair], root: Path, pool: ThreadPoolExecutor) -> None:
    """A/B pairs decoded lazily: compare image sizes from the headers, up front."""
    from ganctl.core import images

    def work(pair: Pair):
        sizes = []
        for path in (pair.a, pair.b):
            try:
                sizes.append(images.read_header(path)[1])
            except images.ImageReadError as e:
                return f"{rel_name(path, root)} cannot be read ({e.reason})"
        if sizes[0] != sizes[1]:
            (aw, ah), (bw, bh) = sizes
            return f"{rel_name(pair.a, root)} is {aw}x{ah} but {rel_name(pair.b, root)} is {bw}x{bh}"
        return None

    problems = [p for p in pool.map(work, pairs, chunksize=64) if p]
    if problems:
        raise DatasetError(f"{len(problems)} bad pair(s) in {root}: {some_names(problems)}. Fix or remove them")
