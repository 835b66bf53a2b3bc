"""CPU fast paths, applied by the runtime to built networks (being moved here from models/layers.py)."""


def apply(rt, *modules) -> list[str]:
    return []
