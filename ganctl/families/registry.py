"""The table of model families: the one place a family is registered.

Each built-in family is declared in its own file of :mod:`ganctl.families` (torch-free: networks,
init and objective are ``"module:attr"`` references, see :mod:`ganctl.families.familyspec`) and listed here;
:func:`register` adds another at run time (tests, plug-ins). ``docs/contributing.md`` walks
through adding one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ganctl.core.errors import GanctlError, did_you_mean
from ganctl.families import cgan, cyclegan, dcgan, gan, pix2pix, wgan
from ganctl.families.familyspec import (  # noqa: F401  (the names the rest of ganctl reads from here)
    DATA_KINDS,
    Family,
    Networks,
    Objective,
    Option,
    Preset,
    SizeRule,
    Variant,
    presets,
    resolve,
)

BUILT_IN = (gan.GAN, dcgan.DCGAN, wgan.WGAN, wgan.WGAN_GP, cgan.CGAN, pix2pix.PIX2PIX, cyclegan.CYCLEGAN)

_FAMILIES: dict[str, Family] = {}
FAMILIES: Mapping[str, Family] = MappingProxyType(_FAMILIES)  # a live, read-only view


def register(family: Family) -> Family:
    """Add a family (a ValueError if its name is taken); returns it."""
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered twice")
    _FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family (tests that register their own)."""
    _FAMILIES.pop(name, None)


def names() -> list[str]:
    return list(_FAMILIES)


def get(name: str) -> Family:
    """The family ``name`` (case-insensitive: ``DCGAN`` is dcgan); a did-you-mean error otherwise."""
    if name not in _FAMILIES:
        folded = {n.lower(): n for n in _FAMILIES}
        if name.lower() not in folded:
            raise did_you_mean("model", name, names())
        name = folded[name.lower()]
    return _FAMILIES[name]


def variants() -> list[tuple[Family, str | None, Variant]]:
    """Every (family, --arch value or None for the default, variant)."""
    out = []
    for fam in _FAMILIES.values():
        out.append((fam, None, fam.default))
        out += [(fam, name, v) for name, v in fam.variants.items()]
    return out


def networks(arch_name: str) -> Networks:
    """The networks a config or generator file names by ``arch``; KeyError if none is registered."""
    for _, _, v in variants():
        if v.networks.name == arch_name:
            return v.networks
    raise KeyError(arch_name)


def arch_names() -> list[str]:
    return list(dict.fromkeys(v.networks.name for _, _, v in variants()))


def takers(flag: str) -> str:
    """Who takes an option, in words: 'wgan, wgan-gp and cgan --arch conv'."""
    who = []
    for fam, arch, v in variants():
        if any(o.flag == flag for o in fam.options_of(v)):
            who.append(fam.name if arch is None else f"{fam.name} --arch {arch}")
    who = list(dict.fromkeys(who))
    return who[0] if len(who) == 1 else f"{', '.join(who[:-1])} and {who[-1]}"


def checked_options(fam: Family, arch: str | None, given: dict[str, object]) -> dict[tuple[str, str], object]:
    """The family options the user gave (``{name: value}``, None meaning not given), checked:
    each must be one this family (and --arch) takes, in its range. Returns ``{(into, key): value}``."""
    mine = {o.name: o for o in fam.options(arch)}
    every = {o.name: o for f in _FAMILIES.values() for o in f.all_options()}
    out: dict[tuple[str, str], object] = {}
    for name, value in given.items():
        if value is None or value is False:
            continue
        if name not in mine:
            opt = every.get(name)
            flag = opt.flag if opt else f"--{name.replace('_', '-')}"
            where = f"{fam.name} --arch {arch}" if arch else fam.name
            raise GanctlError(f"{flag} applies to {takers(flag) if opt else 'no model'}, not {where}")
        opt = mine[name]
        out[(opt.into, opt.key)] = opt.check(value)
    return out


for _family in BUILT_IN:
    register(_family)
