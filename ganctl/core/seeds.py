"""Seeds: the accepted range of ``--seed`` and the one function that derives every other seed.

Nothing here imports torch (the CLI validates ``--seed`` before loading it).

:func:`derive` turns ``(seed, *keys)`` (for example ``(seed, epoch, batch)``) into a seed for
``torch.Generator.manual_seed`` or ``random.Random``. It keeps ganctl's original formula,
``(seed * 1_000_003 + k1) * 1_000_033 + k2``, wherever that value fits the 64 bits torch takes, so
every run that ever trained resumes with the same batch order and the generated datasets keep
their bytes; where it would overflow (``--seed 123456789`` with a batch index crashed pix2pix), or
for keys the old formula never had (strings, three or more keys), it hashes a canonical encoding
with BLAKE2b to 63 bits. One rule, no stored scheme, no run whose stream changes.
"""

from __future__ import annotations

import hashlib

from ganctl.core.errors import GanctlError

SEED_MIN = -(2**63)
SEED_MAX = 2**63 - 1  # a signed 64-bit integer: what config.json, torch and every derivation take

# what torch.Generator.manual_seed accepts (negative values wrap to their unsigned 64-bit twin)
_TORCH_MIN, _TORCH_END = -(2**63), 2**64
_LEGACY_MULTIPLIERS = (1_000_003, 1_000_033)


def check(seed: int, flag: str = "--seed") -> int:
    """``seed`` if it is in the accepted range, else a one-line error saying what is."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not SEED_MIN <= seed <= SEED_MAX:
        raise GanctlError(f"{flag} must be a whole number from {SEED_MIN} to {SEED_MAX} (a signed 64-bit integer), got {seed}")
    return seed


def option(value: int | None) -> int | None:
    """Typer callback for every ``--seed`` option: the same range everywhere."""
    return None if value is None else check(value)


def derive(seed: int, *keys: int | str) -> int:
    """A seed for the stream named by ``keys`` under ``seed``, valid for any int ``seed``.

    The result is accepted by ``torch.Generator().manual_seed`` and ``random.Random``, and is the
    same on every platform and Python version."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if 1 <= len(keys) <= len(_LEGACY_MULTIPLIERS) and all(type(k) is int for k in keys):
        value = seed
        for m, k in zip(_LEGACY_MULTIPLIERS, keys, strict=False):
            value = value * m + k
        if _TORCH_MIN <= value < _TORCH_END:
            return value
    return _hashed(seed, keys)


def _hashed(seed: int, keys: tuple[int | str, ...]) -> int:
    parts = [b"ganctl-seed-v1", _encode(seed)]
    for k in keys:
        if isinstance(k, bool) or not isinstance(k, (int, str)):
            raise TypeError(f"seed keys are ints or strings, got {type(k).__name__}")
        parts.append(_encode(k))
    digest = hashlib.blake2b(b"".join(parts), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # 63 bits: non-negative in every signed or unsigned reading


def _encode(value: int | str) -> bytes:
    """Type tag, length, bytes: no two different key tuples share an encoding."""
    if isinstance(value, str):
        tag, body = b"s", value.encode("utf-8")
    else:
        tag, body = b"i", value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True)
    return tag + len(body).to_bytes(4, "big") + body
